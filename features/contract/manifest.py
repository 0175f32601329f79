"""The delivery manifest (`manifest.json`) of the contract: model, reading and writing."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.contract.schema import CONTRACT_VERSION, TABLE_ORDER
from riskcast.clock import UtcDatetime
from riskcast.digest import sha256_file
from riskcast.errors import DeliveryRefused

MANIFEST_FILE = "manifest.json"


class TableEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str
    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contract_version: int
    extract_id: str = Field(min_length=1)
    extracted_at: UtcDatetime
    tables: dict[str, TableEntry]

    def to_json(self) -> str:
        payload = {
            "contract_version": self.contract_version,
            "extract_id": self.extract_id,
            "extracted_at": self.extracted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tables": {
                name: self.tables[name].model_dump()
                for name in sorted(self.tables, key=_table_rank)
            },
        }
        return json.dumps(payload, indent=2) + "\n"


def _table_rank(name: str) -> tuple[int, str]:
    return (TABLE_ORDER.index(name) if name in TABLE_ORDER else len(TABLE_ORDER), name)


def read_manifest(delivery: Path) -> Manifest:
    """Parse a delivery's manifest; a missing or malformed one refuses the delivery."""
    path = delivery / MANIFEST_FILE
    if not path.is_file():
        raise DeliveryRefused(f"{delivery}: no {MANIFEST_FILE}; the delivery is refused")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Manifest.model_validate(raw)
    except json.JSONDecodeError as exc:
        raise DeliveryRefused(f"{path}: not valid JSON ({exc}); the delivery is refused") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise DeliveryRefused(f"{path}: {problems}; the delivery is refused") from exc


def build_manifest(
    delivery: Path, extract_id: str, extracted_at: datetime, rows: dict[str, int]
) -> Manifest:
    """Manifest for files already written in ``delivery`` (``rows``: table -> data rows)."""
    entries: dict[str, TableEntry] = {}
    for name, count in rows.items():
        candidates = (delivery / f"{name}.parquet", delivery / f"{name}.csv")
        matches = [p for p in candidates if p.exists()]
        if len(matches) != 1:
            raise FileNotFoundError(f"expected exactly one file for table {name} in {delivery}")
        entries[name] = TableEntry(file=matches[0].name, rows=count, sha256=sha256_file(matches[0]))
    return Manifest(
        contract_version=CONTRACT_VERSION,
        extract_id=extract_id,
        extracted_at=extracted_at,
        tables=entries,
    )


def write_manifest(delivery: Path, manifest: Manifest) -> Path:
    path = delivery / MANIFEST_FILE
    path.write_text(manifest.to_json(), encoding="utf-8")
    return path
