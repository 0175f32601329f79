"""Feature ablation for the places model with fixed LightGBM parameters (no tuning), so that two
cell feature specs can be compared in minutes on the same origins and the same truth.

    .venv/bin/python experiments/places_ablation.py --store var/bench/places-100000
    .venv/bin/python experiments/places_ablation.py --store var/bench/places-100000 \\
        --features-config my_cell_features.yaml

The store folder is one `experiments/bench_places.py` prepared (``home/`` and ``d1_truth/``).
Prints PAI@5 % (mean over the out-of-time weeks, horizon 1) of the model, of a KDE map (0.5 km,
52 weeks) and of the true intensity, the share of the way from that KDE to the truth, the
Poisson deviance, and the inputs with the most gain. The benchmark proper (tuned, with the
tuned KDE baseline and bootstrap intervals) is `bench_places.py`; this script only ranks specs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PARAMS = {
    "objective": "poisson",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 63,
    "num_threads": 2,
    "verbose": -1,
    "seed": 7,
}


def main(argv: list[str] | None = None) -> int:
    import lightgbm as lgb
    import numpy as np
    import polars as pl

    from training.places import baselines as bl
    from training.places.config import load_places_training_config
    from training.places.data import (
        incident_versions,
        origins_from_frame,
        read_truth_intensity,
        store_span,
    )
    from training.places.frames import build_frame, load_cell_inputs, model_inputs
    from training.places.metrics import pai_at, poisson_deviance
    from training.places.plan import plan_origins

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--features-config", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cfg, _ = load_places_training_config(None)
    inputs = load_cell_inputs(args.store / "home", features_config=args.features_config)
    span = store_span(inputs.store)
    plan = plan_origins(cfg, span.last_day, span.first_day)
    truth, _ = read_truth_intensity(
        args.store / "d1_truth",
        resolution=inputs.places.h3_resolution,
        known_extracts=span.extract_ids,
    )
    if truth is None:
        raise SystemExit("no true intensity in the store folder: simulate with bench_places.py")
    frame = build_frame(inputs, plan.all, range(1, cfg.horizons + 1), with_label=True)
    frame = frame.filter(pl.col("label").is_not_null())
    features = model_inputs(inputs.spec, frame)
    train = frame.filter(pl.col("as_of").is_in(list(plan.train)))
    test = frame.filter(pl.col("as_of").is_in(list(plan.test)) & (pl.col("horizon") == 1))
    x = train.select(features).to_numpy().astype(np.float32)
    data = lgb.Dataset(x, train["label"].cast(pl.Float64).to_numpy(), feature_name=features)
    booster = lgb.train(PARAMS, data, num_boost_round=args.rounds)
    mu = booster.predict(test.select(features).to_numpy().astype(np.float32))
    versions = incident_versions(inputs.store, inputs.places.h3_resolution)
    origins = origins_from_frame(test, versions, list(plan.test))
    kde = pl.concat(
        bl.kde(o, [1], bandwidth_km=0.5, weeks=52).with_columns(
            pl.lit(d, dtype=pl.Date).alias("as_of")
        )
        for d, o in origins.items()
    )
    geometry = pl.concat(o.cells for o in origins.values()).unique("cell_id")
    scored = (
        test.with_columns(pl.Series("model", mu))
        .join(kde.drop("horizon").rename({"value": "kde"}), on=["cell_id", "as_of"], how="left")
        .join(geometry.select("cell_id", "area_km2"), on="cell_id", how="left")
        .join(truth.frame, on=["cell_id", "week_start"], how="left")
        .fill_null(0.0)
    )
    pai: dict[str, float] = {}
    for name in ("model", "kde", "truth_expected_count"):
        weeks = [
            pai_at(
                part[name].to_numpy(),
                part["label"].cast(pl.Float64).to_numpy(),
                part["area_km2"].to_numpy(),
                0.05,
            )[1]
            for part in scored.partition_by("as_of")
        ]
        pai[name] = float(np.nanmean(weeks))
    way = (pai["model"] - pai["kde"]) / (pai["truth_expected_count"] - pai["kde"])
    deviance = poisson_deviance(scored["label"].cast(pl.Float64).to_numpy(), mu)
    print(f"inputs {len(features)}; train rows {train.height:,}; test weeks {len(plan.test)}")
    print(
        f"PAI@5%: model {pai['model']:.3f}  KDE(0.5 km, 52 w) {pai['kde']:.3f}  "
        f"truth {pai['truth_expected_count']:.3f}  way KDE->truth {way:.3f}  "
        f"deviance {deviance:.5f}  ({time.perf_counter() - started:.0f} s)"
    )
    gains = sorted(zip(booster.feature_importance("gain"), features, strict=True), reverse=True)
    print("most gain: " + ", ".join(f"{n} {g:.0f}" for g, n in gains[:10]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
