"""Places baselines on tiny hand-made worlds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import h3
import numpy as np
import polars as pl
import pytest

from features.cells.geo import cell_geometry, ring1_pairs
from training.places.baselines import (
    FLOOR_SHARE,
    HawkesParams,
    OriginData,
    fit_hawkes,
    fit_kde,
    fit_poisson_weights,
    hawkes,
    hawkes_terms,
    kde,
    kde_rate,
    last_weeks_mean,
)

T = date(2025, 3, 2)  # a Sunday: week 1 starts Monday 3 March
CENTRE = h3.latlng_to_cell(51.15, 71.45, 8)
CELLS = sorted(h3.grid_disk(CENTRE, 2))


def _incidents(rows: list[tuple[str, datetime]]) -> pl.DataFrame:
    lat = [h3.cell_to_latlng(c)[0] for c, _ in rows]
    lon = [h3.cell_to_latlng(c)[1] for c, _ in rows]
    return pl.DataFrame(
        {
            "cell_id": [c for c, _ in rows],
            "lat": lat,
            "lon": lon,
            "registered_at": [t for _, t in rows],
        },
        schema={
            "cell_id": pl.Utf8,
            "lat": pl.Float64,
            "lon": pl.Float64,
            "registered_at": pl.Datetime("us", "UTC"),
        },
    )


def _origin(rows: list[tuple[str, datetime]], as_of: date = T) -> OriginData:
    return OriginData(as_of, cell_geometry(CELLS), _incidents(rows), ring1_pairs(CELLS))


def _at(days_before: float) -> datetime:
    return datetime(2025, 3, 3, tzinfo=UTC) - timedelta(days=days_before)


def test_last4_mean_and_floor() -> None:
    rows = [(CENTRE, _at(3))] * 4 + [(CELLS[0], _at(40))]  # the old one is outside 4 weeks
    out = last_weeks_mean(_origin(rows), [1, 2])
    assert out.height == 2 * len(CELLS)
    centre = out.filter((pl.col("cell_id") == CENTRE) & (pl.col("horizon") == 1))["value"][0]
    area = cell_geometry(CELLS)
    share = area.filter(pl.col("cell_id") == CENTRE)["area_km2"][0] / area["area_km2"].sum()
    assert centre == pytest.approx((1 - FLOOR_SHARE) * 1.0 + FLOOR_SHARE * 1.0 * share)
    assert out["value"].sum() == pytest.approx(2 * 1.0)  # the floor keeps the total rate


def test_kde_mass_and_ranking() -> None:
    rows = [(CENTRE, _at(d)) for d in (1, 2, 3, 8, 9, 10)]
    o = _origin(rows)
    rate = kde_rate(o, bandwidth_km=0.4, weeks=4)
    assert rate.sum() == pytest.approx(6 / 4)  # the points' weekly rate shared by the cells
    ids = o.cells["cell_id"].to_list()
    assert ids[int(np.argmax(rate))] == CENTRE
    far = [c for c in CELLS if h3.grid_distance(CENTRE, c) == 2]
    near = [c for c in CELLS if h3.grid_distance(CENTRE, c) == 1]
    r = dict(zip(ids, rate, strict=True))
    assert min(r[c] for c in near) > max(r[c] for c in far)
    assert kde(o, [1, 2, 3], bandwidth_km=0.4, weeks=4).height == 3 * len(CELLS)


def test_kde_empty_window_is_floor_only() -> None:
    out = kde(_origin([]), [1], bandwidth_km=0.5, weeks=4)
    assert out["value"].sum() == 0.0


def test_hawkes_terms_decay() -> None:
    # one incident exactly 1 week before week 1 starts, τ = 2: own term at h is
    # exp(-(1 + h - 1)/2) * (1 - exp(-1/2)); the neighbours see it in their ring term
    o = _origin([(CENTRE, _at(7))])
    t = hawkes_terms(o, [1, 3], tau_weeks=2.0)
    own = t.filter(pl.col("cell_id") == CENTRE).sort("horizon")["own_recent"].to_list()
    step = 1 - np.exp(-0.5)
    assert own == pytest.approx([np.exp(-0.5) * step, np.exp(-1.5) * step], rel=1e-6)
    n = next(c for c in CELLS if h3.grid_distance(CENTRE, c) == 1)
    ring = t.filter((pl.col("cell_id") == n) & (pl.col("horizon") == 1))["ring_recent"][0]
    assert ring == pytest.approx(np.exp(-0.5) * step, rel=1e-6)
    assert t["long_run"].sum() == pytest.approx(2 * 1 / 156)


def test_fit_poisson_weights_recovers_rates() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(4000), rng.uniform(0, 2, 4000)])
    y = rng.poisson(x @ np.array([0.3, 1.2])).astype(float)
    w, dev = fit_poisson_weights(x, y)
    assert w == pytest.approx([0.3, 1.2], abs=0.08)
    assert np.isfinite(dev)


def _labels(origins: list[OriginData], counts: dict[str, int]) -> pl.DataFrame:
    return pl.concat(
        pl.DataFrame(
            {
                "cell_id": CELLS,
                "as_of": [o.as_of] * len(CELLS),
                "horizon": [h] * len(CELLS),
                "label": [counts.get(c, 0) for c in CELLS],
            },
            schema={"cell_id": pl.Utf8, "as_of": pl.Date, "horizon": pl.Int32, "label": pl.Int64},
        )
        for o in origins
        for h in (1, 2)
    )


def test_fit_kde_and_hawkes_on_a_stable_hotspot() -> None:
    rows = [(CENTRE, _at(d)) for d in range(1, 300, 5)]
    origins = [_origin(rows), _origin(rows, T - timedelta(days=7))]
    labels = _labels(origins, {CENTRE: 2})
    params, scores = fit_kde(origins, labels, bandwidths_km=[0.3, 3.0], weeks=[4, 13])
    assert params.bandwidth_km == 0.3  # the narrow kernel points at the hotspot
    assert len(scores) == 4
    hp, dev = fit_hawkes(origins, labels, [1, 2], taus=[1.0, 4.0])
    assert set(dev) == {"tau_1", "tau_4"}
    pred = hawkes(origins[0], [1], hp)
    top = pred.sort("value", descending=True)["cell_id"][0]
    assert top == CENTRE
    assert isinstance(hp, HawkesParams) and min(hp.weights) >= 0
