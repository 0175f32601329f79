"""Optuna trials as Dask tasks, one trial per worker at a time (issue 14).

Why this shape: the study lives in an Optuna RDB storage every worker reaches (a SQLite file
on the shared home by default, PostgreSQL in production: ``RISKCAST_OPTUNA_STORAGE``,
`training.tuning.study_storage`), so a trial run on any worker is recorded where the pruner
and the next trials see it, and a rerun of the command resumes the study.

- The client samples each trial (``study.ask`` with the space's distributions: the same TPE
  sampler, seed and order as the single-machine path, so with one worker the trials are the
  same); a worker runs it with `training.tuning.trial_objective`, the very objective of the
  single-machine path, and tells the storage its value (or that it was pruned).
- The folds travel once (scattered to every worker) and are binned once per worker process.
- At most one trial per worker is in flight (each pinned to an idle worker), so trials never
  compete for a worker's cores.
- A worker lost during a trial (killed, restarted: LightGBM #5920) only loses that attempt:
  the trial, still RUNNING in the storage, is submitted again (`MAX_ATTEMPTS`) and the study
  completes; a trial that already ended is not run twice. The objective's own error is raised
  as on the single machine.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from riskcast.cluster import ClusterError, Session
from training.trials import (
    Fold,
    PreparedFold,
    SearchSpace,
    new_study,
    prepare_folds,
    trial_objective,
)

if TYPE_CHECKING:
    from distributed import Future

MAX_ATTEMPTS = 3
"""Times a trial is submitted when its worker is lost before it ends."""
TRIAL_KEY = "riskcast-trial"

Callback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs, besides the folds, to run one trial of the study."""

    space: SearchSpace
    monotone: dict[str, int]
    seed: int
    threads: int
    storage: str
    study_name: str


def rdb_storage(url: str) -> optuna.storages.RDBStorage:
    """The study's storage as several processes share it: SQLite waits for the file lock
    (writers from other workers) instead of failing at once; other databases check their
    pooled connections."""
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
    else:
        kwargs = {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


_PREPARED: dict[str, tuple[list[str], list[PreparedFold]]] = {}
"""Per worker process: the folds of the study running now, binned once for all its trials."""


def _prepared(token: str, folds: Sequence[Fold], task: TrialTask) -> tuple[list[str], Any]:
    hit = _PREPARED.get(token)
    if hit is None:
        _PREPARED.clear()  # one study at a time: the previous one's folds go
        hit = prepare_folds(folds, task.space.max_train_rows, task.seed)
        _PREPARED[token] = hit
    return hit


def _forget(token: str) -> None:
    _PREPARED.pop(token, None)


def worker_threads(threads: int) -> int:
    """LightGBM threads on this worker: the configured number, capped by the worker's share
    of the cores (``POLARS_MAX_THREADS``, set by `riskcast.cluster` for a LocalCluster)."""
    share = int(os.environ.get("POLARS_MAX_THREADS", "0") or 0)
    if share > 0 and (threads <= 0 or threads > share):
        return share
    return threads


def run_trial(trial_id: int, folds: Sequence[Fold], *, task: TrialTask, token: str) -> str:
    """On a worker: run the trial ``trial_id`` (already sampled) with the single-machine
    objective and record its end in the storage; the trial's final state. A trial that already
    ended (its first attempt finished before its worker was lost) is not run again."""
    storage = rdb_storage(task.storage)
    study = new_study(
        direction=task.space.direction,
        seed=task.seed,
        startup_trials=task.space.startup_trials,
        pruning_warmup_trials=task.space.pruning_warmup_trials,
        storage=storage,
        study_name=task.study_name,
    )
    frozen = storage.get_trial(trial_id)
    if frozen.state.is_finished():
        return frozen.state.name
    storage.set_trial_user_attr(trial_id, "dask_worker", _worker_address())
    features, prepared = _prepared(token, folds, task)
    objective = trial_objective(
        task.space,
        task.monotone,
        features,
        prepared,
        seed=task.seed,
        threads=worker_threads(task.threads),
    )
    try:
        value = objective(optuna.Trial(study, trial_id))
    except optuna.TrialPruned:
        study.tell(frozen.number, state=TrialState.PRUNED, skip_if_finished=True)
        return TrialState.PRUNED.name
    except Exception:
        study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
        raise
    study.tell(frozen.number, value, skip_if_finished=True)
    return TrialState.COMPLETE.name


def _worker_address() -> str:
    """The worker running this trial (recorded with the trial: where it ran)."""
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not on a worker (called directly)
        return ""


def _lost(future: Future[Any]) -> bool:
    """Did the trial's worker go away (rather than the trial itself fail)?"""
    from distributed import KilledWorker

    if future.status == "cancelled":
        return True
    return isinstance(future.exception(), KilledWorker | OSError)  # type: ignore[no-untyped-call]


def optimize_on_cluster(
    session: Session,
    study: optuna.Study,
    task: TrialTask,
    folds: Sequence[Fold],
    n_trials: int,
    callback: Callback,
) -> None:
    """Run ``n_trials`` more trials of ``study`` on the cluster's workers, at most one per
    worker at a time; ``callback(study, trial)`` after each, on this process (progress)."""
    from distributed import as_completed

    if n_trials <= 0:
        return
    client = session.client
    token = uuid.uuid4().hex[:8]
    distributions = task.space.distributions()

    def scatter() -> Future[Any]:
        scattered = client.scatter([list(folds)], broadcast=True, hash=False)  # type: ignore[no-untyped-call]
        return scattered[0]  # type: ignore[no-any-return]

    payload = scatter()
    running: dict[Future[Any], tuple[int, int, str | None]] = {}  # trial id, attempt, worker

    def submit(trial_id: int, number: int, attempt: int) -> Future[Any]:
        nonlocal payload
        if payload.status != "finished":  # a restart dropped the scattered folds
            payload = scatter()
        busy = {worker for _, _, worker in running.values()}
        idle = [w for w in client.scheduler_info(n_workers=-1)["workers"] if w not in busy]
        worker = idle[0] if idle else None
        future: Future[Any] = client.submit(
            run_trial,
            trial_id,
            payload,
            task=task,
            token=token,
            key=f"{TRIAL_KEY}-{number}-{token}-{attempt}",
            pure=False,
            workers=None if worker is None else [worker],
            allow_other_workers=worker is not None,  # if the pinned worker dies, another runs it
        )
        running[future] = (trial_id, attempt, worker)
        return future

    def ask() -> Future[Any]:
        trial = study.ask(distributions)
        return submit(trial._trial_id, trial.number, 1)

    asked = 0
    pending = as_completed()  # type: ignore[no-untyped-call]
    try:
        while asked < min(n_trials, session.workers):
            pending.add(ask())  # type: ignore[no-untyped-call]
            asked += 1
        for future in pending:
            trial_id, attempt, _ = running.pop(future)
            frozen = study._storage.get_trial(trial_id)
            if future.status != "finished":
                if _lost(future) and attempt < MAX_ATTEMPTS:
                    pending.add(submit(trial_id, frozen.number, attempt + 1))  # type: ignore[no-untyped-call]
                    continue
                if not frozen.state.is_finished():
                    study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
                if _lost(future):
                    raise ClusterError(
                        f"{TRIAL_KEY} {frozen.number}: its worker was lost {attempt} times; "
                        "the study keeps the finished trials, run the command again"
                    )
                future.result()  # the objective's own error, as on the single machine
            callback(study, study._storage.get_trial(trial_id))
            if asked < n_trials:
                pending.add(ask())  # type: ignore[no-untyped-call]
                asked += 1
    finally:
        for future, (trial_id, _, _) in list(running.items()):
            future.cancel()  # type: ignore[no-untyped-call]
            number = study._storage.get_trial(trial_id).number
            study.tell(number, state=TrialState.FAIL, skip_if_finished=True)  # not left RUNNING
        payload.release()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):  # a worker gone now has forgotten too
            client.run(_forget, token)
