"""The documents of an evidence pack as typed values: a document is titled sections, each of
paragraphs, facts (label and value) and tables of records.

Why one small shape for all four documents: the JSON a machine reads and the HTML a person
reads are the same content (`serving.evidence.render` renders any document), and a test or an
auditor can find a section by its title in either.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DocumentKind = Literal[
    "technical_documentation", "impact_assessment", "monitoring_plan", "person_export"
]
Cell = str | int | float | bool | None


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Table(_Value):
    """Records under one caption; ``columns`` fixes their order."""

    caption: str
    columns: list[str]
    rows: list[dict[str, Cell]]


class Section(_Value):
    title: str
    paragraphs: list[str] = Field(default_factory=list)
    facts: dict[str, Cell] = Field(default_factory=dict)
    items: list[str] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)


class Document(_Value):
    kind: DocumentKind
    title: str
    model: str
    version: str
    generated_at: str
    sections: list[Section]
    gaps: list[str] = Field(default_factory=list)
    """What the document should hold but no source had (said, never silently left out)."""

    def section(self, title: str) -> Section:
        for s in self.sections:
            if s.title == title:
                return s
        raise KeyError(f"{self.kind} has no section {title!r}")

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def cell_value(value: Any) -> Cell:
    """A cell as it is kept: scalars as they are, a list as its items joined, anything else as
    its text (a table is read by people, the sources keep the structure)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def table(caption: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Table:
    """A table whose columns are ``columns`` or the first row's keys."""
    cols = columns if columns is not None else (list(rows[0]) if rows else [])
    kept = [{k: cell_value(v) for k, v in r.items()} for r in rows]
    return Table(caption=caption, columns=cols, rows=kept)
