"""What `riskcast train` and `riskcast places train` share around a run: the progress callback
and its bar on stderr, the wall time per stage, and the lines that say where the run and the
registered version are.

Written once so that both commands report a run the same way; the training itself stays with
each path (`training.pipeline`, `training.places.train`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

Progress = Callable[[str, float | None], None]
"""``progress(message, fraction_of_tuning_done_or_None)``."""


def no_progress(_message: str, _fraction: float | None) -> None:
    """The default `Progress`: says nothing."""
    return None


class Laps:
    """Wall time per stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self._last
        self._last = now


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """A bar on stderr that the yielded `Progress` moves; ``done`` when the block ends."""
    with Bar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task("starting ...", total=1.0)

        def progress(message: str, fraction: float | None) -> None:
            if fraction is None:
                bar.update(task, description=message)
            else:
                bar.update(task, description=message, completed=fraction)

        yield progress
        bar.update(task, description="done", completed=1.0)


class RegisteredRun(Protocol):
    """What `print_registered` reads of a training result (`TrainResult`, `PlacesTrainResult`)."""

    timings: dict[str, float]
    run_id: str
    model_name: str
    model_version: str
    tracking_uri: str
    ui_command: str


def print_registered(out: Console, result: RegisteredRun) -> None:
    """The stages' times, the run, the registered version and how to look at them."""
    out.print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()))
    out.print(f"run id:        {result.run_id}")
    out.print(f"model version: {result.model_name} v{result.model_version} (alias challenger)")
    out.print(f"tracking:      {result.tracking_uri}")
    out.print(f"look:          {result.ui_command}", highlight=False)
