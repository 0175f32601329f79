"""Realised performance on a matured cohort (labels known), overall and per group, and the
error of the label-free estimate made for the same cohort before its labels existed.

Per group: AUC (Mann-Whitney with midranks, ties one half), Brier score,
calibration-in-the-large as ``mean(y) − mean(p)`` in probability points (the issue's ±2
points; positive = the model under-predicts), the calibration slope (the slope ``b`` of the
logistic recalibration ``logit P(y=1) = a + b · logit(p)``: 1 calibrated, below 1
over-confident, i.e. scores too extreme, above 1 under-confident), and FPR/FNR at the tier
thresholds. A group below ``min_group_size`` is marked insufficient, and a group whose
calibration is shown to lie outside the configured band (its interval wholly outside) is
flagged, so "no alert" never means "not looked at" and noise alone does not alert.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict
from scipy import special

from fairness.monitoring.config import RealisedSettings
from fairness.monitoring.estimate import GroupEstimate, Interval
from fairness.monitoring.groups import (
    FloatArray,
    auc_from_ranks,
    groupings,
    labels,
    probabilities,
    rank_index,
)

_CLIP = 1e-6  # logit(p) of a score of exactly 0 or 1 is kept finite at ±13.8


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThresholdRealised(_Result):
    threshold: float
    flagged_share: float
    fpr: float | None
    fnr: float | None


class GroupRealised(_Result):
    """Realised figures of one group of one group column, with its calibration verdict."""

    group_column: str
    group: str
    n: int
    positives: int
    sufficient: bool
    auc: float | None
    brier: float | None
    calibration_in_the_large: float | None
    calibration_intercept: float | None
    calibration_slope: float | None
    calibration_slope_se: float | None
    calibration_in_the_large_se: float | None
    calibration_ok: bool | None  # None: insufficient evidence or slope undefined
    thresholds: list[ThresholdRealised]


class MetricCheck(_Result):
    """One metric: the estimate made before the labels, what was realised, the error."""

    metric: str  # "auc", "brier", "fpr@0.35", "fnr@0.35"
    estimated: float | None
    lower: float | None
    upper: float | None
    realised: float | None
    error: float | None  # estimated − realised
    within_interval: bool | None


class EstimateCheck(_Result):
    group_column: str
    group: str
    sufficient: bool
    metrics: list[MetricCheck]
    auc_error_ok: bool | None  # |AUC error| <= max_auc_error


def calibration_fit(
    y: FloatArray, p: FloatArray, max_iter: int = 50
) -> tuple[float, float, float] | None:
    """Intercept, slope and the slope's standard error (inverse Fisher information) of
    ``logit P(y=1) = a + b·logit(p)`` by Newton-Raphson (unpenalised maximum likelihood);
    None when the labels are all one value or the fit does not converge."""
    if len(y) < 2 or y.min() == y.max():
        return None
    pc = np.clip(p, _CLIP, 1 - _CLIP)
    x = np.log(pc / (1 - pc))
    design = np.column_stack([np.ones_like(x), x])
    beta = np.array([0.0, 1.0])
    for _ in range(max_iter):
        eta = np.clip(design @ beta, -30, 30)
        mu = 1.0 / (1.0 + np.exp(-eta))
        w = mu * (1 - mu)
        hessian = design.T @ (design * w[:, None])
        gradient = design.T @ (y - mu)
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            se = float(np.sqrt(np.linalg.inv(hessian)[1, 1]))
            return float(beta[0]), float(beta[1]), se
    return None


def _calibration_ok(
    slope: float, slope_se: float, citl: float, citl_se: float, s: RealisedSettings
) -> bool:
    """False only when the evidence puts the group outside the band: the slope's interval
    wholly outside [low, high], or the calibration-in-the-large interval wholly beyond the
    tolerance (as the fairness policy judges disparities), so a small group's noise alone
    does not raise an alert; the estimates themselves are reported either way."""
    z = float(special.ndtri(0.5 + s.confidence / 2))
    slope_out = slope + z * slope_se < s.calibration_slope_low or (
        slope - z * slope_se > s.calibration_slope_high
    )
    citl_out = abs(citl) - z * citl_se > s.calibration_in_the_large
    return not (slope_out or citl_out)


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def realised_performance(
    frame: pl.DataFrame,
    settings: RealisedSettings,
    thresholds: Sequence[float],
    group_columns: Sequence[str] = (),
    probability: str = "probability",
    label: str = "label",
) -> list[GroupRealised]:
    """Realised AUC, Brier, calibration and FPR/FNR at ``thresholds``, overall and per group."""
    p = probabilities(frame, probability)
    y = labels(frame, label)
    out: list[GroupRealised] = []
    for g in groupings([frame], group_columns):
        codes = g.codes[0]
        k = g.size
        ranks = rank_index(codes, p, k)
        size = np.bincount(codes, minlength=k).astype(np.float64)
        positives = np.bincount(codes, weights=y, minlength=k)
        auc = auc_from_ranks(
            positives, np.bincount(codes, weights=y * ranks.midrank, minlength=k), size
        )
        brier = np.bincount(codes, weights=(p - y) ** 2, minlength=k) / np.maximum(size, 1)
        mean_p = np.bincount(codes, weights=p, minlength=k) / np.maximum(size, 1)
        negatives = size - positives
        per_t = []
        for t in thresholds:
            f = (p >= t).astype(np.float64)
            flagged = np.bincount(codes, weights=f, minlength=k)
            tp = np.bincount(codes, weights=f * y, minlength=k)
            with np.errstate(divide="ignore", invalid="ignore"):
                per_t.append((t, flagged, (flagged - tp) / negatives, (positives - tp) / positives))
        for i, group in enumerate(g.labels):
            n_i = int(size[i])
            rows = np.flatnonzero(codes == i) if k > 1 else np.arange(len(p))
            fit = calibration_fit(y[rows], p[rows])
            sufficient = n_i >= settings.min_group_size
            citl = float(positives[i] / n_i - mean_p[i]) if n_i else None
            citl_se = float(np.sqrt(np.mean(p[rows] * (1 - p[rows])) / n_i)) if n_i else None
            ok = None
            if sufficient and fit is not None and citl is not None and citl_se is not None:
                ok = _calibration_ok(fit[1], fit[2], citl, citl_se, settings)
            out.append(
                GroupRealised(
                    group_column=g.column,
                    group=group,
                    n=n_i,
                    positives=int(positives[i]),
                    sufficient=sufficient,
                    auc=_num(auc[i]),
                    brier=_num(brier[i]) if n_i else None,
                    calibration_in_the_large=citl,
                    calibration_intercept=fit[0] if fit else None,
                    calibration_slope=fit[1] if fit else None,
                    calibration_slope_se=fit[2] if fit else None,
                    calibration_in_the_large_se=citl_se,
                    calibration_ok=ok,
                    thresholds=[
                        ThresholdRealised(
                            threshold=float(t),
                            flagged_share=float(fl[i] / n_i) if n_i else 0.0,
                            fpr=_num(fpr[i]),
                            fnr=_num(fnr[i]),
                        )
                        for t, fl, fpr, fnr in per_t
                    ],
                )
            )
    return out


def _check(metric: str, est: Interval, realised: float | None) -> MetricCheck:
    error = None if est.value is None or realised is None else est.value - realised
    return MetricCheck(
        metric=metric,
        estimated=est.value,
        lower=est.lower,
        upper=est.upper,
        realised=realised,
        error=error,
        within_interval=est.contains(realised),
    )


def compare(
    estimates: Sequence[GroupEstimate],
    realised: Sequence[GroupRealised],
    settings: RealisedSettings,
) -> list[EstimateCheck]:
    """The estimate's own error per group: every metric estimated before the labels, against
    the same cohort's realised value (groups matched by column and label; thresholds by value)."""
    by_key = {(r.group_column, r.group): r for r in realised}
    out: list[EstimateCheck] = []
    for e in estimates:
        r = by_key.get((e.group_column, e.group))
        if r is None:
            continue
        metrics = [_check("auc", e.auc, r.auc), _check("brier", e.brier, r.brier)]
        realised_t = {t.threshold: t for t in r.thresholds}
        for t in e.thresholds:
            rt = realised_t.get(t.threshold)
            if rt is None:
                continue
            metrics.append(_check(f"fpr@{t.threshold:g}", t.fpr, rt.fpr))
            metrics.append(_check(f"fnr@{t.threshold:g}", t.fnr, rt.fnr))
        auc_error = metrics[0].error
        out.append(
            EstimateCheck(
                group_column=e.group_column,
                group=e.group,
                sufficient=e.sufficient and r.sufficient,
                metrics=metrics,
                auc_error_ok=None
                if auc_error is None
                else abs(auc_error) <= settings.max_auc_error,
            )
        )
    return out
