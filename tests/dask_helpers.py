"""A LocalCluster of 2 process workers for the Dask tests, and a way to kill a worker mid-step.

The fixture opens the session without making it `current` (`riskcast.cluster.connect`): a test
activates it where it wants the Dask path (`riskcast.cluster.active`), so no other test in the
process runs on the cluster by accident.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from distributed import WorkerPlugin

from riskcast.cluster import Session, connect


@pytest.fixture(scope="module")
def dask_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    with connect("local:2", tmp_path_factory.mktemp("dask-home")) as opened:
        yield opened


@pytest.fixture
def doomed_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """A cluster of its own for a test that kills workers: a nanny's restart of a killed
    worker may take long on a busy machine (or, seen here, end with one worker fewer), and
    the next test must not depend on it."""
    with connect("local:2", tmp_path_factory.mktemp("dask-home")) as opened:
        yield opened


class KillOnTask(WorkerPlugin):
    """Ends the worker process (``os._exit``, as the OOM killer would) when a task whose key
    starts with ``prefix`` starts executing; only the first time if ``once`` names a file that
    does not exist yet (it is created then), every time otherwise."""

    def __init__(self, prefix: str, once: str | None = None) -> None:
        self.prefix = prefix
        self.once = once

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or not str(key).startswith(self.prefix):
            return
        if self.once is not None:
            marker = Path(self.once)
            if marker.exists():
                return
            marker.touch()
        os._exit(1)


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests


@contextlib.contextmanager
def killing(
    session: Session, prefix: str, *, once: Path | None = None, retries: int | None = None
) -> Iterator[None]:
    """Workers die on tasks named ``prefix...`` inside the block; ``retries`` sets how many
    times the scheduler reruns a task whose worker died (its ``allowed_failures``)."""
    client = session.client
    name = f"kill-{prefix}"
    before = client.run_on_scheduler(_get_allowed)
    if retries is not None:
        client.run_on_scheduler(_set_allowed, value=retries)
    client.register_plugin(KillOnTask(prefix, None if once is None else str(once)), name=name)
    try:
        yield
    finally:
        client.run_on_scheduler(_set_allowed, value=before)
        with contextlib.suppress(OSError):  # a worker dying right now cannot be told
            client.unregister_worker_plugin(name)


def _get_allowed(dask_scheduler: Any) -> int:
    return int(dask_scheduler.allowed_failures)


def _set_allowed(dask_scheduler: Any, value: int) -> None:
    dask_scheduler.allowed_failures = value
