"""Every materialised person scored and explained once per (model version, materialisation).

Why: a score only changes when the model or the features do, so contributions are computed
once (exactly, per tree and decision pattern: `training.contributions`) and every request
afterwards is a lookup. Risk lists are slices of a ranking made once per region and
district; reason sentences are rendered per distinct (feature, value), not per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from serving.explain import TOP_REASONS, Scored, explain_row, sentence
from serving.interventions import InterventionCatalogue
from training.contributions import exact_contributions
from training.model import RiskModel, assign_tiers, sigmoid, to_matrix

NO_REASON = -1
EXPLAINED_CACHE = 2_048  # ~25-45 KB each: at most ~100 MB per worker


@dataclass(frozen=True)
class ScoreBook:
    model_version: str
    materialization: str  # what the online store's current materialisation was
    person_ids: np.ndarray  # (n,) object
    values: np.ndarray  # (n, f) model inputs, float64, NaN for missing
    probability: np.ndarray  # (n,)
    tier: np.ndarray  # (n,) object
    raw: np.ndarray  # (n,)
    contrib: np.ndarray  # (n, f + 1); the last column is the bias
    top: np.ndarray  # (n, TOP_REASONS) feature indices of the largest positive contributions
    as_of: np.ndarray  # (n,) object: the features' as-of date
    rank: np.ndarray  # (n,) row indices by probability desc, then person id
    units: dict[tuple[str, str | None], np.ndarray] = field(default_factory=dict)
    """Per (region, None) and (region, district): its rows in rank order."""
    index: dict[str, int] = field(default_factory=dict)
    method: str = ""
    explained: dict[int, Scored] = field(default_factory=dict, repr=False)
    """Explanations built on first read (a person read again costs a lookup)."""

    @property
    def size(self) -> int:
        return int(self.person_ids.size)

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

    def reasons(self, model: RiskModel, rows: np.ndarray) -> list[list[str]]:
        """Top reasons as sentences, each rendered once per distinct (feature, value)."""
        if rows.size == 0:
            return []
        top = self.top[rows]

        def cell(row: int, feature: int) -> tuple[int, float | None]:
            value = float(self.values[row, feature])
            return feature, None if np.isnan(value) else value  # NaN never equals itself

        cells = [
            [cell(int(r), int(f)) for f in fs if f != NO_REASON]
            for r, fs in zip(rows, top, strict=True)
        ]
        rendered = {
            c: sentence(model.features[c[0]], c[1]) for c in {c for row in cells for c in row}
        }
        out = [[rendered[c] for c in row] for row in cells]
        return out


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


def build_scorebook(
    model: RiskModel,
    vectors: pl.DataFrame,
    directory: pl.DataFrame,
    *,
    model_version: str,
    materialization: str,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreBook:
    """Score, explain and rank every vector (``directory``: person_id, region, district)."""
    matrix = to_matrix(vectors, model.feature_names)
    exact = exact_contributions(model.booster, matrix, progress=progress)
    n_features = len(model.features)
    probability = model.calibrate(sigmoid(exact.raw))
    ids = vectors["person_id"].cast(pl.String).to_numpy().astype(object)
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
    return ScoreBook(
        model_version=model_version,
        materialization=materialization,
        person_ids=ids,
        values=matrix,
        probability=probability,
        tier=assign_tiers(probability, model.tiers),
        raw=exact.raw,
        contrib=exact.contrib,
        top=top_positive(exact.contrib[:, :n_features]),
        as_of=as_of,
        rank=rank,
        units=units,
        index={str(pid): i for i, pid in enumerate(ids)},
        method=exact.method,
    )


def scored_from_book(
    book: ScoreBook, row: int, model: RiskModel, catalogue: InterventionCatalogue
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
            model, book.values[row], book.contrib[row], float(book.raw[row]), catalogue
        ),
    )
    book.explained[row] = scored
    return scored
