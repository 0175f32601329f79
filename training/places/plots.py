"""Figures of a places run (pure: data in, a matplotlib `Figure` out; MLflow logs them).

- `plot_pai_curve`: mean PAI over the test weeks against the share of area flagged, one line
  per scorer (model, baselines and, when known, the truth's ranking: the limit).
- `plot_expected_map`: the cells' centroids coloured by expected count: a map without tiles,
  so it draws offline like the service's map page.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_STYLE = {
    "model": ("tab:blue", "-"),
    "truth": ("black", "--"),
    "kde": ("tab:orange", "-"),
    "hawkes": ("tab:green", "-"),
    "last4": ("tab:gray", "-"),
}


def plot_pai_curve(curves: dict[str, list[float]], shares: Sequence[float]) -> Figure:
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = 100 * np.asarray(shares)
    for name, values in curves.items():
        color, ls = _STYLE.get(name, (None, "-"))
        ax.plot(x, values, ls, color=color, marker="o", ms=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("share of area flagged (%)")
    ax.set_ylabel("PAI (share of incidents / share of area)")
    ax.set_title("PAI vs area flagged, mean over the out-of-time weeks (horizon 1)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_expected_map(
    frame: pl.DataFrame, *, value: str = "expected_count", title: str = ""
) -> Figure:
    """``frame``: ``lat, lon``, ``value`` and ``region`` (one row per cell); one panel per
    region, since a country-wide view shrinks each city to a dot."""
    regions = sorted(frame["region"].unique().to_list()) if "region" in frame.columns else [None]
    cols = min(2, len(regions))
    rows = (len(regions) + cols - 1) // cols
    fig = Figure(figsize=(6 * cols, 5 * rows))
    FigureCanvasAgg(fig)
    vmax = float(np.max(frame[value].to_numpy())) if frame.height else 1.0
    sc = None
    for i, region in enumerate(regions):
        ax = fig.add_subplot(rows, cols, i + 1)
        part = frame if region is None else frame.filter(pl.col("region") == region)
        ordered = part.sort(value)
        sc = ax.scatter(
            ordered["lon"].to_numpy(),
            ordered["lat"].to_numpy(),
            c=ordered[value].to_numpy(),
            s=10,
            cmap="inferno_r",
            vmin=0.0,
            vmax=vmax,
        )
        mid_lat = float(np.mean(part["lat"].to_numpy())) if part.height else 0.0
        ax.set_aspect(1 / np.cos(np.radians(mid_lat)))
        ax.set_title(str(region or ""))
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
    if sc is not None:
        fig.colorbar(sc, ax=fig.axes, label="expected incidents per week", shrink=0.8)
    fig.suptitle(title or "expected incidents per cell")
    return fig
