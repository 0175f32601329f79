"""Back-test of the label-free AUC interval on a real champion (issue 13 §5: >= 90 % of (group,
period) cells covered, mean |AUC error| <= 0.02 per group), fast enough to compare settings.

    .venv/bin/python experiments/bench_monitoring_auc.py --root var/bench/mon200k --dump
    .venv/bin/python experiments/bench_monitoring_auc.py --root var/bench/mon200k \\
        --modes none shift widen pooled

``--dump`` needs a home made by ``bench_monitoring_cohorts.py --part pipeline --root ROOT`` (a
delivery simulated, ingested, a champion trained): it scores the audited test snapshot (the
reference, labels known) and the 8 matured cohorts the pipeline's checks compare (the
populations of 2022-03-31 .. 2023-12-31 with their labels) with the champion, as ``riskcast
monitor`` does (`fairness.monitoring.cli`), and keeps them as Parquet under ROOT/frames.

Without ``--dump`` it reads those frames and, for each AUC correction mode, estimates every
cohort from its scores alone (labels dropped; `estimate_performance` with the reference, the
settings of ``configs/monitoring.yaml`` but the mode) and compares with the realised AUC of
the same cohort (`realised_performance` + `compare`, the check's own code). The stored
estimate the pipeline compares was made on the same population at the earlier check; this
makes it again, so one setting costs seconds instead of 12 feature builds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl

from fairness.monitoring.config import load_monitoring_config
from fairness.monitoring.estimate import estimate_performance
from fairness.monitoring.realised import compare, realised_performance
from fairness.policy import load_policy

# E|X − E X| of a normal X with the central 95 % range w: sqrt(2/pi) · w / (2 · 1.96). The
# "noise floor" is the mean |AUC error| an exact estimator would still show, from the realised
# AUC's own label noise (the label-only interval is the realised AUC's spread under calibration).
NOISE = float(np.sqrt(2 / np.pi) / (2 * 1.959964))
COHORTS = [date(y, m, d) for y in (2022, 2023) for m, d in ((3, 31), (6, 30), (9, 30), (12, 31))]


def dump(root: Path) -> None:
    """Score the reference and the matured cohorts with the champion; write them as Parquet."""
    from fairness.audit import load_version, rebuild_test_frame
    from fairness.commands import edges
    from fairness.monitoring.cli import _labelled_at, _scored
    from fairness.promotion import current_champion
    from riskcast.names import PERSON_MODEL
    from riskcast.settings import get_settings

    os.environ["RISKCAST_HOME"] = str(root / "home")
    get_settings.cache_clear()
    home, uri = edges()
    version = current_champion(PERSON_MODEL, uri)
    assert version is not None, "no champion: run bench_monitoring_cohorts.py --part pipeline"
    ctx = load_version(PERSON_MODEL, version, home=home, uri=uri)
    policy = load_policy()
    out = root / "frames"
    out.mkdir(parents=True, exist_ok=True)
    keep = ["probability", "label", *load_monitoring_config().group_columns]
    reference, _ = rebuild_test_frame(ctx, home)
    scored = _scored(ctx, reference, policy)
    scored.select([c for c in keep if c in scored.columns]).write_parquet(out / "reference.parquet")
    for day in COHORTS:
        scored = _scored(ctx, _labelled_at(ctx, home, day), policy)
        scored.select([c for c in keep if c in scored.columns]).write_parquet(
            out / f"cohort_{day}.parquet"
        )
        print(f"cohort {day}: {scored.height:,} persons", flush=True)
    tiers = [{"name": t.name, "min": t.min_probability} for t in ctx.model.tiers]
    pl.DataFrame(tiers).write_parquet(out / "tiers.parquet")


def backtest(root: Path, mode: str, per_group: bool) -> dict[str, float]:
    """Coverage, widths and |AUC error| of one AUC correction mode over the dumped cohorts."""
    config = load_monitoring_config()
    policy = load_policy()
    frames = root / "frames"
    tiers = pl.read_parquet(frames / "tiers.parquet")["min"].to_list()
    thresholds = sorted({t for t in tiers if t > 0} | {policy.threshold})  # as check.thresholds_of
    settings = config.estimate.with_thresholds(thresholds).model_copy(
        update={"auc_correction": mode}
    )
    reference = pl.read_parquet(frames / "reference.parquet")
    groups = [c for c in config.group_columns if c in reference.columns]
    fkey = f"fpr@{policy.threshold:g}"
    nkey = f"fnr@{policy.threshold:g}"
    plain = settings.model_copy(update={"auc_correction": "none"})
    cells: dict[tuple[str, str], list[tuple[bool, float, float, bool, bool]]] = defaultdict(list)
    floor: dict[tuple[str, str], list[float]] = defaultdict(list)
    widths: dict[str, list[float]] = defaultdict(list)
    started = time.perf_counter()
    for day in COHORTS:
        cohort = pl.read_parquet(frames / f"cohort_{day}.parquet")
        est = estimate_performance(cohort.drop("label"), settings, groups, reference=reference)
        real = realised_performance(cohort, config.realised, thresholds, groups)
        for e in estimate_performance(cohort.drop("label"), plain, groups):
            if e.auc.lower is not None and e.auc.upper is not None:  # label noise alone
                floor[(e.group_column, e.group)].append(NOISE * (e.auc.upper - e.auc.lower))
        for c in compare(est, real, config.realised):
            if not c.sufficient:
                continue
            m = {x.metric: x for x in c.metrics}
            if m["auc"].within_interval is None or m[fkey].within_interval is None:
                continue
            for name in ("auc", fkey, nkey):
                lo, hi = m[name].lower, m[name].upper
                if lo is not None and hi is not None:
                    widths[name].append(hi - lo)
            cells[(c.group_column, c.group)].append(
                (
                    bool(m["auc"].within_interval),
                    abs(m["auc"].error or 0.0),
                    (m["auc"].upper or 0.0) - (m["auc"].lower or 0.0),
                    bool(m[fkey].within_interval),
                    bool(m[nkey].within_interval),
                )
            )
    seconds = time.perf_counter() - started
    rows = [r for v in cells.values() for r in v]
    errors = {k: float(np.mean([r[1] for r in v])) for k, v in cells.items()}
    if per_group:
        print(
            f"  {'group':<24}{'cells':>6}{'AUC in':>8}{'|AUC err|':>11}{'AUC width':>11}"
            f"{'noise floor':>13}"
        )
        for key in sorted(cells):
            v = cells[key]
            print(
                f"  {key[0] + '=' + key[1]:<24}{len(v):>6}{np.mean([r[0] for r in v]):>8.0%}"
                f"{errors[key]:>11.4f}{np.mean([r[2] for r in v]):>11.4f}"
                f"{np.mean(floor[key]):>13.4f}"
            )
    worst = sorted(errors.items(), key=lambda kv: -kv[1])[:3]
    summary = {
        "cells": float(len(rows)),
        "auc_in": float(np.mean([r[0] for r in rows])),
        "fpr_in": float(np.mean([r[3] for r in rows])),
        "fnr_in": float(np.mean([r[4] for r in rows])),
        "auc_width": float(np.mean(widths["auc"])),
        "fpr_width": float(np.mean(widths[fkey])),
        "fnr_width": float(np.mean(widths[nkey])),
        "groups_ok": float(sum(e <= config.realised.max_auc_error for e in errors.values())),
        "groups": float(len(errors)),
        "seconds": seconds,
    }
    print(
        f"{mode:<8} cells {len(rows)}  AUC in {summary['auc_in']:.1%}  FPR in "
        f"{summary['fpr_in']:.1%}  FNR in {summary['fnr_in']:.1%}  widths AUC "
        f"{summary['auc_width']:.4f} FPR {summary['fpr_width']:.4f} FNR "
        f"{summary['fnr_width']:.4f}  |AUC err| <= {config.realised.max_auc_error} in "
        f"{summary['groups_ok']:.0f} of {summary['groups']:.0f} groups (worst "
        + ", ".join(f"{k[0]}={k[1]} {e:.3f}" for k, e in worst)
        + f")  {seconds:.1f} s",
        flush=True,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--dump", action="store_true")
    parser.add_argument("--modes", nargs="+", default=["none", "shift", "widen", "pooled"])
    parser.add_argument("--per-group", action="store_true")
    args = parser.parse_args(argv)
    if args.dump:
        dump(args.root)
        return 0
    for mode in args.modes:
        backtest(args.root, mode, args.per_group)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
