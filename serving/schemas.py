"""Request and response bodies of the service (pydantic; separate request and response types)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from serving.users import Role

NO_NUL = r"^[^\x00]*$"
"""The pattern of text the service stores or looks up: PostgreSQL refuses NUL characters in
text (it would be a 500); as a pattern, the refusal is a 422 naming the field, and documented."""
PersonId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=NO_NUL),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- requests -----------------------------------------------------------------------------
class ScoreRequest(_Request):
    ids: list[PersonId] = Field(min_length=1, description="person ids (at most 1,000)")
    purpose: str = Field(description="why the scores are read; one of the configured purposes")


class DecisionAction(StrEnum):
    contacted = "contacted"
    referred = "referred"
    no_action = "no_action"
    disagreed = "disagreed"


class DecisionRequest(_Request):
    person_id: PersonId
    action: DecisionAction
    measure_id: str | None = Field(
        default=None, max_length=64, pattern=NO_NUL, description="required when action = referred"
    )
    reason: str | None = Field(
        default=None,
        max_length=2000,
        pattern=NO_NUL,
        description="required when action = disagreed (override)",
    )
    purpose: str = Field(description="one of the configured purposes")


class StopRequest(_Request):
    reason: str = Field(min_length=3, max_length=500, pattern=NO_NUL)


UserName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, strip_whitespace=True, pattern=NO_NUL),
]
RegionCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=NO_NUL),
]


class UserCreateRequest(_Request):
    """A new user, as `riskcast users add NAME --role R [--region R ...]`."""

    name: UserName = Field(description="unique; 1 to 100 characters")
    role: Role
    regions: list[RegionCode] = Field(
        default_factory=list,
        max_length=100,
        description="an officer's regions (at least one); empty for every other role",
    )


# ---- responses ----------------------------------------------------------------------------
class Reason(BaseModel):
    feature: str
    domain: str
    kind: str
    value: float | None
    contribution: float
    sentence: str


class DomainContribution(BaseModel):
    domain: str
    contribution: float
    static: float
    dynamic: float


class SupportMeasure(BaseModel):
    id: str
    name: str
    provider: str
    description: str
    needs: list[str] = Field(description="the dynamic features this measure addresses")
    facts: list[str] = Field(
        default_factory=list,
        description="the register facts behind the suggestion, in words (one per need)",
    )
    contribution: float | None = Field(
        default=None,
        description="the summed contribution (log-odds) of those needs: what the measures are "
        "ranked by",
    )


class Explanation(BaseModel):
    raw_score: float
    bias: float
    domains: list[DomainContribution]
    top_reasons: list[Reason]
    static_history: list[Reason]
    dynamic_needs: list[Reason]
    support: list[SupportMeasure]
    contributions: dict[str, float] = Field(description="per feature; with bias sums to raw_score")


class PersonScore(BaseModel):
    person_id: str
    status: Literal["scored", "unknown", "outside_population"] = Field(
        description="scored; unknown (no such person in your regions' register, or no "
        "feature vector online); outside_population (the person is outside the population "
        "the model was trained, calibrated and audited on: no probability, tier nor "
        "explanation, `message` says why)"
    )
    message: str | None = None
    probability: float | None = None
    tier: str | None = None
    model_version: str | None = None
    features_as_of: str | None = None
    explanation: Explanation | None = None


class ScoreResponse(BaseModel):
    model_version: str
    purpose: str
    results: list[PersonScore]


class LatestDecision(BaseModel):
    """The newest decision recorded for a person (so that two officers do not call the same
    person twice)."""

    id: int
    action: DecisionAction
    recorded_at: datetime
    officer: str
    measure_id: str | None = None


class RiskListRow(BaseModel):
    rank: int
    person_id: str
    region: str
    district: str | None
    probability: float
    tier: str
    top_reasons: list[str]
    latest_decision: LatestDecision | None = Field(
        default=None, description="the newest decision recorded for the person (null: none)"
    )


class TierBand(BaseModel):
    """What a tier means: its probability band and its share of the served population."""

    name: str
    label: str = Field(description="the tier in words (``very_high``: very high)")
    min_probability: float
    max_probability: float | None = Field(description="below this; null for the top tier")
    share: float | None = Field(
        default=None, description="share of the served population in the tier (null: unknown)"
    )


class ScoreMeaning(BaseModel):
    """What a probability is the probability of, and what to compare it with."""

    label: str | None = Field(description="the model's label (its training target)")
    event: str = Field(description="the event, in words, with its horizon")
    horizon_days: int | None
    base_rate: float | None = Field(
        description="mean probability over the served population (every materialised person "
        "inside the population of validity); null while the score book is being built"
    )
    served: int | None = Field(default=None, description="persons the base rate is over")
    tiers: list[TierBand]


class RiskListResponse(BaseModel):
    model_version: str
    region: str
    district: str | None
    tiers: list[str] | None
    capacity: int
    total: int = Field(description="persons in the list (after filters, within capacity)")
    offset: int
    limit: int
    population: str = Field(description="the model's population of validity")
    in_population: int = Field(description="persons of the unit inside it (scored, any tier)")
    outside_population: int = Field(
        description="persons of the unit outside it: never scored, never listed"
    )
    rows: list[RiskListRow]
    undecided_only: bool = Field(
        default=False, description="only persons with no decision recorded yet are listed"
    )
    meaning: ScoreMeaning | None = Field(
        default=None, description="the event and horizon, the base rate and the tiers' bands"
    )


class DecisionResponse(BaseModel):
    id: int
    recorded_at: datetime
    officer: str
    person_id: str
    region: str
    district: str | None
    action: DecisionAction
    measure_id: str | None
    reason: str | None
    override: bool
    model_version: str | None
    probability: float | None
    tier: str | None
    score_withheld: str | None = Field(
        default=None,
        description="in the answer to the POST: why no score was recorded with the decision "
        "(scoring stopped, no model, no feature vector; a stopped model never scores); the "
        "access log keeps it (params.score_withheld), listings show null",
    )


class UnitSummary(BaseModel):
    region: str
    district: str | None
    decisions: int
    overrides: int
    by_action: dict[str, int]


class DecisionsResponse(BaseModel):
    units: list[UnitSummary]
    decisions: list[DecisionResponse]


class ModelCard(BaseModel):
    name: str
    version: str
    alias: str
    tiers: dict[str, float]
    features: list[dict[str, str | int]]
    calibration: str | None
    card_markdown: str | None


class UserOut(BaseModel):
    """A service user as admins see it (never the token or its hash)."""

    name: str
    role: Role
    regions: list[str]
    created_at: datetime
    revoked_at: datetime | None
    active: bool


class UsersResponse(BaseModel):
    users: list[UserOut]


class UserCreatedResponse(UserOut):
    token: str = Field(
        description="the bearer token, shown only in this answer (only its hash is stored)"
    )


class ErrorResponse(BaseModel):
    """The body of every error answer except 422 (whose ``detail`` lists the fields)."""

    detail: str
    error: str | None = Field(
        default=None, description="the riskcast error class, when one was raised (else absent)"
    )


ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "missing, unknown or revoked bearer token",
    403: "your role may not do this, or the persons or region are not yours (logged)",
    404: "not found",
    413: "too many person ids in one request",
    503: "the service is starting, a store is unavailable, or scoring is stopped",
}


def error_responses(
    *codes: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error answers, each with the `ErrorResponse` body: ``codes``
    with their usual description, and ``described`` (code -> description) with their own."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[code]}
    for code, description in (described or {}).items():
        out[code] = {"model": ErrorResponse, "description": description}
    return out


class ServiceStatus(BaseModel):
    status: str
    model_version: str | None = None
    message: str | None = None
    score_book: str | None = Field(
        default=None,
        description="the score book's state: ready (persons in and out of the population, method), "
        "building (rows scored), "
        "failed (why), or off; scores are correct in every state",
    )
    population: str | None = Field(
        default=None, description="the champion's population of validity"
    )
    in_population: int | None = Field(
        default=None,
        description="materialised persons inside it (known once the score book is ready)",
    )
    outside_population: int | None = Field(
        default=None, description="materialised persons outside it: never scored"
    )


class StopStatus(BaseModel):
    stopped: bool
    reason: str | None


class ErasureRequest(_Request):
    """Erase one person (as `riskcast erase PERSON_ID --reason TEXT`; by the admin calling)."""

    person_id: PersonId
    reason: str = Field(
        min_length=3,
        max_length=500,
        pattern=NO_NUL,
        description="why (kept in the ledger, so it must not contain the person's id)",
    )


class ErasureResponse(BaseModel):
    """What the erasure did; the person appears only as its keyed pseudonym."""

    pseudonym: str
    tombstone_added: bool = Field(description="false if the person was erased before")
    online_vectors: int
    decisions_blanked: int
    lookup_rows: int = Field(description="access-log lookup rows deleted")
    ledger_seq: int


# ---- audit --------------------------------------------------------------------------------
class ChainStatus(BaseModel):
    """Verification of a hash chain: ``ok`` iff ``problems`` is empty."""

    ok: bool
    entries: int
    head: str | None
    problems: list[str]


class LedgerEntryOut(BaseModel):
    seq: int
    at: datetime
    kind: str
    actor: str
    role: str
    version: str
    decision: str
    reasons: list[str]
    report_sha256: str | None
    data_digests: dict[str, str]
    prev_hash: str
    hash: str


class LedgerResponse(BaseModel):
    verification: ChainStatus
    entries: list[LedgerEntryOut]


class AccessLogEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    role: str
    purpose: str
    action: str
    persons: list[str]
    params: dict[str, Any]
    model_version: str | None
    status: int
    prev_hash: str
    hash: str


class AccessLogResponse(BaseModel):
    verification: ChainStatus
    filters: dict[str, str | int | None]
    entries: list[AccessLogEntryOut]


class FairnessReportResponse(BaseModel):
    model_name: str
    version: str
    json_sha256: str
    html_available: bool
    report: dict[str, Any] = Field(description="the audit's JSON report, as written")
