"""Benchmark (issue 13, section 3): erasure of one person on a 100k-person home, and
`riskcast retention apply` on an access log of 1M entries.

    .venv/bin/python experiments/bench_erasure.py --persons 100000 --entries 1000000
    .venv/bin/python experiments/bench_erasure.py --store var/bench/places-100000/home/store

Erasure: a home with the simulated registers of ``--persons`` persons (simulated and ingested,
or the offline store of an earlier run copied in with ``--store``), the latest vectors
materialised in the online store (SQLite), and the person read and decided on; then
`serving.erasure.erase_person` end to end (tombstone, online vector and new materialisation,
decisions, access-log lookup row, ledger entry), timed, and the next feature build checked to
miss the person. Retention: an access log of ``--entries`` entries (SQLite, appended in
batches), then `serving.retention.apply_retention` with every entry past its period (all but
the head sealed, archived and deleted), timed, and `access-log verify` after it, timed.
Prints the figures as JSON (and writes them with ``--json FILE``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from fairness.ledger import Ledger
from features.frames.builder import collect_features
from features.frames.definitions import load_spec
from features.online.store import SqlOnlineStore
from features.store.offline import OfflineStore
from riskcast.chain import GENESIS, entry_hash
from serving.access_log import AccessLog
from serving.db import decisions, open_engine
from serving.erasure import erase_person
from serving.retention import RetentionConfig, apply_retention

KEY = b"bench-erasure-chain-key"


def prepare_home(home: Path, persons: int, store: Path | None, seed: int) -> None:
    if (home / "store" / "state.json").exists():
        return
    if store is not None:
        shutil.copytree(store, home / "store")
        return
    from experiments.common import simulate_and_ingest

    simulate_and_ingest(home.parent / "d1", home, persons, seed, overwrite=True)


def materialize(home: Path, url: str) -> tuple[float, int, date]:
    store = OfflineStore(home)
    last = store.state().last_delivery
    assert last is not None
    as_of = last.extracted_at.date()
    started = time.perf_counter()
    spec = load_spec()
    frame = collect_features(store, spec, [as_of], "all").drop("as_of")
    online = SqlOnlineStore(url)
    online.materialize(frame, as_of, spec.spec_hash())
    online.dispose()
    return time.perf_counter() - started, frame.height, as_of


def bench_erasure(work: Path, persons: int, store: Path | None, seed: int) -> dict[str, Any]:
    home = work / "home"
    prepare_home(home, persons, store, seed)
    url = f"sqlite:///{(home / 'riskcast.sqlite').resolve()}"
    seconds, rows, as_of = materialize(home, url)
    online = SqlOnlineStore(url)
    engine = open_engine(url)
    log = AccessLog(url, key=KEY, anchor_dir=home / "anchors")
    ledger = Ledger(url, key=KEY, anchor_dir=home / "anchors")
    with online.engine.connect() as conn:
        victim = str(
            conn.execute(sa.text("SELECT person_id FROM feature_vectors LIMIT 1")).scalar()
        )
    for i in range(20):  # the person read among others, and decided on
        log.append(
            actor="olga",
            role="officer",
            purpose="case_review",
            action="scores",
            persons=[victim, f"other-{i}"],
            params={},
            model_version="1",
            status=200,
        )
    with engine.begin() as conn:
        conn.execute(
            sa.insert(decisions),
            [
                {
                    "recorded_at": datetime.now(UTC),
                    "officer": "olga",
                    "person_id": victim,
                    "region": "X",
                    "action": "contacted",
                    "reason": "bench note",
                    "override": False,
                }
                for _ in range(5)
            ],
        )
    done = erase_person(
        victim,
        by="bench",
        role="admin",
        reason="benchmark erasure",
        home=home,
        engine=engine,
        access_log=log,
        ledger=ledger,
        online=online,
    )
    started = time.perf_counter()
    frame = collect_features(OfflineStore(home), load_spec(), [as_of], "all")
    build = time.perf_counter() - started
    assert victim not in set(frame["person_id"].to_list())
    assert log.verify().ok and ledger.verify().ok
    for closing in (ledger, log, online):
        closing.dispose()
    engine.dispose()
    return {
        "persons_materialised": rows,
        "materialize_seconds": round(seconds, 2),
        "erase_seconds": round(done.seconds, 3),
        "online_vectors": done.online_vectors,
        "decisions_blanked": done.decisions_blanked,
        "feature_build_after_erasure_seconds": round(build, 2),
    }


def fill_chain(log: AccessLog, entries: int, batch: int) -> None:
    """``entries`` valid chain entries, hashed as `HashChain` hashes them (`entry_hash` under
    the chain key, each after the previous), inserted in batches: the service's own append
    path (pydantic-validated, one entry at a time) would take ten minutes for a million."""
    chain = log.chain
    chain.ensure()
    base = datetime.now(UTC) - timedelta(seconds=entries)
    prev = GENESIS
    with chain.engine.begin() as conn:
        for start in range(0, entries, batch):
            rows = []
            for i in range(start, min(entries, start + batch)):
                fields: dict[str, Any] = {
                    "seq": i + 1,
                    "at": base + timedelta(microseconds=i),
                    "actor": "olga",
                    "role": "officer",
                    "purpose": "case_review",
                    "action": "scores",
                    "persons": [log.pseudonyms.of(f"P{i}")],
                    "params": {"ids": 1},
                    "model_version": "1",
                    "status": 200,
                    "prev_hash": prev,
                }
                prev = fields["hash"] = entry_hash(fields, KEY)
                rows.append(
                    fields
                    | {
                        "persons": json.dumps(fields["persons"]),
                        "params": json.dumps(fields["params"]),
                    }
                )
            conn.execute(sa.insert(chain.table), rows)
    if chain.anchors is not None:
        chain.anchors.record(entries, prev)


def bench_retention(work: Path, entries: int, batch: int = 50_000) -> dict[str, Any]:
    folder = work / "retention"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    url = f"sqlite:///{(folder / 'riskcast.sqlite').resolve()}"
    log = AccessLog(url, key=KEY, anchor_dir=folder / "anchors")
    engine = open_engine(url)
    ledger = Ledger(url, key=KEY, anchor_dir=folder / "anchors")
    started = time.perf_counter()
    fill_chain(log, entries, batch)
    fill = time.perf_counter() - started
    config = RetentionConfig(config_version="bench", access_log_days=1, decisions_days=1)
    later = datetime.now(UTC) + timedelta(days=2)  # every entry past its period
    done = apply_retention(
        config, access_log=log, engine=engine, ledger=ledger, home=folder, by="bench", now=later
    )
    started = time.perf_counter()
    check = log.verify()
    verify = time.perf_counter() - started
    assert check.ok, check.problems
    assert done.seal is not None
    archive = folder / "archive" / done.seal.archive
    figures = {
        "log_entries": entries,
        "fill_seconds": round(fill, 1),
        "retention_apply_seconds": round(done.seconds, 2),
        "sealed_entries": done.seal.entries,
        "archive_mb": round(archive.stat().st_size / 1e6, 1),
        "verify_after_seconds": round(verify, 3),
    }
    for closing in (ledger, log):
        closing.dispose()
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", type=Path, default=None, help="an offline store to copy")
    parser.add_argument("--out", type=Path, default=Path("var/bench/erasure"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-erasure", action="store_true")
    parser.add_argument("--skip-retention", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    if not args.skip_erasure:
        figures["erasure"] = bench_erasure(args.out, args.persons, args.store, args.seed)
        print(json.dumps({"erasure": figures["erasure"]}), flush=True)
    if not args.skip_retention:
        figures["retention"] = bench_retention(args.out, args.entries)
        print(json.dumps({"retention": figures["retention"]}), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
