"""Input drift between a reference frame and a current frame, overall and per group.

For each model input and each group (overall, and per label of each group column):

- **PSI** (population stability index), ``Σ_b (c_b − r_b) · ln(c_b / r_b)`` over bins ``b``
  with reference shares ``r`` and current shares ``c``. Numeric inputs use the quantile bins
  of the *overall* reference (deciles by default; tied quantiles merge, so a mostly-zero count
  gets fewer bins, and each edge sits midway to the next lower reference value so that a point
  mass is not on an edge: see `quantile_edges`); categorical inputs use their categories, and
  each category unseen in the reference is a bin of its own with reference share epsilon. A
  share below ``epsilon`` is read as ``epsilon`` so an empty bin gives a large finite term,
  not ``log 0``. Groups use the overall reference bins, so their figures are comparable with
  the overall one and all groups come from one pass over the rows (counts per cell of the
  group columns, added up per group); a group concentrated in a few bins is seen at a coarser
  resolution.
- **Missing share** in the reference and now (missing values are outside the PSI bins). In a
  group the change is judged net of the change in the rest of its column (`_rest_missing_change`);
  overall as it is.
- **A distribution test**: two-sample Kolmogorov-Smirnov for numbers, chi-square on the
  category counts for categories, on a seeded sample of at most ``test_max_rows`` rows per
  side and group (at a million rows any negligible shift is significant; the cap bounds the
  time and keeps "significant" meaning something).
- **New categories** (unseen in the reference) and their share now.

The status is ``alert`` / ``watch`` / ``ok``, or ``insufficient_evidence`` below the minimum
group size. A PSI level counts only when the test rejects at ``test_alpha`` (PSI of a small
group is noisy with no shift at all); a missing-share change only when a two-proportion test
rejects at the same level; any new category is a watch, and ``new_category_alert`` of the rows
in new categories an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict
from scipy import special

from fairness.monitoring.config import DriftSettings
from fairness.monitoring.groups import ALL, FloatArray, Grouping, IntArray, cells, groupings
from riskcast.errors import InputError

Kind = Literal["numeric", "categorical"]
DriftStatus = Literal["ok", "watch", "alert", "insufficient_evidence"]
_LEVEL: dict[DriftStatus, int] = {"insufficient_evidence": -1, "ok": 0, "watch": 1, "alert": 2}
_CATEGORICAL = (pl.String, pl.Categorical, pl.Enum, pl.Boolean)


class InputDrift(BaseModel):
    """One input in one group: PSI, missing shares, the test, new categories, the status."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str
    kind: Kind
    group_column: str
    group: str
    n_reference: int
    n_current: int
    psi: float | None
    missing_reference: float | None
    missing_current: float | None
    test: Literal["ks", "chi2"]
    statistic: float | None
    p_value: float | None
    new_categories: list[str]
    new_category_share: float
    status: DriftStatus


class DriftReport(BaseModel):
    """Every (input, group) result and the settings they were judged with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: DriftSettings
    results: list[InputDrift]

    def alerts(self) -> list[InputDrift]:
        return [r for r in self.results if r.status == "alert"]

    def find(self, input: str, group_column: str, group: str) -> InputDrift:
        for r in self.results:
            if (r.input, r.group_column, r.group) == (input, group_column, group):
                return r
        raise KeyError((input, group_column, group))


# --------------------------------------------------------------------------- PSI
def psi_from_counts(reference: FloatArray, current: FloatArray, epsilon: float) -> FloatArray:
    """PSI per row of two count matrices (groups × bins); NaN for a row with no counts."""
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    cur = np.atleast_2d(np.asarray(current, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.maximum(ref / ref.sum(axis=1, keepdims=True), epsilon)
        c = np.maximum(cur / cur.sum(axis=1, keepdims=True), epsilon)
        psi = ((c - r) * np.log(c / r)).sum(axis=1)
    empty = (ref.sum(axis=1) == 0) | (cur.sum(axis=1) == 0)
    return np.where(empty, np.nan, psi)


def quantile_edges(reference: FloatArray, bins: int) -> FloatArray:
    """Inner bin edges from the reference's quantiles, made safe for ties and point masses.

    A value holding more than ``1/bins`` of the reference (a point mass: many quiet cells
    sharing one floor forecast, a mostly-zero count) is a bin of its own, and the other bins
    are the quantiles of the remaining values, so the resolution the tie would have merged
    away is spent on the rest of the distribution. Then every edge ``e`` becomes the midpoint
    between ``e`` and the largest reference value below it, and an edge with no reference
    value below it is dropped: the reference's rows stay in their bins, no bin is empty in the
    reference by construction, and a point mass keeps its bin when its value moves by less
    than half the gap to the neighbouring reference value. On the raw quantiles such a mass
    sat on a bin edge, so a floor forecast moving from 0.00123 to 0.00111 carried 70 % of the
    rows into a bin empty in the reference: PSI up to 16 while the mean barely moved
    (bench_monitoring.md §5). For a continuous input the neighbouring value is a hair below
    the quantile, so the edges are the deciles in effect."""
    valid = reference[~np.isnan(reference)]
    if len(valid) == 0:
        return np.empty(0, dtype=np.float64)
    distinct, counts = np.unique(valid, return_counts=True)
    is_mass = counts * bins > len(valid)
    masses = distinct[is_mass]
    rest = valid[~np.isin(valid, masses)]
    levels = np.linspace(0, 1, max(bins - len(masses), 1) + 1)[1:-1]
    above = np.minimum(np.flatnonzero(is_mass) + 1, len(distinct) - 1)  # next value up
    raw = [masses, distinct[above]] + ([np.quantile(rest, levels)] if len(rest) else [])
    edges = np.unique(np.concatenate(raw))
    below = np.searchsorted(distinct, edges, side="left")  # distinct values strictly below
    keep = below > 0
    return np.asarray((distinct[below[keep] - 1] + edges[keep]) / 2, dtype=np.float64)


def bin_codes(values: FloatArray, edges: FloatArray) -> IntArray:
    """Bin of each value (``edges[k-1] <= x < edges[k]``), −1 for a missing value."""
    codes = np.searchsorted(edges, values, side="right").astype(np.int64)
    codes[np.isnan(values)] = -1
    return codes


def psi(reference: FloatArray, current: FloatArray, bins: int = 10, epsilon: float = 1e-4) -> float:
    """PSI of one numeric sample against another on the reference's quantile bins."""
    edges = quantile_edges(reference, bins)
    k = len(edges) + 1
    rc, cc = bin_codes(reference, edges), bin_codes(current, edges)
    counts_r = np.bincount(rc[rc >= 0], minlength=k).astype(np.float64)
    counts_c = np.bincount(cc[cc >= 0], minlength=k).astype(np.float64)
    return float(psi_from_counts(counts_r, counts_c, epsilon)[0])


# --------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class _Encoded:
    """An input as bin/category codes (−1 = missing) in both frames."""

    kind: Kind
    reference: IntArray
    current: IntArray
    n_bins: int
    new_from: int  # codes >= new_from are categories unseen in the reference
    labels: tuple[str, ...]
    raw_reference: FloatArray | None  # numeric values, for the KS test
    raw_current: FloatArray | None


def _kind(dtype: pl.DataType, name: str, categorical: set[str]) -> Kind:
    if name in categorical or isinstance(dtype, _CATEGORICAL):
        return "categorical"
    if dtype.is_numeric():
        return "numeric"
    raise InputError(f"input {name!r} has dtype {dtype}: neither numeric nor categorical")


def _encode(ref: pl.Series, cur: pl.Series, kind: Kind, bins: int) -> _Encoded:
    if kind == "numeric":
        r = ref.cast(pl.Float64).to_numpy()
        c = cur.cast(pl.Float64).to_numpy()
        edges = quantile_edges(r, bins)
        k = len(edges) + 1
        return _Encoded(kind, bin_codes(r, edges), bin_codes(c, edges), k, k, (), r, c)
    rs, cs = ref.cast(pl.String), cur.cast(pl.String)
    known = sorted(rs.drop_nulls().unique().to_list())
    new = sorted(set(cs.drop_nulls().unique().to_list()) - set(known))
    labels = tuple(known + new)
    enum = pl.Enum(list(labels))
    codes = [s.cast(enum).to_physical().cast(pl.Int64).fill_null(-1).to_numpy() for s in (rs, cs)]
    return _Encoded(kind, codes[0], codes[1], len(labels), len(known), labels, None, None)


def _counts(codes: IntArray, groups: IntArray, n_groups: int, k: int) -> FloatArray:
    valid = codes >= 0
    flat = np.bincount(groups[valid] * k + codes[valid], minlength=n_groups * k)
    return flat.reshape(n_groups, k).astype(np.float64)


# --------------------------------------------------------------------------- tests
def _sample_indices(codes: IntArray, n_groups: int, cap: int, seed: int) -> list[IntArray]:
    """At most ``cap`` random rows of each group: one seeded permutation, stably sorted by
    group, so every input's test in a group uses the same rows."""
    perm = np.random.default_rng(seed).permutation(len(codes))
    ordered = perm[np.argsort(codes[perm], kind="stable")]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_groups))])
    return [ordered[bounds[g] : min(bounds[g + 1], bounds[g] + cap)] for g in range(n_groups)]


def ks_test(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov distance and its asymptotic p-value (Kolmogorov's limit
    with Stephens' small-sample correction). Written out rather than `scipy.stats.ks_2samp`:
    the same statistic without the wrapper's per-call overhead, which dominated at a thousand
    (input, group) cells."""
    r, c = np.sort(reference), np.sort(current)
    both = np.concatenate([r, c])
    cdf_r = np.searchsorted(r, both, side="right") / len(r)
    cdf_c = np.searchsorted(c, both, side="right") / len(c)
    distance = float(np.max(np.abs(cdf_r - cdf_c)))
    en = np.sqrt(len(r) * len(c) / (len(r) + len(c)))
    p_value = float(special.kolmogorov((en + 0.12 + 0.11 / en) * distance))
    return distance, min(max(p_value, 0.0), 1.0)


def chi2_test(table: FloatArray) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity on a 2 x k table without empty columns."""
    total = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return chi2, float(special.chdtrc(table.shape[1] - 1, chi2))


def _test(
    enc: _Encoded, ref_rows: IntArray, cur_rows: IntArray
) -> tuple[float | None, float | None]:
    if enc.kind == "numeric":
        assert enc.raw_reference is not None and enc.raw_current is not None
        r, c = enc.raw_reference[ref_rows], enc.raw_current[cur_rows]
        r, c = r[~np.isnan(r)], c[~np.isnan(c)]
        if len(r) == 0 or len(c) == 0:
            return None, None
        return ks_test(r, c)
    r_codes, c_codes = enc.reference[ref_rows], enc.current[cur_rows]
    table = np.vstack(
        [
            np.bincount(r_codes[r_codes >= 0], minlength=enc.n_bins),
            np.bincount(c_codes[c_codes >= 0], minlength=enc.n_bins),
        ]
    ).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return (0.0, 1.0) if table.shape[1] == 1 else (None, None)
    return chi2_test(table)


def _proportion_p(x1: float, n1: float, x2: float, n2: float) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1 where undefined)."""
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return 1.0 if x1 / n1 == x2 / n2 else 0.0
    z = (x2 / n2 - x1 / n1) / np.sqrt(var)
    return float(special.erfc(abs(z) / np.sqrt(2.0)))


def _status(
    s: DriftSettings,
    n_ref: int,
    n_cur: int,
    psi_value: float,
    p_value: float | None,
    missing_change: float,
    missing_p: float,
    new_share: float,
    any_new: bool,
) -> DriftStatus:
    if min(n_ref, n_cur) < s.min_group_size:
        return "insufficient_evidence"
    level: DriftStatus = "ok"

    def raise_to(candidate: DriftStatus) -> None:
        nonlocal level
        if _LEVEL[candidate] > _LEVEL[level]:
            level = candidate

    rejects = p_value is not None and p_value < s.test_alpha
    if rejects and psi_value >= s.psi_alert:
        raise_to("alert")
    elif rejects and psi_value >= s.psi_watch:
        raise_to("watch")
    change = abs(missing_change)
    if missing_p < s.test_alpha and change >= s.missing_alert:
        raise_to("alert")
    elif missing_p < s.test_alpha and change >= s.missing_watch:
        raise_to("watch")
    if new_share >= s.new_category_alert:
        raise_to("alert")
    elif any_new:
        raise_to("watch")
    return level


# --------------------------------------------------------------------------- the report
def input_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    inputs: Sequence[str],
    settings: DriftSettings,
    group_columns: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> DriftReport:
    """Drift of every input, overall and per group of each group column.

    Numeric dtypes are binned, strings, categoricals, enums and booleans are categories;
    ``categorical`` forces an integer-coded input to be read as categories.
    """
    missing_cols = [c for c in inputs if c not in reference.columns or c not in current.columns]
    if missing_cols:
        raise InputError(f"inputs missing from the reference or current frame: {missing_cols}")
    forced = set(categorical)
    grps = groupings([reference, current], group_columns)
    partition = cells(grps)
    sizes = [
        tuple(np.bincount(c, minlength=g.size).astype(np.float64) for c in g.codes) for g in grps
    ]
    samples = [
        (
            _sample_indices(g.codes[0], g.size, settings.test_max_rows, settings.seed),
            _sample_indices(g.codes[1], g.size, settings.test_max_rows, settings.seed + 1),
        )
        for g in grps
    ]
    results: list[InputDrift] = []
    for name in inputs:
        kind = _kind(reference.schema[name], name, forced)
        enc = _encode(reference.get_column(name), current.get_column(name), kind, settings.bins)
        cell_counts = (
            _counts(enc.reference, partition.codes[0], partition.size, enc.n_bins),
            _counts(enc.current, partition.codes[1], partition.size, enc.n_bins),
        )
        for j, (grouping, (ref_rows, cur_rows)) in enumerate(zip(grps, samples, strict=True)):
            counts = (
                partition.to_groups(j, cell_counts[0].T).T,
                partition.to_groups(j, cell_counts[1].T).T,
            )
            results.extend(
                _group_results(name, enc, grouping, counts, sizes[j], ref_rows, cur_rows, settings)
            )
    return DriftReport(settings=settings, results=results)


def _rest_missing_change(
    g: Grouping, miss_r: FloatArray, size_r: FloatArray, miss_c: FloatArray, size_c: FloatArray
) -> FloatArray:
    """Per group, the change in the missing share of the rest of its column (0 overall, or
    without a rest). A group's missing-share change is judged net of it: a slow change every
    group shares (on the simulated deliveries, the share of record-holders with no overdue debt
    rising by about 4 points in three years as the population with a record accumulates) is
    judged once, overall, instead of alerting in whichever groups cross the threshold first,
    while one group's register that stops recording a field stands out as before."""
    if g.column == ALL:
        return np.zeros(g.size)
    rest_r, rest_c = size_r.sum() - size_r, size_c.sum() - size_c
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (miss_c.sum() - miss_c) / rest_c - (miss_r.sum() - miss_r) / rest_r
    return np.where((rest_r > 0) & (rest_c > 0), change, 0.0)


def _group_results(
    name: str,
    enc: _Encoded,
    g: Grouping,
    counts: tuple[FloatArray, FloatArray],
    sizes: tuple[FloatArray, ...],
    ref_rows: list[IntArray],
    cur_rows: list[IntArray],
    s: DriftSettings,
) -> list[InputDrift]:
    counts_r, counts_c = counts  # groups x bins, missing values excluded
    psis = psi_from_counts(counts_r, counts_c, s.epsilon)
    size_r, size_c = sizes
    miss_r = size_r - counts_r.sum(axis=1)
    miss_c = size_c - counts_c.sum(axis=1)
    rest_change = _rest_missing_change(g, miss_r, size_r, miss_c, size_c)
    out: list[InputDrift] = []
    for i, label in enumerate(g.labels):
        n_r, n_c = int(size_r[i]), int(size_c[i])
        share_r = miss_r[i] / n_r if n_r else None
        share_c = miss_c[i] / n_c if n_c else None
        new_counts = counts_c[i, enc.new_from :]
        new_names = [enc.labels[enc.new_from + j] for j in np.flatnonzero(new_counts)]
        valid_c = counts_c[i].sum()
        new_share = float(new_counts.sum() / valid_c) if valid_c else 0.0
        statistic, p_value = _test(enc, ref_rows[i], cur_rows[i])
        psi_i = None if np.isnan(psis[i]) else float(psis[i])
        if n_r and n_c and share_r is not None and share_c is not None:
            missing_p = _proportion_p(miss_r[i], n_r, miss_c[i], n_c)
            status = _status(
                s,
                n_r,
                n_c,
                psi_i if psi_i is not None else 0.0,
                p_value,
                share_c - share_r - rest_change[i],
                missing_p,
                new_share,
                bool(new_names),
            )
        else:
            status = "insufficient_evidence"
        out.append(
            InputDrift(
                input=name,
                kind=enc.kind,
                group_column=g.column,
                group=label,
                n_reference=n_r,
                n_current=n_c,
                psi=psi_i,
                missing_reference=share_r,
                missing_current=share_c,
                test="ks" if enc.kind == "numeric" else "chi2",
                statistic=statistic,
                p_value=p_value,
                new_categories=new_names,
                new_category_share=new_share,
                status=status,
            )
        )
    return out
