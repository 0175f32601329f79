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
- A trial with no result after ``RISKCAST_DASK_TRIAL_TIMEOUT_S`` seconds from its submission
  (default `dask_fit.TRIAL_TIMEOUT_S`) is taken for hung: it is recorded as FAIL with the user
  attribute ``timed_out_s``, the worker running it is restarted (a hung LightGBM does not
  return to be cancelled), and the study goes on with the next trial. Only when no trial of
  the study has completed does the search fail (`ClusterError`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from riskcast.cluster import ClusterError, Session
from training.dask_fit import trial_timeout
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
    *,
    timeout_s: float | None = None,
) -> None:
    """Run ``n_trials`` more trials of ``study`` on the cluster's workers, at most one per
    worker at a time; ``callback(study, trial)`` after each, on this process (progress).
    ``timeout_s`` (default ``RISKCAST_DASK_TRIAL_TIMEOUT_S``): a trial's time from submission
    after which it is taken for hung (see the module docstring)."""
    if n_trials <= 0:
        return
    limit = trial_timeout() if timeout_s is None else timeout_s
    client = session.client
    token = uuid.uuid4().hex[:8]
    distributions = task.space.distributions()

    def scatter() -> Future[Any]:
        scattered = client.scatter([list(folds)], broadcast=True, hash=False)  # type: ignore[no-untyped-call]
        return scattered[0]  # type: ignore[no-any-return]

    payload = scatter()
    running: dict[Future[Any], _Attempt] = {}
    signal = threading.Event()  # set when any trial's future ends (Dask calls back)

    def submit(trial_id: int, number: int, attempt: int) -> None:
        nonlocal payload
        if payload.status != "finished":  # a restart dropped the scattered folds
            payload = scatter()
        busy = {a.worker for a in running.values()}
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
        running[future] = _Attempt(trial_id, attempt, worker, time.monotonic())
        future.add_done_callback(lambda _: signal.set())  # type: ignore[no-untyped-call]

    asked = timed_out = 0

    def ask_more() -> None:
        nonlocal asked
        while asked < n_trials and len(running) < session.workers:
            trial = study.ask(distributions)
            submit(trial._trial_id, trial.number, 1)
            asked += 1

    def ended(future: Future[Any]) -> None:
        attempt = running.pop(future)
        frozen = study._storage.get_trial(attempt.trial_id)
        if future.status not in ("finished", "lost"):  # lost: its result, already told, is gone
            if _lost(future) and attempt.attempt < MAX_ATTEMPTS:
                submit(attempt.trial_id, frozen.number, attempt.attempt + 1)
                return
            if not frozen.state.is_finished():
                study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
            if _lost(future):
                raise ClusterError(
                    f"{TRIAL_KEY} {frozen.number}: its worker was lost {attempt.attempt} times; "
                    "the study keeps the finished trials, run the command again"
                )
            future.result()  # the objective's own error, as on the single machine
        callback(study, study._storage.get_trial(attempt.trial_id))

    def hung(futures: list[Future[Any]]) -> None:
        """Record the trials of ``futures`` as timed out and restart their workers, together
        (one restart for all: a restart costs seconds)."""
        nonlocal timed_out
        workers: set[str] = set()
        for future in futures:
            attempt = running.pop(future)
            frozen = study._storage.get_trial(attempt.trial_id)
            if frozen.state.is_finished():  # it ended just now: not hung after all
                callback(study, frozen)
                continue
            where = _running_on(client, str(future.key)) or attempt.worker
            future.cancel()  # type: ignore[no-untyped-call]
            study._storage.set_trial_user_attr(attempt.trial_id, "timed_out_s", limit)
            study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
            timed_out += 1
            workers |= {where} if where is not None else set()
            callback(study, study._storage.get_trial(attempt.trial_id))
        if workers:  # a hung fit does not return to be cancelled: end its process
            with contextlib.suppress(Exception):  # a worker already gone needs no restart
                client.restart_workers(sorted(workers), raise_for_error=False)

    try:
        ask_more()
        while running:
            deadline = min(a.submitted for a in running.values()) + limit
            signal.wait(timeout=max(0.0, deadline - time.monotonic()))
            signal.clear()  # a future ending from here on sets it again: none is missed
            for future in [f for f in running if f.status != "pending"]:
                ended(future)
            now = time.monotonic()
            expired = [f for f, a in running.items() if now - a.submitted >= limit]
            for future in [f for f in expired if f.status != "pending"]:
                ended(future)
            hung([f for f in expired if f.status == "pending" and f in running])
            ask_more()
    finally:
        for future, attempt in list(running.items()):
            future.cancel()  # type: ignore[no-untyped-call]
            number = study._storage.get_trial(attempt.trial_id).number
            study.tell(number, state=TrialState.FAIL, skip_if_finished=True)  # not left RUNNING
        payload.release()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):  # a worker gone now has forgotten too
            client.run(_forget, token)
    if timed_out and not any(t.state == TrialState.COMPLETE for t in study.trials):
        raise ClusterError(
            f"{TRIAL_KEY}: {timed_out} trials had no result after {limit:g} s "
            "(RISKCAST_DASK_TRIAL_TIMEOUT_S) and none completed; their workers were restarted"
        )


@dataclass(frozen=True)
class _Attempt:
    """A trial's attempt in flight: its trial, attempt number, pinned worker, submission."""

    trial_id: int
    attempt: int
    worker: str | None
    submitted: float


def _running_on(client: Any, key: str) -> str | None:
    """The worker executing the task ``key`` now, if any."""
    with contextlib.suppress(Exception):
        for worker, keys in client.processing().items():
            if key in {str(k) for k in keys}:
                return str(worker)
    return None
