"""The Dask switch: ``RISKCAST_DASK_SCHEDULER`` moves the heavy steps onto a Dask cluster.

Why here, in the kernel: every stage (features, training, serving's score book) asks the same
question, "is there a cluster?", and must get the same answer from one place. `session` opens a
client for the command that runs (and closes it, with any `LocalCluster` it started); inside it
`current` returns that client, and the partitioning seams (`features.frames.partition`) use it.
Outside a session, or with the setting unset, `current` is None and everything runs in this
process exactly as before.

- unset: no Dask at all (nothing is imported);
- ``local`` / ``local:N``: a `LocalCluster` of N worker processes (default 2), one thread each
  (the work inside a task is Polars, which has threads of its own);
- ``tcp://host:8786`` (or ``tls://``...): an existing scheduler. Its workers must see the same
  ``RISKCAST_HOME`` (a shared file system): tasks read the offline store and write their
  partitions there, and only small results travel back.

Dask retries a task whose worker died (``distributed.scheduler.allowed-failures``): results
are pure functions of their inputs, so a retry gives the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from riskcast.errors import ConfigError, RiskcastError
from riskcast.settings import Settings, read_settings

if TYPE_CHECKING:  # distributed is imported only when a cluster is asked for
    from distributed import Client

LOCAL_WORKERS = 2
CONNECT_TIMEOUT_S = 30
T = TypeVar("T")


class ClusterError(RiskcastError):
    """A step on the Dask cluster failed (its partitions were not all computed)."""


@dataclass(frozen=True)
class Session:
    """An open client and a scratch folder on the shared home, removed when the session ends."""

    client: Client
    scratch: Path

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def run(
        self, fn: Callable[..., T], items: Sequence[Any], *, name: str, **kwargs: Any
    ) -> list[T]:
        """``fn(item, **kwargs)`` for every item on the workers, results in ``items``' order.

        Tasks are impure to Dask (``pure=False``: a rerun recomputes rather than reusing a
        result of a failed run) and named ``name-<i>`` so a failure names its partition."""
        if not items:
            return []
        token = uuid.uuid4().hex[:8]
        futures = [
            self.client.submit(fn, item, key=f"{name}-{i}-{token}", pure=False, **kwargs)
            for i, item in enumerate(items)
        ]
        try:
            return list(self.client.gather(futures))  # type: ignore[no-untyped-call]
        except RiskcastError:
            raise
        except Exception as exc:  # a worker lost too often, a task's own error: say which step
            raise ClusterError(
                f"{name}: the Dask cluster did not finish the step ({type(exc).__name__}: "
                f"{exc}); nothing was published, run the command again"
            ) from exc
        finally:
            for future in futures:
                future.release()  # type: ignore[no-untyped-call]


_CURRENT: ContextVar[Session | None] = ContextVar("riskcast_dask_session", default=None)


def current() -> Session | None:
    """The session of the command running now, or None: run in this process."""
    return _CURRENT.get()


def parse_local(address: str) -> int | None:
    """The number of workers of a ``local`` / ``local:N`` address; None for a scheduler."""
    if address == "local":
        return LOCAL_WORKERS
    if address.startswith("local:"):
        return int(address.removeprefix("local:"))
    return None


@contextlib.contextmanager
def session(settings: Settings | None = None) -> Iterator[Session | None]:
    """A Dask session for one command if ``RISKCAST_DASK_SCHEDULER`` is set (`current` returns
    it inside), else None and nothing changes."""
    settings = settings or read_settings()
    if settings.dask_scheduler is None:
        yield None
        return
    with connect(settings.dask_scheduler, settings.home) as opened, active(opened):
        yield opened


@contextlib.contextmanager
def connect(address: str, home: Path) -> Iterator[Session]:
    """An open session on ``address`` (not yet `active`); its scratch folder is
    ``<home>/dask/<id>``, on the shared home so remote workers see what the others wrote."""
    scratch = home.resolve() / "dask" / uuid.uuid4().hex
    with _client(address) as client:
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            yield Session(client=client, scratch=scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def active(opened: Session) -> Iterator[Session]:
    """`current` returns ``opened`` inside this block (and None again after it)."""
    reset = _CURRENT.set(opened)
    try:
        yield opened
    finally:
        _CURRENT.reset(reset)


@contextlib.contextmanager
def _client(address: str) -> Iterator[Client]:
    from distributed import Client, LocalCluster

    workers = parse_local(address)
    if workers is None:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"dask_scheduler: cannot reach the Dask scheduler at {address}: {exc}"
            ) from exc
        with client:
            yield client
        return
    # One Polars thread per worker and core, so N workers do not oversubscribe the machine.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"POLARS_MAX_THREADS": threads},
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client
