"""Registration-rate drift (`fairness.monitoring.rates`) on large simulated deliveries, without
a model: is the check's power enough to see a region's practice change within one quarter?

    nice -n 10 .venv/bin/python experiments/bench_monitoring_rates.py --root var/bench/rates1m \
        --run drift      # then --run control, then --run compare

``--root/RUN/home`` must hold an ingested delivery (drift: ALA x2 record rate of low-gravity
offences from 2023-07-01; control: the same seed without; both with obligations written off
after 3 years), as `bench_monitoring_drift.py`'s runs but at a size whose training would not
fit the session. The rate check needs no model: its inputs are feature counts of the
population with a record. The reference is that population as of 2021-12-31 (the audited test
snapshot of `bench_monitoring_drift.py`'s champion), the checks the 12 quarter ends
2022-03-31..2024-12-31, the settings those of ``configs/monitoring.yaml`` (``rates``) and the
group columns the monitor judges (sex, ethnicity, age band, region).
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

import polars as pl

from experiments.bench_monitoring_cohorts import QUARTERS
from experiments.bench_monitoring_drift import false_alarms

REFERENCE = date(2021, 12, 31)
REGION = "ALA"


def frame_at(day: date) -> pl.DataFrame:
    """The population with a record as of ``day``: the rate inputs and the audit's groups."""
    from fairness.policy import group_columns, load_policy
    from features.frames.builder import collect_features
    from features.frames.definitions import load_spec
    from features.store.offline import OfflineStore
    from riskcast.settings import get_settings

    frame = collect_features(OfflineStore(get_settings().home), load_spec(), [day], "with_record")
    groups = group_columns(frame, load_policy())
    keep = [c for c in groups.columns if c not in frame.columns]
    return frame.with_columns(*[groups[c] for c in keep])


def run(root: Path) -> None:
    from fairness.monitoring.config import load_monitoring_config
    from fairness.monitoring.rates import rate_drift
    from riskcast.settings import get_settings

    os.environ["RISKCAST_HOME"] = str(root / "home")
    get_settings.cache_clear()
    config = load_monitoring_config()
    started = time.perf_counter()
    reference = frame_at(REFERENCE)
    print(
        f"reference {REFERENCE}: {reference.height:,} persons "
        f"({time.perf_counter() - started:.0f} s)"
    )
    rows = []
    for day in QUARTERS:
        started = time.perf_counter()
        current = frame_at(day)
        out = rate_drift(reference, current, config.rates, config.group_columns)
        alerts = sorted(
            f"rate_drift rate:{r.input} {r.group_column}={r.group}"
            for r in out
            if r.status == "alert"
        )
        ala = {
            r.input: [
                r.relative,
                r.relative_lower,
                r.relative_upper,
                r.events_reference,
                r.events_current,
            ]
            for r in out
            if (r.group_column, r.group) == ("region", REGION)
        }
        rows.append({"as_of": day.isoformat(), "n": current.height, "alerts": alerts, "ala": ala})
        c90 = ala.get("cases_90d")
        print(
            f"{day}: {current.height:,} persons, {time.perf_counter() - started:.0f} s; "
            + (
                f"{REGION} cases_90d relative x{c90[0]:.2f} [{c90[1]:.2f}, {c90[2]:.2f}] "
                f"({c90[3]:.0f} -> {c90[4]:.0f} events); "
                if c90 and None not in c90
                else ""
            )
            + f"alerts: {alerts or '-'}",
            flush=True,
        )
    (root / "rates-summary.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


def compare(root: Path, change: date) -> None:
    runs = {
        name: json.loads((root / name / "rates-summary.json").read_text(encoding="utf-8"))
        for name in ("drift", "control")
    }
    first = None
    k = 0
    for d in runs["drift"]:
        after = date.fromisoformat(d["as_of"]) >= change
        k += after
        if after and first is None and any(f"region={REGION}" in a for a in d["alerts"]):
            first = (d["as_of"], k)
    for name, rows in runs.items():
        false, rules = false_alarms(name, rows, change)
        print(
            f"{name}: checks with a false rate alert {sum(map(bool, false))} of {len(rows)}; per "
            "rule: " + (", ".join(f"{k} {n}" for k, n in sorted(rules.items())) or "none")
        )
    print(
        f"first check at/after {change} naming region={REGION}: "
        + (f"{first[0]}, materialisation {first[1]} after the change" if first else "none")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--root", type=Path, default=Path("var/bench/rates1m"))
    parser.add_argument("--run", choices=("drift", "control", "compare"), required=True)
    parser.add_argument("--change", type=date.fromisoformat, default=date(2023, 7, 1))
    args = parser.parse_args(argv)
    if args.run == "compare":
        compare(args.root, args.change)
    else:
        run(args.root / args.run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
