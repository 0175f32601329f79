"""The truth manifest: how a known truth (p_true per person and as-of date) is handed over.

A tool that knows the truth behind a delivery (today the register simulator) writes
``truth-manifest.json`` beside its truth files. Production code finds the truth only through
such a manifest, given explicitly (``truth_dir`` in the training config, ``--truth``): it never
guesses folder names and never needs to know the tool that wrote it. The manifest is typed and
versioned so that a reader can refuse what it does not understand instead of misreading it.

The labels file the manifest names is a Parquet table with at least the columns ``person_id``,
``as_of`` (date), ``horizon_days`` (int) and ``p_true`` (float, the true probability of the
outcome "any new criminal case within the horizon").

This module is pure pydantic + JSON (no dataframes): reading the labels is the consumer's job.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from riskcast.clock import UtcDatetime
from riskcast.digest import sha256_file
from riskcast.errors import InputError

TRUTH_MANIFEST = "truth-manifest.json"
"""The manifest's file name inside a truth folder."""
TRUTH_SCHEMA_VERSION: Literal[1] = 1
"""Bumped whenever a reader of an older manifest could misread a newer one."""
LABELS_COLUMNS = ("person_id", "as_of", "horizon_days", "p_true")
"""Columns every truth labels file has (others may follow)."""

_SHA256 = r"^[0-9a-f]{64}$"


class TruthFile(BaseModel):
    """One file of the truth, named relative to the manifest's folder, with its digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(min_length=1, pattern=r"^[^/\\]+$")
    sha256: str = Field(pattern=_SHA256)
    rows: int | None = Field(default=None, ge=0)


class TruthManifest(BaseModel):
    """What a truth folder holds and which delivery it is the truth of."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = TRUTH_SCHEMA_VERSION
    extract_id: str = Field(min_length=1, description="the delivery this is the truth of")
    extracted_at: UtcDatetime
    producer: str = Field(min_length=1, description="what wrote the truth, for people")
    outcome: Literal["any_new_case"] = Field(
        default="any_new_case",
        description="what p_true is the probability of: any new criminal case registered "
        "within the horizon (a label restricted to some categories is not this outcome)",
    )
    horizon_days: list[int] = Field(min_length=1)
    as_of: list[date] = Field(min_length=1)
    labels: TruthFile
    files: dict[str, TruthFile] = Field(
        default_factory=dict, description="every other file of the truth, by name"
    )

    @field_validator("horizon_days")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(h < 1 for h in value):
            raise ValueError("horizons must be at least one day")
        return sorted(set(value))

    def to_json(self) -> str:
        """Stable text (sorted keys, ISO dates, Z times): equal manifests give equal bytes."""
        payload = self.model_dump(mode="json")
        payload["extracted_at"] = self.extracted_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def manifest_file(path: Path) -> Path:
    """``path`` itself if it names a file, else ``path/truth-manifest.json`` (a truth folder)."""
    path = Path(path)
    return path / TRUTH_MANIFEST if path.is_dir() else path


def write_truth_manifest(folder: Path, manifest: TruthManifest) -> Path:
    """Write ``truth-manifest.json`` into ``folder`` (the caller makes the folder appear
    atomically, as the simulator does by renaming a temporary folder)."""
    target = Path(folder) / TRUTH_MANIFEST
    target.write_text(manifest.to_json(), encoding="utf-8")
    return target


def read_truth_manifest(path: Path) -> TruthManifest:
    """The manifest at ``path`` (a manifest file or a folder holding one). InputError names the
    file and what is wrong: missing, not JSON, another schema version, a bad field."""
    target = manifest_file(path)
    if not target.is_file():
        raise InputError(f"{target}: no truth manifest")
    try:
        raw = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{target}: not a readable JSON truth manifest ({exc})") from exc
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != TRUTH_SCHEMA_VERSION:
        raise InputError(
            f"{target}: truth manifest schema_version {version!r}; this version of riskcast "
            f"reads {TRUTH_SCHEMA_VERSION}"
        )
    try:
        return TruthManifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InputError(f"{target}: {problems}") from exc


def labels_path(manifest_path: Path, manifest: TruthManifest) -> Path:
    """Where the labels file of ``manifest`` (read from ``manifest_path``) is."""
    return manifest_file(manifest_path).parent / manifest.labels.file


def check_labels(manifest_path: Path, manifest: TruthManifest) -> Path:
    """The labels file, after checking that it is there and has the digest the manifest
    records (a truth replaced after the fact must not be taken for the recorded one)."""
    path = labels_path(manifest_path, manifest)
    if not path.is_file():
        raise InputError(f"{path}: the labels file named by the truth manifest is missing")
    actual = sha256_file(path)
    if actual != manifest.labels.sha256:
        raise InputError(
            f"{path}: SHA-256 {actual} differs from {manifest.labels.sha256} in the truth manifest"
        )
    return path
