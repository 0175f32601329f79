"""Benchmark of `riskcast monitor` over successive quarterly checks (issue 13, section 5).

    .venv/bin/python experiments/bench_monitoring_cohorts.py --persons 30000
    .venv/bin/python experiments/bench_monitoring_cohorts.py --part drift
    .venv/bin/python experiments/bench_monitoring_cohorts.py --part scale --scale-persons 1000000

Three parts:

``pipeline`` (the no-drift control on a simulated delivery with known truth): simulate and
ingest a delivery (extracted 2025-12-31), train a small model on snapshots 2017-2021 (test
snapshot 2021-12-31), make it champion, then run the real check (`fairness.monitoring.cli.
run_monitor`, what `riskcast monitor --as-of` runs) for 12 quarter ends 2022-03-31 ..
2024-12-31. From the fifth check on, the matured cohort (one year back) was itself checked, so
8 successive checks compare a stored label-free estimate with realised labels. Reported:
coverage of the AUC and FPR (at the policy threshold) intervals over (group, period) cells,
mean |AUC error| per group, calibration slope / CITL per group, breaches per check (the
false-alarm rate of the control) and the time of each check.

``drift`` (pure `run_check` on synthetic quarterly populations, because the simulator's
registration practice is constant in time): 8 quarterly checks; from check 3 on one region's
registration practice changes (its recorded prior cases double and its record rate doubles,
so the labels rise too) and, in a second run, nothing changes (control). The matured cohort
is the one scored four quarters before. Reported: the first check whose breaches name the
region (target: the first check after the change), re-audit flags, and the false-alarm rate
(checks with any breach) in the control.

``scale``: `run_check` (input and score drift, estimate, composition, matured cohort with
realised performance, feedback indicator) plus `MonitoringStore.record` for
``--scale-persons`` persons with 40 inputs, on synthetic frames (building the population from
the offline store is the feature builder's time, measured by bench_features).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl
import yaml

from fairness.monitoring.check import CheckInputs, CheckResult, run_check
from fairness.monitoring.config import MonitoringConfig, load_monitoring_config
from fairness.policy import load_policy
from training.config import load_training_config

QUARTERS = [
    date(y, m, d) for y in (2022, 2023, 2024) for m, d in ((3, 31), (6, 30), (9, 30), (12, 31))
]
TRAINING = {
    "label": "any_new_case_12m",
    "population": "with_record",
    "snapshots": {"start": "2017-03-31", "end": "2021-12-31", "every_months": 3},
    "periods": {
        "tune": {"start": "2017-03-31", "end": "2019-06-30"},
        "calibrate": {"start": "2020-09-30", "end": "2020-12-31"},
        "test": {"start": "2021-12-31", "end": "2021-12-31"},
    },
    "folds": {"n_folds": 2, "valid_snapshots": 2, "min_train_snapshots": 2},
    "search": {
        "metric": "log_loss",
        "num_boost_round": 200,
        "early_stopping_rounds": 20,
        "startup_trials": 2,
        "pruning_warmup_trials": 1,
        "fixed": {"max_bin": 63, "bagging_freq": 1},
        "params": {
            "learning_rate": {"type": "float", "low": 0.05, "high": 0.2, "log": True},
            "num_leaves": {"type": "int", "low": 8, "high": 32},
            "min_child_samples": {"type": "int", "low": 20, "high": 100},
        },
    },
    "trials": 3,
    "seed": 3,
    "num_threads": 2,
    "evaluation": {"bootstrap": 20, "shap_rows": 200},
    "model_name": "recidivism-risk",
    "experiment": "bench-monitoring",
}


# --------------------------------------------------------------------------- pipeline
def pipeline(root: Path, persons: int, seed: int, quarters: int = len(QUARTERS)) -> None:
    from typer.testing import CliRunner

    from experiments.common import simulate_and_ingest
    from fairness.monitoring.cli import run_monitor
    from fairness.promotion import set_champion
    from riskcast.settings import get_settings
    from serving.cli import build_app
    from training.tracking import tracking_uri

    delivery, home = root / "d1", root / "home"
    os.environ["RISKCAST_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("RISKCAST_DATABASE_URL", None)
    get_settings.cache_clear()
    started = time.perf_counter()
    if not (home / "mlflow.db").is_file():
        simulate_and_ingest(
            delivery,
            home,
            persons,
            seed,
            overwrite=True,
            start=date(2012, 1, 1),
            as_of=date(2021, 12, 31),
        )
        print(
            f"simulated and ingested {persons:,} persons in {time.perf_counter() - started:.0f} s"
        )
        raw = {**TRAINING, "tiers": _tiers(), "truth_dir": str(root / "d1_truth")}
        config = root / "training.yaml"
        config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        started = time.perf_counter()
        result = CliRunner().invoke(build_app(), ["train", "--config", str(config)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        print(f"trained in {time.perf_counter() - started:.0f} s")
        set_champion("recidivism-risk", "1", tracking_uri(home))
    checks: list[CheckResult] = []
    times: list[float] = []
    for day in QUARTERS[-quarters:]:
        started = time.perf_counter()
        stored = run_monitor(day)
        times.append(time.perf_counter() - started)
        checks.append(stored.result)
        print(
            f"check as of {day}: {stored.result.n_current:,} persons, "
            f"{len(stored.result.breaches)} breaches, {times[-1]:.1f} s",
            flush=True,
        )
    report_pipeline(checks, times)


def _tiers() -> list[dict[str, Any]]:
    return [
        {"name": t.name, "min_probability": t.min_probability}
        for t in load_training_config().training.tiers
    ]


def report_pipeline(checks: list[CheckResult], times: list[float]) -> None:
    threshold = load_policy().threshold
    fpr_key = f"fpr@{threshold:g}"
    fnr_key = f"fnr@{threshold:g}"
    cells: dict[tuple[str, str], list[tuple[bool, bool, float]]] = defaultdict(list)
    widths: dict[str, list[float]] = defaultdict(list)
    fnr_in: list[bool] = []
    calib: dict[tuple[str, str], list[tuple[float, float, bool | None]]] = defaultdict(list)
    compared = 0
    for r in checks:
        if r.matured is None:
            continue
        for g in r.matured.realised:
            if g.sufficient and g.calibration_slope is not None:
                calib[(g.group_column, g.group)].append(
                    (g.calibration_slope, g.calibration_in_the_large or 0.0, g.calibration_ok)
                )
        if not r.matured.comparison:
            continue
        compared += 1
        for c in r.matured.comparison:
            if not c.sufficient:
                continue
            m = {x.metric: x for x in c.metrics}
            if m["auc"].within_interval is None or m[fpr_key].within_interval is None:
                continue
            for name in ("auc", fpr_key, fnr_key):
                lo, hi = m[name].lower, m[name].upper
                if lo is not None and hi is not None:
                    widths[name].append(hi - lo)
            if m[fnr_key].within_interval is not None:
                fnr_in.append(bool(m[fnr_key].within_interval))
            cells[(c.group_column, c.group)].append(
                (
                    bool(m["auc"].within_interval),
                    bool(m[fpr_key].within_interval),
                    abs(m["auc"].error or 0.0),
                )
            )
    print(f"\n{compared} checks compared a stored estimate with its matured cohort")
    print(
        f"{'group':<24}{'cells':>6}{'AUC in':>8}{'FPR in':>8}{'|AUC err|':>11}"
        f"{'slope':>8}{'CITL':>8}{'calib alerts':>14}"
    )
    auc_all: list[bool] = []
    fpr_all: list[bool] = []
    for key in sorted(cells):
        rows = cells[key]
        auc_all += [r[0] for r in rows]
        fpr_all += [r[1] for r in rows]
        cal = calib.get(key, [])
        slope = float(np.mean([c[0] for c in cal])) if cal else float("nan")
        citl = float(np.mean([c[1] for c in cal])) if cal else float("nan")
        print(
            f"{key[0] + '=' + key[1]:<24}{len(rows):>6}{np.mean([r[0] for r in rows]):>8.0%}"
            f"{np.mean([r[1] for r in rows]):>8.0%}{np.mean([r[2] for r in rows]):>11.4f}"
            f"{slope:>8.2f}{citl:>+8.3f}{sum(c[2] is False for c in cal):>14}"
        )
    if auc_all:
        print(
            f"all cells: {len(auc_all)}  AUC within interval {np.mean(auc_all):.1%}  "
            f"FPR within interval {np.mean(fpr_all):.1%}  FNR within interval "
            f"{np.mean(fnr_in):.1%}"
        )
        print(
            "mean interval width: " + ", ".join(f"{k} {np.mean(v):.4f}" for k, v in widths.items())
        )
    kinds: dict[str, int] = defaultdict(int)
    for r in checks:
        for b in r.breaches:
            kinds[b.kind] += 1
    alarmed = sum(bool(r.breaches) for r in checks)
    print(
        f"control: {alarmed} of {len(checks)} checks with any breach; by kind: "
        + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none")
        + f"; re-audit flags: {sum(bool(r.reaudit) for r in checks)}"
    )
    drifted: dict[str, int] = defaultdict(int)
    for r in checks:
        for b in r.breaches:
            if b.kind == "input_drift" and b.group_column == "all":
                drifted[b.figure.removeprefix("psi:")] += 1
    print(
        "inputs drifting overall (checks with an alert): "
        + (", ".join(f"{k} {n}" for k, n in sorted(drifted.items(), key=lambda kv: -kv[1])))
    )
    for r in checks:
        worst = [b.message for b in r.breaches if b.kind != "input_drift"]
        if worst:
            print(f"  {r.as_of}: " + "; ".join(worst[:4]))
    print(f"check time: median {np.median(times):.1f} s, max {max(times):.1f} s")


# --------------------------------------------------------------------------- synthetic
REGIONS = [f"R{i:02d}" for i in range(8)]


def _quarter(rng: np.random.Generator, n: int, changed: bool) -> pl.DataFrame:
    """Persons with a latent risk; recorded prior cases and the recorded label come from it
    through a registration practice; in R00 after the change both are recorded twice as often.
    The model (fixed) scores from the recorded inputs."""
    region = np.asarray(REGIONS)[rng.integers(0, len(REGIONS), n)]
    sex = np.asarray(["F", "M"])[rng.integers(0, 2, n)]
    ethnicity = np.asarray(["E1", "E2", "E3"])[rng.choice(3, n, p=[0.75, 0.15, 0.1])]
    latent = rng.normal(0.0, 1.0, n) + (sex == "M") * 0.3
    rate = np.where((region == "R00") & changed, 2.0, 1.0)
    priors = rng.poisson(np.exp(0.2 + 0.6 * latent) * rate).astype(np.float64)
    age = rng.normal(0.0, 1.0, n)
    truth = 1.0 / (1.0 + np.exp(-(-1.6 + 0.8 * latent - 0.3 * age)))
    recorded = 1.0 - (1.0 - truth) ** rate  # twice the registration chance
    label = (rng.random(n) < recorded).astype(np.int64)
    frame = pl.DataFrame(
        {
            "priors": priors,
            "age": age,
            "region": region,
            "sex": sex,
            "ethnicity": ethnicity,
            "label": label,
            "person_id": [str(i) for i in range(n)],
        }
    )
    return frame


def _fit_model(frame: pl.DataFrame) -> Any:
    from sklearn.linear_model import LogisticRegression

    x = np.column_stack([np.log1p(frame["priors"].to_numpy()), frame["age"].to_numpy()])
    return LogisticRegression().fit(x, frame["label"].to_numpy())


def _score(model: Any, frame: pl.DataFrame) -> pl.DataFrame:
    x = np.column_stack([np.log1p(frame["priors"].to_numpy()), frame["age"].to_numpy()])
    return frame.with_columns(pl.Series("probability", model.predict_proba(x)[:, 1]))


def drift_run(
    config: MonitoringConfig, n: int, seed: int, change_at: int | None
) -> list[CheckResult]:
    from training.model import Tier

    rng = np.random.default_rng(seed)
    policy = load_policy()
    tiers = [Tier(t.name, t.min_probability) for t in load_training_config().training.tiers]
    model = _fit_model(_quarter(rng, n, False))
    reference = _score(model, _quarter(rng, n, False))
    populations = [
        _score(model, _quarter(rng, n, change_at is not None and q >= change_at))
        for q in range(8 + 4)
    ]  # 4 quarters before the first check (their cohorts mature during the 8 checks)
    results: list[CheckResult] = []
    for k in range(8):
        q = k + 4
        prev = results[-1].breaches if results else None
        matured = populations[q - 4].with_columns(
            pl.Series("listed", rng.random(n) < populations[q - 4]["probability"].to_numpy())
        )
        x = CheckInputs(
            model="synthetic",
            version="1",
            as_of=date(2023 + q // 4, 1 + 3 * (q % 4), 1),
            checked_at=datetime.now(UTC),
            reference_note="synthetic reference",
            reference=reference,
            current=populations[q].drop("label"),
            inputs=["priors", "age"],
            categorical=[],
            tiers=tiers,
            matured=matured,
            matured_as_of=date(2022, 1, 1),
            previous_breaches=prev,
        )
        results.append(run_check(x, config, policy))
    return results


def drift(config: MonitoringConfig, n: int, seed: int, repeats: int) -> None:
    change_at = 3 + 4  # the 4th check (index 3) is the first after the change
    print(
        f"\ndrift scenario: {n:,} persons per quarter, R00's record rate doubles from check 4; "
        f"{repeats} seeds per run"
    )
    first_alerts: list[int | None] = []
    first_reaudits: list[int | None] = []
    false_checks = control_checks = 0
    false_kinds: dict[str, int] = defaultdict(int)
    for i in range(repeats):
        for label, at in (("drift", change_at), ("control", None)):
            results = drift_run(config, n, seed + 100 * i, at)
            if i == 0:
                for k, r in enumerate(results):
                    r00 = sorted({b.kind for b in r.breaches if b.group == "R00"})
                    other = sorted({b.kind for b in r.breaches if b.group != "R00"})
                    print(
                        f"  {label:<8} check {k + 1}: R00 {', '.join(r00) or '-'}; other groups "
                        f"{', '.join(other) or '-'}{'; RE-AUDIT' if r.reaudit else ''}"
                    )
            if at is None:
                control_checks += len(results)
                false_checks += sum(bool(r.breaches) for r in results)
                for r in results:
                    for b in r.breaches:
                        false_kinds[b.kind] += 1
            else:
                alerted = [
                    k + 1
                    for k, r in enumerate(results)
                    if any(b.group == "R00" for b in r.breaches)
                ]
                first_alerts.append(alerted[0] if alerted else None)
                reaudit = [k + 1 for k, r in enumerate(results) if r.reaudit]
                first_reaudits.append(reaudit[0] if reaudit else None)
    print(
        f"  drift: first check with an R00 breach per seed {first_alerts} (change before "
        f"check 4); first re-audit flag {first_reaudits}"
    )
    print(
        f"  control: {false_checks} of {control_checks} checks with any breach (false-alarm "
        f"rate {false_checks / control_checks:.1%}); by kind: "
        + (", ".join(f"{k} {v}" for k, v in sorted(false_kinds.items())) or "none")
    )


# --------------------------------------------------------------------------- scale
def scale(config: MonitoringConfig, n: int, seed: int) -> None:
    import tempfile

    from experiments.bench_monitoring import synthetic_frame
    from fairness.monitoring.store import MonitoringStore
    from training.model import Tier

    policy = load_policy()
    tiers = [Tier(t.name, t.min_probability) for t in load_training_config().training.tiers]
    rng = np.random.default_rng(seed)
    reference = synthetic_frame(n, 40, seed, drift=False)
    reference = reference.with_columns(  # labelled, as the audited test snapshot: the estimate's
        # reference correction (fairness/monitoring/bias.py) runs on it
        pl.Series("label", (rng.random(n) < reference["probability"].to_numpy()).astype(np.int64))
    )
    current = synthetic_frame(n, 40, seed + 1, drift=True)
    p = current["probability"].to_numpy()
    matured = current.with_columns(
        pl.Series("label", (rng.random(n) < p).astype(np.int64)),
        pl.Series("listed", rng.random(n) < p),
        pl.Series("person_id", np.arange(n).astype(str)),
    )
    inputs = [c for c in current.columns if c[0] in "xc" and c[1:].isdigit()]
    started, cpu = time.perf_counter(), time.process_time()
    result = run_check(
        CheckInputs(
            model="synthetic",
            version="1",
            as_of=date(2025, 3, 31),
            checked_at=datetime.now(UTC),
            reference_note="synthetic",
            reference=reference,
            current=current,
            inputs=inputs,
            categorical=[],
            tiers=tiers,
            matured=matured,
            matured_as_of=date(2024, 3, 31),
        ),
        config,
        policy,
    )
    check_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        store = MonitoringStore(f"sqlite:///{tmp}/m.sqlite")
        t0 = time.perf_counter()
        store.record(result)
        store_s = time.perf_counter() - t0
        store.dispose()
    total = check_s + store_s
    print(
        f"\nscale: {n:,} persons x {len(inputs)} inputs, matured cohort of {n:,}: run_check "
        f"{check_s:.1f} s wall ({time.process_time() - cpu:.1f} s cpu), store {store_s:.1f} s, "
        f"total {total:.1f} s -> {'meets' if total < 60 else 'MISSES'} the 60 s target "
        f"(cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}); {len(result.breaches)} breaches"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--part", choices=["pipeline", "drift", "scale", "all"], default="all")
    parser.add_argument("--persons", type=int, default=30_000)
    parser.add_argument("--quarter-persons", type=int, default=40_000)
    parser.add_argument("--scale-persons", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quarters", type=int, default=len(QUARTERS), help="the last N checks")
    parser.add_argument("--root", type=Path, default=Path("var/bench-monitoring"))
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args(argv)
    config = load_monitoring_config()
    if args.part in ("drift", "all"):
        drift(config, args.quarter_persons, args.seed, args.repeats)
    if args.part in ("pipeline", "all"):
        pipeline(args.root, args.persons, args.seed, args.quarters)
    if args.part in ("scale", "all"):
        scale(config, args.scale_persons, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
