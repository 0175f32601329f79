"""Exact TreeSHAP contributions for many rows, computed once per tree and decision pattern.

Why: TreeSHAP (LightGBM ``pred_contrib``) costs far more than a prediction (about 1,500 rows/s
for 200 trees on 2 cores), and scoring a nation means millions of rows.

Path-dependent TreeSHAP is a sum over trees, and one tree's share depends on a row only
through the direction the row takes at each split *of that tree*. Rows that fall in the
same interval between that tree's thresholds, for every feature the tree splits on (zero and
missing kept apart, since LightGBM routes them by the node's missing type), get the same
share. A tree with 31 leaves sees only a few hundred distinct patterns in a million rows.

So, per tree: encode each row's pattern as one integer, find the distinct patterns, run
``pred_contrib`` for that single tree on one representative row per pattern, and add the
shares back to every row. Nothing is approximated: the result equals ``pred_contrib`` on
every row up to floating-point summation order (tests compare the two at 1e-9).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from riskcast.errors import InputError
from training.model import locked_predict

ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's kZeroThreshold (the float ``1e-35f``, as a double): values this close to zero
count as zero for missing=Zero."""
_NAN_CODE, _ZERO_CODE, _FIRST_INTERVAL = 0, 1, 2
_LOOKUP_LIMIT = 1 << 24  # dense ids through a lookup table below this many possible keys


@dataclass(frozen=True)
class TreeSplits:
    """The features one tree splits on, with that tree's sorted thresholds for each."""

    features: np.ndarray  # feature indices
    thresholds: list[np.ndarray]  # per feature; empty array for a categorical split


def _tree_splits(tree: dict[str, Any]) -> tuple[dict[int, set[float]], set[int]]:
    numeric: dict[int, set[float]] = {}
    categorical: set[int] = set()
    stack = [tree["tree_structure"]]
    while stack:
        node = stack.pop()
        if "split_feature" not in node:
            continue
        f = int(node["split_feature"])
        if node.get("decision_type") == "==":
            categorical.add(f)
        else:
            numeric.setdefault(f, set()).add(float(node["threshold"]))
        stack += [node["left_child"], node["right_child"]]
    return numeric, categorical


@dataclass(frozen=True)
class SplitCodec:
    """Global per-feature interval codes, and per tree a map from them to the tree's codes."""

    global_thresholds: dict[int, np.ndarray]
    categorical: frozenset[int]
    trees: list[TreeSplits]

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> SplitCodec:
        per_tree = [_tree_splits(t) for t in booster.dump_model()["tree_info"]]
        categorical = frozenset(f for _, cat in per_tree for f in cat)
        merged: dict[int, set[float]] = {}
        for numeric, _ in per_tree:
            for f, ths in numeric.items():
                merged.setdefault(f, set()).update(ths)
        global_thresholds = {
            f: np.array(sorted(v), dtype=np.float64)
            for f, v in merged.items()
            if f not in categorical
        }
        trees = []
        for numeric, cat in per_tree:
            feats = sorted(set(numeric) | cat)
            trees.append(
                TreeSplits(
                    features=np.array(feats, dtype=np.int64),
                    thresholds=[
                        np.zeros(0)
                        if f in categorical
                        else np.array(sorted(numeric[f]), dtype=np.float64)
                        for f in feats
                    ],
                )
            )
        return cls(global_thresholds, categorical, trees)

    def global_codes(self, matrix: np.ndarray) -> dict[int, np.ndarray]:
        """Per split feature, an int32 code per row: NaN, zero, or the interval it falls in."""
        codes: dict[int, np.ndarray] = {}
        for f in sorted({int(f) for t in self.trees for f in t.features}):
            column = matrix[:, f]
            if f in self.categorical:  # the value itself decides
                codes[f] = np.unique(column, return_inverse=True)[1].reshape(-1).astype(np.int32)
                continue
            # the number of thresholds strictly below x fixes `x <= t` for every threshold t
            found = np.searchsorted(self.global_thresholds[f], column, side="left")
            code = found.astype(np.int32) + _FIRST_INTERVAL
            code[np.abs(column) <= ZERO_THRESHOLD] = _ZERO_CODE
            code[np.isnan(column)] = _NAN_CODE
            codes[f] = code
        return codes

    def tree_lookup(self, tree: TreeSplits, feature_pos: int) -> np.ndarray | None:
        """Global code -> this tree's code (None: categorical, the global code is used as is)."""
        f = int(tree.features[feature_pos])
        if f in self.categorical:
            return None
        global_ths = self.global_thresholds[f]
        below = np.concatenate(
            [[0], np.searchsorted(tree.thresholds[feature_pos], global_ths, side="right")]
        )
        return np.concatenate([[_NAN_CODE, _ZERO_CODE], below + _FIRST_INTERVAL]).astype(np.int64)


def _dense_ids(keys: np.ndarray, key_space: int) -> tuple[np.ndarray, np.ndarray]:
    """(a representative row per distinct key, row -> distinct index)."""
    if key_space <= min(_LOOKUP_LIMIT, 4 * keys.size):  # else the table costs more than a sort
        present = np.zeros(key_space, dtype=np.int64)
        present[keys] = 1
        ids = np.cumsum(present) - 1
        inverse = ids[keys]
        # any row of a pattern represents it (all give the same share): with repeated
        # indices, fancy assignment keeps one of them, much faster than ufunc.at
        first = np.empty(int(present.sum()), dtype=np.int64)
        first[inverse] = np.arange(keys.size, dtype=np.int64)
        return first, inverse
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first.astype(np.int64), inverse.reshape(-1).astype(np.int64)


def _tree_keys(
    codec: SplitCodec, tree: TreeSplits, codes: dict[int, np.ndarray], n: int
) -> tuple[np.ndarray, int]:
    keys = np.zeros(n, dtype=np.int64)
    space = 1
    for pos, f in enumerate(tree.features):
        lookup = codec.tree_lookup(tree, pos)
        column = codes[int(f)].astype(np.int64)
        local = column if lookup is None else lookup[column]
        radix = int(column.max()) + 1 if lookup is None else int(lookup.max()) + 1
        if space * radix >= 1 << 62:  # too many combinations to pack: fall back to uniques
            _, local_keys = np.unique(np.stack([keys, local], axis=1), axis=0, return_inverse=True)
            keys, space = local_keys.reshape(-1).astype(np.int64), int(local_keys.max()) + 1
            continue
        keys = keys * radix + local
        space *= radix
    return keys, space


@dataclass(frozen=True)
class Contributions:
    raw: np.ndarray  # (n,) log-odds
    contrib: np.ndarray  # (n, n_features + 1); the last column is the bias
    patterns: int  # rows TreeSHAP ran on, summed over the trees
    method: str  # "per-tree patterns" or "direct" (too few repeats for patterns to pay)


DENSE_SHARE = 0.25
"""Above this share of distinct (tree, pattern) pairs per (tree, row) in a sample, patterns
would cost more than they save (each per-tree call costs several times a whole-model row)."""
SAMPLE_ROWS = 20_000
TREE_CHUNK_ROWS = 50_000
"""Rows per one-tree ``pred_contrib`` call (a tree costs ~1/200 of a model): short lock holds."""


def pattern_share(codec: SplitCodec, matrix: np.ndarray) -> float:
    """Distinct patterns per (tree, row) on a sample: low when the population repeats itself."""
    sample = matrix[:SAMPLE_ROWS]
    if sample.shape[0] == 0 or not codec.trees:
        return 0.0
    codes = codec.global_codes(sample)
    distinct = 0
    for tree in codec.trees:
        keys, space = _tree_keys(codec, tree, codes, sample.shape[0])
        distinct += _dense_ids(keys, space)[0].size
    return float(distinct / (sample.shape[0] * len(codec.trees)))


def exact_contributions(
    booster: lgb.Booster,
    matrix: np.ndarray,
    *,
    num_threads: int = 0,
    progress: Callable[[int, int], None] | None = None,
    max_share: float | None = None,
) -> Contributions:
    """``pred_contrib`` for every row of ``matrix``, one TreeSHAP call per tree and pattern.

    Every LightGBM call holds `training.model.LIGHTGBM_LOCK`: LightGBM keeps the iteration
    range of the last call in the booster and ``pred_contrib`` is not thread safe, so a
    service scoring requests while its score book is built must not overlap calls."""
    if booster.num_model_per_iteration() != 1:
        raise InputError(
            "exact contributions need one tree per iteration (a binary or regression model), "
            f"this booster has {booster.num_model_per_iteration()}"
        )
    n, n_features = matrix.shape
    if n == 0:  # LightGBM refuses empty input
        return Contributions(np.zeros(0), np.zeros((0, n_features + 1)), 0, "direct")
    raw = locked_predict(booster, matrix, raw_score=True, num_threads=num_threads)
    raw = raw.astype(np.float64)
    codec = SplitCodec.from_booster(booster)
    if pattern_share(codec, matrix) > (DENSE_SHARE if max_share is None else max_share):
        contrib = np.asarray(
            locked_predict(booster, matrix, pred_contrib=True, num_threads=num_threads),
            dtype=np.float64,
        ).reshape(n, n_features + 1)
        if progress is not None:
            progress(1, 1)
        return Contributions(raw, contrib, n * len(codec.trees), "direct")
    # accumulate feature-major: each feature's column is contiguous while trees add to it
    by_feature = np.zeros((n_features + 1, n), dtype=np.float64)
    codes = codec.global_codes(matrix)
    patterns = 0
    for t, tree in enumerate(codec.trees):
        keys, space = _tree_keys(codec, tree, codes, n)
        first, inverse = _dense_ids(keys, space)
        patterns += first.size
        share = np.asarray(
            locked_predict(
                booster,
                matrix[first],
                chunk_rows=TREE_CHUNK_ROWS,
                pred_contrib=True,
                start_iteration=t,
                num_iteration=1,
                num_threads=num_threads,
            ),
            dtype=np.float64,
        ).reshape(first.size, n_features + 1)
        share_by_feature = np.ascontiguousarray(share.T)
        for f in tree.features:
            by_feature[f] += share_by_feature[f].take(inverse)
        by_feature[-1] += share[0, -1]  # a tree's expected value: the same for every row
        if progress is not None:
            progress(t + 1, len(codec.trees))
    return Contributions(raw, by_feature.T, patterns, "per-tree patterns")
