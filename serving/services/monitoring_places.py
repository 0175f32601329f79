"""The places section of the "Monitoring" page: what the places champion's checks found after
the forecast weeks passed (`fairness.monitoring.places`), as the page shows it.

- `places_plots`: the inputs' drift (per group the largest change now / a year before over
  the cell features, in place of the person model's largest PSI); the realised weeks,
  forecast total (band: its Poisson interval) vs the
  incidents counted (dashed); the observed/forecast ratio per check, overall and per group of
  the chosen column, with its interval and the alert band; PAI per check with its interval
  against the audited value and the alert floor;
- `places_view`: the newest check's realised figures, the ratios of the chosen column, the
  input drift table (the cell features' rate ratios, window vs the same weeks a year before:
  alerts first, then by p-value), each group's evidence (effective count, detectable ratio:
  "insufficient for the band" where a change to the band's edge is within the noise), the
  score drift and the exposure by district;
- `places_report`: the places block of the downloadable monitoring report (JSON and HTML):
  deviance, PAI, the ratios with their intervals, the drift summary and rows, the alerts.

Only aggregated figures (cells, districts, weeks): no person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fairness.monitoring.check import CheckResult
from fairness.monitoring.places import ALL, CountRatio, PaiFigure, PlacesAlert, PlacesRealised
from fairness.monitoring.places_drift import GroupEvidence, PlacesDrift
from fairness.monitoring.store import StoredCheck, merge_places_weeks
from fairness.places.results import ExposureRow
from serving.services.plots import Line, Plot, Point

DRIFT_ROWS = 40
"""The input drift table's length (the newest check's drift rows, alerts first, then the
smallest p-values; the report holds them all)."""
_ORDER = {"alert": 0, "ok": 1}


@dataclass(frozen=True)
class DriftRow:
    input: str
    group_column: str
    group: str
    ratio: float | None
    lower: float | None
    upper: float | None
    q_value: float | None
    status: str


@dataclass(frozen=True)
class PlacesView:
    """The newest places check's realised performance and drift, for the page's section."""

    as_of: str
    realised: PlacesRealised | None
    note: str | None
    overall: CountRatio | None
    ratios: list[CountRatio]
    band: tuple[float, float]
    pai: PaiFigure | None
    exposure: list[ExposureRow]
    drift: list[DriftRow]
    drift_alerts: int
    drift_total: int
    drift_note: str | None
    alerts: list[PlacesAlert]
    # the reference weeks' history: False when the store is too short (drift_note says how)
    history_enough: bool | None = None
    # the forecast's drift (mean forecast now / the same weeks a year before), alerts first
    score: list[DriftRow] = field(default_factory=list)
    score_band: tuple[float, float] | None = None
    # per group of the column: can the drift rows see a change at the band's edge?
    evidence: list[GroupEvidence] = field(default_factory=list)


def _in(column: str | None, group_column: str) -> bool:
    return group_column in (ALL, column)


def _label(group_column: str, group: str) -> str:
    return "overall" if group_column == ALL else group


def _drift_rows(r: CheckResult, column: str | None, score: bool = False) -> list[DriftRow]:
    p = r.places
    drift = None if p is None else (p.score_drift if score else p.input_drift)
    if drift is None:
        return []
    rows = [
        (d.p_value, DriftRow(d.input, d.group_column, d.group, d.ratio, d.lower, d.upper,
                             d.q_value, d.status))
        for d in drift.rows
        if _in(column, d.group_column)
    ]  # fmt: skip
    rows.sort(
        key=lambda x: (_ORDER.get(x[1].status, 2), x[0] if x[0] is not None else 2.0, x[1].input)
    )
    return [row for _, row in rows]


def places_view(checks: list[StoredCheck], column: str | None) -> PlacesView | None:
    """The section's content (None: no check of the places model holds a places part)."""
    latest = checks[-1].result if checks else None
    if latest is None or latest.places is None:
        return None
    p = latest.places
    real = p.realised
    ratios = [c for c in real.ratios if _in(column, c.group_column)] if real else []
    drift = _drift_rows(latest, column)
    return PlacesView(
        as_of=latest.as_of.isoformat(),
        realised=real,
        note=p.realised_note,
        overall=next((c for c in ratios if c.group_column == ALL), None),
        ratios=[c for c in ratios if c.group_column != ALL],
        band=p.ratio_band,
        pai=real.pai if real else None,
        exposure=list(real.exposure) if real else [],
        drift=drift[:DRIFT_ROWS],
        drift_alerts=sum(d.status == "alert" for d in drift),
        drift_total=len(drift),
        drift_note=p.drift_note,
        alerts=list(p.alerts),
        history_enough=p.drift_history.enough if p.drift_history is not None else None,
        score=_drift_rows(latest, column, score=True),
        evidence=[
            e for e in (p.input_drift.evidence if p.input_drift else []) if e.group_column == column
        ],
        score_band=p.score_drift.band if p.score_drift is not None else None,
    )


def _realised_plot(checks: list[StoredCheck]) -> Plot:
    weeks = merge_places_weeks([c.result for c in checks])
    return Plot(
        "places-realised",
        "Incidents per week: forecast (band: Poisson interval) and counted (dashed)",
        "incidents",
        [
            Line(
                "forecast",
                "forecast",
                [Point(w.week_start, w.expected, w.lower, w.upper) for w in weeks],
            ),
            Line(
                "counted",
                "counted",
                [Point(w.week_start, float(w.observed)) for w in weeks],
                dashed=True,
            ),
        ],
    )


def _ratio_plot(checks: list[StoredCheck], column: str | None) -> Plot:
    lines: dict[str, list[Point]] = {}
    band: tuple[float, float] | None = None
    for c in checks:
        p = c.result.places
        if p is None or p.realised is None:
            continue
        band = p.ratio_band
        for r in p.realised.ratios:
            if _in(column, r.group_column) and r.ratio is not None:
                lines.setdefault(_label(r.group_column, r.group), []).append(
                    Point(c.result.as_of, r.ratio, r.lower, r.upper)
                )
    refs = {"band low": band[0], "band high": band[1]} if band else {}
    return Plot(
        "places-ratio",
        "Observed / forecast incidents over the realised weeks (band: interval)",
        "observed / forecast",
        [Line(k, k, pts) for k, pts in lines.items()],
        refs,
    )


def _pai_plot(checks: list[StoredCheck]) -> Plot:
    points: list[Point] = []
    refs: dict[str, float] = {}
    for c in checks:
        p = c.result.places
        pai = p.realised.pai if p is not None and p.realised is not None else None
        if pai is None or pai.value is None:
            continue
        points.append(Point(c.result.as_of, pai.value, pai.lower, pai.upper))
        if pai.audited is not None and pai.floor is not None:
            refs = {"audited": pai.audited, "alert floor": pai.floor}
    share = next(
        (
            f" at {c.result.places.realised.pai.area_share:.0%} of the area"
            for c in checks
            if c.result.places is not None and c.result.places.realised is not None
        ),
        "",
    )
    return Plot(
        "places-pai",
        f"PAI{share} over the realised weeks (band: interval) vs the audited value",
        "PAI",
        [Line("realised", "realised", points)],
        refs,
    )


def _input_drift_plot(checks: list[StoredCheck], column: str | None) -> Plot:
    """Per group and check, the largest change over the cell features' tested rows: the
    ratio now / a year before furthest from 1 either way, as a factor (``max(r, 1/r)``), with
    the band's edge. The places counterpart of the person model's "largest PSI" (the places
    inputs are judged by rate ratios, not PSI; rows with too few events are left out, their
    ratios are noise)."""
    lines: dict[str, list[Point]] = {}
    edge: float | None = None
    for c in checks:
        p = c.result.places
        drift = p.input_drift if p is not None else None
        if drift is None:
            continue
        low, high = drift.band
        edge = max(high, 1 / low)
        worst: dict[str, float] = {}
        for r in drift.rows:
            if (
                r.p_value is None
                or r.ratio is None
                or r.ratio <= 0
                or not _in(column, r.group_column)
            ):
                continue
            key = _label(r.group_column, r.group)
            worst[key] = max(worst.get(key, 1.0), r.ratio, 1 / r.ratio)
        for key, v in worst.items():
            lines.setdefault(key, []).append(Point(c.result.as_of, v))
    return Plot(
        "places-input-drift",
        "Input drift: largest change of a cell feature, now / a year before (x)",
        "largest change (x)",
        [Line(k, k, pts) for k, pts in lines.items()],
        {"band edge": edge} if edge is not None else {},
    )


def places_plots(checks: list[StoredCheck], column: str | None) -> list[Plot]:
    """The places plots (empty list: no check holds a places part): the inputs' drift first
    (in place of the person model's largest PSI), then the realised weeks, ratio and PAI."""
    if not any(c.result.places is not None for c in checks):
        return []
    return [
        _input_drift_plot(checks, column),
        _realised_plot(checks),
        _ratio_plot(checks, column),
        _pai_plot(checks),
    ]


def _iv(value: float | None, lower: float | None, upper: float | None) -> dict[str, float | None]:
    return {"value": value, "lower": lower, "upper": upper}


def places_report(result: CheckResult) -> dict[str, Any] | None:
    """The places block of a check's monitoring report (None: not a places check): what an
    auditor reads first, each figure with its interval, and every drift row."""
    p = result.places
    if p is None:
        return None
    real = p.realised
    drift = p.input_drift
    return {
        "realised": None
        if real is None
        else {
            "first_week": real.first_week.isoformat(),
            "last_week": real.last_week.isoformat(),
            "weeks": real.weeks,
            "cells": real.cells,
            "deviance": _iv(real.deviance, real.deviance_lower, real.deviance_upper),
            "pai": _iv(real.pai.value, real.pai.lower, real.pai.upper)
            | {
                "area_share": real.pai.area_share,
                "weeks": real.pai.weeks,
                "audited": real.pai.audited,
                "alert_floor": real.pai.floor,
            },
            "ratios": [
                _iv(c.ratio, c.lower, c.upper)
                | {
                    "group_column": c.group_column,
                    "group": c.group,
                    "weeks": c.weeks,
                    "expected": c.expected,
                    "observed": c.observed,
                    "status": c.status,
                }
                for c in real.ratios
            ],
        },
        "realised_note": p.realised_note,
        "ratio_band": list(p.ratio_band),
        "pai_fraction": p.pai_fraction,
        "drift": _drift_block(drift),
        "score_drift": _drift_block(p.score_drift),
        "drift_note": p.drift_note,
        "drift_history": None
        if p.drift_history is None
        else p.drift_history.model_dump(mode="json") | {"state": p.drift_history.message},
        "alerts": [a.model_dump(mode="json") for a in p.alerts]
        + [
            b.model_dump(mode="json")
            for b in result.breaches
            if b.kind in ("input_drift", "score_drift")
        ],
    }


def _drift_block(drift: PlacesDrift | None) -> dict[str, Any] | None:
    """A drift result as the report keeps it (the inputs' or the forecast's)."""
    if drift is None:
        return None
    return {
        "window": [d.isoformat() for d in drift.current_origins],
        "reference": [d.isoformat() for d in drift.reference_origins],
        "band": list(drift.band),
        "fdr": drift.fdr,
        "tests": drift.tests,
        "alerts": len(drift.alerts()),
        "skipped": list(drift.skipped),
        "rows": [r.model_dump(mode="json") for r in drift.rows],
        "evidence": [e.model_dump(mode="json") for e in drift.evidence],
    }
