"""Group codes and within-group ranks shared by drift, estimate and realised.

Every figure is computed overall and per group of each group column in one pass over the
rows: a column's labels become integer codes, and sums per group are `numpy.bincount` calls.
That, not a Python loop over groups, is what keeps a million persons within the time target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from fairness.policy import MISSING_GROUP
from riskcast.errors import InputError

ALL = "all"
"""The group column (and group label) of the overall figures."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Grouping:
    """One group column's labels and every row's code into them (one array per frame)."""

    column: str
    labels: tuple[str, ...]
    codes: tuple[IntArray, ...]

    @property
    def size(self) -> int:
        return len(self.labels)


def _labels(frame: pl.DataFrame, column: str) -> pl.Series:
    if column not in frame.columns:
        raise InputError(f"the frame lacks the group column {column!r}")
    return frame.get_column(column).cast(pl.String).fill_null(MISSING_GROUP)


def groupings(frames: Sequence[pl.DataFrame], columns: Sequence[str]) -> list[Grouping]:
    """The overall grouping, then one per column, with labels shared by all ``frames`` (so a
    group present only in the current frame still gets a code)."""
    out = [Grouping(ALL, (ALL,), tuple(np.zeros(f.height, np.int64) for f in frames))]
    for column in columns:
        series = [_labels(f, column) for f in frames]
        labels = sorted(set().union(*(s.unique().to_list() for s in series)))
        enum = pl.Enum(labels)
        codes = tuple(s.cast(enum).to_physical().cast(pl.Int64).to_numpy() for s in series)
        out.append(Grouping(column, tuple(labels), codes))
    return out


@dataclass(frozen=True)
class RankIndex:
    """Rows sorted by (group, score), with within-group midranks (ties share their mean rank).

    The midrank form of the Mann-Whitney statistic gives the AUC of any 0/1 labels in one
    weighted sum, ``(Σ_{y=1} r − P(P+1)/2) / (P·N)``, ties counted one half; sorting once and
    reusing the ranks for every label draw is what makes sampled intervals cheap.
    """

    order: IntArray  # row indices in (group, score) order
    group_sorted: IntArray  # group code of each sorted row
    block: IntArray  # tie-block id of each sorted row (same group and score)
    block_start: IntArray  # sorted position where each block starts
    group_start: IntArray  # sorted position where each group starts
    midrank: FloatArray  # within-group midrank of each row, in the original row order


def rank_index(codes: IntArray, score: FloatArray, n_groups: int) -> RankIndex:
    order = np.lexsort((score, codes)).astype(np.int64)
    gs, ss = codes[order], score[order]
    n = len(order)
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (gs[1:] != gs[:-1]) | (ss[1:] != ss[:-1])
    block = np.cumsum(new, dtype=np.int64) - 1
    block_start = np.flatnonzero(new).astype(np.int64)
    counts = np.bincount(codes, minlength=n_groups)
    group_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    position = np.arange(1, n + 1, dtype=np.float64) - group_start[gs]
    block_rank = np.bincount(block, weights=position) / np.bincount(block)
    midrank = np.empty(n, dtype=np.float64)
    midrank[order] = block_rank[block]
    return RankIndex(order, gs, block, block_start, group_start, midrank)


def expected_auc(codes: np.ndarray, p: FloatArray, n_groups: int, ranks: RankIndex) -> FloatArray:
    """E[AUC] per group if ``p`` is calibrated: the ratio of expectations derived in
    `fairness.monitoring.estimate`'s docstring."""
    ps = p[ranks.order]
    q = 1.0 - ps
    before = np.cumsum(q) - q  # Σ q over every earlier sorted row
    group_base = before[ranks.group_start[ranks.group_sorted]]
    lower = before[ranks.block_start[ranks.block]] - group_base  # strictly lower, same group
    tie = 0.5 * (np.bincount(ranks.block, weights=q)[ranks.block] - q)  # equal score, not self
    numerator = np.bincount(ranks.group_sorted, weights=ps * (lower + tie), minlength=n_groups)
    sum_p = np.bincount(codes, weights=p, minlength=n_groups)
    sum_q = np.bincount(codes, weights=1.0 - p, minlength=n_groups)
    sum_pq = np.bincount(codes, weights=p * (1.0 - p), minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = numerator / (sum_p * sum_q - sum_pq)
    return np.where(sum_p * sum_q - sum_pq > 0, auc, np.nan)


def auc_from_ranks(
    positives: NDArray[Any], rank_sum: NDArray[Any], sizes: NDArray[Any]
) -> FloatArray:
    """AUC per group from its positive count, the sum of its positives' midranks and its size;
    NaN where a group has no positive or no negative (AUC undefined)."""
    negatives = sizes - positives
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
    return np.where((positives > 0) & (negatives > 0), auc, np.nan)


def probabilities(frame: pl.DataFrame, column: str) -> FloatArray:
    """The score column as float64, refusing nulls and values outside [0, 1] (a probability
    is what the label-free estimate assumes)."""
    if column not in frame.columns:
        raise InputError(f"the frame lacks the probability column {column!r}")
    p = frame.get_column(column).cast(pl.Float64).to_numpy()
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise InputError(f"{column!r} must hold probabilities in [0, 1] without nulls")
    return np.ascontiguousarray(p, dtype=np.float64)


def labels(frame: pl.DataFrame, column: str) -> FloatArray:
    """The matured outcome as 0/1 floats, refusing nulls and other values."""
    if column not in frame.columns:
        raise InputError(f"the frame lacks the label column {column!r}")
    y = frame.get_column(column).cast(pl.Float64).to_numpy()
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise InputError(f"{column!r} must hold 0/1 labels without nulls")
    return np.ascontiguousarray(y, dtype=np.float64)


@dataclass(frozen=True)
class Cells:
    """The finest partition the group columns make (one cell per combination present), so
    a sum over rows is taken once per cell and then added up into every grouping's groups
    with a small matrix product, instead of one pass over the rows per grouping."""

    codes: tuple[IntArray, ...]  # per frame, each row's cell
    size: int
    indicators: tuple[FloatArray, ...]  # per grouping, groups x cells 0/1 matrix

    def to_groups(self, grouping: int, sums: FloatArray) -> FloatArray:
        """Per-cell sums (cells on the last axis) as per-group sums of ``grouping``."""
        return np.asarray(sums @ self.indicators[grouping].T, dtype=np.float64)


def cells(grps: Sequence[Grouping]) -> Cells:
    n_frames = len(grps[0].codes)
    sizes = [g.size for g in grps]
    if int(np.prod(np.asarray(sizes, dtype=object))) < 2**62:
        keys = []
        for f in range(n_frames):
            key = np.zeros(len(grps[0].codes[f]), dtype=np.int64)
            for g in grps:
                key = key * g.size + g.codes[f]
            keys.append(key)
        unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        columns = []
        for g in reversed(grps):
            columns.append(unique % g.size)
            unique = unique // g.size
        per_cell = columns[::-1]
    else:  # too many combinations for one int64 key: unique rows instead
        stacked = np.concatenate(
            [np.stack([g.codes[f] for g in grps], axis=1) for f in range(n_frames)]
        )
        rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
        per_cell = [rows[:, j] for j in range(len(grps))]
    inverse = inverse.reshape(-1).astype(np.int64)
    bounds = np.cumsum([0] + [len(grps[0].codes[f]) for f in range(n_frames)])
    codes = tuple(inverse[bounds[f] : bounds[f + 1]] for f in range(n_frames))
    n_cells = len(per_cell[0])
    indicators = []
    for g, group_of_cell in zip(grps, per_cell, strict=True):
        m = np.zeros((g.size, n_cells), dtype=np.float64)
        m[group_of_cell, np.arange(n_cells)] = 1.0
        indicators.append(m)
    return Cells(codes, n_cells, tuple(indicators))
