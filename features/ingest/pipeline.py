"""Ingest of one delivery: verify it whole, validate each table, version, commit atomically.

I/O stays at the edges: the manifest and files are verified before anything is staged; the
pure steps (`reader.coerce`, `validate`, `versioning`) run per table; files are staged through
`StoreWriter`, and only its final rename of ``state.json`` publishes them. A refusal, an error or
a crash before that rename leaves the committed store exactly as it was; staged leftovers are
not referenced and are removed by the next commit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from features.contract import CONTRACT_VERSION, TABLE_ORDER, TABLES, RuleContext
from features.contract.manifest import MANIFEST_FILE, Manifest, read_manifest
from features.ingest.buckets import (
    BUCKET_ROWS,
    BucketedTable,
    TableJob,
    bucketed_versions,
    buckets_for,
)
from features.ingest.reader import (
    ReadTable,
    check_columns,
    count_rows,
    file_format,
    scan_table,
    source_schema,
)
from features.ingest.report import IngestReport, TableReport
from features.ingest.validate import known_persons
from features.store.offline import (
    DeliveryRecord,
    OfflineStore,
    StoreState,
    StoreWriter,
    storage_name,
)
from features.store.tombstones import erased_ids
from riskcast.digest import sha256_file
from riskcast.errors import DeliveryRefused, StoreError


@dataclass(frozen=True)
class VerifiedDelivery:
    """A delivery whose manifest, files, hashes, row counts and columns have been checked."""

    folder: Path
    manifest: Manifest
    manifest_sha256: str
    files: dict[str, Path]
    """Table -> file, in the contract's table order (persons first)."""


def manifest_digest(manifest: Manifest) -> str:
    """Digest of the manifest's canonical form: equal manifests, equal digests."""
    return hashlib.sha256(manifest.to_json().encode("utf-8")).hexdigest()


def read_delivery_manifest(delivery: Path) -> Manifest:
    """Parse the manifest and check what it says about the contract (version, table names)."""
    if not delivery.is_dir():
        raise DeliveryRefused(f"{delivery}: not a delivery folder")
    manifest = read_manifest(delivery)
    if manifest.contract_version != CONTRACT_VERSION:
        raise DeliveryRefused(
            f"manifest: contract_version {manifest.contract_version} is not supported "
            f"(this riskcast reads contract version {CONTRACT_VERSION}); the delivery is refused"
        )
    unknown = [name for name in manifest.tables if name not in TABLES]
    if unknown:
        raise DeliveryRefused(
            f"manifest: table {', '.join(repr(n) for n in unknown)} is not defined by the "
            f"contract (tables: {', '.join(TABLE_ORDER)}); the delivery is refused"
        )
    return manifest


def verify_delivery(
    delivery: Path, manifest: Manifest, progress: Progress | None = None
) -> VerifiedDelivery:
    """Refuse a damaged delivery whole: missing, unlisted or altered files, wrong columns."""
    files: dict[str, Path] = {}
    for name in TABLE_ORDER:
        entry = manifest.tables.get(name)
        if entry is None:
            continue
        if Path(entry.file).name != entry.file or entry.file in {"", ".", "..", MANIFEST_FILE}:
            raise DeliveryRefused(
                f"{name}: file {entry.file!r} must name a file in the delivery folder"
            )
        if entry.file in {p.name for p in files.values()}:
            raise DeliveryRefused(f"{name}: file {entry.file!r} is listed for two tables")
        path = delivery / entry.file
        file_format(path)
        if not path.is_file():
            raise DeliveryRefused(f"{name}: {entry.file} is listed in the manifest but missing")
        files[name] = path
    listed = {MANIFEST_FILE, *(p.name for p in files.values())}
    unlisted = sorted(p.name for p in delivery.iterdir() if p.name not in listed)
    if unlisted:
        raise DeliveryRefused(
            f"{', '.join(unlisted)}: in the delivery folder but not listed in the manifest; "
            "the delivery is refused"
        )
    task = progress.add_task("verify files", total=len(files)) if progress else None
    for name, path in files.items():
        entry = manifest.tables[name]
        digest = sha256_file(path)
        if digest != entry.sha256:
            raise DeliveryRefused(
                f"{name}: sha256 in manifest {entry.sha256[:12]}… but file has {digest[:12]}…; "
                "the delivery is damaged and refused"
            )
        rows = count_rows(name, path)
        if rows != entry.rows:
            raise DeliveryRefused(
                f"{name}: manifest says {entry.rows} rows but {path.name} has {rows}; "
                "the delivery is damaged and refused"
            )
        check_columns(TABLES[name], source_schema(name, path))
        if progress is not None and task is not None:
            progress.advance(task)
    return VerifiedDelivery(delivery, manifest, manifest_digest(manifest), files)


def _stored_report(store: OfflineStore, record: DeliveryRecord) -> IngestReport:
    raw = store.report_of(record)
    try:
        return IngestReport.from_store_dict(raw)
    except ValueError as exc:
        raise StoreError(
            f"cannot read the ingest report {store.root / record.report}: {exc}"
        ) from exc


def earlier_outcome(
    store: OfflineStore, state: StoreState, manifest: Manifest, digest: str
) -> IngestReport | None:
    """The no-op report if this delivery was ingested before; refuse it if it is out of order."""
    for record in state.deliveries:
        if record.extract_id != manifest.extract_id:
            continue
        earlier = _stored_report(store, record)
        if earlier.manifest_sha256 == digest:
            return earlier.model_copy(update={"status": "already_ingested", "error": None})
        raise DeliveryRefused(
            f"extract {manifest.extract_id!r} was already ingested with a different manifest; "
            "a corrected delivery needs a new extract_id and a later extracted_at"
        )
    last = max(state.deliveries, key=lambda d: d.extracted_at, default=None)
    if last is not None and manifest.extracted_at <= last.extracted_at:
        raise DeliveryRefused(
            f"extracted_at {manifest.extracted_at:%Y-%m-%dT%H:%M:%SZ} is not later than "
            f"{last.extracted_at:%Y-%m-%dT%H:%M:%SZ} of extract {last.extract_id!r}, which was "
            "already ingested; deliveries are ingested in the order they were extracted"
        )
    owner = state.name_owner(manifest.extract_id)
    if owner is not None:  # a 64-bit digest collision, or a name an older riskcast chose
        raise DeliveryRefused(
            f"extract {manifest.extract_id!r} would be stored under the name "
            f"{storage_name(manifest.extract_id)!r}, which extract {owner!r} already uses; "
            "the delivery is refused so that neither overwrites the other (use another extract_id)"
        )
    return None


@contextmanager
def _progress_display(enabled: bool) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )
    with progress:
        yield progress


def ingest_delivery(
    delivery: Path, home: Path, *, progress: bool = False, bucket_rows: int = BUCKET_ROWS
) -> IngestReport:
    """Ingest a delivery folder into the offline store under ``home``.

    A table of more than ``bucket_rows`` rows is validated and versioned in buckets of its
    version key (`features.ingest.buckets`: the same outcome in bounded memory).

    Returns the report (status ``ingested`` or ``already_ingested``); raises `DeliveryRefused`
    if the delivery is damaged, defines columns the contract does not, or is out of order, in
    which case nothing at all was written to the store.
    """
    delivery = Path(delivery)
    manifest = read_delivery_manifest(delivery)
    digest = manifest_digest(manifest)
    store = OfflineStore(Path(home))
    earlier = earlier_outcome(store, store.state(), manifest, digest)
    if earlier is not None:
        return earlier
    with _progress_display(progress) as display:
        verified = verify_delivery(delivery, manifest, display)
        with store.writer() as writer:
            earlier = earlier_outcome(store, writer.base, manifest, digest)  # under the lock
            if earlier is not None:
                return earlier
            return _ingest_verified(verified, writer, display, bucket_rows)


def _ingest_verified(
    verified: VerifiedDelivery, writer: StoreWriter, display: Progress, bucket_rows: int
) -> IngestReport:
    """Validate and version every table of the delivery; stage files for one commit."""
    manifest = verified.manifest
    base = writer.base
    root = writer.store.root
    ctx = RuleContext(manifest.extracted_at)
    tables = dict(base.tables)
    quarantine: dict[str, str] = {}
    reports: dict[str, TableReport] = {}
    persons: pl.LazyFrame | None = (
        pl.scan_parquet(root / base.tables["persons"]) if "persons" in base.tables else None
    )
    known: pl.LazyFrame | None = None  # persons accepted so far, computed when first needed
    erased = erased_ids(root)  # read under the store's lock, as erasure writes it
    for name, path in verified.files.items():
        t = TABLES[name]
        rows = manifest.tables[name].rows
        buckets = buckets_for(rows, bucket_rows)
        task = display.add_task(f"{name} ({rows:,} rows)", total=3 if buckets == 1 else buckets + 1)
        read: ReadTable = scan_table(t, path)
        if known is None and persons is not None and t.has_person and name != "persons":
            known = known_persons(persons).collect().lazy()  # once per delivery
        job = TableJob(
            read=read,
            t=t,
            ctx=ctx,
            known=known,
            erased=erased if t.has_person else frozenset(),
            previous=root / base.tables[name] if name in base.tables else None,
            extract_id=manifest.extract_id,
            extracted_at=manifest.extracted_at,
            previously_extracted_at=_last_extraction_with(base, name),
        )
        tables[name] = writer.table_path(name, manifest.extract_id)
        quarantine[name] = writer.quarantine_path(name, manifest.extract_id)
        totals = BucketedTable()
        if buckets == 1:  # one pass: validated, versioned and written whole
            result, erased_rows = job.outcome(read, known)
            totals.add(result, erased_rows)
            display.advance(task)
            stored = None if job.previous is None else pl.scan_parquet(job.previous)
            writer.write_parquet(job.versions(result, stored), tables[name])
            display.advance(task)
            del result
        else:
            writer.write_parquet_parts(
                bucketed_versions(
                    job,
                    buckets=buckets,
                    workdir=root / ".ingest",  # staged bucket files, removed after
                    totals=totals,
                    on_bucket=partial(_bucket_done, display, task),
                ),
                tables[name],
            )
        writer.write_parquet(totals.quarantine(), quarantine[name])
        display.advance(task)
        reports[name] = totals.report(t)
        if reports[name].rows_in != rows:  # verified above: a reader bug
            raise AssertionError(f"{name}: read {reports[name].rows_in} rows, manifest has {rows}")
        if name == "persons":
            persons = pl.scan_parquet(root / tables[name])
        del read

    now = datetime.now(UTC)
    report = IngestReport(
        extract_id=manifest.extract_id,
        status="ingested",
        tables=reports,
        extracted_at=manifest.extracted_at,
        manifest_sha256=verified.manifest_sha256,
        ingested_at=now,
        quarantine=quarantine,
    )
    report_path = writer.report_path(manifest.extract_id)
    writer.write_json(report.to_store_dict(), report_path)
    record = DeliveryRecord(
        extract_id=manifest.extract_id,
        extracted_at=manifest.extracted_at,
        ingested_at=now,
        tables=tuple(verified.files),
        report=report_path,
    )
    writer.commit(
        StoreState(
            deliveries=(*base.deliveries, record),
            tables=tables,
            quarantine={**base.quarantine, manifest.extract_id: quarantine},
        )
    )
    return report


def _bucket_done(display: Progress, task: TaskID, done: int, total: int) -> None:
    display.update(task, completed=done)  # of total + 1: the quarantine is written last


def refused_extract_id(delivery: Path) -> str | None:
    """Best effort: the extract_id a refused delivery claims, for its report."""
    try:
        raw = json.loads((Path(delivery) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = raw.get("extract_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def _last_extraction_with(state: StoreState, table: str) -> datetime | None:
    """When the last delivery that carried ``table`` was extracted (None: first time)."""
    for delivery in reversed(state.deliveries):
        if table in delivery.tables:
            return delivery.extracted_at
    return None
