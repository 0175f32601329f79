"""Benchmark of the places part of `riskcast monitor` (issue 13): a places champion trained on the
delivery as extracted at ``--cut``, promoted, then the full delivery (extracted 2025-12-31)
ingested; the places check as of ``--check`` timed (input drift of every cell feature: the
drift window against the same weeks a year before, score drift, the realised weeks since with
deviance, PAI, the observed/forecast ratios per district and the exposure), and its findings
printed. Nothing is injected in the simulated store, so every input drift alert is a false one.

Then ``--inject`` (default 1.5): the same frames, every rate input of one district's cells in
the drift window multiplied by it (a recording change the whole window long), one district at
a time, the pure drift rule rerun: how many districts' changes are caught, and alerts elsewhere.

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
from typing import Any

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
    parser.add_argument("--inject", type=float, default=1.5, help="0: no injection part")
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
    if p is not None:
        _print_drift(p.input_drift, p.drift_note)
        _print_score(p.score_drift)
    if args.inject > 0:
        _inject(stored.result.version, args.check, args.inject)
    return 0


def _print_drift(drift: Any, note: str | None) -> None:
    import numpy as np

    if drift is None:
        print(f"input drift: not judged ({note})")
        return
    statuses: dict[str, int] = {}
    for row in drift.rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    print(f"input drift: window {drift.current_origins[0]}..{drift.current_origins[-1]} vs "
          f"{drift.reference_origins[0]}..{drift.reference_origins[-1]}; {len(drift.rows):,} rows"
          f", {drift.tests:,} tested, {statuses}; skipped {drift.skipped}")  # fmt: skip
    for e in drift.evidence:
        if e.group_column == "district":
            detect = f"x{e.detectable_ratio:.2f}" if e.detectable_ratio is not None else "-"
            print(f"  evidence {e.group}: {e.input} effective count {e.effective_count:.1f}, "
                  f"detectable {detect}: {e.state}")  # fmt: skip
    phis = {r.input: (r.dispersion, r.between_variance) for r in drift.rows if r.group_column
            == "district"}  # fmt: skip
    if phis:
        phi = np.array([v[0] for v in phis.values()])
        tau = np.sqrt(np.array([v[1] for v in phis.values()]))
        print(f"  dispersion phi per input: median {np.median(phi):.2f} (range {phi.min():.2g}-"
              f"{phi.max():.2g}); between-district sd tau: median {np.median(tau):.3f}, "
              f"max {tau.max():.3f}, at the floor in {int((tau <= 0.0700001).sum())} of "
              f"{tau.size} inputs")  # fmt: skip
    for row in drift.rows:
        if row.group_column in ("all", "region") and row.input in (
            "count_all_13w",
            "count_all_52w",
        ):
            print(
                f"  {row.input} {row.group_column}={row.group}: ratio {row.ratio:.3f} "
                f"[{row.lower:.3f}, {row.upper:.3f}] q={row.q_value:.2g} {row.status}"
            )
    top = sorted((r for r in drift.rows if r.p_value is not None), key=lambda r: r.p_value)[:5]
    for row in top:
        print(
            f"  smallest p: {row.input} {row.group_column}={row.group} ratio {row.ratio:.2f} "
            f"p={row.p_value:.2g} q={row.q_value:.2g} {row.status}"
        )


def _print_score(drift: Any) -> None:
    """The forecast's drift (now vs the same weeks a year before): statuses, alerts, the rows
    of KAR's rural districts (the old rule's 3 false breaches were there)."""
    if drift is None:
        print("score drift: not judged")
        return
    statuses: dict[str, int] = {}
    for row in drift.rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    print(f"score drift (mean forecast now / same weeks a year before, band {drift.band}): "
          f"{drift.tests} tested, {statuses}")  # fmt: skip
    for row in drift.rows:
        if (
            row.group_column in ("all", "region")
            or row.group.startswith("KAR-R")
            or (row.status == "alert")
        ):
            iv = f"[{row.lower:.3f}, {row.upper:.3f}]" if row.lower is not None else "-"
            ratio = f"{row.ratio:.3f}" if row.ratio is not None else "-"
            print(f"  {row.group_column}={row.group}: ratio {ratio} {iv} {row.status}")


def _inject(version: str, day: date, factor: float) -> None:
    """Every rate input of one district in the drift window x ``factor``, one district at a
    time, the drift rule rerun on the same frames."""
    import polars as pl

    from fairness.commands import edges
    from fairness.monitoring.config import load_monitoring_config
    from fairness.monitoring.places_cli import _champion, places_check_inputs
    from fairness.monitoring.places_drift import places_input_drift
    from fairness.monitoring.places_scores import places_score_drift, score_breaches
    from fairness.places.audit import load_predictions
    from riskcast.names import PLACES_MODEL

    home, uri = edges()
    config = load_monitoring_config()
    settings = config.places
    scores, _, sha = load_predictions(PLACES_MODEL, version, uri)
    model = _champion(version, home)
    x = places_check_inputs(model, version, day, scores, sha, home, settings, lambda m: None)
    if x.reference_features is None:
        print(f"injection: no drift reference ({x.drift_note})")
        return
    base = places_input_drift(
        x.reference_features, x.current_features, x.inputs, settings.drift,
        settings.group_columns,
    )  # fmt: skip
    rates = [i for i in x.inputs if i not in base.skipped]
    incidents = (
        x.current_features.group_by("district").agg(pl.col("count_all_13w").sum().alias("n"))
        if "count_all_13w" in x.current_features.columns
        else None
    )
    caught, elsewhere, started = 0, 0, time.perf_counter()
    score_caught, score_elsewhere = 0, 0
    districts = sorted(x.current_features["district"].drop_nulls().unique().to_list())
    for d in districts:
        inside = pl.col("district") == d
        changed = x.current_features.with_columns(
            [pl.when(inside).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in rates]
        )
        drift = places_input_drift(
            x.reference_features, changed, x.inputs, settings.drift, settings.group_columns
        )
        hits = [a for a in drift.alerts() if a.group == d]
        other = [a for a in drift.alerts() if a.group_column == "district" and a.group != d]
        caught += bool(hits)
        elsewhere += bool(other)
        rescored = changed.with_columns(pl.Series("expected_count", model.predict(changed)))
        sb = score_breaches(
            places_score_drift(
                x.reference_features, rescored, settings.drift,
                config.drift.score_mean_ratio_alert, settings.group_columns,
            )
        )  # fmt: skip
        score_caught += any(b.group == d for b in sb)
        score_elsewhere += any(b.group_column == "district" and b.group != d for b in sb)
        evidence = next(
            (r for r in drift.rows if r.group == d and r.input == "count_all_13w"), None
        )
        eff = f"{evidence.effective_count:.1f}" if evidence is not None else "?"
        n = int(incidents.filter(pl.col("district") == d)["n"][0]) if incidents is not None else -1
        print(
            f"  x{factor:g} in {d} (13-week incidents summed over the window's cells and "
            f"origins {n}; effective count {eff}): {len(hits)} alerts in {d}, {len(other)} in "
            f"other districts; score breach there {any(b.group == d for b in sb)}"
        )
    print(
        f"injection x{factor:g}: caught in {caught} of {len(districts)} districts; alerts in "
        f"another district in {elsewhere} runs ({time.perf_counter() - started:.1f} s)"
    )
    print(
        f"score drift, the champion rescoring the changed frames: caught in {score_caught} of "
        f"{len(districts)} districts; a breach in another district in {score_elsewhere} runs"
    )


if __name__ == "__main__":
    raise SystemExit(main())
