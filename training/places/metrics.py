"""How a forecast of weekly counts per map cell is judged: pure functions of arrays and frames.

- `poisson_deviance`: the loss of expected counts (mean over cell-weeks; 0 for a perfect fit).
- `flagged_capture`: the share of incidents captured when the highest-ranked cells covering a
  share of the area are flagged. Cells with equal forecasts are an unordered group: where the
  area limit cuts through such a group, it contributes its incidents in proportion to the area
  taken from it (the expected capture under a random order). Without this a baseline with many
  ties (a last-4-weeks mean is 0 in most cells) would be scored by the cell ids' order.
- `week_scores`: hit rate, PAI (hit rate / area share) and PEI (PAI / the best PAI in hindsight:
  the same area flagged by the observed counts) per week, for one or several scores.
- `calibration_table`: expected vs observed totals per group (region, decile of forecasts).
- `paired_bootstrap`: the mean of a per-week difference (model - baseline) with a 95 %
  interval from resampling weeks (the weeks are the units; cells of a week are not independent).

Weekly metrics are averaged over weeks (a week without incidents has no hit rate and is left
out of every score's average alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

AREA_SHARES: tuple[float, ...] = (0.01, 0.05, 0.10)
"""The shares of area at which hit rate, PAI and PEI are reported."""
_EPS = 1e-12


def share_label(share: float) -> str:
    """``0.05`` -> ``"5"`` (metric names: ``pai_5``)."""
    pct = share * 100
    return f"{pct:g}".replace(".", "_")


def poisson_deviance(
    observed: Sequence[float] | FloatArray, expected: Sequence[float] | FloatArray
) -> float:
    """Mean Poisson deviance ``2 (y log(y/mu) - (y - mu))`` with ``y log y = 0`` at ``y = 0``;
    expected counts are floored at 1e-9 so that a zero forecast of an incident is a large, finite
    loss rather than infinity."""
    y = np.asarray(observed, dtype=np.float64)
    mu = np.maximum(np.asarray(expected, dtype=np.float64), 1e-9)
    if y.shape != mu.shape:
        raise ValueError(f"{y.size} observed counts but {mu.size} expected counts")
    if y.size == 0:
        return float("nan")
    ratio = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return float(np.mean(2.0 * (ratio - (y - mu))))


def flagged_capture(
    score: FloatArray, observed: FloatArray, area: FloatArray, share: float
) -> tuple[float, float]:
    """``(incidents captured, area flagged)`` when the cells with the highest ``score`` are
    flagged until ``share`` of the total area is covered (ties shared in proportion of area;
    see the module docstring)."""
    if not 0 < share <= 1:
        raise ValueError(f"area share must be in (0, 1], not {share}")
    total_area = float(area.sum())
    if score.size == 0 or total_area <= 0:
        return 0.0, 0.0
    target = share * total_area
    order = np.argsort(-score, kind="stable")
    s, y, a = score[order], observed[order], area[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group_y = np.add.reduceat(y, starts)
    group_a = np.add.reduceat(a, starts)
    cum_a = np.cumsum(group_a)
    full = int(np.searchsorted(cum_a, target * (1 + 1e-12), side="right"))
    captured = float(group_y[:full].sum())
    flagged = float(cum_a[full - 1]) if full else 0.0
    if full < group_a.size and flagged < target:
        part = (target - flagged) / float(group_a[full])
        captured += part * float(group_y[full])
        flagged = target
    return captured, flagged


def pai_at(
    score: FloatArray, observed: FloatArray, area: FloatArray, share: float
) -> tuple[float, float]:
    """``(hit rate, PAI)`` of one week at one area share; NaN without incidents."""
    total = float(observed.sum())
    if total <= 0:
        return float("nan"), float("nan")
    captured, flagged = flagged_capture(score, observed, area, share)
    hit = captured / total
    area_share = flagged / float(area.sum())
    return hit, hit / max(area_share, _EPS)


def week_scores(
    frame: pl.DataFrame,
    scores: Sequence[str],
    shares: Sequence[float] = AREA_SHARES,
    *,
    observed: str = "observed",
    area: str = "area_km2",
    week: str = "week_start",
) -> pl.DataFrame:
    """One row per (week, score, share): ``hit_rate``, ``pai``, ``pai_best`` (ranking by the
    observed counts themselves), ``pei`` = pai / pai_best, ``incidents`` that week."""
    rows: list[dict[str, object]] = []
    for key, part in frame.sort(week).partition_by(week, as_dict=True, maintain_order=True).items():
        y = part[observed].cast(pl.Float64).to_numpy()
        a = part[area].cast(pl.Float64).to_numpy()
        best = {sh: pai_at(y, y, a, sh)[1] for sh in shares}
        for name in scores:
            s = part[name].cast(pl.Float64).fill_null(0.0).to_numpy()
            for sh in shares:
                hit, pai = pai_at(s, y, a, sh)
                pei = pai / best[sh] if best[sh] and np.isfinite(best[sh]) else float("nan")
                rows.append(
                    {
                        week: key[0],
                        "score": name,
                        "share": sh,
                        "hit_rate": hit,
                        "pai": pai,
                        "pai_best": best[sh],
                        "pei": pei,
                        "incidents": float(y.sum()),
                    }
                )
    schema = {
        week: frame.schema[week] if week in frame.columns else pl.Date,
        "score": pl.Utf8,
        "share": pl.Float64,
        "hit_rate": pl.Float64,
        "pai": pl.Float64,
        "pai_best": pl.Float64,
        "pei": pl.Float64,
        "incidents": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def weekly_deviance(
    frame: pl.DataFrame,
    scores: Sequence[str],
    *,
    observed: str = "observed",
    week: str = "week_start",
) -> pl.DataFrame:
    """One row per (week, score): the mean Poisson deviance of that week's cells."""
    rows: list[dict[str, object]] = []
    for key, part in frame.sort(week).partition_by(week, as_dict=True, maintain_order=True).items():
        y = part[observed].cast(pl.Float64).to_numpy()
        for name in scores:
            mu = part[name].cast(pl.Float64).fill_null(0.0).to_numpy()
            rows.append({week: key[0], "score": name, "deviance": poisson_deviance(y, mu)})
    return pl.DataFrame(
        rows, schema={week: frame.schema[week], "score": pl.Utf8, "deviance": pl.Float64}
    )


def summarise(
    frame: pl.DataFrame,
    scores: Sequence[str],
    shares: Sequence[float] = AREA_SHARES,
    *,
    observed: str = "observed",
) -> dict[str, dict[str, float]]:
    """Per score: ``deviance`` (over all cell-weeks), ``hit_<p>``, ``pai_<p>``, ``pei_<p>``
    (means over weeks with incidents), ``expected``/``observed`` totals and ``weeks``."""
    weekly = week_scores(frame, scores, shares, observed=observed)
    y = frame[observed].cast(pl.Float64).to_numpy()
    out: dict[str, dict[str, float]] = {}
    for name in scores:
        mu = frame[name].cast(pl.Float64).fill_null(0.0).to_numpy()
        m: dict[str, float] = {
            "deviance": poisson_deviance(y, mu),
            "expected": float(mu.sum()),
            "observed": float(y.sum()),
        }
        mine = weekly.filter(pl.col("score") == name)
        for sh in shares:
            part = mine.filter(pl.col("share") == sh)
            label = share_label(sh)
            for metric in ("hit_rate", "pai", "pei"):
                values = part[metric].to_numpy()
                key = "hit" if metric == "hit_rate" else metric
                m[f"{key}_{label}"] = _nanmean(values)
            m[f"pai_best_{label}"] = _nanmean(part["pai_best"].to_numpy())
        m["weeks"] = float(weekly.filter(pl.col("score") == name)["week_start"].n_unique())
        out[name] = m
    return out


def _nanmean(values: FloatArray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def calibration_table(
    frame: pl.DataFrame,
    score: str,
    *,
    by: str | None = None,
    deciles: bool = False,
    observed: str = "observed",
) -> pl.DataFrame:
    """Expected vs observed per group: by a column (``by="region"``) or by decile of the
    forecast over all cell-weeks (``deciles=True``, 1 = lowest). Columns: the group,
    ``cell_weeks``, ``expected``, ``observed``, ``ratio`` (observed / expected)."""
    if deciles == (by is not None):
        raise ValueError("give either `by` or `deciles=True`")
    if deciles:
        n = frame.height
        ranks = frame[score].rank("ordinal").cast(pl.Float64).to_numpy()
        groups = np.clip(np.ceil(ranks * 10 / max(n, 1)), 1, 10).astype(np.int32)
        frame = frame.with_columns(pl.Series("decile", groups))
        by = "decile"
    assert by is not None
    return (
        frame.group_by(by)
        .agg(
            pl.len().alias("cell_weeks"),
            pl.col(score).cast(pl.Float64).sum().alias("expected"),
            pl.col(observed).cast(pl.Float64).sum().alias("observed"),
        )
        .with_columns(
            (pl.col("observed") / pl.when(pl.col("expected") > 0).then(pl.col("expected"))).alias(
                "ratio"
            )
        )
        .sort(by)
    )


@dataclass(frozen=True)
class BootstrapDiff:
    """A paired difference over weeks: mean and a percentile interval."""

    mean: float
    low: float
    high: float
    weeks: int
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "weeks": float(self.weeks)}


def paired_bootstrap(
    model: Sequence[float] | FloatArray,
    baseline: Sequence[float] | FloatArray,
    *,
    n: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapDiff:
    """Mean of ``model - baseline`` over the weeks where both are finite, with the
    ``level`` percentile interval of that mean over ``n`` resamples of the weeks (seeded)."""
    a = np.asarray(model, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{a.size} model weeks but {b.size} baseline weeks")
    diff = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if diff.size == 0:
        return BootstrapDiff(float("nan"), float("nan"), float("nan"), 0, level)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(n, diff.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return BootstrapDiff(float(diff.mean()), float(low), float(high), int(diff.size), level)


def weekly_metric(
    weekly: pl.DataFrame, score: str, share: float, metric: str = "pai"
) -> pl.DataFrame:
    """``week_start, value`` of one score's metric at one share (for `paired_bootstrap`)."""
    return (
        weekly.filter((pl.col("score") == score) & (pl.col("share") == share))
        .select("week_start", pl.col(metric).alias("value"))
        .sort("week_start")
    )


def paired_weeks(
    weekly: pl.DataFrame, model: str, baseline: str, share: float, metric: str = "pai", **kw: int
) -> BootstrapDiff:
    """`paired_bootstrap` of ``metric`` at ``share`` between two scores of `week_scores`."""
    a = weekly_metric(weekly, model, share, metric)
    b = weekly_metric(weekly, baseline, share, metric)
    joined = a.join(b, on="week_start", suffix="_b")
    return paired_bootstrap(joined["value"].to_numpy(), joined["value_b"].to_numpy(), **kw)


def pai_curve(
    frame: pl.DataFrame, score: str, shares: Sequence[float], *, observed: str = "observed"
) -> FloatArray:
    """Mean PAI over weeks at each of ``shares`` (the PAI-vs-area curve of a plot)."""
    weekly = week_scores(frame, [score], shares, observed=observed)
    return np.array(
        [_nanmean(weekly.filter(pl.col("share") == sh)["pai"].to_numpy()) for sh in shares]
    )
