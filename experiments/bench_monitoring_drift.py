"""Drift on simulator deliveries (issue 13, section 5): does `riskcast monitor` see a region's
registration practice change, and stay quiet without one?

    nice -n 10 .venv/bin/python experiments/bench_monitoring_drift.py --persons 60000 \
        --root /tmp/benchdrift --run drift
    nice -n 10 .venv/bin/python experiments/bench_monitoring_drift.py --persons 60000 \
        --root /tmp/benchdrift --run control
    .venv/bin/python experiments/bench_monitoring_drift.py --root /tmp/benchdrift --run compare

Each run simulates one delivery (2012-01-01 to 2025-12-31, the seed given) and ingests it into
its own home; ``drift`` adds `crime.practice_changes` (ALA records low-gravity offences twice as
often from ``--change``), ``control`` is the same seed without it. Everything before the change
date is byte-identical between the two, so the champion trained on snapshots 2017-2021 (labels
up to 2022-12-31, before the change) sees the same data in both: the training configuration
and the champion path are `bench_monitoring_cohorts`'s. Then the real check
(`fairness.monitoring.cli.run_monitor`, what `riskcast monitor --as-of` runs) at the 12 quarter
ends 2022-03-31..2024-12-31; the last 8 compare a stored label-free estimate with realised
labels. Printed: drift breaches per check (all, and those naming the changed region), the first
check after the change whose drift alerts name the region, and `bench_monitoring_cohorts`'s
coverage table of the AUC / FPR intervals on the matured cohorts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from experiments.bench_monitoring_cohorts import QUARTERS, TRAINING, _tiers, report_pipeline
from fairness.monitoring.check import CheckResult

REGION = "ALA"
DRIFT_KINDS = ("input_drift", "score_drift")


def setup(root: Path, persons: int, seed: int, change: date | None) -> None:
    """Simulate (with the practice change, if any), ingest, train and make the champion."""
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
    config = SimulatorConfig.model_validate({"crime": {"practice_changes": changes}})
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
    raw = {**TRAINING, "tiers": _tiers(), "truth_dir": str(root / "d1_truth")}
    path = root / "training.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    result = CliRunner().invoke(build_app(), ["train", "--config", str(path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    print(f"trained in {time.perf_counter() - started:.0f} s")
    set_champion("recidivism-risk", "1", tracking_uri(home))


def report_drift(checks: list[CheckResult], change: date | None) -> dict[str, object]:
    """Drift breaches per check; the first check after the change naming the region."""
    rows = []
    for r in checks:
        drift = [b for b in r.breaches if b.kind in DRIFT_KINDS]
        regional = [b for b in drift if (b.group_column, b.group) == ("region", REGION)]
        rows.append(
            {
                "as_of": r.as_of.isoformat(),
                "drift_alerts": len(drift),
                "region_alerts": len(regional),
                "inputs": sorted({f"{b.group_column}={b.group}:{b.figure}" for b in drift}),
                "breach_kinds": sorted({b.kind for b in r.breaches}),
            }
        )
        print(
            f"{r.as_of}: drift alerts {len(drift)} (region={REGION}: {len(regional)}) "
            + "; ".join(b.message for b in regional[:3]),
            flush=True,
        )
        if drift:
            print("   all drift alerts: " + ", ".join(rows[-1]["inputs"][:12]))  # type: ignore[index]
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


def compare(root: Path, change: date) -> None:
    """Drift alerts of the drift run that the control did not raise at the same check: the
    ones the injected change caused (both runs share every other drift of the simulated world)."""
    runs = {
        name: json.loads((root / name / "drift-summary.json").read_text(encoding="utf-8"))["rows"]
        for name in ("drift", "control")
    }
    first = None
    for d, c in zip(runs["drift"], runs["control"], strict=True):
        caused = sorted(set(d["inputs"]) - set(c["inputs"]))
        gone = sorted(set(c["inputs"]) - set(d["inputs"]))
        after = date.fromisoformat(d["as_of"]) >= change
        if after and first is None and any(i.startswith(f"region={REGION}:") for i in caused):
            first = d["as_of"]
        print(
            f"{d['as_of']}: only in the drift run: {caused or '-'}; "
            f"only in the control: {gone or '-'}"
        )
    for name, rows in runs.items():
        other = [
            r for r in rows if any("obligations_oldest_overdue_days" not in i for i in r["inputs"])
        ]
        print(
            f"{name}: checks with a drift alert "
            f"{sum(bool(r['inputs']) for r in rows)} of {len(rows)}; "
            f"with one on another input than obligations_oldest_overdue_days {len(other)}"
        )
    print(
        f"first check at/after {change} with a region={REGION} drift alert "
        f"the control lacks: {first}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--persons", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--root", type=Path, default=Path("/tmp/benchdrift"))
    parser.add_argument("--run", choices=("drift", "control", "compare"), required=True)
    parser.add_argument("--change", type=date.fromisoformat, default=date(2023, 7, 1))
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
    setup(root, args.persons, args.seed, change)
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
