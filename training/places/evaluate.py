"""Out-of-time evaluation of the model beside its baselines (and the truth, when known).

Input: one row per (cell, test week) of horizon 1 with ``observed`` and one column per scorer
(`SCORERS`). Output: `PlacesEvaluation`: per scorer the metrics of `training.places.metrics`
overall and per region (cells ranked within the region, area shares of the region), paired
bootstrap intervals over weeks of model − baseline for PAI@5 % and deviance, calibration
tables, the coverage of the model's intervals, and the PAI-vs-area curves for the plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from training.places.metrics import (
    AREA_SHARES,
    calibration_table,
    paired_bootstrap,
    paired_weeks,
    share_label,
    summarise,
    week_scores,
    weekly_deviance,
)

SCORERS: dict[str, str] = {
    "model": "expected_count",
    "last4": "baseline_last4",
    "kde": "baseline_kde",
    "hawkes": "baseline_hawkes",
    "truth": "truth_expected_count",
}
"""Scorer name -> its column in the evaluation frame (``truth`` only with a known truth)."""
CURVE_SHARES: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5)
HEADLINE_SHARE = 0.05


@dataclass
class PlacesEvaluation:
    overall: dict[str, dict[str, float]]
    by_region: dict[str, dict[str, dict[str, float]]]
    differences: dict[str, dict[str, float]]
    calibration_region: pl.DataFrame
    calibration_decile: pl.DataFrame
    coverage: float | None
    curves: dict[str, list[float]]
    weekly: pl.DataFrame
    per_horizon_deviance: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat MLflow metric names: ``test_<scorer>_<metric>``, ``test_<region>_<scorer>_...``,
        ``diff_<metric>_model_minus_<baseline>_{mean,low,high}``, ``test_interval_coverage``."""
        out: dict[str, float] = {}
        for scorer, m in self.overall.items():
            out.update({f"test_{scorer}_{k}": v for k, v in m.items()})
        for region, scorers in self.by_region.items():
            for scorer, m in scorers.items():
                out.update({f"test_{region}_{scorer}_{k}": v for k, v in m.items()})
        for name, d in self.differences.items():
            out.update({f"diff_{name}_{k}": v for k, v in d.items()})
        if self.coverage is not None:
            out["test_interval_coverage"] = self.coverage
        for h, v in self.per_horizon_deviance.items():
            out[f"test_model_deviance_{h}"] = v
        return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}

    def headline(self) -> list[dict[str, Any]]:
        """Rows of the table `riskcast places train` prints."""
        rows = []
        for scorer, m in self.overall.items():
            row: dict[str, Any] = {"scorer": scorer}
            for sh in AREA_SHARES:
                row[f"PAI@{share_label(sh)}%"] = m.get(f"pai_{share_label(sh)}")
            row["PEI@5%"] = m.get("pei_5")
            row["deviance"] = None if scorer == "truth" else m.get("deviance")
            rows.append(row)
        return rows


def _curve(weekly: pl.DataFrame, scorer: str) -> list[float]:
    """Mean PAI over weeks at each share of `CURVE_SHARES` (NaN weeks left out)."""
    mine = weekly.filter(pl.col("score") == scorer)
    out = []
    for sh in CURVE_SHARES:
        v = mine.filter(pl.col("share") == sh)["pai"].to_numpy()
        v = v[np.isfinite(v)]
        out.append(float(v.mean()) if v.size else float("nan"))
    return out


def present_scorers(frame: pl.DataFrame) -> list[str]:
    return [name for name, col in SCORERS.items() if col in frame.columns]


def evaluate_places(
    frame: pl.DataFrame,
    *,
    bootstrap: int = 2000,
    seed: int = 0,
    lower: str | None = "lower_80",
    upper: str | None = "upper_80",
    shares: Sequence[float] = AREA_SHARES,
) -> PlacesEvaluation:
    """Everything the run logs about the test weeks (see the module docstring)."""
    scorers = present_scorers(frame)
    renamed = frame.rename({SCORERS[s]: s for s in scorers})
    overall = summarise(renamed, scorers, shares)
    weekly = week_scores(renamed, scorers, sorted({*shares, *CURVE_SHARES}))
    by_region: dict[str, dict[str, dict[str, float]]] = {}
    for key, part in renamed.partition_by("region", as_dict=True).items():
        by_region[str(key[0])] = summarise(part, scorers, shares)
    differences: dict[str, dict[str, float]] = {}
    dev = weekly_deviance(renamed, scorers)
    for base in scorers:
        if base == "model":
            continue
        d = paired_weeks(weekly, "model", base, HEADLINE_SHARE, n=bootstrap, seed=seed)
        differences[f"pai_5_model_minus_{base}"] = d.as_dict()
        if base != "truth":
            a = dev.filter(pl.col("score") == "model").sort("week_start")["deviance"].to_numpy()
            b = dev.filter(pl.col("score") == base).sort("week_start")["deviance"].to_numpy()
            differences[f"deviance_model_minus_{base}"] = paired_bootstrap(
                a, b, n=bootstrap, seed=seed
            ).as_dict()
    if "kde" in scorers and "truth" in scorers:
        kde, truth, model = (overall[s]["pai_5"] for s in ("kde", "truth", "model"))
        if np.isfinite(truth - kde) and truth != kde:
            differences["pai_5_way_from_kde_to_truth"] = {"share": (model - kde) / (truth - kde)}
    coverage = None
    if lower and upper and lower in frame.columns and upper in frame.columns:
        obs = frame["observed"]
        inside = (obs >= frame[lower]) & (obs <= frame[upper])
        coverage = float(inside.cast(pl.Float64).mean() or 0.0)  # type: ignore[arg-type]
    curves = {s: _curve(weekly, s) for s in scorers}
    return PlacesEvaluation(
        overall=overall,
        by_region=by_region,
        differences=differences,
        calibration_region=calibration_table(renamed, "model", by="region"),
        calibration_decile=calibration_table(renamed, "model", deciles=True),
        coverage=coverage,
        curves=curves,
        weekly=weekly,
    )
