"""`simulate`: the whole simulation, chunk by chunk, streamed to Parquet (or CSV).

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
from features.contract.schema import SENTENCE, TABLE_ORDER
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
from features.simulator.ids import CHUNK_SPACE, MAX_CHUNKS
from features.simulator.obligations import build_obligations, obligations_frame
from features.simulator.places import appeal_blocks, build_world, incident_blocks
from features.simulator.places_hotspots import Releases as CustodyReleases
from features.simulator.places_truth import TruthWindow, intensity_frame, window_incidents
from features.simulator.population import draw_population, persons_frame
from features.simulator.status import extract_spells, simulate_status
from features.simulator.successive import CHANGES_SCHEMA, changes
from features.simulator.timebase import LagDistribution, MonthGrid, day_of
from features.simulator.truth import labels_frame, offences_frame, probabilities
from features.simulator.truth import persons_frame as latent_persons_frame
from features.simulator.writer import DeliveryWriter, FrameWriter, OutputFormat
from riskcast.clock import as_utc
from riskcast.digest import sha256_file
from riskcast.errors import InputError
from riskcast.truth import (
    TRUTH_MANIFEST,
    TruthFile,
    TruthManifest,
    write_truth_manifest,
)

_CUSTODY = ("imprisonment", "parole")  # releases from custody (not community sentences)

Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) after each chunk ('persons') or year ('places')."""


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
    def truth_manifest(self) -> Path:
        """The typed manifest of the truth (`riskcast.truth`): what training and audits are
        given, so that they need not know this folder's layout."""
        return self.truth / TRUTH_MANIFEST

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
        return as_utc(value)
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
    if persons > MAX_CHUNKS * chunk_size:
        raise InputError(
            f"{persons} persons need more than {MAX_CHUNKS} chunks: use a chunk_size of at least "
            f"{-(-persons // MAX_CHUNKS)}"
        )
    if chunk_size > CHUNK_SPACE // 20:
        raise InputError(f"chunk_size must be at most {CHUNK_SPACE // 20}, got {chunk_size}")
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


def check_output(out: Path, second_out: Path | None, overwrite: bool) -> None:
    """Refuse to replace existing output unless asked to (delivery, truth, second delivery)."""
    for target in (out, truth_folder(out), second_out):
        if target is not None:
            _refuse_existing(target, overwrite)


def _refuse_existing(target: Path, overwrite: bool) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise InputError(f"{target} exists and is not empty (use overwrite to replace it)")


def _prepare(target: Path, overwrite: bool) -> Path:
    _refuse_existing(target, overwrite)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _commit(tmp: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


@dataclass
class _Run:
    """One simulation in progress: validated plan, open writers, running counters."""

    cfg: SimulatorConfig
    persons: int
    seed: int
    start_day: int
    first: _Extraction
    second: _Extraction | None
    horizon_days: int
    corrupt_rate: float
    chunk_size: int
    fmt: OutputFormat
    tmps: list[Path]
    grid: MonthGrid
    lag: LagDistribution
    windows: list[Window]
    ledger: Ledger
    deliveries: list[DeliveryWriter]
    truth: dict[str, FrameWriter] = field(default_factory=dict)
    fabricated: dict[str, int] = field(default_factory=dict)
    custody: list[CustodyReleases] = field(default_factory=list)
    as_of: list[date] = field(default_factory=list)

    @property
    def extractions(self) -> list[_Extraction]:
        return [self.first] + ([self.second] if self.second else [])

    def write_truth(self, name: str, frame: pl.DataFrame) -> None:
        if name not in self.truth:
            schema = frame.head(0).to_arrow().schema
            self.truth[name] = FrameWriter(self.tmps[1] / f"{name}.parquet", schema)
        self.truth[name].write(frame)

    def write_tables(self, views: list[dict[str, pl.DataFrame]], ctx: Context) -> None:
        """The first delivery (with injected rows), the second one and what changed."""
        for name, frame in views[0].items():
            self.deliveries[0].write(
                name, corrupt(name, frame, self.corrupt_rate, ctx, self.ledger, self.fmt)
            )
        if len(views) > 1:
            for name, frame in views[1].items():
                self.deliveries[1].write(name, frame)
                self.write_truth("changes", changes(name, views[0][name], frame))

    def persons_chunk(self, ci: int) -> None:
        """Simulate and write persons [ci * chunk_size, ...)."""
        offsets = Offsets.of_chunk(ci)
        cfg, grid = self.cfg, self.grid
        lo = ci * self.chunk_size
        n = min(self.chunk_size, self.persons - lo)
        seeds = np.random.SeedSequence(self.seed, spawn_key=(1, ci)).spawn(9)
        rngs = [np.random.default_rng(s) for s in seeds]
        pop = draw_population(rngs[0], cfg, lo, n, self.first.day, self.start_day)
        paths = simulate_status(rngs[1], pop, cfg, grid)
        spells = extract_spells(self.seed, paths, pop, cfg, grid)
        careers = simulate_careers(
            (rngs[3], rngs[4], rngs[5]), pop, paths, cfg, grid, self.windows, self.lag
        )
        releases = build_releases(self.seed, careers, pop, grid.last_day)
        custody = np.isin(releases.sentence, [SENTENCE.index(k) for k in _CUSTODY])
        self.custody.append(
            CustodyReleases(releases.released_at[custody], pop.district[releases.person[custody]])
        )
        obligations = build_obligations(self.seed, pop, careers, paths, grid, cfg, offsets)
        views = [
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
            for ex in self.extractions
        ]
        probs = probabilities(careers, self.windows, self.lag, n)
        cases = views[0]["criminal_cases"]
        self.write_truth(
            "labels", labels_frame(pop, careers, self.windows, self.horizon_days, probs, cases)
        )
        self.write_truth("persons", latent_persons_frame(pop, careers, cfg))
        self.write_truth("offences", offences_frame(pop, careers, offsets))
        self.write_tables(
            views, Context(self.first.at, views[0]["persons"], rngs[8], self.fabricated)
        )

    def places(self, progress: Progress | None) -> None:
        """Incidents and appeals, a year at a time; then the true weekly intensity per cell.

        Releases from custody (collected from every person chunk, which runs first) raise
        their district's incident rate for some weeks (`places_hotspots.release_incidents`)."""
        seeds = np.random.SeedSequence(self.seed, spawn_key=(2,)).spawn(7)
        rngs = [np.random.default_rng(s) for s in seeds]
        pc, last = self.cfg.places, self.grid.last_day
        world = build_world(
            rngs[0], pc, self.cfg.population.region_shares, self.start_day, last, seeds[4]
        )
        custody = CustodyReleases.concat(self.custody)
        years = (last - self.start_day) // 365 + 1
        blocks = zip(
            incident_blocks(rngs[1], world, pc, self.persons, last, custody, rngs[5]),
            appeal_blocks(rngs[2], world, pc, self.persons, last),
            strict=True,
        )
        ctx = Context(self.first.at, pl.DataFrame(), rngs[3], self.fabricated)
        window = TruthWindow.of(self.as_of, self.first.day, pc.truth_years_before)
        realised = []  # only the incidents the truth window reads: memory is not the period's
        for yi, (incidents, appeals) in enumerate(blocks):
            realised.append(window_incidents(incidents, window, self.start_day))
            views: list[dict[str, pl.DataFrame]] = [
                {
                    "incidents": incidents.frame(ex.us, ex.day),
                    "appeals": appeals.frame(ex.us, ex.day),
                }
                for ex in self.extractions
            ]
            self.write_tables(views, ctx)
            if progress:
                progress("places", yi + 1, years)
        frame = intensity_frame(world, pc, self.persons, custody, realised, window, rngs[6])
        self.write_truth("places_intensity", frame)


def truth_manifest(
    folder: Path,
    extraction: _Extraction,
    horizon_days: int,
    as_of: Sequence[date],
    rows: dict[str, int],
) -> TruthManifest:
    """The manifest of the truth files written into ``folder`` (digests of every file), so
    that consumers find and check the truth without knowing this folder's layout."""

    def entry(path: Path) -> TruthFile:
        return TruthFile(file=path.name, sha256=sha256_file(path), rows=rows.get(path.stem))

    files = sorted(p for p in folder.iterdir() if p.name != TRUTH_MANIFEST)
    return TruthManifest(
        extract_id=extraction.extract_id,
        extracted_at=extraction.at,
        producer="riskcast simulate (features.simulator)",
        horizon_days=[horizon_days],
        as_of=list(as_of),
        labels=entry(folder / "labels.parquet"),
        files={p.stem: entry(p) for p in files if p.name != "labels.parquet"},
    )


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
    fmt: OutputFormat = "parquet",
) -> SimulationResult:
    """Simulate national registers and write a contract delivery to `out`, the truth to
    `<out>_truth/` and, if `second_delivery_at` is given, a later full delivery to
    `second_out` (default `<out>_2/`).

    `as_of`: dates for which p_true and labels are written (default: `horizon_days` before
    extraction); each window must end by `extracted_at` (else InputError). `corrupt_rate`:
    share of rows per table added as invalid rows (the ledger is `expected-ingest.json` in
    the truth folder). `fmt`: the delivery's file format, "parquet" (default) or "csv"
    (CSV can also carry values of the wrong type, which are then injected too). The same
    arguments always give byte-identical files. The truth folder's `truth-manifest.json`
    (`riskcast.truth.TruthManifest`) names the delivery it belongs to and the digests of its
    files: hand it (or the folder) to training as ``truth_dir``.
    """
    if fmt not in ("parquet", "csv"):
        raise InputError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    t_start = clock.perf_counter()
    cfg = config or SimulatorConfig()
    first = _extraction(extraction_time(extracted_at), seed)
    second = None
    if second_delivery_at is not None:
        second = _extraction(extraction_time(second_delivery_at), seed)
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
    try:
        start_day = day_of(start)
        grid = MonthGrid.covering(start_day, (second or first).day)
        lag = LagDistribution.from_config(cfg.crime.lag)
        run = _Run(
            cfg=cfg,
            persons=persons,
            seed=seed,
            start_day=start_day,
            first=first,
            second=second,
            horizon_days=horizon_days,
            corrupt_rate=corrupt_rate,
            chunk_size=chunk_size,
            fmt=fmt,
            tmps=tmps,
            grid=grid,
            lag=lag,
            windows=[Window.build(day_of(d), horizon_days, lag) for d in as_of],
            ledger=Ledger(first.extract_id),
            deliveries=[DeliveryWriter(t, fmt) for t in [tmps[0], *tmps[2:]]],
            as_of=list(as_of),
        )
        if second:
            run.write_truth("changes", pl.DataFrame(schema=CHANGES_SCHEMA))
        n_chunks = (persons + chunk_size - 1) // chunk_size
        for ci in range(n_chunks):
            run.persons_chunk(ci)
            if progress:
                progress("persons", ci + 1, n_chunks)
        run.places(progress)

        rows = run.deliveries[0].close()
        write_manifest(tmps[0], build_manifest(tmps[0], first.extract_id, first.at, rows))
        second_rows = None
        if second:
            second_rows = run.deliveries[1].close()
            manifest = build_manifest(tmps[2], second.extract_id, second.at, second_rows)
            write_manifest(tmps[2], manifest)
        truth_rows = {name: w.close() for name, w in run.truth.items()}
        (tmps[1] / "expected-ingest.json").write_text(run.ledger.to_json(), encoding="utf-8")
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
            "format": fmt,
            "config": cfg.model_dump(mode="json"),
        }
        text = json.dumps(params, indent=2) + "\n"
        (tmps[1] / "simulation.json").write_text(text, encoding="utf-8")
        write_truth_manifest(
            tmps[1], truth_manifest(tmps[1], first, horizon_days, as_of, truth_rows)
        )
    except BaseException:
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    for tmp, target in zip(tmps, targets, strict=True):
        _commit(tmp, target)
    return SimulationResult(
        delivery=out,
        truth=truth_dir,
        extract_id=first.extract_id,
        extracted_at=first.at,
        rows={t: rows[t] for t in TABLE_ORDER},
        truth_files={p.stem: p for p in sorted(truth_dir.iterdir())},
        ledger=run.ledger.to_dict(),
        seconds=clock.perf_counter() - t_start,
        second_delivery=second_dir if second else None,
        second_extract_id=second.extract_id if second else None,
        second_rows=second_rows,
        truth_rows=truth_rows,
    )
