"""One model for all horizons, or one per horizon? Measured on the same origins.

The registered model is one LightGBM with the horizon as an input (one set of parameters, 8×
the rows to learn shared structure from). This fits, with the same tuned parameters, one model
per horizon on that horizon's training rows only, and compares both on the out-of-time origins
per horizon: Poisson deviance and PAI@5 % (weeks ranked separately for each horizon).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from features.cells.geo import cell_geometry
from training.places.metrics import poisson_deviance, summarise
from training.places.model import PlacesModel, fit_count_booster, to_matrix


def compare_horizon_models(
    frame: pl.DataFrame,
    train_origins: list[Any],
    test_origins: list[Any],
    model: PlacesModel,
    params: dict[str, Any],
    *,
    seed: int,
    num_threads: int = 0,
) -> pl.DataFrame:
    """Per horizon: ``deviance_single``, ``deviance_per_horizon``, ``pai_5_single``,
    ``pai_5_per_horizon`` on the test origins."""
    features = model.features
    train = frame.filter(pl.col("as_of").is_in(train_origins))
    test = frame.filter(pl.col("as_of").is_in(test_origins))
    area = cell_geometry(test["cell_id"].unique().to_list()).select("cell_id", "area_km2")
    rows = []
    for h in sorted(test["horizon"].unique().to_list()):
        tr = train.filter(pl.col("horizon") == h)
        te = test.filter(pl.col("horizon") == h).join(area, on="cell_id")
        booster = fit_count_booster(
            to_matrix(tr, features),
            tr["label"].cast(pl.Float64).to_numpy(),
            features,
            params,
            seed=seed,
            num_threads=num_threads,
        )
        single = model.predict(te)
        own = np.asarray(booster.predict(to_matrix(te, features)), dtype=np.float64)
        y = te["label"].cast(pl.Float64).to_numpy()
        scored = te.select("week_start", "cell_id", "area_km2").with_columns(
            pl.Series("observed", y), pl.Series("single", single), pl.Series("per_horizon", own)
        )
        s = summarise(scored, ["single", "per_horizon"], [0.05])
        rows.append(
            {
                "horizon": int(h),
                "deviance_single": poisson_deviance(y, single),
                "deviance_per_horizon": poisson_deviance(y, own),
                "pai_5_single": s["single"]["pai_5"],
                "pai_5_per_horizon": s["per_horizon"]["pai_5"],
            }
        )
    return pl.DataFrame(rows)
