"""Benchmark of the monitoring core (issue 13, section 5): drift and the label-free estimate
for a million persons, and a back-test of the estimate against simulated ground truth.

    .venv/bin/python experiments/bench_monitoring.py                      # 1,000,000 persons
    .venv/bin/python experiments/bench_monitoring.py --persons 100000 --periods 4

Part 1 builds a seeded synthetic reference frame and a current frame (``--inputs`` model
inputs, three quarters numeric, one quarter categorical; group columns sex, ethnicity,
age_band, region; a calibrated probability), with a shift injected in one input overall and
in one input for one region only, and times `input_drift` and `estimate_performance` with the
settings of ``configs/monitoring.yaml``. The ``riskcast monitor`` target is 60 s on 2 cores
for both together (the store and the report come on top, later).

Part 2 back-tests the estimate: ``--periods`` quarterly cohorts of ``--cohort`` persons, scores
from a Beta per group, labels drawn from the scores (calibrated) except, in the drift
scenario, one region whose true risk halves from period 4 on (a registration practice
change the model does not see); prints per group the share of (group, period) cells whose
realised AUC and FPR at the "high" threshold fall within the estimate's interval, and the mean
absolute AUC error, and the (group, period) cells whose realised calibration raises an
alert. Targets: coverage >= 90 % of cells, |AUC error| <= 0.02 per group.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl

from fairness.monitoring.check import thresholds_of
from fairness.monitoring.config import MonitoringConfig, load_monitoring_config
from fairness.monitoring.drift import input_drift
from fairness.monitoring.estimate import estimate_performance
from fairness.monitoring.realised import compare, realised_performance
from fairness.policy import load_policy
from training.config import load_training_config

TARGET_S = 60.0
SEX = ["F", "M"]
ETHNICITY = ["E1", "E2", "E3", "E4"]
AGE_BANDS = ["<18", "18-24", "25-34", "35-49", "50+"]
REGIONS = [f"R{i:02d}" for i in range(12)]
GROUP_COLUMNS = ["sex", "ethnicity", "age_band", "region"]


def _groups(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "sex": np.asarray(SEX)[rng.integers(0, 2, n)],
        "ethnicity": np.asarray(ETHNICITY)[rng.choice(4, n, p=[0.7, 0.15, 0.1, 0.05])],
        "age_band": np.asarray(AGE_BANDS)[rng.choice(5, n, p=[0.05, 0.25, 0.3, 0.25, 0.15])],
        "region": np.asarray(REGIONS)[rng.integers(0, len(REGIONS), n)],
    }


def synthetic_frame(n: int, inputs: int, seed: int, drift: bool) -> pl.DataFrame:
    """``inputs`` columns x0.. (numeric: normal, counts, with 2 % missing) and c0.. (categories),
    group columns and a probability; with ``drift``, x0 shifts everywhere and x1 shifts in R00."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = dict(_groups(rng, n))
    n_cat = inputs // 4
    for j in range(inputs - n_cat):
        if j % 2 == 0:
            x = rng.normal(0.0, 1.0, n)
        else:
            x = rng.poisson(0.5 + j / 10, n).astype(np.float64)
        x[rng.random(n) < 0.02] = np.nan
        if drift and j == 0:
            x = x + 0.8
        if drift and j == 1:
            x = np.where(cols["region"] == "R00", x + 2.0, x)
        cols[f"x{j}"] = x
    for j in range(n_cat):
        labels = np.asarray([f"k{v}" for v in range(5 + j)])
        cols[f"c{j}"] = labels[rng.integers(0, len(labels), n)]
    cols["probability"] = rng.beta(2.0, 6.0, n)
    frame = pl.DataFrame(cols)
    return frame.with_columns(pl.col(f"x{j}").fill_nan(None) for j in range(inputs - n_cat))


def bench_scale(config: MonitoringConfig, persons: int, inputs: int, seed: int) -> float:
    started = time.perf_counter()
    reference = synthetic_frame(persons, inputs, seed, drift=False)
    p_ref = reference["probability"].to_numpy()
    labels = np.random.default_rng(seed + 2).random(persons) < p_ref
    reference = reference.with_columns(pl.Series("label", labels.astype(np.int64)))
    # labelled, as the audited test snapshot: the estimate's reference correction (FPR/FNR, and
    # the AUC's by `estimate.auc_correction`, `pooled` in configs/monitoring.yaml) runs on it
    current = synthetic_frame(persons, inputs, seed + 1, drift=True)
    print(
        f"synthetic frames: 2 x {persons:,} rows x {inputs} inputs "
        f"({time.perf_counter() - started:.1f} s to build)",
        flush=True,
    )
    names = [c for c in reference.columns if c[0] in "xc" and c[1:].isdigit()]
    started, cpu = time.perf_counter(), time.process_time()
    drift = input_drift(reference, current, names, config.drift, GROUP_COLUMNS)
    drift_s, drift_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    estimates = estimate_performance(current, config.estimate, GROUP_COLUMNS, reference=reference)
    estimate_s, estimate_cpu = time.perf_counter() - started, time.process_time() - cpu
    cells = len({(r.group_column, r.group) for r in drift.results})
    alerts = sorted({(r.input, r.group_column, r.group) for r in drift.alerts()})
    print(
        f"drift:    {drift_s:6.1f} s wall {drift_cpu:6.1f} s cpu  "
        f"({len(drift.results):,} input x group results, "
        f"{cells} groups incl. overall)"
    )
    print(
        f"estimate: {estimate_s:6.1f} s wall {estimate_cpu:6.1f} s cpu  ({len(estimates)} groups, "
        f"{config.estimate.replicates} label draws, {len(config.estimate.thresholds)} thresholds, "
        f"AUC correction {config.estimate.auc_correction}, reference correction "
        f"{config.estimate.reference_correction})"
    )
    total = drift_s + estimate_s
    verdict = "meets" if total < TARGET_S else "MISSES"
    print(
        f"total:    {total:6.1f} s wall {drift_cpu + estimate_cpu:6.1f} s cpu "
        f"-> {verdict} the {TARGET_S:.0f} s target "
        f"(cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})"
    )
    print(f"alerts ({len(alerts)}): " + ", ".join(f"{i}/{c}={g}" for i, c, g in alerts[:12]))
    return total


def backtest(config: MonitoringConfig, periods: int, cohort: int, seed: int, drift: bool) -> None:
    rng = np.random.default_rng(seed)
    high = (
        config.estimate.thresholds[1]
        if len(config.estimate.thresholds) > 1
        else config.estimate.thresholds[0]
    )
    key_fpr = f"fpr@{high:g}"
    covered: dict[tuple[str, str], list[tuple[bool, bool, float]]] = defaultdict(list)
    calibration_alerts: dict[tuple[str, str], int] = defaultdict(int)
    for period in range(periods):
        groups = _groups(rng, cohort)
        a = 1.5 + (groups["ethnicity"] == "E2") * 1.0 + (groups["age_band"] == "18-24") * 0.5
        p = rng.beta(a, 5.0)
        truth = p
        if drift and period >= 3:
            truth = np.where(groups["region"] == "R00", p / 2, p)
        y = (rng.random(cohort) < truth).astype(np.int64)
        frame = pl.DataFrame({**groups, "probability": p, "label": y})
        est = estimate_performance(frame.drop("label"), config.estimate, GROUP_COLUMNS)
        real = realised_performance(
            frame, config.realised, config.estimate.thresholds, GROUP_COLUMNS
        )
        for r in real:
            calibration_alerts[(r.group_column, r.group)] += r.calibration_ok is False
        for check in compare(est, real, config.realised):
            if not check.sufficient:
                continue
            m = {x.metric: x for x in check.metrics}
            covered[(check.group_column, check.group)].append(
                (
                    bool(m["auc"].within_interval),
                    bool(m[key_fpr].within_interval),
                    abs(m["auc"].error or 0.0),
                )
            )
    label = "drift scenario (R00's true risk halves from period 4)" if drift else "calibrated"
    print(
        f"\nback-test, {label}: {periods} periods x {cohort:,} persons, "
        f"{config.estimate.confidence:.0%} intervals"
    )
    print(
        f"{'group':<22}{'cells':>6}{'AUC in':>8}{'FPR in':>8}{'|AUC err|':>11}{'calib. alerts':>15}"
    )
    all_auc: list[bool] = []
    all_fpr: list[bool] = []
    worst = 0.0
    for (column, group), rows in sorted(covered.items()):
        auc_in = [r[0] for r in rows]
        fpr_in = [r[1] for r in rows]
        err = float(np.mean([r[2] for r in rows]))
        all_auc += auc_in
        all_fpr += fpr_in
        worst = max(worst, err) if group != "R00" or not drift else worst
        print(
            f"{column + '=' + group:<22}{len(rows):>6}{np.mean(auc_in):>8.0%}"
            f"{np.mean(fpr_in):>8.0%}{err:>11.4f}{calibration_alerts[(column, group)]:>15}"
        )
    print(
        f"all cells: {len(all_auc)}  AUC within interval {np.mean(all_auc):.1%}  "
        f"FPR within interval {np.mean(all_fpr):.1%}  worst mean |AUC err| per group "
        f"{worst:.4f}{' (R00 excluded)' if drift else ''}; calibration alerts "
        f"(slope outside [{config.realised.calibration_slope_low}, "
        f"{config.realised.calibration_slope_high}] or |CITL| > "
        f"{config.realised.calibration_in_the_large}) in {sum(calibration_alerts.values())} "
        f"of {len(all_auc)} cells"
    )


def with_champion_thresholds(config: MonitoringConfig) -> MonitoringConfig:
    """The config estimating at the tiers of ``configs/training.yaml`` and the policy's
    threshold, as `riskcast monitor` does from a champion's metadata."""
    tiers = load_training_config().training.tier_objects()
    thresholds = thresholds_of(tiers, load_policy())
    return config.model_copy(update={"estimate": config.estimate.with_thresholds(thresholds)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--inputs", type=int, default=40)
    parser.add_argument("--periods", type=int, default=8)
    parser.add_argument("--cohort", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--scale-only", action="store_true", help="no back-tests")
    parser.add_argument(
        "--auc-correction",
        choices=["none", "shift", "widen", "pooled"],
        default=None,
        help="override configs/monitoring.yaml's estimate.auc_correction (to time its cost)",
    )
    args = parser.parse_args(argv)
    config = with_champion_thresholds(load_monitoring_config())
    if args.auc_correction is not None:
        estimate = config.estimate.model_copy(update={"auc_correction": args.auc_correction})
        config = config.model_copy(update={"estimate": estimate})
    if not args.skip_scale:
        bench_scale(config, args.persons, args.inputs, args.seed)
    if args.scale_only:
        return 0
    backtest(config, args.periods, args.cohort, args.seed, drift=False)
    backtest(config, args.periods, args.cohort, args.seed + 1, drift=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
