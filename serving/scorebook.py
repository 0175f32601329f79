"""Every materialised person of the model's population scored and ranked once per (model
version, materialisation); explained when first shown.

Why: a score only changes when the model or the features do, so probabilities, tiers and the
rankings per region and district are computed once, and every request afterwards is a lookup
or a slice. Explanations (exact TreeSHAP contributions) cost about 30 times a score, and a list
shows only a unit's capacity: they are computed for the rows a list or a score request actually
shows, exactly (`training.contributions.exact_contributions`, which equals LightGBM's
``pred_contrib``), and kept for the next read. Reason sentences are rendered per distinct
(feature, value), not per row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from features.frames.partition import partitions_for, person_bucket
from features.frames.scope import PopulationScope, split_scope
from riskcast import cluster
from serving.explain import TOP_REASONS, Scored, explain_row, plain_date, sentence
from serving.interventions import InterventionCatalogue
from training.contributions import exact_contributions
from training.model import (
    RiskModel,
    assign_tiers,
    locked_predict,
    sigmoid,
    to_matrix,
)

NO_REASON = -1
EXPLAINED_CACHE = 2_048  # ~25-45 KB each: at most ~100 MB per worker
EXPLAIN_FIRST = 100
"""Per region and district, the first persons (the default list capacity) explained when the
book is built, in one batch: the rest are explained when first shown."""
LIST_PATTERN_SHARE = 0.6
"""Unit lists' first persons repeat less than a population (39 % distinct patterns per tree on
the 1M benchmark's lists), yet the per-tree-pattern method still beat one direct call there
(1.26 s against 1.77 s for 3,215 rows)."""
PATTERN_BATCH = 20_000
"""Above this many rows at once, contributions go through the per-tree-pattern method."""
CONTRIB_CACHE = 200_000
"""Rows whose contributions are kept (about 0.5 KB each: at most ~100 MB per worker)."""


@dataclass(frozen=True)
class ScoreBook:
    model_version: str
    materialization: str  # what the online store's current materialisation was
    person_ids: np.ndarray  # (n,) object
    values: np.ndarray  # (n, f) model inputs, float64, NaN for missing
    probability: np.ndarray  # (n,)
    tier: np.ndarray  # (n,) object
    raw: np.ndarray  # (n,)
    booster: lgb.Booster  # the model's booster, for contributions computed on first show
    as_of: np.ndarray  # (n,) object: the features' as-of date
    rank: np.ndarray  # (n,) row indices by probability desc, then person id
    units: dict[tuple[str, str | None], np.ndarray] = field(default_factory=dict)
    """Per (region, None) and (region, district): its rows in rank order."""
    index: dict[str, int] = field(default_factory=dict)
    method: str = ""
    outside: int = 0
    """Materialised persons outside the model's population: never scored, never listed."""
    outside_units: dict[tuple[str, str | None], int] = field(default_factory=dict)
    """Per (region, None) and (region, district): how many of its persons are outside."""
    explained: dict[int, Scored] = field(default_factory=dict, repr=False)
    """Explanations built on first read (a person read again costs a lookup)."""
    pinned: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    """Contributions (f + 1 values, the last the bias) of each unit's first persons, computed
    when the book was built; never evicted."""
    known: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    """Contributions of other rows shown so far (a bounded cache)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def size(self) -> int:
        return int(self.person_ids.size)

    def counts(self, region: str, district: str | None) -> tuple[int, int]:
        """(inside, outside) the model's population, for a unit."""
        inside = self.units.get((region, district), np.zeros(0, dtype=np.int64)).size
        return int(inside), int(self.outside_units.get((region, district), 0))

    def rows(self, ids: Sequence[str]) -> dict[str, int]:
        return {pid: self.index[pid] for pid in ids if pid in self.index}

    def ranked(
        self, region: str, district: str | None, tiers: Sequence[str] | None = None
    ) -> np.ndarray:
        """The unit's rows in rank order, kept to ``tiers`` if given."""
        rows = self.units.get((region, district), np.zeros(0, dtype=np.int64))
        if tiers:
            rows = rows[np.isin(self.tier[rows], list(tiers))]
        return rows

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """Exact contributions of ``rows`` ((len, f + 1), the last column the bias), computed
        for the rows not shown before and kept. Safe under concurrent readers: each call reads
        what it needs once (``.get``) and answers from its own copies, so an eviction by
        another request never costs it a row; the build-time rows (`pinned`) are never evicted."""
        rows = np.asarray(rows, dtype=np.int64)
        width = self.values.shape[1] + 1
        have: dict[int, np.ndarray] = {}
        for r in rows.tolist():
            c = self.pinned.get(r)
            if c is None:
                c = self.known.get(r)
            if c is not None:
                have[r] = c
        missing = np.unique(np.array([r for r in rows.tolist() if r not in have], dtype=np.int64))
        if missing.size:
            fresh = _exact(self.booster, self.values[missing])
            computed = dict(zip(missing.tolist(), fresh, strict=True))
            have.update(computed)
            with self._lock:
                if len(self.known) + missing.size > CONTRIB_CACHE:
                    self.known.clear()  # the oldest reads go; ours are in `have`
                self.known.update(computed)
        out = np.empty((rows.size, width), dtype=np.float64)
        for i, r in enumerate(rows.tolist()):
            out[i] = have[r]
        return out

    def top(self, rows: np.ndarray) -> np.ndarray:
        """Per row, the feature indices of the largest positive contributions."""
        n_features = self.values.shape[1]
        return top_positive(self.contributions(rows)[:, :n_features])

    @property
    def base_rate(self) -> float | None:
        """The mean probability over every person the book scored (the served population)."""
        return float(self.probability.mean()) if self.size else None

    def tier_shares(self) -> dict[str, float]:
        """Per tier, its share of the served population."""
        if not self.size:
            return {}
        names, counts = np.unique(self.tier.astype(str), return_counts=True)
        return {str(n): float(c) / self.size for n, c in zip(names, counts, strict=True)}

    def reasons(
        self, model: RiskModel, rows: np.ndarray, currency: str | None = None
    ) -> list[list[str]]:
        """Top reasons as sentences, each rendered once per distinct (feature, value, date)."""
        if rows.size == 0:
            return []
        top = self.top(rows)

        def cell(row: int, feature: int) -> tuple[int, float | None, str | None]:
            value = float(self.values[row, feature])
            as_of = plain_date(self.as_of[row])
            return feature, None if np.isnan(value) else value, as_of  # NaN never equals itself

        cells = [
            [cell(int(r), int(f)) for f in fs if f != NO_REASON]
            for r, fs in zip(rows, top, strict=True)
        ]
        rendered = {
            c: sentence(model.features[c[0]], c[1], c[2], currency)
            for c in {c for row in cells for c in row}
        }
        out = [[rendered[c] for c in row] for row in cells]
        return out


def _exact(booster: lgb.Booster, matrix: np.ndarray) -> np.ndarray:
    """Exact contributions: LightGBM's ``pred_contrib`` itself for what a page shows (one
    thread for a single person), the
    per-tree-pattern method (`exact_contributions`, equal to ``pred_contrib``) for batches
    large enough that patterns repeat."""
    n = matrix.shape[0]
    if n > PATTERN_BATCH:
        return exact_contributions(booster, matrix).contrib
    threads = 1 if n == 1 else 0  # pred_contrib costs ~1 ms a row: two rows already pay
    out = locked_predict(booster, matrix, pred_contrib=True, num_threads=threads)
    return np.asarray(out, dtype=np.float64).reshape(n, matrix.shape[1] + 1)


def top_positive(contrib: np.ndarray, k: int = TOP_REASONS) -> np.ndarray:
    """Per row, the indices of the ``k`` largest positive contributions (``-1`` pads)."""
    n, f = contrib.shape
    k = min(k, f)
    if n == 0 or k == 0:
        return np.full((n, k), NO_REASON, dtype=np.int64)
    part = np.argpartition(-contrib, k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(contrib, part, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    positive = np.take_along_axis(contrib, top, axis=1) > 0
    return np.where(positive, top, NO_REASON).astype(np.int64)


def per_person(
    ids: np.ndarray,
    matrix: np.ndarray,
    fn: Callable[..., np.ndarray],
    *,
    name: str,
    local: dict[str, Any] | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """``fn(matrix, **kwargs)``, row for row: here, or inside a Dask session
    (`riskcast.cluster`) per partition of persons (`features.frames.partition.person_bucket`
    of ``ids``) on the workers, gathered back into the rows' order. ``fn`` is row-wise (each
    row's result depends on that row only), so both give the same values; ``local`` are the
    arguments only this process can take (a progress callback)."""
    session = cluster.current()
    if session is None or matrix.shape[0] == 0:
        return fn(matrix, **kwargs, **(local or {}))
    buckets = person_bucket(pl.Series(ids.astype(str)), partitions_for(session))
    rows = [np.flatnonzero(buckets == k) for k in np.unique(buckets)]
    done = session.run(fn, [matrix[r] for r in rows], name=name, **kwargs)
    out = np.empty((matrix.shape[0], *done[0].shape[1:]), dtype=np.float64)
    for r, part in zip(rows, done, strict=True):
        out[r] = part
    return out


def _raw_scores(matrix: np.ndarray, *, booster: lgb.Booster) -> np.ndarray:
    return np.asarray(locked_predict(booster, matrix, raw_score=True), dtype=np.float64)


def _list_contributions(
    matrix: np.ndarray,
    *,
    booster: lgb.Booster,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Contributions of the rows the lists show first (their patterns repeat less)."""
    return exact_contributions(
        booster, matrix, progress=progress, max_share=LIST_PATTERN_SHARE
    ).contrib


def build_scorebook(
    model: RiskModel,
    vectors: pl.DataFrame,
    directory: pl.DataFrame,
    *,
    model_version: str,
    materialization: str,
    scope: PopulationScope | None = None,
    outside: pl.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
    explain_first: int = EXPLAIN_FIRST,
) -> ScoreBook:
    """Score and rank every vector inside ``scope`` (``directory``: person_id, region,
    district), and explain each unit's first ``explain_first`` persons; the persons outside
    are only counted, per unit.

    ``outside``: the ``person_id`` of persons a caller already found outside the model's
    population (it then passes only the vectors inside and no ``scope``): a nation's store
    is read narrow first (`features.online.store.SqlOnlineStore.get_columns`), so the vectors
    of the persons the model may not score are never loaded."""
    if scope is not None:
        vectors, found_outside = split_scope(vectors, scope)
        outside = found_outside if outside is None else pl.concat([outside, found_outside])
    outside_units: dict[tuple[str, str | None], int] = {}
    out_count = 0
    if outside is not None:
        out_ids = outside.select(pl.col("person_id").cast(pl.String))
        out_count = out_ids.height
        placed_out = out_ids.join(
            directory.select("person_id", "region", "district"), on="person_id", how="inner"
        )
        for region, n in placed_out.group_by("region").len().iter_rows():
            outside_units[(str(region), None)] = int(n)
        by_district = placed_out.filter(pl.col("district").is_not_null())
        for region, district, n in by_district.group_by("region", "district").len().iter_rows():
            outside_units[(str(region), str(district))] = int(n)
    matrix = to_matrix(vectors, model.feature_names)
    ids = vectors["person_id"].cast(pl.String).to_numpy().astype(object)
    raw = per_person(ids, matrix, _raw_scores, name="riskcast-score", booster=model.booster)
    if progress is not None:
        progress(matrix.shape[0], matrix.shape[0])
    probability = model.calibrate(sigmoid(raw))
    as_of = (
        vectors["as_of"].cast(pl.String).to_numpy().astype(object)
        if "as_of" in vectors.columns
        else np.full(ids.size, None, dtype=object)
    )
    ranking = (
        pl.DataFrame({"person_id": ids.astype(str), "p": probability})
        .with_row_index("row")
        .sort(["p", "person_id"], descending=[True, False])
    )
    rank = ranking["row"].to_numpy().astype(np.int64)
    placed = (
        ranking.select("row", "person_id")
        .join(
            directory.select("person_id", "region", "district"),
            on="person_id",
            how="left",
            maintain_order="left",  # the unit lists below rely on rank order
        )
        .filter(pl.col("region").is_not_null())
    )
    units: dict[tuple[str, str | None], np.ndarray] = {}
    for (region,), group in placed.group_by("region", maintain_order=True):
        units[(str(region), None)] = group["row"].to_numpy().astype(np.int64)
    for (region, district), group in placed.filter(pl.col("district").is_not_null()).group_by(
        "region", "district", maintain_order=True
    ):
        units[(str(region), str(district))] = group["row"].to_numpy().astype(np.int64)
    book = ScoreBook(
        model_version=model_version,
        materialization=materialization,
        person_ids=ids,
        values=matrix,
        probability=probability,
        tier=assign_tiers(probability, model.tiers),
        raw=raw,
        booster=model.booster,
        as_of=as_of,
        rank=rank,
        units=units,
        index={str(pid): i for i, pid in enumerate(ids)},
        method=f"scores for all; each unit's first {explain_first} explained, others when shown",
        outside=out_count,
        outside_units=outside_units,
    )
    if explain_first > 0 and units:  # what the lists show first: one batch, in the background
        shown = np.unique(np.concatenate([rows[:explain_first] for rows in units.values()]))
        fresh = per_person(
            ids[shown],
            matrix[shown],
            _list_contributions,
            name="riskcast-explain",
            local={"progress": progress},
            booster=model.booster,
        )
        book.pinned.update(zip(shown.tolist(), fresh, strict=True))
    return book


def scored_from_book(
    book: ScoreBook,
    row: int,
    model: RiskModel,
    catalogue: InterventionCatalogue,
    currency: str | None = None,
) -> Scored:
    """The same `Scored` that `serving.explain.score_vectors` gives, read from the book."""
    cached = book.explained.get(row)
    if cached is not None:
        return cached
    if len(book.explained) >= EXPLAINED_CACHE:
        book.explained.clear()
    as_of = book.as_of[row]
    scored = Scored(
        person_id=str(book.person_ids[row]),
        probability=float(book.probability[row]),
        tier=str(book.tier[row]),
        raw_score=float(book.raw[row]),
        features_as_of=None if as_of is None else str(as_of),
        explanation=explain_row(
            model,
            book.values[row],
            book.contributions(np.array([row]))[0],
            float(book.raw[row]),
            catalogue,
            plain_date(as_of),
            currency,
        ),
    )
    book.explained[row] = scored
    return scored
