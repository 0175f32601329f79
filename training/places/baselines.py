"""The baselines a places model must beat, each computed from the incidents known at ``T``.

- ``last4``: the mean weekly count of the last 4 weeks per cell (what a dashboard shows).
- ``kde``: the analyst's classic hotspot map: a Gaussian kernel on the points of the incidents
  registered in the last ``weeks`` weeks, integrated over each cell (density at the centroid x
  the cell's area, with the kernel cut at 4 bandwidths) and scaled so that the cells share the
  last-``weeks`` weekly rate. Bandwidth and ``weeks`` are chosen on the tuning origins.
- ``hawkes``: a self-exciting (Hawkes-style) estimate. No maintained Python package fits a
  spatio-temporal Hawkes/ETAS model on cells (``tick`` is temporal and multivariate, the
  others on the package index are unmaintained or temporal only), so this is a small explicit
  one: expected count in week h = w0·(universe mean rate) + w1·(cell's long-run rate) +
  w2·(decayed recent incidents of the cell) + w3·(the same over its ring-1 neighbours), where an
  incident ``d`` weeks before the start of week h contributes ``exp(-d/τ) - exp(-(d+1)/τ)``
  (an exponential kernel integrated over the week, so its total is 1 offspring per unit of w).
  The weights are non-negative and fitted by Poisson maximum likelihood on the tuning origins,
  τ is chosen there by deviance.

A forecast that is exactly 0 where an incident happens makes the Poisson deviance blow up
rather than measure anything, and truncation (a cut kernel, a quiet month) produces such zeros.
So ``last4`` and ``kde`` mix ``floor_share`` (2 %) of the universe-wide weekly rate, spread by
area, into their forecasts: this leaves their rankings unchanged (ties stay ties) and is said
in the model card.

Every function is pure: `OriginData` (the universe and the incidents known at ``T``) in,
``cell_id, horizon, value`` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.optimize import minimize

from features.cells.cells import forecast_week_start
from features.cells.geo import kernel_pairs, xyz_km
from features.store.offline import end_of_day
from training.places.metrics import pai_at, poisson_deviance

FloatArray = NDArray[np.float64]
UTC_TS = pl.Datetime("us", "UTC")
BASELINES = ("last4", "kde", "hawkes")
FLOOR_SHARE = 0.02
HAWKES_TERMS = ("mean_rate", "long_run", "own_recent", "ring_recent")


@dataclass(frozen=True)
class OriginData:
    """What a baseline may see as of ``as_of``: the universe's cells (``cell_id, lat, lon,
    area_km2``) and the incidents registered by the end of ``as_of`` (``cell_id, lat, lon,
    registered_at``), already restricted to what was known then."""

    as_of: date
    cells: pl.DataFrame
    incidents: pl.DataFrame
    neighbours: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"cell_id": pl.Utf8, "neighbour": pl.Utf8})
    )

    def since(self, weeks: float) -> pl.DataFrame:
        """Incidents registered in the last ``weeks`` weeks up to the end of ``as_of``."""
        start = end_of_day(self.as_of) - timedelta(days=7 * weeks)
        return self.incidents.filter(pl.col("registered_at") >= pl.lit(start, dtype=UTC_TS))


def _broadcast(cells: pl.DataFrame, values: FloatArray, horizons: Sequence[int]) -> pl.DataFrame:
    base = pl.DataFrame({"cell_id": cells["cell_id"], "value": values})
    hs = pl.DataFrame({"horizon": list(horizons)}, schema={"horizon": pl.Int32})
    return base.join(hs, how="cross").select("cell_id", "horizon", "value")


def _floored(
    rate: FloatArray, area: FloatArray, total_rate: float, floor_share: float
) -> FloatArray:
    """``(1 - s)·rate + s·total·area/Σarea``: the cells keep their order, none is exactly 0
    unless nothing happened at all."""
    if area.sum() <= 0:
        return rate
    out: FloatArray = (1 - floor_share) * rate + floor_share * total_rate * area / area.sum()
    return out


def last_weeks_mean(
    origin: OriginData, horizons: Sequence[int], *, weeks: int = 4, floor_share: float = FLOOR_SHARE
) -> pl.DataFrame:
    """Mean weekly count of the last ``weeks`` weeks per cell, the same for every horizon."""
    counts = origin.since(weeks).group_by("cell_id").agg(pl.len().alias("n"))
    n = (
        origin.cells.select("cell_id")
        .join(counts, on="cell_id", how="left")["n"]
        .fill_null(0)
        .cast(pl.Float64)
        .to_numpy()
    )
    rate = n / weeks
    area = origin.cells["area_km2"].to_numpy()
    return _broadcast(origin.cells, _floored(rate, area, float(rate.sum()), floor_share), horizons)


def kde_rate(origin: OriginData, *, bandwidth_km: float, weeks: int) -> FloatArray:
    """The kernel estimate per cell (weekly rate, before the floor); 0 where no point is within
    4 bandwidths."""
    pts = origin.since(weeks)
    cells = origin.cells
    if pts.is_empty() or cells.is_empty():
        empty: FloatArray = np.zeros(cells.height)
        return empty
    _, col, mass = kernel_pairs(
        xyz_km(pts["lat"].to_numpy(), pts["lon"].to_numpy()),
        xyz_km(cells["lat"].to_numpy(), cells["lon"].to_numpy()),
        cells["area_km2"].to_numpy(),
        bandwidth_km,
    )
    out: FloatArray = np.bincount(col, weights=mass, minlength=cells.height).astype(np.float64)
    if out.sum() <= 0:
        return out
    scaled: FloatArray = out / out.sum() * pts.height / weeks
    return scaled


def kde(
    origin: OriginData,
    horizons: Sequence[int],
    *,
    bandwidth_km: float,
    weeks: int,
    floor_share: float = FLOOR_SHARE,
) -> pl.DataFrame:
    """The KDE baseline (see the module docstring), the same for every horizon."""
    rate = kde_rate(origin, bandwidth_km=bandwidth_km, weeks=weeks)
    area = origin.cells["area_km2"].to_numpy()
    total = origin.since(weeks).height / weeks
    return _broadcast(origin.cells, _floored(rate, area, total, floor_share), horizons)


# ---- Hawkes-style --------------------------------------------------------------------------


@dataclass(frozen=True)
class HawkesParams:
    """Decay time τ (weeks), the look-back of the long-run rate, and the four weights."""

    tau_weeks: float
    weights: tuple[float, float, float, float]
    long_run_weeks: int = 156
    recent_weeks: int = 52

    def as_dict(self) -> dict[str, float]:
        out = {"tau_weeks": self.tau_weeks, "long_run_weeks": float(self.long_run_weeks)}
        out.update({f"w_{k}": w for k, w in zip(HAWKES_TERMS, self.weights, strict=True)})
        return out


def hawkes_terms(
    origin: OriginData,
    horizons: Sequence[int],
    *,
    tau_weeks: float,
    long_run_weeks: int = 156,
    recent_weeks: int = 52,
) -> pl.DataFrame:
    """``cell_id, horizon`` and the four terms of the estimate (weights not applied)."""
    cells = origin.cells.select("cell_id")
    n_cells = max(cells.height, 1)
    long_run = (
        origin.since(long_run_weeks)
        .group_by("cell_id")
        .agg((pl.len() / long_run_weeks).alias("long_run"))
    )
    week1 = forecast_week_start(origin.as_of, 1)
    start1 = pl.lit(end_of_day(week1 - timedelta(days=1)), dtype=UTC_TS)
    recent = (
        origin.since(recent_weeks)
        .with_columns(
            ((start1 - pl.col("registered_at")).dt.total_seconds() / (7 * 86400.0)).alias("_d")
        )
        .group_by("cell_id")
        .agg((-pl.col("_d") / tau_weeks).exp().sum().alias("_s"))
    )
    ring = (
        origin.neighbours.join(recent.rename({"cell_id": "neighbour"}), on="neighbour")
        .group_by("cell_id")
        .agg(pl.col("_s").sum().alias("_r"))
    )
    mean_rate = origin.since(long_run_weeks).height / long_run_weeks / n_cells
    base = (
        cells.join(long_run, on="cell_id", how="left")
        .join(recent, on="cell_id", how="left")
        .join(ring, on="cell_id", how="left")
        .fill_null(0.0)
    )
    hs = pl.DataFrame({"horizon": list(horizons)}, schema={"horizon": pl.Int32})
    step = 1.0 - np.exp(-1.0 / tau_weeks)
    decay = (-(pl.col("horizon").cast(pl.Float64) - 1) / tau_weeks).exp() * step
    return base.join(hs, how="cross").select(
        "cell_id",
        "horizon",
        pl.lit(mean_rate).alias("mean_rate"),
        pl.col("long_run").cast(pl.Float64),
        (pl.col("_s") * decay).alias("own_recent"),
        (pl.col("_r") * decay).alias("ring_recent"),
    )


def hawkes(origin: OriginData, horizons: Sequence[int], params: HawkesParams) -> pl.DataFrame:
    """The fitted self-exciting estimate per cell and horizon."""
    terms = hawkes_terms(
        origin,
        horizons,
        tau_weeks=params.tau_weeks,
        long_run_weeks=params.long_run_weeks,
        recent_weeks=params.recent_weeks,
    )
    x = terms.select(HAWKES_TERMS).to_numpy()
    return terms.select("cell_id", "horizon").with_columns(
        pl.Series("value", x @ np.asarray(params.weights))
    )


def fit_poisson_weights(x: FloatArray, y: FloatArray) -> tuple[FloatArray, float]:
    """Non-negative weights ``w`` maximising the Poisson likelihood of ``y ~ x @ w`` (an
    identity link, so each term stays an additive rate); returns ``(w, mean deviance)``."""
    scale = np.maximum(x.mean(axis=0), 1e-12)
    xs = x / scale

    def nll(w: FloatArray) -> tuple[float, FloatArray]:
        mu = np.maximum(xs @ w, 1e-9)
        value = float(np.sum(mu - y * np.log(mu)))
        grad = xs.T @ (1.0 - y / mu)
        return value, grad

    start = np.full(x.shape[1], max(float(y.mean()), 1e-6) / x.shape[1])
    res = minimize(nll, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * x.shape[1])
    w = np.asarray(res.x) / scale
    return w, poisson_deviance(y, x @ w)


def fit_hawkes(
    origins: Sequence[OriginData],
    labels: pl.DataFrame,
    horizons: Sequence[int],
    *,
    taus: Sequence[float] = (1.0, 2.0, 4.0, 8.0),
    long_run_weeks: int = 156,
    recent_weeks: int = 52,
) -> tuple[HawkesParams, dict[str, float]]:
    """Weights by Poisson likelihood and τ by deviance, over the tuning origins; ``labels`` are
    ``cell_id, as_of, horizon, label``. Returns the parameters and the deviance per τ."""
    scores: dict[str, float] = {}
    best: tuple[float, HawkesParams] | None = None
    for tau in taus:
        frames = [
            hawkes_terms(
                o, horizons, tau_weeks=tau, long_run_weeks=long_run_weeks, recent_weeks=recent_weeks
            ).with_columns(pl.lit(o.as_of, dtype=pl.Date).alias("as_of"))
            for o in origins
        ]
        joined = pl.concat(frames).join(labels, on=["cell_id", "as_of", "horizon"])
        x = joined.select(HAWKES_TERMS).to_numpy()
        y = joined["label"].cast(pl.Float64).to_numpy()
        w, dev = fit_poisson_weights(x, y)
        scores[f"tau_{tau:g}"] = dev
        params = HawkesParams(
            tau, (float(w[0]), float(w[1]), float(w[2]), float(w[3])), long_run_weeks, recent_weeks
        )
        if best is None or dev < best[0]:
            best = (dev, params)
    if best is None:
        raise ValueError("fit_hawkes needs at least one decay time")
    return best[1], scores


@dataclass(frozen=True)
class KdeParams:
    bandwidth_km: float
    weeks: int

    def as_dict(self) -> dict[str, float]:
        return {"bandwidth_km": self.bandwidth_km, "weeks": float(self.weeks)}


def fit_kde(
    origins: Sequence[OriginData],
    labels: pl.DataFrame,
    *,
    bandwidths_km: Sequence[float],
    weeks: Sequence[int],
    share: float = 0.05,
) -> tuple[KdeParams, dict[str, float]]:
    """Bandwidth and window with the highest mean PAI at ``share`` of the area over the tuning
    origins (horizon 1; the map is judged by the cells it points at, as it is used); ties go to
    the lower deviance. ``labels``: ``cell_id, as_of, horizon, label``."""
    h1 = labels.filter(pl.col("horizon") == 1)
    scores: dict[str, float] = {}
    best: tuple[float, float, KdeParams] | None = None
    for bw in bandwidths_km:
        for n in weeks:
            pais: list[float] = []
            ys: list[FloatArray] = []
            mus: list[FloatArray] = []
            for o in origins:
                pred = kde(o, [1], bandwidth_km=bw, weeks=n).join(
                    o.cells.select("cell_id", "area_km2"), on="cell_id"
                )
                got = pred.join(
                    h1.filter(pl.col("as_of") == o.as_of).select("cell_id", "label"), on="cell_id"
                )
                y = got["label"].cast(pl.Float64).to_numpy()
                mu = got["value"].to_numpy()
                pais.append(pai_at(mu, y, got["area_km2"].to_numpy(), share)[1])
                ys.append(y)
                mus.append(mu)
            arr = np.asarray(pais)
            pai = float(arr[np.isfinite(arr)].mean()) if np.isfinite(arr).any() else float("nan")
            dev = poisson_deviance(np.concatenate(ys), np.concatenate(mus)) if ys else float("nan")
            scores[f"bw_{bw:g}_weeks_{n}"] = pai
            key = (-pai if np.isfinite(pai) else np.inf, dev)
            if best is None or key < (best[0], best[1]):
                best = (key[0], key[1], KdeParams(bw, n))
    if best is None:
        raise ValueError("fit_kde needs at least one bandwidth and one window")
    return best[2], scores
