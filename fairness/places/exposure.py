"""Exposure by district (pure): does the map concentrate attention beyond what incidents justify?

Per district (region, district), over the audited weeks:

- **flagged-area share**: the district's share of the flagged area (the top ``k`` of area per
  week, `fairness.places.metrics.flag_top_area`), averaged over weeks: where patrols would go;
- **incident share**: its share of the observed (registered) incidents over all weeks;
- **resident share**: its share of the residents (persons of the offline store known at the
  report's date, by district), or null when the store holds no persons;
- **ratio** = flagged-area share / incident share, with a percentile interval from resampling
  weeks (seeded), and flagged-area share / resident share (reported, never flagged: residents
  are context, not the measure of crime).

A district is **flagged** when the ratio's *lower* bound exceeds ``exposure.max_ratio`` (noise
alone never flags) and it holds at least ``exposure.min_flagged_share`` of the flagged area
(a ratio of tiny shares says little about where patrols go). A district with flagged area but
no incidents at all has no ratio and is flagged as "no incidents" when above that share.

Why incidents are the yardstick and why it is imperfect: registered incidents are the label the
map is trained on, and they depend on where patrols already were (the feedback-loop check
looks at that); an exposure ratio near 1 says the map mirrors the registrations, not that the
registrations mirror crime.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fairness.places.metrics import SCORE, flag_top_area
from fairness.places.results import ExposureRow, ExposureStatus
from fairness.policy import PlacesPolicy
from fairness.results import Estimate

KEYS = ["region", "district"]


def district_weeks(frame: pl.DataFrame, k: float, score: str = SCORE) -> pl.DataFrame:
    """One row per (district, week): flagged area, the week's flagged area, observed incidents
    and whether the district had any flagged cell that week."""
    flagged = flag_top_area(frame, k, score)
    ordered = flagged.sort([*KEYS, "week_start", "cell_id"])
    per = ordered.group_by([*KEYS, "week_start"], maintain_order=True).agg(
        pl.col("area_km2").filter(pl.col("flagged")).sum().alias("flagged_area"),
        pl.col("observed").sum().alias("observed"),
        pl.col("flagged").any().alias("any_flagged"),
    )
    return per.with_columns(
        pl.col("flagged_area").sum().over("week_start").alias("week_flagged_area")
    ).sort([*KEYS, "week_start"])


def _shares(
    flagged: np.ndarray, week_flagged: np.ndarray, observed: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per district (rows) the mean flagged-area share and the incident share, with weeks
    (columns) weighted by ``weights`` (counts of each week in a resample)."""
    share = np.divide(flagged, week_flagged, out=np.zeros_like(flagged), where=week_flagged > 0)
    area_share = (share * weights).sum(axis=1) / weights.sum()
    obs = (observed * weights).sum(axis=1)
    total = obs.sum()
    incident_share = obs / total if total > 0 else np.zeros_like(obs)
    return area_share, incident_share


def exposure_by_district(
    frame: pl.DataFrame,
    policy: PlacesPolicy,
    residents: pl.DataFrame | None = None,
    score: str = SCORE,
) -> list[ExposureRow]:
    """The exposure table (see the module docstring); ``residents``: ``region``, ``district``,
    ``residents`` (persons per district), or None when the store holds no persons."""
    per = district_weeks(frame, policy.area_share, score)
    districts = per.select(KEYS).unique().sort(KEYS)
    weeks = per.select("week_start").unique().sort("week_start")
    grid = districts.join(weeks, how="cross").join(per, on=[*KEYS, "week_start"], how="left")
    grid = grid.with_columns(
        pl.col("flagged_area", "observed").fill_null(0.0),
        pl.col("any_flagged").fill_null(False),
        pl.col("week_flagged_area").fill_null(strategy="max").over("week_start"),
    ).sort([*KEYS, "week_start"])
    n_d, n_w = districts.height, weeks.height
    if n_d == 0 or n_w == 0:
        return []

    def matrix(column: str) -> np.ndarray:
        return grid[column].cast(pl.Float64).fill_null(0.0).to_numpy().reshape(n_d, n_w)

    flagged, week_flagged, observed = (
        matrix("flagged_area"), matrix("week_flagged_area"), matrix("observed")
    )  # fmt: skip
    area_share, incident_share = _shares(flagged, week_flagged, observed, np.ones(n_w))
    boot = policy.bootstrap
    rng = np.random.default_rng(boot.seed + 101)
    resamples = (
        np.bincount(rng.integers(0, n_w, n_w), minlength=n_w)
        for _ in range(boot.n_boot if n_w >= 2 else 0)
    )
    draws = [_shares(flagged, week_flagged, observed, w) for w in resamples]
    tail = (1 - boot.confidence) / 2 * 100
    resident_share = _resident_shares(districts, residents)
    weeks_flagged = grid["any_flagged"].to_numpy().reshape(n_d, n_w).sum(axis=1)
    rows: list[ExposureRow] = []
    for i, key in enumerate(districts.iter_rows()):
        ratio = Estimate()
        if incident_share[i] > 0:
            value = float(area_share[i] / incident_share[i])
            ratios = np.array([a[i] / s[i] for a, s in draws if s[i] > 0])
            if ratios.size:
                lo, hi = np.percentile(ratios, [tail, 100 - tail])
                ratio = Estimate(value=value, low=float(min(lo, value)), high=float(max(hi, value)))
            else:
                ratio = Estimate(value=value)
        res = resident_share.get((str(key[0]), str(key[1])))
        rows.append(
            ExposureRow(
                region=str(key[0]),
                district=str(key[1]),
                flagged_area_share=float(area_share[i]),
                incident_share=float(incident_share[i]),
                resident_share=res,
                ratio=ratio,
                resident_ratio=float(area_share[i] / res) if res else None,
                weeks_flagged=int(weeks_flagged[i]),
                status=_status(float(area_share[i]), float(incident_share[i]), ratio, policy),
            )
        )
    return rows


def _status(
    area_share: float, incident_share: float, ratio: Estimate, policy: PlacesPolicy
) -> ExposureStatus:
    rule = policy.exposure
    if area_share < rule.min_flagged_share:
        return "too little area" if area_share > 0 else "ok"
    if incident_share <= 0:
        return "no incidents"
    if ratio.low is not None and ratio.low > rule.max_ratio:
        return "flagged"
    return "ok"


def _resident_shares(
    districts: pl.DataFrame, residents: pl.DataFrame | None
) -> dict[tuple[str, str], float]:
    """Each audited district's share of the residents of the audited regions (persons with no
    district are left out of both sides: they are nowhere on the map)."""
    if residents is None or residents.height == 0:
        return {}
    regions = districts["region"].unique().to_list()
    known = residents.filter(pl.col("region").is_in(regions) & pl.col("district").is_not_null())
    total = float(known["residents"].sum() or 0)
    if total <= 0:
        return {}
    return {
        (str(r), str(d)): float(n) / total
        for r, d, n in known.select("region", "district", "residents").iter_rows()
    }


def residents_by_district(persons: pl.DataFrame) -> pl.DataFrame:
    """Persons per (region, district) from the store's ``persons`` rows known at the date."""
    return (
        persons.group_by("region", "district")
        .agg(pl.len().cast(pl.Int64).alias("residents"))
        .sort("region", "district")
    )
