"""The plots the "Monitoring" page draws (`serving.ui.charts`): plain data, shared by the
person and the places sections (`serving.services.monitoring`, `.monitoring_places`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Point:
    as_of: date
    value: float
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class Line:
    """One group's series; ``dashed`` for the second kind of value of a plot (realised)."""

    label: str
    group: str
    points: list[Point]
    dashed: bool = False


@dataclass(frozen=True)
class Plot:
    """One chart: its id (``data-plot``), title, y-axis label, lines and reference lines."""

    key: str
    title: str
    y_label: str
    lines: list[Line]
    references: dict[str, float] = field(default_factory=dict)  # label -> y (dashed grey)

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)
