"""The ingest report: counts per table and rule, as JSON and as a table on the terminal."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from features.contract import TABLE_ORDER

Status = Literal["ingested", "refused", "already_ingested"]


class TableReport(BaseModel):
    """Counts for one table; ``rules`` holds only rules broken at least once.

    Nothing lost: rows_in = accepted + quarantined + duplicates_dropped + erased, where
    ``erased`` counts the rows of persons erased before this delivery (their tombstones,
    `features.store.tombstones`): neither stored nor quarantined, only counted (and in the
    JSON only when some were)."""

    model_config = ConfigDict(extra="forbid")

    rows_in: int = Field(ge=0)
    accepted: int = Field(ge=0)
    quarantined: int = Field(ge=0)
    duplicates_dropped: int = Field(ge=0)
    erased: int = Field(default=0, ge=0)
    rules: dict[str, int] = Field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(exclude=None if self.erased else {"erased"})

    def top_rules(self, n: int = 3) -> list[tuple[str, int]]:
        return sorted(self.rules.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


class IngestReport(BaseModel):
    """What one `riskcast ingest` did; ``to_json_dict`` is the documented, exact JSON shape."""

    model_config = ConfigDict(extra="forbid")

    extract_id: str | None
    status: Status
    tables: dict[str, TableReport] = Field(default_factory=dict)
    error: str | None = None
    extracted_at: datetime | None = None
    manifest_sha256: str | None = None
    ingested_at: datetime | None = None
    quarantine: dict[str, str] = Field(default_factory=dict)
    """Table -> quarantine file, relative to the store root."""

    @classmethod
    def refused(cls, extract_id: str | None, error: str) -> IngestReport:
        return cls(extract_id=extract_id, status="refused", error=error)

    def to_json_dict(self) -> dict[str, Any]:
        """The exact ``--report-json`` shape; ``error`` only for a refused delivery."""
        payload: dict[str, Any] = {
            "extract_id": self.extract_id,
            "status": self.status,
            "tables": {
                name: self.tables[name].as_json() for name in sorted(self.tables, key=_table_rank)
            },
        }
        if self.error is not None:
            payload["error"] = self.error
        return payload

    def to_store_dict(self) -> dict[str, Any]:
        """The report kept in the store: the JSON shape plus when, which manifest, where."""
        payload = self.to_json_dict()
        payload.update(
            extracted_at=self.extracted_at.isoformat() if self.extracted_at else None,
            ingested_at=self.ingested_at.isoformat() if self.ingested_at else None,
            manifest_sha256=self.manifest_sha256,
            quarantine=dict(self.quarantine),
        )
        return payload

    @classmethod
    def from_store_dict(cls, raw: dict[str, Any]) -> IngestReport:
        return cls.model_validate(raw)

    @property
    def totals(self) -> TableReport:
        tables = list(self.tables.values())
        rules: dict[str, int] = {}
        for t in tables:
            for rule_id, n in t.rules.items():
                rules[rule_id] = rules.get(rule_id, 0) + n
        return TableReport(
            rows_in=sum(t.rows_in for t in tables),
            accepted=sum(t.accepted for t in tables),
            quarantined=sum(t.quarantined for t in tables),
            duplicates_dropped=sum(t.duplicates_dropped for t in tables),
            erased=sum(t.erased for t in tables),
            rules=rules,
        )


def _table_rank(name: str) -> tuple[int, str]:
    return (TABLE_ORDER.index(name) if name in TABLE_ORDER else len(TABLE_ORDER), name)


_COUNT_COLUMNS = (
    ("rows_in", "rows in"),
    ("accepted", "accepted"),
    ("quarantined", "quarant."),
    ("duplicates_dropped", "dups"),
)
_STATUS_STYLE = {"ingested": "green", "already_ingested": "yellow", "refused": "bold red"}


def render(report: IngestReport, console: Console) -> None:
    """Print the report as a readable table: counts per table and the rules broken most."""
    style = _STATUS_STYLE[report.status]
    when = f" (extracted {report.extracted_at:%Y-%m-%d %H:%M:%SZ})" if report.extracted_at else ""
    name = escape(report.extract_id or "?")  # an id is data, never rich markup
    console.print(
        f"[bold]{name}[/]{when}: [{style}]{report.status.replace('_', ' ')}[/]", highlight=False
    )
    if report.status == "already_ingested":
        console.print("This delivery was ingested before; nothing was written.")
    if report.error:
        console.print(f"[red]{escape(report.error)}[/]", highlight=False)
    if not report.tables:
        return
    grid = RichTable(show_footer=True)
    grid.add_column("table", footer="total", no_wrap=True)
    totals = report.totals
    counted = [*_COUNT_COLUMNS, ("erased", "erased")] if totals.erased else list(_COUNT_COLUMNS)
    for field_name, title in counted:
        grid.add_column(
            title, justify="right", footer=f"{getattr(totals, field_name):,}", no_wrap=True
        )
    grid.add_column("top rules broken (rows)", overflow="fold")
    for name in sorted(report.tables, key=_table_rank):
        t = report.tables[name]
        top = [f"{rule_id.split('.', 1)[-1]} {n:,}" for rule_id, n in t.top_rules()]
        if len(t.rules) > len(top):
            top.append(f"(+{len(t.rules) - len(top)} more)")
        quarantined = f"[red]{t.quarantined:,}[/]" if t.quarantined else "0"
        grid.add_row(
            name,
            f"{t.rows_in:,}",
            f"{t.accepted:,}",
            quarantined,
            f"{t.duplicates_dropped:,}",
            *([f"{t.erased:,}"] if totals.erased else []),
            "\n".join(top) or "-",
        )
    console.print(grid)
