"""One person's decision history with its explanation: the export for a person's right to an
explanation (`riskcast evidence-pack VERSION --person ID`).

`person_decisions` reads the person's rows of the service's decisions table (their own rows
only, by id); `explain_person` scores the person's current vector in the online store with the
pack's version through the service's explanation code (`serving.explain.score_vectors`), or
says why the version does not score them (outside its population of validity). `person_export`
(pure) makes the document: what was decided, by whom and on which score, and what the score
rests on, in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa

from riskcast.errors import NotFoundError
from serving.db import decisions
from serving.evidence.model import Cell, Document, Section, table
from serving.explain import Scored, score_vectors
from serving.interventions import InterventionCatalogue

DECISION_COLUMNS = [
    "recorded_at",
    "action",
    "measure",
    "override",
    "reason",
    "officer",
    "region",
    "district",
    "model_version",
    "probability",
    "tier",
]


@dataclass(frozen=True)
class PersonRecord:
    """What is on record about one person for the export."""

    person_id: str
    decisions: list[dict[str, Any]]
    scored: Scored | None
    outside: str | None  # why the version does not score them (None: scored, or no vector)
    in_store: bool


def person_decisions(engine: sa.Engine, person_id: str) -> list[dict[str, Any]]:
    """Every decision about ``person_id``, oldest first (only that person's rows)."""
    query = sa.select(decisions).where(decisions.c.person_id == person_id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query.order_by(decisions.c.id)).mappings()]


def explain_person(
    model: Any, vectors: pl.DataFrame, catalogue: InterventionCatalogue, currency: str | None
) -> tuple[Scored | None, str | None]:
    """The person's score and explanation by ``model`` from their vector (one row), or the
    reason the model's population of validity leaves them out."""
    from features.frames.scope import outside_reasons

    if vectors.is_empty():
        return None, None
    scope = model.scope
    if scope is not None:
        why = outside_reasons(vectors, scope).to_list()[0]
        if why is not None:
            return None, str(why)
    return score_vectors(model, vectors, catalogue, currency)[0], None


def gather_person(
    person_id: str,
    *,
    engine: sa.Engine,
    vectors: pl.DataFrame,
    model: Any,
    catalogue: InterventionCatalogue,
    currency: str | None,
) -> PersonRecord:
    """The record of ``person_id``; a person with neither a decision nor a vector is unknown
    (`NotFoundError` naming the id)."""
    rows = person_decisions(engine, person_id)
    mine = (
        vectors.filter(pl.col("person_id") == person_id)
        if "person_id" in vectors.columns
        else vectors
    )
    if not rows and mine.is_empty():
        raise NotFoundError(
            f"person {person_id!r}: no decision about them is recorded and the online store "
            "holds no vector of theirs"
        )
    scored, outside = explain_person(model, mine.head(1), catalogue, currency)
    return PersonRecord(person_id, rows, scored, outside, not mine.is_empty())


def decision_rows(record: PersonRecord, catalogue: InterventionCatalogue) -> list[dict[str, Cell]]:
    rows: list[dict[str, Cell]] = []
    for d in record.decisions:
        row: dict[str, Cell] = {
            k: d.get(k) for k in DECISION_COLUMNS if k not in ("measure", "recorded_at")
        }
        row["recorded_at"] = d["recorded_at"].isoformat(timespec="seconds")
        row["measure"] = catalogue.name_of(d.get("measure_id")) or d.get("measure_id")
        rows.append(row)
    return rows


def person_export(
    record: PersonRecord,
    *,
    model_name: str,
    version: str,
    catalogue: InterventionCatalogue,
    generated_at: str,
) -> Document:
    s = record.scored
    explanation: list[Section] = []
    if s is not None:
        e = s.explanation
        explanation = [
            Section(
                title="The score and what it rests on",
                paragraphs=[
                    f"{model_name} v{version}, on the register facts as of {s.features_as_of}: "
                    f"a probability of {s.probability:.3f} (tier {s.tier}) of a new criminal "
                    "case being registered within the horizon. The score supports an officer; "
                    "it decides nothing.",
                    "The reasons are the model's (TreeSHAP contributions to its score), not "
                    "causes, and not a judgement of the person.",
                ],
                items=[r.sentence for r in e.top_reasons],
                tables=[
                    table(
                        "by area of life (contribution to the score, log-odds)",
                        [d.model_dump() for d in e.domains],
                    ),
                    table(
                        "needs that raise the score",
                        [
                            {"fact": r.sentence, "contribution": r.contribution}
                            for r in e.dynamic_needs
                        ],
                    ),
                    table(
                        "support that could be offered",
                        [
                            {"measure": m.name, "provider": m.provider, "facts": "; ".join(m.facts)}
                            for m in e.support
                        ],
                    ),
                ],
            )
        ]
    elif record.outside is not None:
        explanation = [
            Section(
                title="The score and what it rests on",
                paragraphs=[
                    f"{model_name} v{version} does not score this person: {record.outside}."
                ],
            )
        ]
    else:
        none = "The online store holds no current register facts of this person: no score."
        explanation = [Section(title="The score and what it rests on", paragraphs=[none])]
    sections = [
        Section(
            title="Whose record",
            facts={"person": record.person_id, "decisions on record": len(record.decisions)},
            paragraphs=["This export holds this person's data only."],
        ),
        Section(
            title="Decisions",
            paragraphs=[
                "Every decision an officer recorded about this person, oldest first, with the "
                "score shown at the time (none when scoring was stopped). A disagreement with "
                "the score is an override and carries the officer's reason."
            ],
            tables=[table("decisions", decision_rows(record, catalogue), DECISION_COLUMNS)],
        ),
        *explanation,
        Section(
            title="How to contest",
            items=[
                "Ask the deployer for a review: an auditor who did not take the decision "
                "reviews it with the access log of every read of this record.",
                "A decision is corrected by recording a new one; nothing is decided by the model.",
            ],
        ),
    ]
    return Document(
        kind="person_export",
        title=f"Decision history and explanation: person {record.person_id}",
        model=model_name,
        version=version,
        generated_at=generated_at,
        sections=sections,
    )
