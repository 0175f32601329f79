"""The evidence-pack endpoint's request and answer (``/v1/audit/evidence-packs``).

Kept beside the pack's code rather than in `serving.schemas` (already long): the same
conventions (requests forbid unknown fields, person ids as everywhere else)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from serving.schemas import PersonId

PACK_ID = r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$"
"""A pack's id: when it was built (UTC) and 32 random bits, so it can never name a path."""


class EvidencePackRequest(BaseModel):
    """Assemble the evidence pack of a registered version (as `riskcast evidence-pack`)."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^[0-9]{1,12}$", description="registered version number")
    person_id: PersonId | None = Field(
        default=None,
        description="also export this person's decision history with its explanation "
        "(a person-level read: in the access log, purpose subject_access)",
    )


class EvidencePackFile(BaseModel):
    path: str = Field(description="the file's path inside the pack, as the manifest names it")
    sha256: str
    bytes: int
    url: str = Field(description="where to download it")


class EvidencePackResponse(BaseModel):
    """A pack the service assembled: its manifest's sha256 (the hash the ledger records), its
    files with their sha256 and download addresses, and what was not on record."""

    pack_id: str
    model_name: str
    version: str
    created_at: datetime
    created_by: str
    with_person: bool = Field(description="whether the pack holds one person's export")
    manifest_sha256: str
    ledger_seq: int | None = Field(description="the ledger entry that records the pack")
    manifest_url: str
    zip_url: str
    files: list[EvidencePackFile]
    gaps: list[str]


class EvidencePacksResponse(BaseModel):
    packs: list[EvidencePackResponse] = Field(description="newest first")
