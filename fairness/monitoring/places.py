"""Realised performance of the places champion once forecast weeks have passed (pure).

The places model forecasts expected street-crime registrations per map cell and week. Weeks
after a forecast, the register has counted what happened, so the forecast can be judged as the
training stage judged it on its test weeks (`training.places.metrics`), on the weeks since:

- **Poisson deviance** of the cell-week counts (mean over cell-weeks);
- **PAI** at the configured area share (hit rate / area share of the top-forecast cells, mean
  over weeks with incidents), with a percentile interval from resampling weeks, against the
  PAI the champion showed on its audited test weeks: an alert when the interval's upper end is
  below ``pai_fraction`` of the audited value (noise alone does not raise it);
- **calibration of counts**: observed / forecast total, overall and per region and district
  (the places audit's groups), with an interval that is the union of a percentile bootstrap
  over weeks (the weeks are the units: cells of one week share weather, events, patrols) and
  the exact Poisson interval of the observed total (which a few weeks' bootstrap understates).
  An alert when the interval lies wholly outside ``[ratio_low, ratio_high]`` and the group's
  forecast total is at least ``min_expected`` (fewer expected incidents say little);
- **exposure by district** (the places gate's figure, `fairness.places.exposure`): each
  district's share of the flagged area vs of the incidents, on the realised weeks; reported
  and kept as a monitored figure, not an alert (the audit makes it advisory too).

`realised_places` computes the figures, `places_alerts` judges them. The frame: one row per
(cell, forecast week) with ``region, district, week_start, area_km2, observed, expected_count``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict
from scipy import stats

from fairness.monitoring.places_config import PlacesMonitoringSettings
from fairness.monitoring.places_drift import DriftHistory, PlacesDrift
from fairness.places.exposure import exposure_by_district
from fairness.places.results import ExposureRow
from fairness.policy import PlacesPolicy
from training.places.metrics import pai_at, poisson_deviance

ALL = "all"
RatioStatus = Literal["ok", "alert", "insufficient evidence"]
PAI_FIGURE = "pai"
RATIO_FIGURE = "count_ratio"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountRatio(_Model):
    """Observed / forecast incidents of one group over the realised weeks."""

    group_column: str
    group: str
    weeks: int
    expected: float
    observed: int
    ratio: float | None
    lower: float | None
    upper: float | None
    status: RatioStatus


class WeekTotal(_Model):
    """One realised week: the forecast total with its Poisson interval, and what was counted."""

    week_start: date
    as_of: date
    expected: float
    observed: int
    lower: float
    upper: float


class PaiFigure(_Model):
    area_share: float
    weeks: int
    value: float | None
    lower: float | None
    upper: float | None
    audited: float | None
    floor: float | None  # pai_fraction x audited: below it (by the interval) is an alert


class PlacesAlert(_Model):
    """A breach of the places checks (the same fields as `alerts.Breach`, own kinds)."""

    kind: Literal["count_ratio", "pai"]
    figure: str
    group_column: str
    group: str
    value: float | None
    threshold: float | None
    message: str


class PlacesRealised(_Model):
    first_week: date
    last_week: date
    weeks: int
    cells: int
    deviance: float
    # percentile interval of the mean deviance from resampling weeks (None: fewer than 2 weeks)
    deviance_lower: float | None = None
    deviance_upper: float | None = None
    pai: PaiFigure
    ratios: list[CountRatio]
    weekly: list[WeekTotal]
    exposure: list[ExposureRow]


class PlacesMonitoring(_Model):
    """What a check adds for the places champion beyond drift (kept in the check's JSON)."""

    realised: PlacesRealised | None
    realised_note: str | None = None
    alerts: list[PlacesAlert]
    ratio_band: tuple[float, float]
    pai_fraction: float
    # the cell features' drift (`places_drift`): None in checks kept before the rule existed,
    # or when the reference weeks were not available (``drift_note`` says why)
    input_drift: PlacesDrift | None = None
    drift_note: str | None = None
    # whether the store holds the reference weeks' history (None: checks kept before the
    # history was checked); not enough: no drift is judged and ``drift_note`` says so
    drift_history: DriftHistory | None = None
    # the forecast's drift (`places_scores`): the same rule on ``expected_count``, the same
    # weeks a year before (None: older checks, or not judged: see ``drift_note``)
    score_drift: PlacesDrift | None = None


def _quantiles(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return None, None
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(ok, [tail, 100 - tail])
    return float(lo), float(hi)


def poisson_interval(count: int, confidence: float) -> tuple[float, float]:
    """The exact (Garwood) interval of a Poisson mean from one observed ``count``."""
    a = 1 - confidence
    lower = 0.0 if count == 0 else float(stats.chi2.ppf(a / 2, 2 * count) / 2)
    upper = float(stats.chi2.ppf(1 - a / 2, 2 * count + 2) / 2)
    return lower, upper


def _weekly_sums(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    return (
        frame.group_by([*keys, "week_start"])
        .agg(
            pl.col("expected_count").sum().alias("expected"),
            pl.col("observed").sum().cast(pl.Int64).alias("observed"),
        )
        .sort([*keys, "week_start"])
    )


def _ratio(
    column: str, group: str, exp: np.ndarray, obs: np.ndarray, s: PlacesMonitoringSettings
) -> CountRatio:
    e, o = float(exp.sum()), int(obs.sum())
    if e <= 0:
        return CountRatio(
            group_column=column, group=group, weeks=exp.size, expected=e, observed=o,
            ratio=None, lower=None, upper=None, status="insufficient evidence",
        )  # fmt: skip
    rng = np.random.default_rng(s.seed)
    idx = rng.integers(0, exp.size, size=(s.bootstrap, exp.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = obs[idx].sum(axis=1) / exp[idx].sum(axis=1)
    b_lo, b_hi = _quantiles(boot, s.confidence)
    p_lo, p_hi = poisson_interval(o, s.confidence)
    lower = min(p_lo / e, b_lo if b_lo is not None else p_lo / e)
    upper = max(p_hi / e, b_hi if b_hi is not None else p_hi / e)
    if e < s.min_expected:
        status: RatioStatus = "insufficient evidence"
    elif lower > s.ratio_high or upper < s.ratio_low:
        status = "alert"
    else:
        status = "ok"
    return CountRatio(
        group_column=column, group=group, weeks=exp.size, expected=e, observed=o,
        ratio=o / e, lower=lower, upper=upper, status=status,
    )  # fmt: skip


def count_ratios(
    frame: pl.DataFrame, group_columns: Sequence[str], settings: PlacesMonitoringSettings
) -> list[CountRatio]:
    """Observed / forecast overall and per group of each column, with intervals."""
    overall = _weekly_sums(frame, [])
    out = [
        _ratio(
            ALL,
            ALL,
            overall["expected"].to_numpy(),
            overall["observed"].to_numpy().astype(np.float64),
            settings,
        )
    ]
    for column in group_columns:
        if column not in frame.columns:
            continue
        sums = _weekly_sums(frame.with_columns(pl.col(column).fill_null("(missing)")), [column])
        for (group,), part in sums.partition_by(column, as_dict=True, maintain_order=True).items():
            out.append(
                _ratio(
                    column,
                    str(group),
                    part["expected"].to_numpy(),
                    part["observed"].to_numpy().astype(np.float64),
                    settings,
                )
            )
    return out


def weekly_pai(frame: pl.DataFrame, share: float) -> np.ndarray:
    """PAI of each week at ``share`` of the area (NaN: a week without incidents)."""
    values = []
    for _, part in (
        frame.sort("week_start", "cell_id")
        .partition_by("week_start", as_dict=True, maintain_order=True)
        .items()
    ):
        _, pai = pai_at(
            part["expected_count"].cast(pl.Float64).to_numpy(),
            part["observed"].cast(pl.Float64).to_numpy(),
            part["area_km2"].cast(pl.Float64).to_numpy(),
            share,
        )
        values.append(pai)
    return np.asarray(values, dtype=np.float64)


def mean_pai(frame: pl.DataFrame, share: float) -> float | None:
    """The mean weekly PAI (the audited value when ``frame`` is the test predictions)."""
    pai = weekly_pai(frame, share)
    ok = pai[np.isfinite(pai)]
    return float(ok.mean()) if ok.size else None


def _pai(frame: pl.DataFrame, audited: float | None, s: PlacesMonitoringSettings) -> PaiFigure:
    pai = weekly_pai(frame, s.area_share)
    ok = pai[np.isfinite(pai)]
    lower = upper = value = None
    if ok.size:
        value = float(ok.mean())
        rng = np.random.default_rng(s.seed)
        boot = ok[rng.integers(0, ok.size, size=(s.bootstrap, ok.size))].mean(axis=1)
        lower, upper = _quantiles(boot, s.confidence)
    return PaiFigure(
        area_share=s.area_share,
        weeks=int(ok.size),
        value=value,
        lower=lower,
        upper=upper,
        audited=audited,
        floor=audited * s.pai_fraction if audited is not None else None,
    )


def _deviance_interval(
    frame: pl.DataFrame, s: PlacesMonitoringSettings
) -> tuple[float | None, float | None]:
    """Percentile interval of the mean deviance over cell-weeks, resampling whole weeks (the
    weeks are the units, as for the ratio and PAI)."""
    y = frame["observed"].cast(pl.Float64).to_numpy()
    mu = np.maximum(frame["expected_count"].cast(pl.Float64).to_numpy(), 1e-9)
    unit = 2.0 * (np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0) - (y - mu))
    weeks = (
        frame.select("week_start")
        .with_columns(pl.Series("d", unit))
        .group_by("week_start")
        .agg(pl.col("d").sum(), pl.len().alias("n"))
    )
    if weeks.height < 2:
        return None, None
    d, n = weeks["d"].to_numpy(), weeks["n"].to_numpy().astype(np.float64)
    idx = np.random.default_rng(s.seed).integers(0, d.size, size=(s.bootstrap, d.size))
    return _quantiles(d[idx].sum(axis=1) / n[idx].sum(axis=1), s.confidence)


def _weekly(frame: pl.DataFrame, confidence: float) -> list[WeekTotal]:
    sums = frame.group_by("week_start").agg(
        pl.col("as_of").first(),
        pl.col("expected_count").sum().alias("expected"),
        pl.col("observed").sum().cast(pl.Int64).alias("observed"),
    )
    out = []
    for row in sums.sort("week_start").iter_rows(named=True):
        mu = float(row["expected"])
        lo, hi = stats.poisson.interval(confidence, mu) if mu > 0 else (0.0, 0.0)
        out.append(
            WeekTotal(
                week_start=row["week_start"], as_of=row["as_of"], expected=mu,
                observed=int(row["observed"]), lower=float(lo), upper=float(hi),
            )
        )  # fmt: skip
    return out


def realised_places(
    frame: pl.DataFrame,
    settings: PlacesMonitoringSettings,
    *,
    audited_pai: float | None,
    policy: PlacesPolicy | None = None,
) -> PlacesRealised:
    """The realised figures of forecasts whose weeks have passed (``frame``: see the module)."""
    frame = frame.with_columns(pl.col("district").cast(pl.String).fill_null("(missing)"))
    weeks = frame["week_start"]
    exposure = (
        exposure_by_district(
            frame,
            policy.model_copy(update={"area_share": settings.area_share}),
        )
        if policy is not None
        else []
    )
    dev_lo, dev_hi = _deviance_interval(frame, settings)
    return PlacesRealised(
        first_week=weeks.min(),
        last_week=weeks.max(),
        weeks=weeks.n_unique(),
        cells=frame["cell_id"].n_unique(),
        deviance=poisson_deviance(
            frame["observed"].cast(pl.Float64).to_numpy(),
            frame["expected_count"].cast(pl.Float64).to_numpy(),
        ),
        deviance_lower=dev_lo,
        deviance_upper=dev_hi,
        pai=_pai(frame, audited_pai, settings),
        ratios=count_ratios(frame, settings.group_columns, settings),
        weekly=_weekly(frame, settings.confidence),
        exposure=exposure,
    )


def places_alerts(
    realised: PlacesRealised, settings: PlacesMonitoringSettings
) -> list[PlacesAlert]:
    """The breaches: count ratios outside the band (by their interval), and PAI below the
    configured fraction of the audited value (by its interval, over enough weeks)."""
    band = f"[{settings.ratio_low:g}, {settings.ratio_high:g}]"
    out = [
        PlacesAlert(
            kind="count_ratio",
            figure=RATIO_FIGURE,
            group_column=r.group_column,
            group=r.group,
            value=r.ratio,
            threshold=settings.ratio_high if (r.lower or 0) > settings.ratio_high else (
                settings.ratio_low
            ),
            message=(
                f"observed/forecast incidents {r.ratio:.2f} [{r.lower:.2f}, {r.upper:.2f}] in "
                f"{r.group_column}={r.group} over {r.weeks} weeks ({r.observed} observed, "
                f"{r.expected:.1f} forecast), outside {band}"
            ),
        )
        for r in realised.ratios
        if r.status == "alert" and r.ratio is not None and r.lower is not None
        and r.upper is not None
    ]  # fmt: skip
    p = realised.pai
    if (
        p.upper is not None
        and p.floor is not None
        and p.value is not None
        and p.weeks >= settings.min_pai_weeks
        and p.upper < p.floor
    ):
        out.append(
            PlacesAlert(
                kind="pai",
                figure=f"{PAI_FIGURE}@{p.area_share:g}",
                group_column=ALL,
                group=ALL,
                value=p.value,
                threshold=p.floor,
                message=(
                    f"PAI at {p.area_share:.0%} of the area {p.value:.2f} [{p.lower:.2f}, "
                    f"{p.upper:.2f}] over {p.weeks} weeks, below {settings.pai_fraction:g} x "
                    f"the audited {p.audited:.2f}"
                ),
            )
        )
    return out


def monitor_realised(
    frame: pl.DataFrame | None,
    settings: PlacesMonitoringSettings,
    *,
    audited_pai: float | None,
    policy: PlacesPolicy | None = None,
    note: str | None = None,
    drift: PlacesDrift | None = None,
    drift_note: str | None = None,
    history: DriftHistory | None = None,
    score_drift: PlacesDrift | None = None,
) -> PlacesMonitoring:
    """The places part of a check: realised figures (when weeks have passed), their alerts,
    and the cell features' drift (its alerts are the check's ``input_drift`` breaches)."""
    realised = (
        realised_places(frame, settings, audited_pai=audited_pai, policy=policy)
        if frame is not None and frame.height
        else None
    )
    return PlacesMonitoring(
        realised=realised,
        realised_note=note if realised is None else None,
        alerts=places_alerts(realised, settings) if realised is not None else [],
        ratio_band=(settings.ratio_low, settings.ratio_high),
        pai_fraction=settings.pai_fraction,
        input_drift=drift,
        drift_note=drift_note,
        drift_history=history,
        score_drift=score_drift,
    )


def places_figures(m: PlacesMonitoring) -> list[tuple[str, dict[str, str], float]]:
    """The places figures as (gauge name, labels, value) for `check.figures` (None left out):
    ``places_count_ratio{group_column, group, bound}``, ``places_pai{bound}``,
    ``places_pai_audited``, ``places_deviance``, ``places_observed`` / ``places_expected``
    (the newest realised week's totals), ``places_flagged_area_share`` /
    ``places_incident_share{region, district}``, ``places_input_rate_ratio{input,
    group_column, group}`` (each input now / a year before), ``places_effective_count`` /
    ``places_detectable_ratio{group_column, group, input}`` (each group's evidence),
    ``places_score_ratio{group_column, group, bound}`` (the mean forecast now / a year before,
    with its interval) and ``breaches{kind}`` of the places kinds."""
    out: list[tuple[str, dict[str, str], float]] = []

    def add(name: str, labels: dict[str, str], value: float | None) -> None:
        if value is not None and np.isfinite(value):
            out.append((name, labels, float(value)))

    r = m.realised
    if r is not None:
        for c in r.ratios:
            g = {"group_column": c.group_column, "group": c.group}
            for bound, v in (("value", c.ratio), ("lower", c.lower), ("upper", c.upper)):
                add("places_count_ratio", g | {"bound": bound}, v)
        for bound, v in (("value", r.pai.value), ("lower", r.pai.lower), ("upper", r.pai.upper)):
            add("places_pai", {"share": f"{r.pai.area_share:g}", "bound": bound}, v)
        add("places_pai_audited", {"share": f"{r.pai.area_share:g}"}, r.pai.audited)
        for bound, v in (
            ("value", r.deviance),
            ("lower", r.deviance_lower),
            ("upper", r.deviance_upper),
        ):
            add("places_deviance", {"bound": bound}, v)
        if r.weekly:
            add("places_expected", {"week": "newest"}, r.weekly[-1].expected)
            add("places_observed", {"week": "newest"}, r.weekly[-1].observed)
        for e in r.exposure:
            d = {"region": e.region, "district": e.district}
            add("places_flagged_area_share", d, e.flagged_area_share)
            add("places_incident_share", d, e.incident_share)
    if m.input_drift is not None:
        for row in m.input_drift.rows:
            g = {"input": row.input, "group_column": row.group_column, "group": row.group}
            add("places_input_rate_ratio", g, row.ratio)
        for ev in m.input_drift.evidence:
            g = {"group_column": ev.group_column, "group": ev.group, "input": ev.input or ""}
            add("places_effective_count", g, ev.effective_count)
            add("places_detectable_ratio", g, ev.detectable_ratio)
    if m.score_drift is not None:
        for row in m.score_drift.rows:
            g = {"group_column": row.group_column, "group": row.group}
            for bound, v in (("value", row.ratio), ("lower", row.lower), ("upper", row.upper)):
                add("places_score_ratio", g | {"bound": bound}, v)
    for kind in ("count_ratio", "pai"):
        add("breaches", {"kind": kind}, sum(a.kind == kind for a in m.alerts))
    return out
