"""Scores and risk lists: the one place that decides, per person id, what the service may answer.

Every path that shows a score (the API's scores, risk lists and decisions, and the pages) goes
through here, so that three rules hold everywhere:

- only the champion's population of validity is scored (`features.frames.scope`): a person
  outside it gets ``outside_population`` and the reason, never a number that means nothing;
- an officer cannot tell an id of another region from an id that does not exist: both are
  "not found in your regions" (the access log keeps the difference for auditors);
- scores come from the score book when it matches the champion and the materialisation, else
  they are computed directly (the same numbers either way).

`score_persons` and `serving.services.lists.risk_list` are what `POST /v1/scores`,
`GET /v1/risk-lists` and the officers' pages call: they check the purpose and the regions,
count what was served and append the read to the access log they are given (the pages hand
them one that waits for the status the page answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from features.frames.scope import outside_reasons
from riskcast.errors import StoreError
from serving.explain import Scored, ranked_with_reasons, score_vectors
from serving.schemas import PersonScore, ScoreResponse
from serving.scorebook import ScoreBook, scored_from_book
from serving.services.policy import check_purpose
from serving.state import AccessLogWriter, LoadedModel, ServiceState
from serving.users import User

NOT_FOUND = "no person with this id in the register of your regions"
NO_VECTOR = "no feature vector online for this person (not materialised)"
RANKED_SCHEMA: dict[str, pl.DataType] = {
    "rank": pl.Int64(),
    "person_id": pl.String(),
    "probability": pl.Float64(),
    "tier": pl.String(),
    "top_reasons": pl.List(pl.String()),
}


@dataclass
class Answers:
    """Per asked id, exactly one of: scored, outside (why), unknown (message)."""

    scored: dict[str, Scored] = field(default_factory=dict)
    outside: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)
    other_regions: list[str] = field(default_factory=list)
    """Ids that exist in another region (answered as unknown; logged as refused)."""

    @property
    def read(self) -> list[str]:
        """The persons something was learnt about (scored or outside the population)."""
        return [*self.scored, *self.outside]


def current_book(state: ServiceState, champion: LoadedModel) -> ScoreBook | None:
    book = state.book()
    return book if book is not None and book.model_version == champion.version else None


def answer_ids(
    state: ServiceState, champion: LoadedModel, user: User | None, ids: list[str]
) -> Answers:
    """Score the asked ids an officer may see (``user`` None: no region rule)."""
    assert state.directory is not None and state.store is not None  # checked by Champion
    answers = Answers()
    units = state.directory.units(ids)
    mine = []
    for pid in ids:
        unit = units.get(pid)
        if unit is None:
            answers.unknown[pid] = NOT_FOUND
        elif user is not None and unit[0] not in user.regions:
            answers.unknown[pid] = NOT_FOUND
            answers.other_regions.append(pid)
        else:
            mine.append(pid)
    book = current_book(state, champion)
    rest = mine
    if book is not None:
        rows = book.rows(mine)
        for pid, row in rows.items():
            answers.scored[pid] = scored_from_book(
                book, row, champion.model, state.catalogue, state.settings.currency
            )
        rest = [pid for pid in mine if pid not in rows]
    if rest:  # no book, or persons the book does not hold (outside, or a newer vector)
        vectors = state.store.get_vectors(rest)
        reasons = outside_reasons(vectors, champion.scope)
        for pid, why in zip(vectors["person_id"].to_list(), reasons.to_list(), strict=True):
            if why is not None:
                answers.outside[str(pid)] = why
        inside = vectors.filter(reasons.is_null())
        for s in score_vectors(champion.model, inside, state.catalogue, state.settings.currency):
            answers.scored[s.person_id] = s
    for pid in mine:
        if pid not in answers.scored and pid not in answers.outside:
            answers.unknown[pid] = NO_VECTOR
    return answers


@dataclass(frozen=True)
class UnitRanking:
    """One page of a unit's risk list, and the unit's counts in and out of the population."""

    page: pl.DataFrame  # RANKED_SCHEMA
    total: int  # listed (after the tier filter, within capacity)
    in_population: int
    outside_population: int


def rank_unit(
    state: ServiceState,
    champion: LoadedModel,
    region: str,
    district: str | None,
    tiers: list[str] | None,
    *,
    capacity: int,
    offset: int,
    limit: int,
    exclude: set[str] | None = None,
) -> UnitRanking:
    """The unit's persons inside the population, ranked by probability, cut to capacity;
    ``exclude`` (persons left out before the cut, e.g. those with a decision already)."""
    assert state.directory is not None and state.store is not None
    currency = state.settings.currency
    book = current_book(state, champion)
    if book is not None:
        inside, outside = book.counts(region, district)
        listed = book.ranked(region, district, tiers)
        if exclude:
            listed = listed[~np.isin(book.person_ids[listed].astype(str), list(exclude))]
        listed = listed[:capacity]
        chosen = listed[offset : offset + limit]
        page = pl.DataFrame(
            {
                "rank": np.arange(offset + 1, offset + 1 + chosen.size),
                "person_id": book.person_ids[chosen].astype(str),
                "probability": book.probability[chosen],
                "tier": book.tier[chosen].astype(str),
                "top_reasons": book.reasons(champion.model, chosen, currency),
            },
            schema=RANKED_SCHEMA,
        )
        return UnitRanking(page, int(listed.size), inside, outside)
    members = state.directory.members(region, district)
    vectors = state.store.get_vectors(members)
    reasons = outside_reasons(vectors, champion.scope)
    vectors = vectors.filter(reasons.is_null())
    ranked = ranked_with_reasons(champion.model, vectors, currency)
    inside = ranked.height
    if tiers:
        ranked = ranked.filter(ranked["tier"].is_in(tiers))
    if exclude:
        ranked = ranked.filter(~ranked["person_id"].is_in(list(exclude)))
    ranked = ranked.head(capacity).with_row_index("rank", offset=1)
    page = ranked.slice(offset, limit).select(pl.col(c).cast(t) for c, t in RANKED_SCHEMA.items())
    return UnitRanking(page, ranked.height, inside, int(reasons.is_not_null().sum()))


EMPTY_STORE = (
    "the online feature store holds no materialised feature vectors, so no list can be "
    "ranked (this is not an empty list: nobody has been scored); materialise the features "
    "(`riskcast features materialize --as-of DATE`)"
)


def check_materialised(state: ServiceState) -> None:
    """A 503 (`StoreError`) when the online store holds no materialisation."""
    assert state.store is not None
    if state.store.current() is None:
        raise StoreError(EMPTY_STORE)


def score_persons(
    state: ServiceState,
    champion: LoadedModel,
    user: User,
    access: AccessLogWriter,
    ids: list[str],
    purpose: str | None,
    purpose_loc: Sequence[str | int] = ("body", "purpose"),
) -> ScoreResponse:
    """Calibrated probability, tier and explanation per id inside the model's population;
    ``outside_population`` (with why) outside it; ``unknown`` for ids not in the register of
    the officer's regions (another region's ids are logged as a refused read, status 403)."""
    purpose = check_purpose(state, purpose, purpose_loc)
    check_materialised(state)  # no vectors at all: say so, not "unknown" for everyone
    ids = list(dict.fromkeys(ids))
    answers = answer_ids(state, champion, user, ids)
    params = {
        "ids": len(ids),
        "outside_population": len(answers.outside),
        "unknown": len(answers.unknown),
    }
    if answers.other_regions:  # answered as unknown; auditors see the attempt as refused
        access.append(
            actor=user.name,
            role=user.role.value,
            purpose=purpose,
            action="scores",
            persons=answers.other_regions,
            params={**params, "refused": "outside the officer's regions, answered as unknown"},
            model_version=champion.version,
            status=403,
        )
    results: list[PersonScore] = []
    for pid in ids:
        s = answers.scored.get(pid)
        if s is not None:
            results.append(
                PersonScore(
                    person_id=pid,
                    status="scored",
                    probability=s.probability,
                    tier=s.tier,
                    model_version=champion.version,
                    features_as_of=s.features_as_of,
                    explanation=s.explanation,
                )
            )
        elif pid in answers.outside:
            results.append(
                PersonScore(
                    person_id=pid,
                    status="outside_population",
                    message=answers.outside[pid],
                    model_version=champion.version,
                )
            )
        else:
            results.append(
                PersonScore(person_id=pid, status="unknown", message=answers.unknown[pid])
            )
    if state.metrics is not None:
        state.metrics.scores_served(len(answers.scored), "scores")
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=purpose,
        action="scores",
        persons=answers.read,
        params=params,
        model_version=champion.version,
        status=200,
    )
    return ScoreResponse(model_version=champion.version, purpose=purpose, results=results)
