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
    status: Literal["scored", "unknown"]
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


class RiskListRow(BaseModel):
    rank: int
    person_id: str
    region: str
    district: str | None
    probability: float
    tier: str
    top_reasons: list[str]


class RiskListResponse(BaseModel):
    model_version: str
    region: str
    district: str | None
    tiers: list[str] | None
    capacity: int
    total: int = Field(description="persons in the list (after filters, within capacity)")
    offset: int
    limit: int
    rows: list[RiskListRow]


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
        description="the score book's state: ready (persons, method), building (trees done), "
        "failed (why), or off; scores are correct in every state",
    )


class StopStatus(BaseModel):
    stopped: bool
    reason: str | None


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
