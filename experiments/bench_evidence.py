"""Benchmark of `riskcast evidence-pack` (issue 13, section 4) on a demo-size home.

    .venv/bin/python experiments/bench_evidence.py                    # 100,000 persons (make demo)
    .venv/bin/python experiments/bench_evidence.py --reuse            # the home built before

Builds, through the real CLI, a home like `make demo`'s person path under
``var/bench/evidence-<N>/home``: simulate, ingest, materialize, train (``--trials``), audit,
promote (the bench auditor's override when the gate refuses), one monitoring check
(`riskcast monitor`, when this checkout has it), and ``--decisions`` decisions in the service's
decisions table about persons the model scores (three of them about one person). Then times
the pack itself, in process (`serving.evidence.build.build_evidence_pack`, what the command
runs): without and with a person's export, ``--repeats`` times each, and prints the median,
the files and their size.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.common import simulate_args


def riskcast(*args: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> str:
    """One riskcast command as a user runs it; its output (stopping the bench on a failure)."""
    command = [str(Path(sys.executable).parent / "riskcast"), *args]
    print("$ riskcast " + " ".join(args), flush=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in ok:
        sys.exit(f"riskcast {args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def build_home(root: Path, persons: int, trials: int, env: dict[str, str]) -> str:
    """The demo's person path into ``root/home``; returns the champion version."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    delivery = root / "d1"
    riskcast(*simulate_args(delivery, persons, 2026), env=env)
    riskcast("ingest", str(delivery), env=env)
    riskcast("features", "materialize", "--as-of", "2025-12-31", env=env)
    out = riskcast("train", "--trials", str(trials), "--truth", f"{delivery}_truth", env=env)
    version = re.search(r"model version: recidivism-risk v(\d+)", out)
    if version is None:
        sys.exit(f"no version in the training output:\n{out}")
    v = version.group(1)
    riskcast("audit", v, "--by", "bench", env=env)
    riskcast("promote", v, "--by", "bench", "--reason", "bench: first model", env=env, ok=(0, 1))
    user = riskcast("users", "add", "bench-auditor", "--role", "auditor", env=env)
    token = re.search(r"token=(\S+)", user)
    if token is None:
        sys.exit(f"no token in: {user}")
    riskcast(
        "promote",
        v,
        "--override",
        "--reason",
        "bench only: simulated data, reviewed",
        env={**env, "RISKCAST_TOKEN": token.group(1)},
        ok=(0, 1),
    )
    monitor = subprocess.run(
        [str(Path(sys.executable).parent / "riskcast"), "monitor", "--help"],
        env=env,
        capture_output=True,
        check=False,
    )
    if monitor.returncode == 0:
        riskcast("monitor", env=env, ok=(0, 1))
    return v


def add_decisions(count: int) -> str:
    """``count`` decisions about materialised persons (three about the first); its id."""
    import sqlalchemy as sa

    from features.frames.scope import SCOPE_RECORD
    from features.online.store import VECTORS, open_online_store
    from riskcast.clock import utcnow
    from riskcast.settings import get_settings
    from serving.db import decisions, open_engine

    store = open_online_store()
    vectors = sa.table(VECTORS, sa.column("person_id"), sa.column(SCOPE_RECORD))
    query = (
        sa.select(vectors.c.person_id)
        .where(vectors.c[SCOPE_RECORD] == 1)  # persons the model scores: their export explains
        .order_by(vectors.c.person_id)
        .limit(count)
    )
    try:
        with store.engine.connect() as conn:
            ids = [str(pid) for pid in conn.execute(query).scalars()]
    finally:
        store.dispose()
    engine = open_engine(get_settings().effective_database_url)
    actions = ["contacted", "disagreed", "no_action"]
    rows = [
        {
            "recorded_at": utcnow(),
            "officer": "bench-officer",
            "person_id": pid,
            "region": "ALA",
            "district": None,
            "action": actions[i % 3],
            "measure_id": None,
            "reason": "bench: the register is out of date" if i % 3 == 1 else None,
            "override": i % 3 == 1,
            "model_version": None,
            "probability": None,
            "tier": None,
        }
        for i, pid in enumerate([ids[0], ids[0], *ids[: count - 2]])
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(decisions), rows)
    engine.dispose()
    return ids[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="reuse the home built before")
    options = parser.parse_args(argv)
    root = Path("var/bench") / f"evidence-{options.persons}"
    home = root / "home"
    env = {**os.environ, "RISKCAST_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RISKCAST_DATABASE_URL", None)
    os.environ.update({"RISKCAST_HOME": str(home)})
    for key in ("MLFLOW_TRACKING_URI", "RISKCAST_DATABASE_URL"):
        os.environ.pop(key, None)
    started = time.perf_counter()
    marker = root / "version.txt"
    if options.reuse and marker.is_file():
        version = marker.read_text().strip()
    else:
        version = build_home(root, options.persons, options.trials, env)
        marker.write_text(version)
    from riskcast.settings import get_settings

    get_settings.cache_clear()
    person = add_decisions(options.decisions)
    print(f"home ready in {time.perf_counter() - started:.0f} s: {home} (v{version})")
    from serving.evidence.build import build_evidence_pack

    for label, who in (("pack", None), ("pack + person export", person)):
        seconds = []
        for i in range(options.repeats):
            out = root / f"pack-{'person' if who else 'plain'}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            built = build_evidence_pack(version, out, person=who, by="bench")
            seconds.append(time.perf_counter() - t)
        size = sum(f["bytes"] for f in built.pack.files)
        print(
            f"{label}: median {statistics.median(seconds):.2f} s over {options.repeats} "
            f"(min {min(seconds):.2f}, max {max(seconds):.2f}); {len(built.pack.files)} files, "
            f"{size / 1024:.0f} KiB; {options.persons:,} persons, "
            f"{options.decisions} decisions added this run; gaps: {built.pack.gaps or 'none'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
