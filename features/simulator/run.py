"""`simulate`: the whole simulation, chunk by chunk, streamed to Parquet.

Persons are processed in chunks (each with its own seed stream, so memory is bounded by the
chunk size); place-level tables are generated year by year. Output folders are written
under temporary names and renamed at the end, so a crash never leaves a half delivery
under the requested name.
"""

from __future__ import annotations

import json
import os
import shutil
import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features.contract.manifest import build_manifest, write_manifest
from features.contract.schema import TABLE_ORDER
from features.errors import InputError
from features.simulator.careers import simulate_careers
from features.simulator.cases import (
    Offsets,
    admin_frame,
    build_releases,
    criminal_frame,
    releases_frame,
)
from features.simulator.config import SimulatorConfig
from features.simulator.corrupt import Context, Ledger, corrupt
from features.simulator.hazard import Window
from features.simulator.obligations import build_obligations, obligations_frame
from features.simulator.places import appeal_blocks, build_world, incident_blocks
from features.simulator.population import draw_population, persons_frame
from features.simulator.status import extract_spells, simulate_status
from features.simulator.successive import CHANGES_SCHEMA, changes
from features.simulator.timebase import LagDistribution, MonthGrid, day_of
from features.simulator.truth import labels_frame, offences_frame, probabilities
from features.simulator.truth import persons_frame as latent_persons_frame
from features.simulator.writer import DeliveryWriter, FrameWriter

Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) after each chunk ('persons') or year ('places')."""

TRUTH_FILES = ("labels", "persons", "offences", "changes", "expected-ingest", "simulation")


@dataclass(frozen=True)
class SimulationResult:
    """What `simulate` wrote: folders, files, rows per table, and the expected ingest counts."""

    delivery: Path
    truth: Path
    extract_id: str
    extracted_at: datetime
    rows: dict[str, int]
    truth_files: dict[str, Path]
    ledger: dict[str, object]
    seconds: float
    second_delivery: Path | None = None
    second_extract_id: str | None = None
    second_rows: dict[str, int] | None = None
    truth_rows: dict[str, int] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        """Every file written, deliveries first."""
        out = sorted(self.delivery.iterdir())
        if self.second_delivery is not None:
            out += sorted(self.second_delivery.iterdir())
        return out + sorted(self.truth_files.values())


def extraction_time(value: datetime | date) -> datetime:
    """A date means 23:59:59Z of that date; a naive datetime is taken as UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(23, 59, 59), tzinfo=UTC)


def extract_id_for(extracted_at: datetime, seed: int) -> str:
    return f"{extracted_at:%Y-%m-%d}-sim-s{seed}"


def truth_folder(out: Path) -> Path:
    return out.parent / f"{out.name}_truth"


def second_folder(out: Path) -> Path:
    return out.parent / f"{out.name}_2"


@dataclass(frozen=True)
class _Extraction:
    at: datetime
    day: int
    us: int
    extract_id: str


def _extraction(at: datetime, seed: int) -> _Extraction:
    us = int(at.timestamp()) * 1_000_000 + at.microsecond
    return _Extraction(at, day_of(at.date()), us, extract_id_for(at, seed))


def check_arguments(
    persons: int,
    seed: int,
    start: date,
    first: datetime,
    second: datetime | None,
    as_of: Sequence[date],
    horizon_days: int,
    corrupt_rate: float,
    chunk_size: int,
) -> None:
    """Refuse arguments `simulate` cannot honour, with a message naming the argument."""
    if persons < 1:
        raise InputError(f"persons must be at least 1, got {persons}")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be at least 1, got {chunk_size}")
    if not 0.0 <= corrupt_rate <= 0.5:
        raise InputError(f"corrupt_rate must be within 0..0.5, got {corrupt_rate}")
    if horizon_days < 1:
        raise InputError(f"horizon_days must be at least 1, got {horizon_days}")
    if start >= first.date():
        raise InputError(f"start {start} must be before extracted_at {first:%Y-%m-%d}")
    if second is not None and second <= first:
        raise InputError(
            f"the second delivery ({second:%Y-%m-%d}) must be extracted after the first "
            f"({first:%Y-%m-%d})"
        )
    for d in as_of:
        if d < start:
            raise InputError(f"as-of {d} is before the simulation start {start}")
        end = d + timedelta(days=horizon_days)
        if end > first.date():
            raise InputError(
                f"as-of {d} with a {horizon_days}-day horizon ends on {end}, after extracted_at "
                f"{first:%Y-%m-%d}: its label could not be observed in the delivery"
            )


def _prepare(target: Path, overwrite: bool) -> Path:
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise InputError(f"{target} exists and is not empty (use overwrite to replace it)")
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _commit(tmp: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


def simulate(
    out: Path,
    persons: int,
    seed: int,
    start: date,
    extracted_at: datetime | date,
    as_of: Sequence[date] = (),
    horizon_days: int = 365,
    corrupt_rate: float = 0.0,
    second_delivery_at: datetime | date | None = None,
    second_out: Path | None = None,
    config: SimulatorConfig | None = None,
    chunk_size: int = 200_000,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> SimulationResult:
    """Simulate national registers and write a contract delivery to `out`, the truth to
    `<out>_truth/` and, if `second_delivery_at` is given, a later full delivery to
    `second_out` (default `<out>_2/`).

    `as_of`: dates for which p_true and labels are written (default: `horizon_days` before
    extraction); each window must end by `extracted_at`. `corrupt_rate`: share of rows per
    table injected as invalid (the ledger is `expected-ingest.json` in the truth folder).
    The same arguments always give byte-identical files.
    """
    t_start = clock.perf_counter()
    cfg = config or SimulatorConfig()
    first = _extraction(extraction_time(extracted_at), seed)
    second = (
        _extraction(extraction_time(second_delivery_at), seed)
        if second_delivery_at is not None
        else None
    )
    as_of = sorted(set(as_of)) or [first.at.date() - timedelta(days=horizon_days)]
    check_arguments(
        persons,
        seed,
        start,
        first.at,
        second.at if second else None,
        as_of,
        horizon_days,
        corrupt_rate,
        chunk_size,
    )
    out = Path(out)
    truth_dir = truth_folder(out)
    second_dir = Path(second_out) if second_out is not None else second_folder(out)
    targets = [out, truth_dir] + ([second_dir] if second else [])
    if len({p.resolve() for p in targets}) != len(targets):
        raise InputError("the delivery, truth and second-delivery folders must differ")
    tmps = [_prepare(p, overwrite) for p in targets]

    start_day = day_of(start)
    last_day = (second or first).day
    grid = MonthGrid.covering(start_day, last_day)
    lag = LagDistribution.from_config(cfg.crime.lag)
    windows = [Window.build(day_of(d), horizon_days, lag) for d in as_of]
    ledger = Ledger(first.extract_id)
    fabricated: dict[str, int] = {}
    writers = [DeliveryWriter(tmps[0])] + ([DeliveryWriter(tmps[2])] if second else [])
    truth_writers: dict[str, FrameWriter] = {}

    def write_truth(name: str, frame: pl.DataFrame) -> None:
        if name not in truth_writers:
            schema = frame.head(0).to_arrow().schema
            truth_writers[name] = FrameWriter(tmps[1] / f"{name}.parquet", schema)
        truth_writers[name].write(frame)

    if second:
        write_truth("changes", pl.DataFrame(schema=CHANGES_SCHEMA))

    extractions = [first] + ([second] if second else [])
    n_chunks = (persons + chunk_size - 1) // chunk_size
    offsets = Offsets(0, 0, 0)
    for ci in range(n_chunks):
        lo = ci * chunk_size
        n = min(chunk_size, persons - lo)
        rngs = [
            np.random.default_rng(s)
            for s in np.random.SeedSequence(seed, spawn_key=(1, ci)).spawn(9)
        ]
        pop = draw_population(rngs[0], cfg, lo, n, first.day, start_day)
        paths = simulate_status(rngs[1], pop, cfg, grid)
        spells = extract_spells(rngs[2], paths, pop, cfg, grid)
        careers = simulate_careers((rngs[3], rngs[4], rngs[5]), pop, paths, cfg, grid, windows, lag)
        releases = build_releases(rngs[6], careers, last_day)
        obligations = build_obligations(rngs[7], pop, careers, paths, grid, cfg)
        views = []
        for ex in extractions:
            views.append(
                {
                    "persons": persons_frame(pop, cfg, ex.day),
                    "social_status": spells.frame(pop, ex.us),
                    "criminal_cases": criminal_frame(careers.offences, pop, offsets, ex.us, ex.day),
                    "admin_offences": admin_frame(careers.admin, pop, offsets, ex.us, ex.day),
                    "obligations": obligations_frame(
                        obligations, pop, offsets.obligation, ex.us, ex.day
                    ),
                    "releases": releases_frame(releases, pop, ex.us),
                }
            )
        probs = probabilities(careers, windows, lag, n)
        write_truth(
            "labels",
            labels_frame(pop, careers, windows, horizon_days, probs, views[0]["criminal_cases"]),
        )
        write_truth("persons", latent_persons_frame(pop, careers, cfg))
        write_truth("offences", offences_frame(pop, careers, offsets))
        ctx = Context(first.at, views[0]["persons"], rngs[8], fabricated)
        for name, frame in views[0].items():
            writers[0].write(name, corrupt(name, frame, corrupt_rate, ctx, ledger))
        if second:
            for name, frame in views[1].items():
                writers[1].write(name, frame)
                write_truth("changes", changes(name, views[0][name], frame))
        offsets = Offsets(
            offsets.offence + len(careers.offences.person),
            offsets.admin + len(careers.admin.person),
            offsets.obligation + obligations.n,
        )
        if progress:
            progress("persons", ci + 1, n_chunks)

    place_rngs = [
        np.random.default_rng(s) for s in np.random.SeedSequence(seed, spawn_key=(2,)).spawn(4)
    ]
    world = build_world(
        place_rngs[0], cfg.places, cfg.population.region_shares, start_day, last_day
    )
    years = (last_day - start_day) // 365 + 1
    blocks = zip(
        incident_blocks(place_rngs[1], world, cfg.places, persons, last_day),
        appeal_blocks(place_rngs[2], world, cfg.places, persons, last_day),
        strict=True,
    )
    ctx = Context(first.at, pl.DataFrame(), place_rngs[3], fabricated)
    for yi, (incidents, appeals) in enumerate(blocks):
        for name, block in (("incidents", incidents), ("appeals", appeals)):
            f1 = block.frame(first.us, first.day)
            writers[0].write(name, corrupt(name, f1, corrupt_rate, ctx, ledger))
            if second:
                f2 = block.frame(second.us, second.day)
                writers[1].write(name, f2)
                write_truth("changes", changes(name, f1, f2))
        if progress:
            progress("places", yi + 1, years)

    rows = writers[0].close()
    write_manifest(tmps[0], build_manifest(tmps[0], first.extract_id, first.at, rows))
    second_rows = None
    if second:
        second_rows = writers[1].close()
        write_manifest(tmps[2], build_manifest(tmps[2], second.extract_id, second.at, second_rows))
    truth_rows = {name: w.close() for name, w in truth_writers.items()}
    (tmps[1] / "expected-ingest.json").write_text(ledger.to_json(), encoding="utf-8")
    params = {
        "persons": persons,
        "seed": seed,
        "start": start.isoformat(),
        "extracted_at": first.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "extract_id": first.extract_id,
        "second_delivery_at": second.at.strftime("%Y-%m-%dT%H:%M:%SZ") if second else None,
        "as_of": [d.isoformat() for d in as_of],
        "horizon_days": horizon_days,
        "corrupt_rate": corrupt_rate,
        "chunk_size": chunk_size,
        "config": cfg.model_dump(mode="json"),
    }
    (tmps[1] / "simulation.json").write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    for tmp, target in zip(tmps, targets, strict=True):
        _commit(tmp, target)
    files = {p.stem: p for p in truth_dir.iterdir()}
    return SimulationResult(
        delivery=out,
        truth=truth_dir,
        extract_id=first.extract_id,
        extracted_at=first.at,
        rows={t: rows[t] for t in TABLE_ORDER},
        truth_files=files,
        ledger=ledger.to_dict(),
        seconds=clock.perf_counter() - t_start,
        second_delivery=second_dir if second else None,
        second_extract_id=second.extract_id if second else None,
        second_rows=second_rows,
        truth_rows=truth_rows,
    )
