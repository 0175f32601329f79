"""Fitting the person model with ``lightgbm.dask`` on a Dask cluster (issue 14).

The same parameters as `training.model.fit_lgbm` (`lgbm_params`: objective, seeds, monotone
constraints), the training rows spread over the workers as a chunked Dask array, LightGBM's own
distributed (data-parallel) training. Designed around its known limits:

- no early stopping (LightGBM issue #5963): the number of rounds is fixed, from the tuning
  folds (``rounds``), and no validation set is given;
- it has hung with early stopping and with concurrent fits (#6197, #6351, #4942): one fit at a
  time in a process (a lock), and a timeout on every fit, after which the cluster's workers are
  restarted (#5920: a fresh start recovers) and `ClusterError` is raised;
- results differ slightly from the single machine (histograms are built per worker and
  merged): they are compared within a tolerance (the bootstrap sd of the AUC), never exactly.
"""

from __future__ import annotations

import contextlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FitTimeout
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import polars as pl
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.frames.partition import partitions_for
from riskcast.cluster import ClusterError, Session
from riskcast.errors import InputError
from training.model import lgbm_params, to_matrix

if TYPE_CHECKING:
    from training.steps.data import TrainingData
    from training.steps.plan import TrainingPlan
    from training.tuning import TuneResult

FIT_TIMEOUT_S = 1800.0
"""A fit that runs longer than this is taken for hung (#6197): the workers are restarted."""
_ONE_FIT = threading.Lock()


TRIAL_TIMEOUT_S = 3600.0
"""A Dask trial (`training.dask_tune`) with no result this long after its submission is hung."""


class DaskTimeouts(BaseSettings):
    """How long a fit or a tuning trial on the cluster may run, from the environment (a
    nation's may need more than the defaults)."""

    model_config = SettingsConfigDict(env_prefix="RISKCAST_", extra="ignore")

    dask_fit_timeout_s: float = Field(
        default=FIT_TIMEOUT_S,
        gt=0,
        description="RISKCAST_DASK_FIT_TIMEOUT_S: seconds before a lightgbm.dask fit is taken "
        "for hung and the workers are restarted",
    )
    dask_trial_timeout_s: float = Field(
        default=TRIAL_TIMEOUT_S,
        gt=0,
        description="RISKCAST_DASK_TRIAL_TIMEOUT_S: seconds from a Dask trial's submission "
        "before it is taken for hung: recorded as FAIL, its worker restarted, the study goes on",
    )


def fit_timeout() -> float:
    return DaskTimeouts().dask_fit_timeout_s


def trial_timeout() -> float:
    return DaskTimeouts().dask_trial_timeout_s


def fit_lgbm_dask(
    session: Session,
    X: pl.DataFrame,  # noqa: N803 (as in fit_lgbm)
    y: np.ndarray,
    params: dict[str, Any],
    monotone: dict[str, int],
    *,
    seed: int,
    rounds: int,
    timeout_s: float = FIT_TIMEOUT_S,
) -> lgb.Booster:
    """A binary LightGBM on every column of ``X`` fitted on the cluster in exactly ``rounds``
    rounds; the booster, ready to use here like `fit_lgbm`'s."""
    import dask.array as da
    from lightgbm.dask import DaskLGBMClassifier

    if X.height != len(y):
        raise InputError(f"X has {X.height} rows but y has {len(y)}")
    if rounds < 1:
        raise InputError(f"rounds must be at least 1, got {rounds}")
    features = list(X.columns)
    full = lgbm_params(params, monotone, features, seed=seed, num_threads=1)
    full.pop("objective")
    full.pop("num_threads")  # lightgbm.dask sets it per worker
    rows = max(1, math.ceil(X.height / partitions_for(session)))
    data = da.from_array(to_matrix(X, features), chunks=(rows, len(features)))  # type: ignore[no-untyped-call]
    label = da.from_array(np.asarray(y, dtype=np.float64), chunks=(rows,))  # type: ignore[no-untyped-call]
    model = DaskLGBMClassifier(client=session.client, n_estimators=rounds, **full)
    with _ONE_FIT:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lgbm-dask")
        fit = pool.submit(model.fit, data, label, feature_name=features)
        try:
            fit.result(timeout=timeout_s)
        except FitTimeout:
            with contextlib.suppress(Exception):  # a slow restart must not hide the timeout
                session.client.restart(wait_for_workers=False)  # ends the hung fit (#5920)
            raise ClusterError(
                f"lightgbm.dask fit: no result after {timeout_s:g} s; the workers were "
                "restarted, run the command again"
            ) from None
        except Exception as exc:
            raise ClusterError(f"lightgbm.dask fit failed: {exc}") from exc
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # never wait on a hung fit
    booster: lgb.Booster = model.booster_
    return booster


def fit_booster_dask(
    session: Session, plan: TrainingPlan, data: TrainingData, tuned: TuneResult
) -> lgb.Booster:
    """`training.steps.fit.fit_booster` on the cluster: the final model on the whole tuning
    period with the best parameters, in the number of rounds the tuning folds chose
    (``num_boost_round`` of `TuneResult.best_params`: the best trial's mean best iteration)."""
    ds = data.dataset
    rows = data.rows(plan.split.tune)
    return fit_lgbm_dask(
        session,
        ds.x(rows),
        ds.y(rows),
        tuned.best_params,
        data.monotone,
        seed=plan.cfg.seed,
        rounds=int(tuned.best_params["num_boost_round"]),
        timeout_s=fit_timeout(),
    )
