"""The model family: LightGBM fitting with monotone constraints, and the registered `RiskModel`.

Public API (also used by ``train-table``):

- `fit_lgbm(X, y, params, monotone, *, seed, num_threads=0, valid=None) -> lightgbm.Booster`:
  a binary LightGBM on the columns of ``X`` (in that order), monotone constraints per feature
  name (a name missing from ``monotone`` is unconstrained). ``params`` are LightGBM parameters
  plus two of ours: ``num_boost_round`` (default 500) and ``early_stopping_rounds`` (default 50,
  only used with ``valid``). With ``valid`` the booster keeps its best iteration.
- `RiskModel`: the one object that is registered: booster + calibrator + tier thresholds + the
  feature metadata. ``predict(frame)`` returns the calibrated ``probability``, the ``tier``,
  the ``raw_score`` (log-odds before calibration) and one ``contrib_<feature>`` column per
  feature plus ``contrib_bias`` (TreeSHAP via ``pred_contrib``), which add up to ``raw_score``.
  ``save(dir)`` / ``RiskModel.load(dir)``. The MLflow wrapper is `training.pyfunc.RiskModelPyfunc`
  (it imports this module, never the other way round, so that importing this module does not
  import MLflow).
"""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

import lightgbm as lgb
import numpy as np
import polars as pl

from riskcast.errors import InputError

if TYPE_CHECKING:
    from features.frames.scope import PopulationScope

BIAS = "bias"
CONTRIB_PREFIX = "contrib_"
KEY_COLUMNS = ("person_id", "as_of")
"""Passed through to the prediction frame when present (never model inputs)."""
DEFAULT_ROUNDS = 500
DEFAULT_EARLY_STOPPING = 50
_OURS = ("num_boost_round", "early_stopping_rounds")
LIGHTGBM_LOCK = threading.Lock()
"""Held around every prediction of a served model. LightGBM's ``pred_contrib`` is not thread
safe (concurrent calls corrupt memory, LightGBM issue #5482), and every call writes its
iteration range into the booster (issue #6142). Request calls are short; long batches are cut
into chunks so that requests can interleave."""
CHUNK_ROWS = 20_000
"""Rows per locked call for scores (about 10 ms for 200 trees)."""
CONTRIB_CHUNK_ROWS = 256
"""Rows per locked ``pred_contrib`` call of a whole model (about 0.2 s at 1,500 rows/s)."""


def locked_predict(
    booster: lgb.Booster, matrix: np.ndarray, *, chunk_rows: int | None = None, **kwargs: Any
) -> np.ndarray:
    """``booster.predict`` under `LIGHTGBM_LOCK`, chunk by chunk so that no call holds the lock
    long (requests wait on it while a score book is built)."""
    if chunk_rows is None:
        chunk_rows = CONTRIB_CHUNK_ROWS if kwargs.get("pred_contrib") else CHUNK_ROWS
    parts = []
    for start in range(0, max(matrix.shape[0], 1), chunk_rows):
        with LIGHTGBM_LOCK:
            out = booster.predict(matrix[start : start + chunk_rows], **kwargs)
        parts.append(np.asarray(out, dtype=np.float64))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


SMALL_BATCH = 256
"""Up to this many rows are predicted on one thread (a service request, not a batch)."""


def to_matrix(frame: pl.DataFrame, features: Sequence[str]) -> np.ndarray:
    """The model's input matrix: ``features`` in that order as float64, nulls as NaN."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise InputError(f"the frame lacks model input(s) {', '.join(missing)}")
    return (
        frame.select(pl.col(f).cast(pl.Float64) for f in features)
        .to_numpy()
        .astype(np.float64, copy=False)
    )


def lgbm_params(
    params: Mapping[str, Any],
    monotone: Mapping[str, int],
    features: Sequence[str],
    *,
    seed: int,
    num_threads: int = 0,
) -> dict[str, Any]:
    """LightGBM parameters for a binary model on ``features``: ours removed, seeds and
    monotone constraints set (``monotone[name]`` in -1, 0, +1; missing names are 0)."""
    bad = {k: v for k, v in monotone.items() if v not in (-1, 0, 1)}
    if bad:
        raise InputError(f"monotone constraints must be -1, 0 or +1: {bad}")
    out: dict[str, Any] = {
        "objective": "binary",
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": num_threads,
        "feature_pre_filter": False,
    }
    out.update({k: v for k, v in params.items() if k not in _OURS})
    constraints = [int(monotone.get(f, 0)) for f in features]
    if any(constraints):
        out["monotone_constraints"] = constraints
        out.setdefault("monotone_constraints_method", "intermediate")
    return out


def fit_lgbm(
    X: pl.DataFrame,  # noqa: N803 (the API named in the brief)
    y: np.ndarray,
    params: dict[str, Any],
    monotone: dict[str, int],
    *,
    seed: int,
    num_threads: int = 0,
    valid: tuple[pl.DataFrame, np.ndarray] | None = None,
) -> lgb.Booster:
    """Fit a binary LightGBM on every column of ``X``; see the module docstring."""
    features = list(X.columns)
    if X.height != len(y):
        raise InputError(f"X has {X.height} rows but y has {len(y)}")
    full = lgbm_params(params, monotone, features, seed=seed, num_threads=num_threads)
    rounds = int(params.get("num_boost_round", DEFAULT_ROUNDS))
    train = lgb.Dataset(
        to_matrix(X, features),
        label=np.asarray(y, dtype=np.float64),
        feature_name=features,
        params={"feature_pre_filter": False},
    )
    valid_sets: list[lgb.Dataset] = []
    callbacks: list[Any] = []
    if valid is not None:
        vx, vy = valid
        valid_sets.append(
            lgb.Dataset(
                to_matrix(vx, features), label=np.asarray(vy, dtype=np.float64), reference=train
            )
        )
        stop = int(params.get("early_stopping_rounds", DEFAULT_EARLY_STOPPING))
        callbacks.append(lgb.early_stopping(stop, first_metric_only=True, verbose=False))
    booster = lgb.train(
        full, train, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks
    )
    return booster


class Calibrator(Protocol):
    """Maps raw probabilities to calibrated ones (see `training.calibration`)."""

    @property
    def method(self) -> str: ...

    def predict(self, p_raw: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Tier:
    """A risk tier: probabilities ``>= min_probability`` (and below the next tier's)."""

    name: str
    min_probability: float


@dataclass(frozen=True)
class FeatureInfo:
    """What a model input means: shown beside its contribution."""

    name: str
    domain: str
    kind: str
    direction: int
    description: str


def assign_tiers(probability: np.ndarray, tiers: Sequence[Tier]) -> np.ndarray:
    """The tier name of each probability (tiers sorted by ``min_probability``, first at 0)."""
    ordered = sorted(tiers, key=lambda t: t.min_probability)
    cuts = np.array([t.min_probability for t in ordered[1:]], dtype=np.float64)
    names = np.array([t.name for t in ordered], dtype=object)
    return np.asarray(names[np.searchsorted(cuts, probability, side="right")])


@dataclass(frozen=True)
class Prediction:
    """Per row: calibrated probability, tier name, raw score (log-odds) and contributions
    (one column per feature, then the bias; each row adds up to its raw score)."""

    probability: np.ndarray
    tier: np.ndarray
    raw: np.ndarray
    contrib: np.ndarray


def sigmoid(raw: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-raw)), dtype=np.float64)


@dataclass
class RiskModel:
    """The registered object: booster, calibrator, tiers and feature metadata."""

    booster: lgb.Booster
    calibrator: Calibrator | None
    tiers: list[Tier]
    features: list[FeatureInfo]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = self.booster.feature_name()
        if names != self.feature_names:
            raise InputError(f"booster features {names} differ from metadata {self.feature_names}")
        if not self.tiers:
            raise InputError("a risk model needs at least one tier")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def scope(self) -> PopulationScope | None:
        """The population of validity the version declares (None: trained before scopes)."""
        from features.frames.scope import PopulationScope

        declared = self.metadata.get("scope")
        return None if declared is None else PopulationScope.model_validate(declared)

    @property
    def contribution_columns(self) -> list[str]:
        return [CONTRIB_PREFIX + n for n in (*self.feature_names, BIAS)]

    def raw_score(self, frame: pl.DataFrame) -> np.ndarray:
        """Log-odds of the booster (before calibration)."""
        out = locked_predict(self.booster, to_matrix(frame, self.feature_names), raw_score=True)
        return np.asarray(out, dtype=np.float64)

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated probabilities only (cheaper than `predict`)."""
        return self.calibrate(sigmoid(self.raw_score(frame)))

    def calibrate(self, p_raw: np.ndarray) -> np.ndarray:
        if self.calibrator is None:
            return p_raw
        return np.clip(np.asarray(self.calibrator.predict(p_raw), dtype=np.float64), 0.0, 1.0)

    def predict_matrix(self, matrix: np.ndarray) -> Prediction:
        """Scores and contributions for a float64 matrix of the model inputs (in order).

        Small batches run on one thread: starting LightGBM's thread pool costs more than
        scoring a few rows (about 2 ms against 0.05 ms for one row)."""
        threads = 1 if matrix.shape[0] <= SMALL_BATCH else 0  # 0: LightGBM's default
        raw = np.asarray(
            locked_predict(self.booster, matrix, raw_score=True, num_threads=threads),
            dtype=np.float64,
        )
        contrib_threads = 1 if matrix.shape[0] == 1 else 0  # ~1 ms a row: two rows pay
        contrib = np.asarray(
            locked_predict(self.booster, matrix, pred_contrib=True, num_threads=contrib_threads),
            dtype=np.float64,
        ).reshape(matrix.shape[0], len(self.features) + 1)
        probability = self.calibrate(sigmoid(raw))
        return Prediction(probability, assign_tiers(probability, self.tiers), raw, contrib)

    def predict(self, frame: pl.DataFrame) -> pl.DataFrame:
        """probability, tier, raw_score and contributions (+ person_id/as_of when present)."""
        p = self.predict_matrix(to_matrix(frame, self.feature_names))
        keys = [c for c in KEY_COLUMNS if c in frame.columns]
        columns: dict[str, Any] = {
            "probability": p.probability,
            "tier": p.tier.tolist(),
            "raw_score": p.raw,
        }
        columns.update(zip(self.contribution_columns, p.contrib.T, strict=True))
        return pl.concat([frame.select(keys), pl.DataFrame(columns)], how="horizontal")

    def domain_contributions(self, prediction: pl.DataFrame) -> pl.DataFrame:
        """Contributions summed by RNR domain (one column per domain, plus bias)."""
        domains: dict[str, list[str]] = {}
        for f in self.features:
            domains.setdefault(f.domain, []).append(CONTRIB_PREFIX + f.name)
        return prediction.select(
            *(pl.sum_horizontal(cols).alias(d) for d, cols in domains.items()),
            pl.col(CONTRIB_PREFIX + BIAS).alias(BIAS),
        )

    # ---- persistence -----------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write ``booster.txt``, ``calibrator.pkl`` and ``model.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / "booster.txt"))
        with (directory / "calibrator.pkl").open("wb") as fh:
            pickle.dump(self.calibrator, fh)
        meta = {
            "format": 1,
            "tiers": [asdict(t) for t in self.tiers],
            "features": [asdict(f) for f in self.features],
            "calibration": getattr(self.calibrator, "method", None),
            "metadata": self.metadata,
        }
        (directory / "model.json").write_text(json.dumps(meta, indent=2, default=str), "utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        try:
            meta = json.loads((directory / "model.json").read_text("utf-8"))
            booster = lgb.Booster(model_file=str(directory / "booster.txt"))
            with (directory / "calibrator.pkl").open("rb") as fh:
                calibrator = pickle.load(fh)  # our own artifact, written by `save`
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{directory} is not a saved risk model: {exc}") from exc
        return cls(
            booster=booster,
            calibrator=calibrator,
            tiers=[Tier(**t) for t in meta["tiers"]],
            features=[FeatureInfo(**f) for f in meta["features"]],
            metadata=meta.get("metadata", {}),
        )


ARTIFACT_KEY = "risk_model"
"""The name of the saved `RiskModel` folder among a logged MLflow model's artifacts."""
