"""Benchmark of the places part of `riskcast monitor` (issue 13): a places champion trained on the
delivery as extracted at ``--cut``, promoted, then the full delivery (extracted 2025-12-31)
ingested; the places check as of ``--check`` timed (input drift of every cell feature against
the audited test origins, score drift, the realised weeks since with deviance, PAI, the
observed/forecast ratios per district and the exposure), and its findings printed.

    .venv/bin/python experiments/bench_monitoring_places.py                  # 100,000 persons
    .venv/bin/python experiments/bench_monitoring_places.py --reuse var/bench/monplaces-100000

The store is simulated as `experiments.common.simulate_and_ingest` does (same seed and dates);
the cut delivery holds what an extraction at the end of ``--cut`` would have held.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cut(source: Path, target: Path, as_of: date) -> Path:
    """The delivery as an extraction at the end of ``as_of`` would have held it."""
    import polars as pl

    from features.contract import TABLES
    from features.store.offline import end_of_day
    from tests.factories import write_delivery

    cutoff = end_of_day(as_of)
    tables = {}
    for name, table in TABLES.items():
        path = source / f"{name}.parquet"
        if path.is_file():
            frame = pl.read_parquet(path)
            if table.knowledge_time is not None:
                frame = frame.filter(pl.col(table.knowledge_time) < cutoff)
            tables[name] = frame
    stamp = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=23, minutes=59
    )
    return write_delivery(target, tables, extract_id=f"cut-{as_of}", extracted_at=stamp)


def _prepare(out: Path, persons: int, seed: int, cut: date, trials: int) -> float:
    from fairness.promotion import set_champion
    from features.ingest import ingest_delivery
    from features.simulator import simulate
    from riskcast.names import PLACES_MODEL
    from training.places.train import train_places
    from training.tracking import tracking_uri

    home, delivery = out / "home", out / "d1"
    if (out / "ready").is_file():
        return 0.0
    started = time.perf_counter()
    simulate(
        delivery, persons=persons, seed=seed, start=date(2016, 1, 1),
        extracted_at=date(2025, 12, 31), as_of=[date(2024, 12, 31)], overwrite=True,
    )  # fmt: skip
    ingest_delivery(_cut(delivery, out / "cut", cut), home)
    print(f"  {time.strftime('%X')} training on the store cut at {cut}", flush=True)
    result = train_places(home=home, trials=trials, truth_dir=None)
    set_champion(PLACES_MODEL, result.model_version, tracking_uri(home))
    ingest_delivery(delivery, home)
    (out / "ready").write_text(result.model_version, encoding="utf-8")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trials", type=int, default=5, help="tuning trials of the champion")
    parser.add_argument("--cut", type=date.fromisoformat, default=date(2025, 9, 28))
    parser.add_argument("--check", type=date.fromisoformat, default=date(2025, 12, 28))
    parser.add_argument("--reuse", type=Path, default=None, help="a folder from an earlier run")
    args = parser.parse_args(argv)
    out = args.reuse or Path("var/bench") / f"monplaces-{args.persons}"
    out.mkdir(parents=True, exist_ok=True)
    os.environ["RISKCAST_HOME"] = str(out / "home")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("RISKCAST_DATABASE_URL", None)
    prep_s = _prepare(out, args.persons, args.seed, args.cut, args.trials)
    print(f"home: {out / 'home'} (simulate + ingest + train + promote {prep_s:.1f} s)")

    from fairness.monitoring.cli import record_alerts
    from fairness.monitoring.places_cli import run_places_monitor

    marks: list[tuple[str, float]] = []
    started = time.perf_counter()

    def say(message: str) -> None:
        marks.append((message, time.perf_counter() - started))
        print(f"  {time.perf_counter() - started:6.1f} s  {message}", flush=True)

    stored = run_places_monitor(
        None, as_of=args.check, by="bench", progress=say, record=record_alerts
    )
    total = time.perf_counter() - started
    r = stored.result
    p = r.places
    print(f"places check as of {r.as_of}: {total:.1f} s in all (load average {os.getloadavg()})")
    steps = [*marks, ("done", total)]
    for (what, at), (_, end) in itertools.pairwise(steps):
        print(f"    {end - at:6.1f} s  {what}")
    print(f"reference rows {r.n_reference:,}, current rows {r.n_current:,}; "
          f"drift rows {len(r.input_drift):,}")  # fmt: skip
    kinds: dict[str, int] = {}
    for b in r.breaches:
        kinds[b.kind] = kinds.get(b.kind, 0) + 1
    for a in p.alerts if p else []:
        kinds[a.kind] = kinds.get(a.kind, 0) + 1
    print(f"breaches: {kinds or 'none'}")
    for b in [*r.breaches, *(p.alerts if p else [])][:12]:
        print(f"  {b.kind}: {b.message}")
    if p is not None and p.realised is not None:
        real = p.realised
        print(f"realised {real.first_week}..{real.last_week}: {real.weeks} weeks, {real.cells:,} "
              f"cells, deviance {real.deviance:.4f}; PAI@5% {real.pai.value} "
              f"[{real.pai.lower}, {real.pai.upper}] vs audited {real.pai.audited}")  # fmt: skip
        for c in real.ratios:
            if c.group_column in ("all", "region"):
                print(
                    f"  {c.group_column}={c.group}: observed/forecast {c.ratio:.3f} [{c.lower:.3f},"
                    f" {c.upper:.3f}] ({c.observed} / {c.expected:.1f}) {c.status}"
                )
        statuses: dict[str, int] = {}
        for c in real.ratios:
            if c.group_column == "district":
                statuses[c.status] = statuses.get(c.status, 0) + 1
        print(f"  districts: {statuses}")
    elif p is not None:
        print(f"realised: {p.realised_note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
