"""Explanations: TreeSHAP contributions grouped by RNR domain, readable reasons, support.

Contributions come from `RiskModel.predict` (LightGBM ``pred_contrib``): per feature plus the
bias, they add up to the raw score. Static history is context; only dynamic needs with a
positive contribution lead to support measures from the intervention catalogue.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from serving.interventions import InterventionCatalogue
from serving.schemas import DomainContribution, Explanation, Reason, SupportMeasure
from training.model import FeatureInfo, RiskModel

CONTRIB = "contrib_"
BIAS = "contrib_bias"
TOP_REASONS = 3
_VALUE_FIRST = re.compile(
    r"^(days|1 if|among|total|highest|mean|cases per year|number|age|length|completed|"
    r"share|education)\b"
)


def _readable(description: str) -> str:
    text = description.split(";")[0].strip()
    text = text.replace("the last 365 days", "the last 12 months")
    return text.replace("the last 90 days", "the last 3 months")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def sentence(info: FeatureInfo, value: float | None) -> str:
    """A reason in words, citing the register fact: "3 public-order ... in the last 12 months"."""
    text = _readable(info.description)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"Not recorded: {text}"
    if text.startswith("1 if "):
        condition = text.removeprefix("1 if ")
        return ("Yes: " if value >= 0.5 else "No: ") + condition
    if _VALUE_FIRST.match(text) or not float(value).is_integer():
        return f"{text[0].upper()}{text[1:]}: {_number(value)}"
    return f"{_number(value)} {text}"


@dataclass(frozen=True)
class Scored:
    person_id: str
    probability: float
    tier: str
    raw_score: float
    features_as_of: str | None
    explanation: Explanation


def _value(row: dict[str, Any], name: str) -> float | None:
    raw = row.get(name)
    if raw is None:
        return None
    value = float(raw)
    return None if math.isnan(value) else value


def _reason(info: FeatureInfo, row: dict[str, Any], contribution: float) -> Reason:
    value = _value(row, info.name)
    return Reason(
        feature=info.name,
        domain=info.domain,
        kind=info.kind,
        value=value,
        contribution=contribution,
        sentence=sentence(info, value),
    )


def explain_one(
    model: RiskModel,
    vector: dict[str, Any],
    prediction: dict[str, Any],
    catalogue: InterventionCatalogue,
) -> Explanation:
    contributions = {f.name: float(prediction[CONTRIB + f.name]) for f in model.features}
    domains: dict[str, DomainContribution] = {}
    for f in model.features:
        c = contributions[f.name]
        d = domains.setdefault(
            f.domain, DomainContribution(domain=f.domain, contribution=0.0, static=0.0, dynamic=0.0)
        )
        d.contribution += c
        if f.kind == "dynamic":
            d.dynamic += c
        else:
            d.static += c
    ranked = sorted(model.features, key=lambda f: -contributions[f.name])
    raising = [f for f in ranked if contributions[f.name] > 0]
    top = [_reason(f, vector, contributions[f.name]) for f in raising[:TOP_REASONS]]
    static = [_reason(f, vector, contributions[f.name]) for f in raising if f.kind != "dynamic"]
    needs = [f for f in raising if f.kind == "dynamic"]
    support: dict[str, SupportMeasure] = {}
    for f in needs:
        for m in catalogue.for_need(f):
            entry = support.setdefault(
                m.id,
                SupportMeasure(
                    id=m.id, name=m.name, provider=m.provider, description=m.description, needs=[]
                ),
            )
            entry.needs.append(f.name)
    return Explanation(
        raw_score=float(prediction["raw_score"]),
        bias=float(prediction[BIAS]),
        domains=sorted(domains.values(), key=lambda d: -d.contribution),
        top_reasons=top,
        static_history=static[:5],
        dynamic_needs=[_reason(f, vector, contributions[f.name]) for f in needs],
        support=list(support.values()),
        contributions=contributions,
    )


def score_vectors(
    model: RiskModel, vectors: pl.DataFrame, catalogue: InterventionCatalogue
) -> list[Scored]:
    """Probability, tier and explanation for each vector (one row per person)."""
    if vectors.is_empty():
        return []
    prediction = model.predict(vectors)
    out: list[Scored] = []
    for vector, pred in zip(
        vectors.iter_rows(named=True), prediction.iter_rows(named=True), strict=True
    ):
        as_of = vector.get("as_of")
        out.append(
            Scored(
                person_id=str(vector["person_id"]),
                probability=float(pred["probability"]),
                tier=str(pred["tier"]),
                raw_score=float(pred["raw_score"]),
                features_as_of=None if as_of is None else str(as_of),
                explanation=explain_one(model, vector, pred, catalogue),
            )
        )
    return out


def ranked_with_reasons(model: RiskModel, vectors: pl.DataFrame) -> pl.DataFrame:
    """person_id, probability, tier and the top reasons (sentences), by probability desc."""
    schema: dict[str, pl.DataType] = {
        "person_id": pl.String(),
        "probability": pl.Float64(),
        "tier": pl.String(),
        "top_reasons": pl.List(pl.String()),
    }
    if vectors.is_empty():
        return pl.DataFrame(schema=schema)
    prediction = model.predict(vectors)
    contrib = prediction.select([CONTRIB + f.name for f in model.features]).to_numpy()
    values = vectors.select([f.name for f in model.features]).cast(pl.Float64).to_numpy()
    order = np.argsort(-contrib, axis=1)[:, :TOP_REASONS]
    reasons: list[list[str]] = []
    for i in range(contrib.shape[0]):
        reasons.append(
            [
                sentence(model.features[j], float(values[i, j]))
                for j in order[i]
                if contrib[i, j] > 0
            ]
        )
    frame = pl.DataFrame(
        {
            "person_id": vectors["person_id"],
            "probability": prediction["probability"],
            "tier": prediction["tier"],
            "top_reasons": reasons,
        },
        schema=schema,
    )
    return frame.sort(["probability", "person_id"], descending=[True, False])
