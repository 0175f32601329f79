"""Explanations: TreeSHAP contributions grouped by RNR domain, readable reasons, support.

Contributions come from `RiskModel.predict` (LightGBM ``pred_contrib``): per feature plus the
bias, they add up to the raw score. Static history is context; only dynamic needs that are
present in the register facts and material (`serving.interventions.Suggestions`) lead to
support measures from the intervention catalogue: at most a few, ranked by contribution.

Sentences are for people: given the features' date they say it instead of "T", and amounts
carry their currency (the register contract names none, so the service configures one:
``RISKCAST_CURRENCY``).
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


_AT_T = re.compile(r"\bat T\b")
_T = re.compile(r"\bT\b")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def plain_date(value: object) -> str | None:
    """The date part of a date or timestamp (``2025-06-30``), None for none."""
    if value is None:
        return None
    text = str(value)
    match = _DATE.match(text)
    return match.group(0) if match else text


def is_amount(info: FeatureInfo) -> bool:
    """Amounts of money: the features summing an amount column (their names say so)."""
    return "amount" in info.name


def _dated(text: str, as_of: str | None) -> str:
    """ "T" (the features' date) said as the date."""
    if as_of is None:
        return text
    return _T.sub(as_of, _AT_T.sub(f"on {as_of}", text))


def sentence(
    info: FeatureInfo,
    value: float | None,
    as_of: str | None = None,
    currency: str | None = None,
) -> str:
    """A reason in words, citing the register fact: "3 public-order ... in the last 12 months";
    with ``as_of`` the date is said instead of "T", with ``currency`` amounts carry it."""
    text = _dated(_readable(info.description), plain_date(as_of))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"Not recorded: {text}"
    if text.startswith("1 if "):
        condition = text.removeprefix("1 if ")
        return ("Yes: " if value >= 0.5 else "No: ") + condition
    if currency and is_amount(info):
        return f"{text[0].upper()}{text[1:]}: {value:,.2f} {currency}"
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


def _reason(
    model: RiskModel,
    j: int,
    values: np.ndarray,
    contrib: np.ndarray,
    as_of: str | None = None,
    currency: str | None = None,
) -> Reason:
    info = model.features[j]
    value = _value(values, j)
    return Reason(
        feature=info.name,
        domain=info.domain,
        kind=info.kind,
        value=value,
        contribution=float(contrib[j]),
        sentence=sentence(info, value, as_of, currency),
    )


def suggest_support(
    model: RiskModel,
    values: np.ndarray,
    contrib: np.ndarray,
    catalogue: InterventionCatalogue,
    as_of: str | None = None,
    currency: str | None = None,
) -> list[SupportMeasure]:
    """The measures for the person's needs that are present in the register facts and
    material (`Suggestions`), ranked by the summed contribution of the needs each addresses,
    at most ``max_measures``; each cites the facts behind it."""
    rules = catalogue.suggestions
    features = model.features
    order = sorted(range(len(features)), key=lambda j: -float(contrib[j]))
    support: dict[str, SupportMeasure] = {}
    for j in order:
        info, c = features[j], float(contrib[j])
        if c < rules.material_contribution or c <= 0:
            break  # sorted: no later need is material either
        if info.kind != "dynamic" or not rules.need_present(info, _value(values, j)):
            continue
        fact = sentence(info, _value(values, j), as_of, currency)
        for m in catalogue.for_need(info):
            entry = support.setdefault(
                m.id,
                SupportMeasure(
                    id=m.id,
                    name=m.name,
                    provider=m.provider,
                    description=m.description,
                    needs=[],
                    contribution=0.0,
                ),
            )
            entry.needs.append(info.name)
            entry.facts.append(fact)
            entry.contribution = (entry.contribution or 0.0) + c
    ranked = sorted(support.values(), key=lambda m: (-(m.contribution or 0.0), m.name))
    return ranked[: rules.max_measures]


def explain_row(
    model: RiskModel,
    values: np.ndarray,
    contrib: np.ndarray,
    raw_score: float,
    catalogue: InterventionCatalogue,
    as_of: str | None = None,
    currency: str | None = None,
) -> Explanation:
    """One person's explanation from their inputs and contributions (bias last); ``as_of``
    (the features' date) and ``currency`` make the sentences plain."""
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
    static = [j for j in raising if features[j].kind != "dynamic"][:5]

    def reasons(rows: list[int]) -> list[Reason]:
        return [_reason(model, j, values, contrib, as_of, currency) for j in rows]

    return Explanation(
        raw_score=float(raw_score),
        bias=float(contrib[len(features)]),
        domains=sorted(domains.values(), key=lambda d: -d.contribution),
        top_reasons=reasons(raising[:TOP_REASONS]),
        static_history=reasons(static),
        dynamic_needs=reasons(needs),
        support=suggest_support(model, values, contrib, catalogue, as_of, currency),
        contributions={f.name: float(contrib[j]) for j, f in enumerate(features)},
    )


def score_vectors(
    model: RiskModel,
    vectors: pl.DataFrame,
    catalogue: InterventionCatalogue,
    currency: str | None = None,
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
            explanation=explain_row(
                model,
                matrix[i],
                p.contrib[i],
                float(p.raw[i]),
                catalogue,
                plain_date(as_of[i]),
                currency,
            ),
        )
        for i in range(len(ids))
    ]


def ranked_with_reasons(
    model: RiskModel, vectors: pl.DataFrame, currency: str | None = None
) -> pl.DataFrame:
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
    dates = (
        [plain_date(d) for d in vectors["as_of"].to_list()]
        if "as_of" in vectors.columns
        else [None] * contrib.shape[0]
    )
    reasons: list[list[str]] = []
    for i in range(contrib.shape[0]):
        reasons.append(
            [
                sentence(model.features[j], float(values[i, j]), dates[i], currency)
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
