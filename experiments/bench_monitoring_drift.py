"""Drift on simulator deliveries (issue 13, section 5): does `riskcast monitor` see a region's
registration practice change, and stay quiet without one?

    nice -n 10 .venv/bin/python experiments/bench_monitoring_drift.py --persons 200000 \
        --root var/bench/drift200k --run drift
    nice -n 10 .venv/bin/python experiments/bench_monitoring_drift.py --persons 200000 \
        --root var/bench/drift200k --run control
    .venv/bin/python experiments/bench_monitoring_drift.py --root var/bench/drift200k --run compare

Each run simulates one delivery (2012-01-01 to 2025-12-31, the seed given; unpaid debts written
off after ``--write-off-years``, 3 by default, so the simulated world has a steady state) and
ingests it into its own home; ``drift`` adds `crime.practice_changes` (ALA records low-gravity
offences twice as often from ``--change``), ``control`` is the same seed without it. Everything
before the change date is byte-identical between the two, so the champion trained on snapshots
2017-2021 (labels up to 2022-12-31, before the change) sees the same data in both: the training
configuration and the champion path are `bench_monitoring_cohorts`'s. Then, from an empty
monitoring store, the real check (`fairness.monitoring.cli.run_monitor`, what `riskcast monitor
--as-of` runs) at the 12 quarter ends 2022-03-31..2024-12-31; the last 8 compare a stored
label-free estimate with realised labels. Printed: drift alerts (input, score, registration
rate) per check, the changed region's rate ratio, the first check after the change whose alerts
name the region, and `bench_monitoring_cohorts`'s coverage table of the AUC / FPR intervals on
the matured cohorts; ``compare`` prints the detection delay in materialisations and each run's
false-alarm rate, in all and per rule. The rate check alone at 1M persons:
`bench_monitoring_rates.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from experiments.bench_monitoring_cohorts import QUARTERS, TRAINING, _tiers, report_pipeline
from fairness.monitoring.alerts import Breach
from fairness.monitoring.check import CheckResult

REGION = "ALA"
DRIFT_KINDS = ("input_drift", "score_drift", "rate_drift")


def setup(
    root: Path, persons: int, seed: int, change: date | None, write_off_years: float | None
) -> None:
    """Simulate (with the practice change, if any, and the debt write-off, if any), ingest,
    train and make the champion."""
    from typer.testing import CliRunner

    from fairness.promotion import set_champion
    from features.ingest import ingest_delivery
    from features.simulator import SimulatorConfig, simulate
    from serving.cli import build_app
    from training.tracking import tracking_uri

    home = root / "home"
    if (home / "mlflow.db").is_file():
        return
    changes = (
        []
        if change is None
        else [{"region": REGION, "from_date": change.isoformat(), "record_rate_multiplier": 2.0}]
    )
    raw: dict[str, object] = {"crime": {"practice_changes": changes}}
    if write_off_years is not None:
        raw["obligations"] = {"write_off_years": write_off_years}
    config = SimulatorConfig.model_validate(raw)
    started = time.perf_counter()
    simulate(
        root / "d1",
        persons=persons,
        seed=seed,
        start=date(2012, 1, 1),
        extracted_at=date(2025, 12, 31),
        as_of=[date(2021, 12, 31)],
        config=config,
        overwrite=True,
    )
    ingest_delivery(root / "d1", home)
    print(f"simulated and ingested {persons:,} persons in {time.perf_counter() - started:.0f} s")
    training = {**TRAINING, "tiers": _tiers(), "truth_dir": str(root / "d1_truth")}
    path = root / "training.yaml"
    path.write_text(yaml.safe_dump(training, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    result = CliRunner().invoke(build_app(), ["train", "--config", str(path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    print(f"trained in {time.perf_counter() - started:.0f} s")
    set_champion("recidivism-risk", "1", tracking_uri(home))


def _rule(b: Breach) -> str:
    """The rule a breach broke: its kind and figure (``rate_drift rate:cases_90d``)."""
    return f"{b.kind} {b.figure}"


def report_drift(checks: list[CheckResult], change: date | None) -> dict[str, object]:
    """Drift alerts (input, score, rate) per check, with the region's, the other breaches, the
    rate ratios of the changed region; the first check after the change naming the region."""
    rows = []
    for r in checks:
        drift = [b for b in r.breaches if b.kind in DRIFT_KINDS]
        regional = [b for b in drift if (b.group_column, b.group) == ("region", REGION)]
        rates = {
            rd.input: rd for rd in r.rate_drift if (rd.group_column, rd.group) == ("region", REGION)
        }
        rows.append(
            {
                "as_of": r.as_of.isoformat(),
                "drift_alerts": len(drift),
                "region_alerts": len(regional),
                "region_rate_alerts": sum(b.kind == "rate_drift" for b in regional),
                "inputs": sorted({f"{b.group_column}={b.group}:{b.figure}" for b in drift}),
                "rules": sorted({_rule(b) for b in drift}),
                "alerts": sorted(
                    {f"{b.kind} {b.figure} {b.group_column}={b.group}" for b in drift}
                ),
                "breach_kinds": sorted({b.kind for b in r.breaches}),
                "other_breaches": sorted(
                    {_rule(b) for b in r.breaches if b.kind not in DRIFT_KINDS}
                ),
                "region_rates": {
                    name: {
                        "relative": rd.relative,
                        "lower": rd.relative_lower,
                        "upper": rd.relative_upper,
                        "ratio": rd.ratio,
                        "events": [rd.events_reference, rd.events_current],
                        "status": rd.status,
                    }
                    for name, rd in rates.items()
                },
            }
        )
        rel = rates.get("cases_90d")
        rel_text = (
            f"cases_90d relative x{rel.relative:.2f} [{rel.relative_lower:.2f}, "
            f"{rel.relative_upper:.2f}] ({rel.events_reference:.0f} -> "
            f"{rel.events_current:.0f} events)"
            if rel is not None
            and rel.relative is not None
            and rel.relative_lower is not None
            and rel.relative_upper is not None
            else "cases_90d: -"
        )
        print(
            f"{r.as_of}: drift alerts {len(drift)} (region={REGION}: {len(regional)}); "
            f"{REGION} {rel_text}",
            flush=True,
        )
        if drift:
            print("   " + ", ".join(rows[-1]["alerts"][:12]))  # type: ignore[index]
    first = next(
        (
            row["as_of"]
            for r, row in zip(checks, rows, strict=True)
            if change is not None and r.as_of >= change and row["region_alerts"]
        ),
        None,
    )
    checks_with_drift = sum(bool(row["drift_alerts"]) for row in rows)
    checks_with_region = sum(bool(row["region_alerts"]) for row in rows)
    print(
        f"checks with any drift alert: {checks_with_drift} of {len(rows)}; naming "
        f"region={REGION}: {checks_with_region} of {len(rows)}"
    )
    if change is not None:
        print(
            f"change {change}: first check at/after it with a region={REGION} drift alert: {first}"
        )
    return {"rows": rows, "first_region_alert": first}


def false_alarms(
    name: str, rows: list[dict[str, Any]], change: date
) -> tuple[list[list[str]], dict[str, int]]:
    """The alerts the injected change does not explain (every one of the control run's; the
    drift run's before the change or naming another region), per check, and per rule the
    number of checks that raised one."""
    false = [
        [
            a
            for a in r["alerts"]
            if name == "control"
            or date.fromisoformat(r["as_of"]) < change
            or f"region={REGION}" not in a
        ]
        for r in rows
    ]
    rules: dict[str, int] = {}
    for alerts in false:
        for rule in sorted({" ".join(a.split(" ")[:2]) for a in alerts}):
            rules[rule] = rules.get(rule, 0) + 1
    return false, rules


def compare(root: Path, change: date) -> None:
    """Per check, the drift alerts of each run; the detection delay of the injected change (in
    materialisations: 1 = the first check after the change date) by the region's alerts the
    control lacks; each run's false-alarm rate, in all and per rule (a rule = breach kind and
    figure), where every alert of the control is a false alarm and, in the drift run, every
    alert before the change, or after it not naming the region."""
    runs = {
        name: json.loads((root / name / "drift-summary.json").read_text(encoding="utf-8"))["rows"]
        for name in ("drift", "control")
    }
    first = None
    after_index = 0
    for d, c in zip(runs["drift"], runs["control"], strict=True):
        caused = sorted(set(d["alerts"]) - set(c["alerts"]))
        gone = sorted(set(c["alerts"]) - set(d["alerts"]))
        after = date.fromisoformat(d["as_of"]) >= change
        after_index += after
        mark = f" [{after_index} after the change]" if after else ""
        if after and first is None and any(f"region={REGION}" in a for a in caused):
            first = (d["as_of"], after_index)
        print(f"{d['as_of']}{mark}: drift run {d['alerts'] or '-'}; control {c['alerts'] or '-'}")
        if caused or gone:
            print(f"   only in the drift run: {caused or '-'}; only in the control: {gone or '-'}")
    for name, rows in runs.items():
        false, rules = false_alarms(name, rows, change)
        print(
            f"{name}: checks with a false drift alert {sum(map(bool, false))} of {len(rows)}; "
            "per rule (checks): "
            + (", ".join(f"{k} {n}" for k, n in sorted(rules.items())) or "none")
        )
        others: dict[str, int] = {}
        for r in rows:
            for rule in r["other_breaches"]:
                others[rule] = others.get(rule, 0) + 1
        print(
            f"{name}: other breaches (checks): "
            + (", ".join(f"{k} {n}" for k, n in sorted(others.items())) or "none")
        )
    delay = f"{first[0]}, materialisation {first[1]} after the change" if first else "none"
    print(f"first check at/after {change} with a region={REGION} alert the control lacks: {delay}")


def reset_monitoring_store() -> None:
    """Empty the home's monitoring store, so a re-run's checks do not follow the last run's
    (the matured-cohort comparison reads the estimate stored four quarters before)."""
    import sqlalchemy as sa

    from fairness.monitoring.store import open_monitoring_store

    store = open_monitoring_store()
    with store.engine.begin() as conn:
        conn.execute(sa.delete(store.figures_table))
        conn.execute(sa.delete(store.checks_table))
    store.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--persons", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--root", type=Path, default=Path("/tmp/benchdrift"))
    parser.add_argument("--run", choices=("drift", "control", "compare"), required=True)
    parser.add_argument("--change", type=date.fromisoformat, default=date(2023, 7, 1))
    parser.add_argument(
        "--write-off-years",
        type=float,
        default=3.0,
        help="simulator obligations.write_off_years in both runs (0: off, the old world whose "
        "debts age for ever)",
    )
    parser.add_argument(
        "--setup-only", action="store_true", help="simulate, ingest and train; no checks"
    )
    args = parser.parse_args(argv)
    if args.run == "compare":  # after both runs
        compare(args.root, args.change)
        return 0

    from fairness.monitoring.cli import run_monitor
    from riskcast.settings import get_settings

    root = args.root / args.run
    os.environ["RISKCAST_HOME"] = str(root / "home")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("RISKCAST_DATABASE_URL", None)
    get_settings.cache_clear()
    change = args.change if args.run == "drift" else None
    setup(root, args.persons, args.seed, change, args.write_off_years or None)
    if args.setup_only:
        return 0
    reset_monitoring_store()
    checks: list[CheckResult] = []
    times: list[float] = []
    for day in QUARTERS:
        started = time.perf_counter()
        stored = run_monitor(day)
        times.append(time.perf_counter() - started)
        checks.append(stored.result)
        print(f"check as of {day}: {stored.result.n_current:,} persons, {times[-1]:.1f} s")
    summary = report_drift(checks, args.change if args.run == "drift" else None)
    report_pipeline(checks, times)
    (root / "drift-summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
