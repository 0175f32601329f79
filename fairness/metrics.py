"""Group metrics and disparities with bootstrap intervals; pure (numpy in, typed results out).

For one protected attribute (or intersection) `audit_attribute` reports, per group: n, positives,
base rate, AUC, and, when scores are probabilities, mean predicted, calibration gap (mean
predicted - observed), calibration slope and the per-decile calibration table; at every
operating point (the threshold, ``score >= threshold``, and each list capacity, the top k% of
all scored rows) the selection rate, FPR, FNR and PPV. Point values come from Fairlearn's
`MetricFrame`; intervals are percentile bootstrap intervals (rows resampled within each group,
seeded). Operating points are fixed on the audited rows (the list is a decision about these
people); the bootstrap measures the uncertainty of the group rates given that decision.

A rate with no events in a group (no flagged negatives: FPR 0) or with only events (FPR 1) is
the same in every bootstrap replicate, so the bootstrap would give it the interval [0, 0] and
claim a certainty that n people cannot give; such a cell gets the exact (Clopper-Pearson)
interval of its count instead (0 of 600: [0, 0.006]).

Disparities are the difference and the ratio of each group's metric to the reference group's,
with intervals from the same bootstrap replicates; when either side is such an exact cell, the
interval combines the two sides' bounds (difference ``[lo_a - hi_b, hi_a - lo_b]``, ratio
``[lo_a / hi_b, hi_a / lo_b]``, none when unbounded), which is conservative.

A group smaller than ``min_group_size`` is kept with its n and the status
``insufficient_evidence``; its metrics are ``None`` (never zero, never dropped), and so are
disparities involving it. Undefined values (an FPR with no negatives, a ratio to zero) are
``None`` as well.

The results are the frozen models of `fairness.results` (`AttributeAudit`, `GroupMetrics`,
`Disparity`, `Estimate`); the inputs are checked once, in `fairness.validation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from fairlearn.metrics import MetricFrame
from numpy.typing import NDArray
from scipy.stats import beta, rankdata

from fairness.results import (
    INSUFFICIENT,
    OK,
    AttributeAudit,
    CalibrationBin,
    Disparity,
    Estimate,
    GroupMetrics,
)
from fairness.validation import validate_audit_inputs, validate_reference
from training.evaluation import calibration_slope, equal_frequency_bins

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
THRESHOLD_POINT = "threshold"
OVERALL_POINT = "overall"
RATE_METRICS = ("selection_rate", "fpr", "fnr", "ppv")
SCORE_METRICS = ("base_rate", "auc", "mean_predicted", "calibration_gap")
MAX_CELLS = 4_000_000  # bootstrap rows x replicates held in memory at once


def capacity_point(share: float) -> str:
    return f"top_{share:g}%"


def top_share_flags(score: FloatArray, share_percent: float) -> BoolArray:
    """The ``ceil(share% * n)`` highest scores (ties broken by row order, deterministically)."""
    n = score.size
    k = min(n, max(1, math.ceil(n * share_percent / 100.0 - 1e-9)))
    flags = np.zeros(n, dtype=bool)
    flags[np.argsort(-score, kind="stable")[:k]] = True
    return flags


def operating_points(
    score: FloatArray, threshold: float | None, capacities: Sequence[float]
) -> dict[str, BoolArray]:
    """Flag arrays: ``threshold`` (score >= threshold) and ``top_k%`` per capacity."""
    points: dict[str, BoolArray] = {}
    if threshold is not None:
        points[THRESHOLD_POINT] = score >= threshold
    for share in capacities:
        points[capacity_point(share)] = top_share_flags(score, share)
    return points


# --------------------------------------------------------------------------- vectorised rates
def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def rates(y: FloatArray, f: FloatArray) -> dict[str, FloatArray]:
    """Selection rate, FPR, FNR, PPV along the last axis (NaN where undefined)."""
    n = np.asarray(y.shape[-1], dtype=np.float64)
    pos = y.sum(axis=-1)
    sel = f.sum(axis=-1)
    tp = (y * f).sum(axis=-1)
    fp = sel - tp
    return {
        "selection_rate": sel / n,
        "fpr": _ratio(fp, n - pos),
        "fnr": _ratio(pos - tp, pos),
        "ppv": _ratio(tp, sel),
    }


def rate_counts(y: FloatArray, f: FloatArray) -> dict[str, tuple[int, int]]:
    """``{metric: (events, trials)}`` of each rate in `rates` for one group's rows."""
    n, pos = int(y.size), int(y.sum())
    sel, tp = int(f.sum()), int((y * f).sum())
    return {
        "selection_rate": (sel, n),
        "fpr": (sel - tp, n - pos),
        "fnr": (pos - tp, pos),
        "ppv": (tp, sel),
    }


def exact_interval(events: int, trials: int, confidence: float) -> tuple[float, float]:
    """The Clopper-Pearson interval of ``events`` out of ``trials`` (``trials`` > 0)."""
    alpha = (1 - confidence) / 2
    lo = 0.0 if events == 0 else float(beta.ppf(alpha, events, trials - events + 1))
    hi = 1.0 if events == trials else float(beta.ppf(1 - alpha, events + 1, trials - events))
    return lo, hi


def auc_rows(y: FloatArray, s: FloatArray) -> FloatArray:
    """Mann-Whitney AUC along the last axis (ties count one half; NaN with one class)."""
    ranks = rankdata(s, axis=-1)
    n1 = y.sum(axis=-1)
    n0 = y.shape[-1] - n1
    u = (ranks * y).sum(axis=-1) - n1 * (n1 + 1) / 2.0
    return _ratio(u, n1 * n0)


def score_metrics(y: FloatArray, s: FloatArray, probabilities: bool) -> dict[str, FloatArray]:
    out = {"base_rate": y.mean(axis=-1), "auc": auc_rows(y, s)}
    if probabilities:
        out["mean_predicted"] = s.mean(axis=-1)
        out["calibration_gap"] = out["mean_predicted"] - out["base_rate"]
    return out


def _metric_fn(name: str) -> Callable[[Any, Any], float]:
    def fn(y_true: Any, y_pred: Any) -> float:
        yt = np.asarray(y_true, dtype=np.float64)
        yp = np.asarray(y_pred, dtype=np.float64)
        if name == "auc":
            return float(auc_rows(yt, yp))
        return float(rates(yt, yp)[name])

    fn.__name__ = name
    return fn


def metric_frame_points(
    y: FloatArray, values: FloatArray, groups: NDArray[np.str_], names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Fairlearn `MetricFrame` by group: ``{group: {metric: value}}``."""
    mf = MetricFrame(
        metrics={n: _metric_fn(n) for n in names},
        y_true=y,
        y_pred=values,
        sensitive_features=groups,
    )
    by_group = mf.by_group
    return {str(g): {n: float(by_group.loc[g, n]) for n in names} for g in by_group.index}


# --------------------------------------------------------------------------- bootstrap
def _replicate_blocks(n: int, n_boot: int, rng: np.random.Generator) -> Iterator[NDArray[np.intp]]:
    block = max(1, MAX_CELLS // max(n, 1))
    done = 0
    while done < n_boot:
        size = min(block, n_boot - done)
        yield rng.integers(0, n, (size, n))
        done += size


def bootstrap_group(
    y: FloatArray,
    s: FloatArray,
    flags: dict[str, BoolArray],
    *,
    probabilities: bool,
    n_boot: int,
    rng: np.random.Generator,
) -> dict[str, dict[str, FloatArray]]:
    """Replicates ``{point: {metric: array(n_boot)}}`` (point ``overall`` for score metrics)."""
    parts: dict[str, dict[str, list[FloatArray]]] = {}
    for idx in _replicate_blocks(y.size, n_boot, rng):
        yb, sb = y[idx], s[idx]
        blocks = {OVERALL_POINT: score_metrics(yb, sb, probabilities)}
        for point, f in flags.items():
            blocks[point] = rates(yb, f[idx].astype(np.float64))
        for point, metrics in blocks.items():
            for name, arr in metrics.items():
                parts.setdefault(point, {}).setdefault(name, []).append(arr)
    return {p: {m: np.concatenate(a) for m, a in ms.items()} for p, ms in parts.items()}


def interval(reps: FloatArray | None, confidence: float) -> tuple[float | None, float | None]:
    if reps is None:
        return None, None
    finite = reps[np.isfinite(reps)]
    if finite.size < max(10, reps.size // 2):
        return None, None
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    return float(lo), float(hi)


def num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def estimate(value: float | None, reps: FloatArray | None, confidence: float) -> Estimate:
    lo, hi = interval(reps, confidence)
    return Estimate(value=num(value), low=lo, high=hi)


NO_ESTIMATE = Estimate()


# --------------------------------------------------------------------------- the audit
def calibration_table(y: FloatArray, p: FloatArray, bins: int = 10) -> list[CalibrationBin]:
    """Mean predicted vs observed per equal-frequency bin (deciles by default)."""
    return [
        CalibrationBin(
            n=float(b.size), mean_predicted=float(p[b].mean()), observed=float(y[b].mean())
        )
        for b in equal_frequency_bins(p, bins)
    ]


def audit_attribute(
    attribute: str,
    y: FloatArray,
    score: FloatArray,
    groups: Sequence[str] | NDArray[np.str_],
    points: dict[str, BoolArray],
    *,
    reference: str | None = None,
    min_group_size: int = 50,
    n_boot: int = 300,
    confidence: float = 0.95,
    seed: int = 0,
) -> AttributeAudit:
    """The audit of one attribute; see the module docstring for what is in it."""
    inputs = validate_audit_inputs(y, score, groups, context=f"audit {attribute}")
    yv, sv, gv = inputs.y, inputs.score, inputs.groups
    probabilities = bool(sv.min() >= 0.0 and sv.max() <= 1.0)
    names, counts = np.unique(gv, return_counts=True)
    order = sorted(range(names.size), key=lambda i: (-counts[i], names[i]))
    ref = reference if reference is not None else str(names[order[0]])
    validate_reference(ref, names.tolist(), context=f"audit {attribute}")

    point_values: dict[str, dict[str, dict[str, float]]] = {
        OVERALL_POINT: metric_frame_points(yv, sv, gv, ["auc"])
    }
    for point, f in points.items():
        point_values[point] = metric_frame_points(yv, f.astype(np.float64), gv, RATE_METRICS)

    rng = np.random.default_rng(seed)
    reps: dict[str, dict[str, dict[str, FloatArray]]] = {}
    exact: set[tuple[str, str, str]] = set()  # (group, point, metric) with exact intervals
    rows: list[GroupMetrics] = []
    for i in order:
        g = str(names[i])
        mask = gv == g
        n, positives = int(counts[i]), int(yv[mask].sum())
        if n < min_group_size:
            score_names = SCORE_METRICS if probabilities else SCORE_METRICS[:2]
            rows.append(
                GroupMetrics(
                    group=g, n=n, positives=positives, reference=g == ref, status=INSUFFICIENT,
                    overall={m: NO_ESTIMATE for m in score_names},
                    points={p: {m: NO_ESTIMATE for m in RATE_METRICS} for p in points},
                    calibration_slope=None, calibration_bins=[],
                )
            )  # fmt: skip
            continue
        yg, sg = yv[mask], sv[mask]
        fg = {p: f[mask] for p, f in points.items()}
        r = bootstrap_group(yg, sg, fg, probabilities=probabilities, n_boot=n_boot, rng=rng)
        reps[g] = r
        overall = score_metrics(yg, sg, probabilities)
        overall["auc"] = np.asarray(point_values[OVERALL_POINT][g]["auc"])
        at_points: dict[str, dict[str, Estimate]] = {}
        for p, f in fg.items():
            at_points[p] = {}
            for m, (events, trials) in rate_counts(yg, f.astype(np.float64)).items():
                est = estimate(point_values[p][g][m], r.get(p, {}).get(m), confidence)
                if trials > 0 and events in (0, trials):  # flat over the bootstrap
                    lo, hi = exact_interval(events, trials, confidence)
                    est = Estimate(value=est.value, low=lo, high=hi)
                    exact.add((g, p, m))
                at_points[p][m] = est
        rows.append(
            GroupMetrics(
                group=g, n=n, positives=positives, reference=g == ref, status=OK,
                overall={
                    m: estimate(float(v), r.get(OVERALL_POINT, {}).get(m), confidence)
                    for m, v in overall.items()
                },
                points=at_points,
                calibration_slope=num(calibration_slope(yg, sg)) if probabilities else None,
                calibration_bins=calibration_table(yg, sg) if probabilities else [],
            )
        )  # fmt: skip

    return AttributeAudit(
        attribute=attribute,
        reference=ref,
        n=int(yv.size),
        scores_are_probabilities=probabilities,
        groups=rows,
        disparities=disparities(rows, reps, ref, confidence, exact),
        composition=composition(gv, points),
    )


def disparities(
    rows: list[GroupMetrics],
    reps: dict[str, dict[str, dict[str, FloatArray]]],
    ref: str,
    confidence: float,
    exact: set[tuple[str, str, str]] | None = None,
) -> list[Disparity]:
    """Difference and ratio of every group's metric to the reference group's, with intervals
    (bootstrap; combined bounds when either side's cell is in ``exact``)."""
    ref_row = next(r for r in rows if r.group == ref)
    out: list[Disparity] = []
    for row in rows:
        g = row.group
        if g == ref:
            continue
        sufficient = row.sufficient and ref_row.sufficient
        for point, metrics in [(OVERALL_POINT, row.overall), *row.points.items()]:
            ref_metrics = ref_row.overall if point == OVERALL_POINT else ref_row.at(point)
            for m, est in metrics.items():
                if m == "base_rate" or (point == OVERALL_POINT and m == "mean_predicted"):
                    continue
                ref_est = ref_metrics.get(m, NO_ESTIMATE)
                a, b = est.value, ref_est.value
                if not sufficient or a is None or b is None:
                    status = INSUFFICIENT if not sufficient else OK
                    diff, ratio = NO_ESTIMATE, NO_ESTIMATE
                elif exact and ((g, point, m) in exact or (ref, point, m) in exact):
                    status = OK
                    diff, ratio = bound_disparity(est, ref_est)
                else:
                    ra, rb = reps[g][point][m], reps[ref][point][m]
                    n = min(ra.size, rb.size)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ratio_reps = ra[:n] / rb[:n]
                    status = OK
                    diff = estimate(a - b, ra[:n] - rb[:n], confidence)
                    ratio = estimate(a / b if b else None, ratio_reps, confidence)
                out.append(
                    Disparity(
                        group=g, point=point, metric=m, status=status, difference=diff, ratio=ratio
                    )
                )
    return out


def bound_disparity(a: Estimate, b: Estimate) -> tuple[Estimate, Estimate]:
    """Difference and ratio of estimates ``a`` and ``b`` with intervals from their bounds."""
    if a.value is None or b.value is None:
        return NO_ESTIMATE, NO_ESTIMATE
    diff_value = num(a.value - b.value)
    ratio_value = num(a.value / b.value) if b.value else None
    lo_a, hi_a, lo_b, hi_b = a.low, a.high, b.low, b.high
    if lo_a is None or hi_a is None or lo_b is None or hi_b is None:
        return Estimate(value=diff_value), Estimate(value=ratio_value)
    diff = Estimate(value=diff_value, low=lo_a - hi_b, high=hi_a - lo_b)
    if lo_b > 0:  # else unbounded above: no interval
        return diff, Estimate(value=ratio_value, low=lo_a / hi_b, high=hi_a / lo_b)
    return diff, Estimate(value=ratio_value)


def composition(
    groups: NDArray[np.str_], points: dict[str, BoolArray]
) -> dict[str, dict[str, float]]:
    """Share of each group in the population and on each list (operating point)."""
    names = sorted(set(groups.tolist()))
    out = {"population": {g: float(np.mean(groups == g)) for g in names}}
    for point, f in points.items():
        listed = groups[f]
        out[point] = {g: float(np.mean(listed == g)) if listed.size else 0.0 for g in names}
    return out
