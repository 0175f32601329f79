"""Label-free performance estimates from calibrated probabilities (confidence-based
performance estimation, the idea of NannyML's CBPE), overall and per group.

If the model is calibrated, person ``i``'s label is a Bernoulli(``p_i``) draw, so the
performance the model *will* show once labels mature has a known distribution given the scores
alone. NannyML is not a dependency (not in requirements.lock, and its CBPE has no segments);
the estimator is small enough to own and is tested against simulated ground truth.

Point estimates (ratios of expectations; the error of that approximation is O(1/n)):

- **AUC.** With ``q = 1 − p`` and labels independent, the Mann-Whitney numerator has
  expectation ``E[Σ_{i≠j} y_i (1−y_j) h_ij] = Σ_{i≠j} p_i q_j h_ij`` with
  ``h_ij = [s_i > s_j] + ½ [s_i = s_j]``, and the denominator ``P·N = Σ_{i≠j} y_i (1−y_j)``
  has expectation ``Σ_{i≠j} p_i q_j = Σp · Σq − Σ p_i q_i`` (the ``i = j`` terms removed,
  since a person is never paired with themself). ``E[AUC] ≈ E[num] / E[P·N]``. The score
  ``s`` is ``p`` itself; the numerator is one cumulative sum of ``q`` over the rows sorted by
  (group, p).
- **Brier.** ``E[(p − y)²] = p (1 − p)`` exactly, so the expected Brier is ``mean(p q)``.
- **FPR / FNR at a threshold t** (flagged ``f = [p >= t]``): ``Σ q f / Σ q`` and
  ``Σ p (1 − f) / Σ p``.

Intervals: ``replicates`` label vectors are drawn from Bernoulli(p) (seeded), the realised
metric is computed on each, and the interval is the central ``confidence`` quantile range.
It says: *if the model is calibrated for this group, the value realised once the labels mature
lies in this range with probability ``confidence``.* It is the spread of the realised value,
not the uncertainty of a population parameter; a realised value outside it is evidence the
model is not calibrated for the group (or the population changed after the scores were made).
Its edges carry Monte Carlo error of order ``sd · sqrt(α(1−α)/R) / φ(z_α)``, about a tenth of
the interval's half-width at 200 replicates. One draw of labels is shared by every group
column, so all groups cost one random vector per replicate.

Calibration error near the thresholds (``reference_bias``): given a labelled ``reference`` (the
audited test snapshot), the FPR/FNR point values are shifted by the reference's realised −
label-free difference per group and threshold, and each replicate by that shift plus its
standard error times a standard normal draw (`fairness.monitoring.bias`), so the interval then
says: *the realised value lies in this range if the cohort is miscalibrated near the threshold
as the reference was, within that measurement's uncertainty.* Without it (no reference, or
``EstimateSettings.reference_correction`` false) the interval carries the label noise only,
and on a real champion it missed the realised FPR in 41 % of cells (bench_monitoring.md). With
``auc_correction`` (``configs/monitoring.yaml``: ``pooled``) the AUC is moved by the
reference's realised − label-free AUC, shrunk across groups by empirical Bayes, and its
interval carries the posterior uncertainty (`fairness.monitoring.bias`). Measured on the
simulated deliveries: coverage 87.5 -> 94.1 % at 200k persons (sex=F |error| 0.026 -> 0.016),
95.0 -> 96.7 % at 30k, AUC intervals 14 % wider; the group's own shift (``shift``) moved small
groups away at 30k (E4 0.037 -> 0.107), ``widen`` covers but leaves the point where it was.
Brier is never shifted.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from fairness.monitoring.bias import AucCorrection, ReferenceBias, reference_bias
from fairness.monitoring.config import EstimateSettings
from fairness.monitoring.groups import (
    FloatArray,
    Grouping,
    auc_from_ranks,
    cells,
    expected_auc,
    groupings,
    probabilities,
    rank_index,
)
from riskcast.errors import InputError


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Interval(_Result):
    """A point estimate with the central interval of the realised value under calibration."""

    value: float | None
    lower: float | None
    upper: float | None

    def contains(self, x: float | None) -> bool | None:
        if x is None or self.lower is None or self.upper is None:
            return None
        return self.lower <= x <= self.upper


class ThresholdEstimate(_Result):
    threshold: float
    flagged_share: float
    fpr: Interval
    fnr: Interval


class GroupEstimate(_Result):
    """The label-free estimate for one group of one group column."""

    group_column: str
    group: str
    n: int
    expected_positive_rate: float | None
    sufficient: bool
    auc: Interval
    brier: Interval
    thresholds: list[ThresholdEstimate]


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _quantiles(reps: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
    """Central interval per column of ``reps`` (replicates × groups), NaN-aware."""
    alpha = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: an empty group
        lo = np.nanquantile(reps, alpha, axis=0)
        hi = np.nanquantile(reps, 1 - alpha, axis=0)
    return lo, hi


def _shift(
    bias: ReferenceBias,
    g: Grouping,
    point: dict[str, FloatArray],
    reps_fpr: FloatArray,
    reps_fnr: FloatArray,
    rng: np.random.Generator,
) -> None:
    """Shift one grouping's FPR/FNR point values and replicates (replicates x groups x
    thresholds) in place by the reference's calibration error (`fairness.monitoring.bias`)."""
    for i, label in enumerate(g.labels):
        s = bias.of(g.column, label)
        for metric, reps, shift, se in (
            ("fpr", reps_fpr, s.fpr, s.fpr_se),
            ("fnr", reps_fnr, s.fnr, s.fnr_se),
        ):
            point[metric][i] = np.clip(point[metric][i] + shift, 0.0, 1.0)
            z = rng.standard_normal((reps.shape[0], 1))
            reps[:, i, :] = np.clip(reps[:, i, :] + shift + se * z, 0.0, 1.0)


def _shift_auc(
    bias: ReferenceBias,
    g: Grouping,
    point: dict[str, FloatArray],
    reps_auc: FloatArray,
    rng: np.random.Generator,
    mode: AucCorrection,
) -> None:
    """Move one grouping's AUC point values and replicates (replicates x groups) in place by
    the reference's AUC error in ``mode`` (`ReferenceBias.auc_adjustment`)."""
    for i, label in enumerate(g.labels):
        shift, sd = bias.auc_adjustment(g.column, label, mode)
        point["auc"][i] = np.clip(point["auc"][i] + shift, 0.0, 1.0)
        z = rng.standard_normal(reps_auc.shape[0])
        reps_auc[:, i] = np.clip(reps_auc[:, i] + shift + sd * z, 0.0, 1.0)


def _auc_noise(
    reference: pl.DataFrame | None,
    settings: EstimateSettings,
    group_columns: Sequence[str],
    probability: str,
) -> dict[tuple[str, str], float]:
    """Per group, the standard deviation of the reference's realised AUC under label noise
    given its scores (the label-only interval's width / 2z): the noise of the AUC shift
    ``realised − label-free`` measured on the same scores. Hanley-McNeil's error also holds
    the sampling of the scores, which both terms share, and over-states it (sex=F: 0.013 vs
    about 0.008), so a real bias looked like noise."""
    if reference is None:
        return {}
    plain = settings.model_copy(update={"reference_correction": False, "auc_correction": "none"})
    present = [c for c in group_columns if c in reference.columns]
    z = 2 * float(NormalDist().inv_cdf(0.5 + settings.confidence / 2))
    return {
        (e.group_column, e.group): (e.auc.upper - e.auc.lower) / z
        for e in estimate_performance(reference, plain, present, probability)
        if e.auc.upper is not None and e.auc.lower is not None
    }


def estimate_performance(
    frame: pl.DataFrame,
    settings: EstimateSettings,
    group_columns: Sequence[str] = (),
    probability: str = "probability",
    reference: pl.DataFrame | None = None,
) -> list[GroupEstimate]:
    """Expected AUC, Brier and FPR/FNR at each threshold, overall and per group, with
    sampled intervals (see the module docstring for what they mean); FPR/FNR corrected by the
    labelled ``reference``'s calibration error when given and enabled."""
    if not settings.thresholds:
        raise InputError(
            "estimate: no thresholds; take them from the champion's tiers "
            "(EstimateSettings.with_thresholds)"
        )
    p = probabilities(frame, probability)
    n = len(p)
    grps = groupings([frame], group_columns)
    thresholds = np.asarray(settings.thresholds, dtype=np.float64)
    flags = p[:, None] >= thresholds[None, :]  # rows × thresholds
    q = 1.0 - p
    rng = np.random.default_rng(settings.seed)
    prepared = []
    for g in grps:
        codes = g.codes[0]
        k = g.size
        ranks = rank_index(codes, p, k)
        size = np.bincount(codes, minlength=k).astype(np.float64)
        sum_p = np.bincount(codes, weights=p, minlength=k)
        sum_q = size - sum_p
        flagged = np.stack(
            [np.bincount(codes, weights=flags[:, t], minlength=k) for t in range(len(thresholds))],
            axis=1,
        )
        point = {
            "auc": expected_auc(codes, p, k, ranks),
            "brier": np.bincount(codes, weights=p * q, minlength=k) / np.maximum(size, 1),
            "fpr": np.stack(
                [
                    np.bincount(codes, weights=q * flags[:, t], minlength=k)
                    for t in range(len(thresholds))
                ],
                axis=1,
            )
            / np.maximum(sum_q, 1e-300)[:, None],
            "fnr": np.stack(
                [
                    np.bincount(codes, weights=p * ~flags[:, t], minlength=k)
                    for t in range(len(thresholds))
                ],
                axis=1,
            )
            / np.maximum(sum_p, 1e-300)[:, None],
        }
        base_brier = np.bincount(codes, weights=p * p, minlength=k)
        prepared.append((g, codes, ranks, size, sum_p, flagged, point, base_brier))

    partition = cells(grps)
    cell = partition.codes[0]
    n_t = len(thresholds)
    positives_c = np.empty((settings.replicates, partition.size))
    brier_c = np.empty((settings.replicates, partition.size))
    tp_c = np.empty((settings.replicates, n_t, partition.size))
    ranks_c = [np.empty((settings.replicates, partition.size)) for _ in grps]
    one_minus_2p = 1.0 - 2.0 * p
    for r in range(settings.replicates):  # sums per cell; groups are added up after the loop
        pos = np.flatnonzero(rng.random(n) < p)  # the rows labelled 1 in this draw
        cp = cell[pos]
        positives_c[r] = np.bincount(cp, minlength=partition.size)
        brier_c[r] = np.bincount(cp, weights=one_minus_2p[pos], minlength=partition.size)
        flags_pos = flags[pos]
        for t in range(n_t):
            tp_c[r, t] = np.bincount(cp, weights=flags_pos[:, t], minlength=partition.size)
        for j, item in enumerate(prepared):
            midrank = item[2].midrank
            ranks_c[j][r] = np.bincount(cp, weights=midrank[pos], minlength=partition.size)

    bias = (
        reference_bias(
            reference, thresholds.tolist(), group_columns, settings.min_group_size, probability
        )
        if reference is not None and settings.reference_correction
        else None
    )
    if bias is not None and settings.auc_correction != "none":
        bias = bias.with_auc_se(_auc_noise(reference, settings, group_columns, probability))
    # the AUC's correction draws its own stream, so the FPR/FNR intervals do not depend on it
    auc_rng = np.random.default_rng([settings.seed, 1])
    reps_auc, reps_brier, reps_fpr, reps_fnr = [], [], [], []
    for j, (_g, _codes, _ranks, size, _sp, flagged, _pt, base_brier) in enumerate(prepared):
        positives = partition.to_groups(j, positives_c)  # replicates x groups
        reps_auc.append(auc_from_ranks(positives, partition.to_groups(j, ranks_c[j]), size))
        reps_brier.append((base_brier + partition.to_groups(j, brier_c)) / np.maximum(size, 1))
        tp = np.moveaxis(partition.to_groups(j, tp_c), 1, 2)  # replicates x groups x thresholds
        negatives = (size - positives)[:, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            reps_fpr.append(np.where(negatives > 0, (flagged[None] - tp) / negatives, np.nan))
            reps_fnr.append(
                np.where(positives[:, :, None] > 0, 1 - tp / positives[:, :, None], np.nan)
            )
        if bias is not None:
            _shift(bias, prepared[j][0], prepared[j][6], reps_fpr[-1], reps_fnr[-1], rng)
            if settings.auc_correction != "none":
                _shift_auc(
                    bias,
                    prepared[j][0],
                    prepared[j][6],
                    reps_auc[-1],
                    auc_rng,
                    settings.auc_correction,
                )

    out: list[GroupEstimate] = []
    for j, (g, _codes, _ranks, size, sum_p, flagged, point, _b) in enumerate(prepared):
        auc_lo, auc_hi = _quantiles(reps_auc[j], settings.confidence)
        br_lo, br_hi = _quantiles(reps_brier[j], settings.confidence)
        fpr_lo, fpr_hi = _quantiles(reps_fpr[j], settings.confidence)
        fnr_lo, fnr_hi = _quantiles(reps_fnr[j], settings.confidence)
        for i, label in enumerate(g.labels):
            n_i = int(size[i])
            rows = [
                ThresholdEstimate(
                    threshold=float(thresholds[t]),
                    flagged_share=float(flagged[i, t] / n_i) if n_i else 0.0,
                    fpr=Interval(
                        value=_num(point["fpr"][i, t]),
                        lower=_num(fpr_lo[i, t]),
                        upper=_num(fpr_hi[i, t]),
                    ),
                    fnr=Interval(
                        value=_num(point["fnr"][i, t]),
                        lower=_num(fnr_lo[i, t]),
                        upper=_num(fnr_hi[i, t]),
                    ),
                )
                for t in range(len(thresholds))
            ]
            out.append(
                GroupEstimate(
                    group_column=g.column,
                    group=label,
                    n=n_i,
                    expected_positive_rate=_num(sum_p[i] / n_i) if n_i else None,
                    sufficient=n_i >= settings.min_group_size,
                    auc=Interval(
                        value=_num(point["auc"][i]), lower=_num(auc_lo[i]), upper=_num(auc_hi[i])
                    ),
                    brier=Interval(
                        value=_num(point["brier"][i]), lower=_num(br_lo[i]), upper=_num(br_hi[i])
                    ),
                    thresholds=rows,
                )
            )
    return out
