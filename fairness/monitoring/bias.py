"""The label-free FPR/FNR's calibration error near the thresholds, measured on the reference.

Why: the label-free estimate (`fairness.monitoring.estimate`) assumes calibrated probabilities,
and its sampled interval carries only the noise of labels drawn from them. A champion that is
slightly miscalibrated *among the persons near and above a threshold* (more negatives above
0.35 than their scores say) shows a realised FPR outside that interval at every check, by the
same sign, although the overall calibration is within its band (bench_monitoring.md: realised
FPR one point above the estimate at each of 8 compared checks; 58.8 % of cells covered).

The reference (the out-of-time test snapshot the champion was audited on) has known labels, so
the same error can be measured there, per group and threshold, without touching the cohort being
estimated (fitting on that cohort would be leakage):

- ``shift = realised − label-free`` on the reference, with realised ``Σ(1−y)f / Σ(1−y)`` and
  label-free ``Σ(1−p)f / Σ(1−p)`` for the FPR (``Σ y(1−f) / Σ y`` and ``Σ p(1−f) / Σ p`` for
  the FNR), ``f = [p >= t]``;
- its standard error by the delta method (the bootstrap's variance to first order): with
  ``shift = mean(a)/mean(b) − mean(c)/mean(e)``, person ``i``'s influence is
  ``(a_i − R b_i)/mean(b) − (c_i − E e_i)/mean(e)`` and ``se² = Σ influence² / n²``.

The AUC is treated alike: ``shift = realised AUC − label-free AUC`` on the reference per
group, with the Hanley-McNeil standard error of the realised AUC as its uncertainty (the
label-free AUC, a smooth function of the scores, varies far less).

What the AUC's shift ``d_g`` (with standard error ``se_g``) does is
``EstimateSettings.auc_correction`` (`ReferenceBias.auc_adjustment` gives ``(shift, sd)``: the
point moves by ``shift``, each replicate by ``shift + sd·z``):

- ``none``: nothing; the interval holds the cohort's label noise only.
- ``shift``: ``(d_g, se_g)``, the group's own shift. A small reference group's shift is mostly
  noise, and moving the point by it moved small groups away (bench_monitoring.md).
- ``widen``: ``(0, sqrt(max(d_g² − se_g², 0)))``: the point is left alone and the interval
  widened by the estimator's bias measured on labelled data, taken as model uncertainty
  (``E[d_g²] = bias² + se_g²``, so the excess estimates the squared bias; a noisy small group
  adds nothing).
- ``pooled``: empirical Bayes across the reference's groups (all columns): true shifts
  ``~ N(mu, tau²)``, ``tau²`` by DerSimonian-Laird and ``mu`` their precision-weighted mean;
  group ``g`` moves by ``mu + B_g (d_g − mu)``, ``B_g = tau² / (tau² + se_g²)``, with the
  posterior sd ``sqrt(B_g se_g² + (1 − B_g)² se_mu²)``: a group with a clear error keeps most
  of it, a small noisy one is pulled to the centre. (Centring on the overall AUC's shift was
  tried: the overall AUC also ranks between groups, so its error is another quantity, and at
  30k persons it moved every group by that one noisy figure.)

For all but ``none`` ``se_g`` is the reference's realised-AUC label noise given its scores
(`fairness.monitoring.estimate._auc_noise`), not Hanley-McNeil's (kept in ``Shift.auc_se``
otherwise), which also holds the sampling of the scores and made a real error look like noise.

For the FPR/FNR the estimate adds ``shift`` to its point value and ``shift + se·z`` (``z``
standard normal, one draw per replicate and group) to every sampled replicate, so the interval
holds both the label noise of the cohort and the uncertainty of the correction. A group too
small in the reference (fewer than ``min_group_size`` persons, or no positives/negatives) takes
the overall shift with its standard error widened by that shift's size, since its own is
unknown. What this does not cover: calibration that changes between the reference and the cohort
(population drift after the audit); the realised check on each matured cohort is what catches
that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import polars as pl

from fairness.monitoring.groups import (
    ALL,
    FloatArray,
    auc_from_ranks,
    expected_auc,
    groupings,
    labels,
    probabilities,
    rank_index,
)


@dataclass(frozen=True)
class Shift:
    """Per threshold: the FPR and FNR shift (realised − label-free) and their standard errors."""

    fpr: FloatArray
    fpr_se: FloatArray
    fnr: FloatArray
    fnr_se: FloatArray
    auc: float = 0.0
    auc_se: float = 0.0


AucCorrection = Literal["none", "shift", "widen", "pooled"]


@dataclass(frozen=True)
class ReferenceBias:
    """Shifts per (group column, group); ``ALL`` holds the overall one."""

    shifts: dict[tuple[str, str], Shift]
    _pool: tuple[float, float, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pool", _auc_pool(self.shifts))

    def with_auc_se(self, se: dict[tuple[str, str], float]) -> ReferenceBias:
        """These shifts with the AUC's standard error replaced where ``se`` has the group
        (the realised AUC's label noise given the reference's scores, see the docstring)."""
        return ReferenceBias(
            {k: replace(s, auc_se=se.get(k, s.auc_se)) for k, s in self.shifts.items()}
        )

    def auc_adjustment(self, column: str, group: str, mode: AucCorrection) -> tuple[float, float]:
        """``(shift, sd)`` for one group's AUC: the point moves by ``shift`` and each replicate
        by ``shift + sd·z`` (see the module docstring for the four modes)."""
        if mode == "none":
            return 0.0, 0.0
        own = self.shifts.get((column, group))
        mu, mu_se, tau2 = self._pool
        if own is None:  # too small in the reference: its own error is unknown
            if mode == "pooled":
                return mu, float(np.sqrt(tau2 + mu_se**2))
            base = self.shifts[(ALL, ALL)]
            return (base.auc if mode == "shift" else 0.0), float(np.hypot(base.auc_se, base.auc))
        if mode == "shift":
            return own.auc, own.auc_se
        if mode == "widen":
            return 0.0, float(np.sqrt(max(own.auc**2 - own.auc_se**2, 0.0)))
        weight = tau2 / (tau2 + own.auc_se**2) if tau2 > 0 else 0.0
        shift = mu + weight * (own.auc - mu)
        var = weight * own.auc_se**2 + (1 - weight) ** 2 * mu_se**2
        return float(shift), float(np.sqrt(var))

    def of(self, column: str, group: str) -> Shift:
        """The group's shift, or the overall one widened (see the module docstring)."""
        own = self.shifts.get((column, group))
        if own is not None:
            return own
        base = self.shifts[(ALL, ALL)]
        return Shift(
            fpr=base.fpr,
            fpr_se=np.hypot(base.fpr_se, base.fpr),
            fnr=base.fnr,
            fnr_se=np.hypot(base.fnr_se, base.fnr),
            auc=base.auc,
            auc_se=float(np.hypot(base.auc_se, base.auc)),
        )


def _auc_pool(shifts: dict[tuple[str, str], Shift]) -> tuple[float, float, float]:
    """Empirical Bayes across the reference's groups (every group of every column): the
    between-group variance ``tau²`` of the groups' true AUC shifts (DerSimonian-Laird,
    ``(Q − (k − 1)) / (Σw − Σw² / Σw)`` with ``w = 1 / se²``, floored at 0), their centre
    ``mu`` (weighted by ``1 / (se² + tau²)``) and its standard error."""
    rest = [s for key, s in shifts.items() if key[0] != ALL and s.auc_se > 0]
    if len(rest) < 2:
        base = shifts.get((ALL, ALL))
        return (base.auc, base.auc_se, 0.0) if base is not None else (0.0, 0.0, 0.0)
    d = np.array([s.auc for s in rest])
    var = np.array([s.auc_se for s in rest]) ** 2
    w = 1.0 / var
    q = float(np.sum(w * (d - np.sum(w * d) / np.sum(w)) ** 2))
    tau2 = max(float((q - (len(rest) - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w))), 0.0)
    w_star = 1.0 / (var + tau2)
    return float(np.sum(w_star * d) / np.sum(w_star)), float(np.sqrt(1 / np.sum(w_star))), tau2


def _ratio_shift(
    codes: np.ndarray, k: int, a: FloatArray, b: FloatArray, c: FloatArray, e: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per group: mean(a)/mean(b) − mean(c)/mean(e), its delta-method se, and sum(b)."""

    def total(w: FloatArray) -> FloatArray:
        return np.asarray(np.bincount(codes, weights=w, minlength=k), dtype=np.float64)

    sa, sb, sc, se_ = total(a), total(b), total(c), total(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        realised, estimated = sa / sb, sc / se_
        infl = (a - realised[codes] * b) / sb[codes] - (c - estimated[codes] * e) / se_[codes]
    var = total(np.nan_to_num(infl) ** 2)  # Σ (influence/n · n)² = se²
    return realised - estimated, np.sqrt(var), sb


def _hanley_mcneil(auc: FloatArray, positives: FloatArray, negatives: FloatArray) -> FloatArray:
    """Standard error of an AUC (Hanley & McNeil 1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (
            auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
        ) / (positives * negatives)
    return np.asarray(np.sqrt(np.maximum(var, 0.0)), dtype=np.float64)


def reference_bias(
    reference: pl.DataFrame,
    thresholds: Sequence[float],
    group_columns: Sequence[str],
    min_group_size: int,
    probability: str = "probability",
    label: str = "label",
) -> ReferenceBias:
    """The FPR/FNR shift per group and threshold on the labelled ``reference``."""
    p = probabilities(reference, probability)
    y = labels(reference, label)
    t = np.asarray(thresholds, dtype=np.float64)
    out: dict[tuple[str, str], Shift] = {}
    present = [c for c in group_columns if c in reference.columns]
    for g in groupings([reference], present):
        codes, k = g.codes[0], g.size
        size = np.bincount(codes, minlength=k).astype(np.float64)
        parts = []
        for th in t:
            f = (p >= th).astype(np.float64)
            fpr = _ratio_shift(codes, k, (1 - y) * f, 1 - y, (1 - p) * f, 1 - p)
            fnr = _ratio_shift(codes, k, y * (1 - f), y, p * (1 - f), p)
            parts.append((fpr, fnr))
        ranks = rank_index(codes, p, k)
        positives = np.bincount(codes, weights=y, minlength=k).astype(np.float64)
        realised_auc = auc_from_ranks(
            positives, np.bincount(codes, weights=y * ranks.midrank, minlength=k), size
        )
        auc_shift = realised_auc - expected_auc(codes, p, k, ranks)
        auc_se = _hanley_mcneil(realised_auc, positives, size - positives)
        for i, group in enumerate(g.labels):
            negatives, positives = parts[0][0][2][i], parts[0][1][2][i]
            if size[i] < min_group_size or negatives == 0 or positives == 0:
                continue
            out[(g.column, group)] = Shift(
                fpr=np.array([x[0][0][i] for x in parts]),
                fpr_se=np.array([x[0][1][i] for x in parts]),
                fnr=np.array([x[1][0][i] for x in parts]),
                fnr_se=np.array([x[1][1][i] for x in parts]),
                auc=float(np.nan_to_num(auc_shift[i])),
                auc_se=float(np.nan_to_num(auc_se[i])),
            )
    if (ALL, ALL) not in out:
        zero = np.zeros(len(t))
        out[(ALL, ALL)] = Shift(zero, zero, zero, zero)
    return ReferenceBias(out)
