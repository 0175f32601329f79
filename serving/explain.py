"""Explanations: TreeSHAP contributions grouped by RNR domain, readable reasons, support.

Contributions come from `RiskModel.predict` (LightGBM ``pred_contrib``): per feature plus the
bias, they add up to the raw score. Static history is context; only dynamic needs with a
positive contribution lead to support measures from the intervention catalogue.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from serving.interventions import InterventionCatalogue
from serving.schemas import DomainContribution, Explanation, Reason, SupportMeasure
from training.model import FeatureInfo, RiskModel, to_matrix

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


def _value(values: np.ndarray, j: int) -> float | None:
    value = float(values[j])
    return None if math.isnan(value) else value


def _reason(model: RiskModel, j: int, values: np.ndarray, contrib: np.ndarray) -> Reason:
    info = model.features[j]
    value = _value(values, j)
    return Reason(
        feature=info.name,
        domain=info.domain,
        kind=info.kind,
        value=value,
        contribution=float(contrib[j]),
        sentence=sentence(info, value),
    )


def explain_row(
    model: RiskModel,
    values: np.ndarray,
    contrib: np.ndarray,
    raw_score: float,
    catalogue: InterventionCatalogue,
) -> Explanation:
    """One person's explanation from their inputs and contributions (bias last)."""
    features = model.features
    values_by_domain: dict[str, list[float]] = {}  # contribution, static, dynamic
    for j, f in enumerate(features):
        c = float(contrib[j])
        sums = values_by_domain.setdefault(f.domain, [0.0, 0.0, 0.0])
        sums[0] += c
        sums[2 if f.kind == "dynamic" else 1] += c
    domains = {
        name: DomainContribution(domain=name, contribution=s[0], static=s[1], dynamic=s[2])
        for name, s in values_by_domain.items()
    }
    order = sorted(range(len(features)), key=lambda j: -float(contrib[j]))
    raising = [j for j in order if contrib[j] > 0]
    needs = [j for j in raising if features[j].kind == "dynamic"]
    support: dict[str, SupportMeasure] = {}
    for j in needs:
        for m in catalogue.for_need(features[j]):
            entry = support.setdefault(
                m.id,
                SupportMeasure(
                    id=m.id, name=m.name, provider=m.provider, description=m.description, needs=[]
                ),
            )
            entry.needs.append(features[j].name)
    static = [j for j in raising if features[j].kind != "dynamic"][:5]
    return Explanation(
        raw_score=float(raw_score),
        bias=float(contrib[len(features)]),
        domains=sorted(domains.values(), key=lambda d: -d.contribution),
        top_reasons=[_reason(model, j, values, contrib) for j in raising[:TOP_REASONS]],
        static_history=[_reason(model, j, values, contrib) for j in static],
        dynamic_needs=[_reason(model, j, values, contrib) for j in needs],
        support=list(support.values()),
        contributions={f.name: float(contrib[j]) for j, f in enumerate(features)},
    )


def score_vectors(
    model: RiskModel, vectors: pl.DataFrame, catalogue: InterventionCatalogue
) -> list[Scored]:
    """Probability, tier and explanation for each vector (one row per person)."""
    if vectors.is_empty():
        return []
    matrix = to_matrix(vectors, model.feature_names)
    p = model.predict_matrix(matrix)
    ids = vectors["person_id"].cast(pl.String).to_list()
    as_of = vectors["as_of"].to_list() if "as_of" in vectors.columns else [None] * len(ids)
    return [
        Scored(
            person_id=ids[i],
            probability=float(p.probability[i]),
            tier=str(p.tier[i]),
            raw_score=float(p.raw[i]),
            features_as_of=None if as_of[i] is None else str(as_of[i]),
            explanation=explain_row(model, matrix[i], p.contrib[i], float(p.raw[i]), catalogue),
        )
        for i in range(len(ids))
    ]


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
