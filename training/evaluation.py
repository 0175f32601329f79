"""Evaluation of binary risk scores: discrimination, calibration, capture, and their plots.

All functions are pure (numpy / polars in, numbers / frames / figures out). Conventions:

- ``ece`` uses **equal-frequency** bins (10 by default): each bin holds about the same number
  of people, so sparse high-risk tails do not produce bins of a handful of rows. It is the
  row-weighted mean of ``|mean predicted - observed rate|`` over the bins.
- ``capture_top_k`` is the share of *all* positives found among the ``ceil(k% * n)`` highest
  scores, i.e. what a list limited to k% of the population would catch. Rows tied with the
  cut-off score get fractional credit, so a constant score captures exactly k%.
- Plots are built on :class:`matplotlib.figure.Figure` with an Agg canvas, never through
  ``pyplot``, so nothing global changes and they work headless.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from riskcast.errors import InputError
from training.calibration import fit_logistic_1d, logit

FloatArray = NDArray[np.float64]
CAPTURE_SHARES = (5, 10, 20)
LOG_LOSS_EPS = 1e-15


def _validate(y: ArrayLike, p: ArrayLike, what: str = "scores") -> tuple[FloatArray, FloatArray]:
    yv = np.asarray(y, dtype=np.float64).ravel()
    pv = np.asarray(p, dtype=np.float64).ravel()
    if yv.shape != pv.shape:
        raise InputError(f"evaluation: {yv.size} outcomes but {pv.size} {what}")
    if yv.size == 0:
        raise InputError("evaluation: no rows")
    if not np.all(np.isin(yv, (0.0, 1.0))):
        raise InputError("evaluation: outcomes must be 0 or 1")
    if not np.all(np.isfinite(pv)) or np.any((pv < 0) | (pv > 1)):
        raise InputError(f"evaluation: {what} must be finite probabilities in [0, 1]")
    return yv, pv


def _auc(y: FloatArray, p: FloatArray) -> float:
    if np.unique(y).size < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def equal_frequency_bins(p: FloatArray, bins: int) -> list[NDArray[np.intp]]:
    """Row indices of ``bins`` groups of (nearly) equal size in increasing order of ``p``.

    A stable sort keeps the split deterministic when scores tie.
    """
    order = np.argsort(p, kind="stable")
    return [b for b in np.array_split(order, min(bins, p.size)) if b.size > 0]


def expected_calibration_error(y: ArrayLike, p: ArrayLike, bins: int = 10) -> float:
    """Row-weighted mean ``|mean predicted - observed|`` over equal-frequency bins."""
    yv, pv = _validate(y, p)
    groups = equal_frequency_bins(pv, bins)
    return float(sum(g.size * abs(pv[g].mean() - yv[g].mean()) for g in groups) / yv.size)


def capture_at(y: ArrayLike, p: ArrayLike, share_percent: float) -> float:
    """Share of all positives among the top ``share_percent`` % scores (ties share credit)."""
    yv, pv = _validate(y, p)
    positives = yv.sum()
    if positives == 0:
        return float("nan")
    k = min(yv.size, max(1, math.ceil(yv.size * share_percent / 100.0 - 1e-9)))
    order = np.argsort(-pv, kind="stable")
    cutoff = pv[order[k - 1]]
    above = pv > cutoff
    tied = pv == cutoff
    slots = k - int(above.sum())
    caught = yv[above].sum() + yv[tied].sum() * slots / int(tied.sum())
    return float(caught / positives)


def binary_metrics(y: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """Headline metrics of probabilities ``p`` for outcomes ``y`` (0/1).

    Keys: auc, pr_auc, brier, log_loss, ece (10 equal-frequency bins), capture_top_5/10/20,
    mean_predicted, observed_rate, n. AUC and PR-AUC are NaN when only one class is present.
    """
    yv, pv = _validate(y, p)
    both = np.unique(yv).size == 2
    q = np.clip(pv, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    out: dict[str, float] = {
        "auc": _auc(yv, pv),
        "pr_auc": float(average_precision_score(yv, pv)) if both else float("nan"),
        "brier": float(np.mean((pv - yv) ** 2)),
        "log_loss": float(-np.mean(yv * np.log(q) + (1 - yv) * np.log1p(-q))),
        "ece": expected_calibration_error(yv, pv, 10),
    }
    for share in CAPTURE_SHARES:
        out[f"capture_top_{share}"] = capture_at(yv, pv, share)
    out["mean_predicted"] = float(pv.mean())
    out["observed_rate"] = float(yv.mean())
    out["n"] = float(yv.size)
    return out


def bootstrap_auc_difference(
    y: ArrayLike, p_a: ArrayLike, p_b: ArrayLike, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Paired bootstrap of ``AUC(a) - AUC(b)`` on the same rows: ``(mean, sd)``.

    Pairing (both models scored on the same resample) removes the shared sampling noise, so
    the sd is the right yardstick for "a beats b by more than two sd". Resamples holding only
    one class are skipped.
    """
    yv, pa = _validate(y, p_a, "scores a")
    _, pb = _validate(yv, p_b, "scores b")
    if np.unique(yv).size < 2:
        raise InputError("bootstrap_auc_difference: outcomes hold only one class")
    rng = np.random.default_rng(seed)
    diffs: list[float] = []
    for _ in range(n_boot):
        idx = rng.integers(0, yv.size, yv.size)
        yb = yv[idx]
        if yb.min() == yb.max():
            continue
        diffs.append(float(roc_auc_score(yb, pa[idx]) - roc_auc_score(yb, pb[idx])))
    arr = np.asarray(diffs)
    sd = float(arr.std(ddof=1)) if arr.size > 1 else float("nan")
    return float(arr.mean()), sd


def calibration_slope(y: ArrayLike, p: ArrayLike) -> float:
    """Slope of ``y ~ logit(p)``: 1 is ideal, < 1 over-confident, > 1 under-confident."""
    yv, pv = _validate(y, p)
    if np.unique(yv).size < 2 or np.unique(pv).size < 2:
        return float("nan")
    return fit_logistic_1d(logit(pv), yv)[1]


def decile_gap(y: ArrayLike, p: ArrayLike, bins: int = 10) -> float:
    """Unweighted mean ``|mean predicted - observed|`` over ``bins`` equal-frequency bins."""
    yv, pv = _validate(y, p)
    groups = equal_frequency_bins(pv, bins)
    return float(np.mean([abs(pv[g].mean() - yv[g].mean()) for g in groups]))


def _gap_if_calibrated(p: FloatArray, bins: int, draws: int = 200, seed: int = 0) -> float:
    """Expected decile gap of a perfectly calibrated model with these scores (sampling noise)."""
    rng = np.random.default_rng(seed)
    groups = equal_frequency_bins(p, bins)
    means = np.array([p[g].mean() for g in groups])
    gaps = np.empty(draws)
    for i in range(draws):
        y = rng.uniform(size=p.size) < p
        gaps[i] = np.mean(np.abs(means - np.array([y[g].mean() for g in groups])))
    return float(gaps.mean())


def calibration_by_group(
    y: ArrayLike, p: ArrayLike, groups: ArrayLike | Sequence[object], bins: int = 10
) -> pl.DataFrame:
    """Calibration within each group: is a score of 0.3 a 30% risk for everyone?

    One row per group (sorted by size, largest first): ``group`` (as text), ``n``,
    ``mean_predicted``, ``observed``, ``decile_gap`` (mean absolute gap over ``bins``
    equal-frequency bins of the group's own scores), ``gap_if_calibrated`` (the decile gap a
    perfectly calibrated model would still show on a group of this size: outcomes simulated
    from the scores themselves, mean of 200 seeded draws) and ``calibration_slope``. Small
    groups get noisy gaps, so read ``decile_gap`` against ``gap_if_calibrated``.
    """
    yv, pv = _validate(y, p)
    g = np.asarray([str(v) for v in np.asarray(groups, dtype=object).ravel()], dtype=object)
    if g.size != yv.size:
        raise InputError(f"calibration_by_group: {yv.size} outcomes but {g.size} group labels")
    rows: list[dict[str, object]] = []
    for name in np.unique(g):
        mask = g == name
        rows.append(
            {
                "group": str(name),
                "n": int(mask.sum()),
                "mean_predicted": float(pv[mask].mean()),
                "observed": float(yv[mask].mean()),
                "decile_gap": decile_gap(yv[mask], pv[mask], bins),
                "gap_if_calibrated": _gap_if_calibrated(pv[mask], bins),
                "calibration_slope": calibration_slope(yv[mask], pv[mask]),
            }
        )
    schema = {
        "group": pl.String,
        "n": pl.Int64,
        "mean_predicted": pl.Float64,
        "observed": pl.Float64,
        "decile_gap": pl.Float64,
        "gap_if_calibrated": pl.Float64,
        "calibration_slope": pl.Float64,
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    return frame.sort(["n", "group"], descending=[True, False])


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    FigureCanvasAgg(fig)  # attaches a headless canvas: savefig works without pyplot
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def plot_calibration(y: ArrayLike, scores: Mapping[str, ArrayLike], bins: int = 10) -> Figure:
    """Reliability diagram: observed rate against mean predicted per equal-frequency bin."""
    fig, ax = _figure("Calibration", "mean predicted probability", "observed rate")
    top = 0.0
    for name, p in scores.items():
        yv, pv = _validate(y, p)
        groups = equal_frequency_bins(pv, bins)
        xs = [pv[g].mean() for g in groups]
        ys = [yv[g].mean() for g in groups]
        top = max(top, *xs, *ys)
        ece = expected_calibration_error(yv, pv, bins)
        ax.plot(xs, ys, marker="o", label=f"{name} (ECE {ece:.3f})")
    lim = min(1.0, top * 1.05 + 0.01)
    ax.plot([0, lim], [0, lim], ls="--", color="grey", label="perfect")
    ax.legend(loc="upper left")
    return fig


def plot_roc(y: ArrayLike, scores: Mapping[str, ArrayLike]) -> Figure:
    """ROC curves with each model's AUC in the legend."""
    fig, ax = _figure("ROC", "false positive rate", "true positive rate")
    for name, p in scores.items():
        yv, pv = _validate(y, p)
        fpr, tpr, _ = roc_curve(yv, pv)
        ax.plot(fpr, tpr, label=f"{name} (AUC {_auc(yv, pv):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="chance")
    ax.legend(loc="lower right")
    return fig


def plot_capture(y: ArrayLike, scores: Mapping[str, ArrayLike]) -> Figure:
    """Share of all positives caught against share of the population listed (gain curve)."""
    fig, ax = _figure("Capture", "share of population listed (%)", "share of positives caught")
    shares = np.arange(1, 101)
    for name, p in scores.items():
        yv, pv = _validate(y, p)
        caught = [capture_at(yv, pv, float(s)) for s in shares]
        top10 = capture_at(yv, pv, 10)
        ax.plot(shares, caught, label=f"{name} (top 10%: {top10:.2f})")
    ax.plot([0, 100], [0, 1], ls="--", color="grey", label="random")
    for s in CAPTURE_SHARES:
        ax.axvline(s, color="grey", alpha=0.2)
    ax.legend(loc="lower right")
    return fig
