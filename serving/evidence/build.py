"""One evidence pack end to end: open the stores, gather the sources, build the documents,
write the pack, record it in the ledger (and a person's export in the access log).

`build_evidence_pack` is the command's body, callable from tests and the benchmark; the
documents themselves are built by pure functions (`documents`, `assessment`, `person`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from fairness.ledger import Ledger, LedgerEntry, open_ledger
from riskcast.names import PERSON_MODEL
from riskcast.settings import Settings, get_settings
from serving.evidence.assessment import impact_assessment, monitoring_plan
from serving.evidence.documents import technical_documentation
from serving.evidence.model import Document
from serving.evidence.pack import WrittenPack, record_pack, write_pack
from serving.evidence.person import PersonRecord, gather_person, person_export
from serving.evidence.sources import Sources, gather, monitoring_results
from serving.state import AccessLogWriter

SUBJECT_ACCESS = "subject_access"
"""The purpose the access log records for a person's export."""


@dataclass(frozen=True)
class BuiltPack:
    pack: WrittenPack
    entry: LedgerEntry
    documents: list[Document]
    sources: Sources


def _person(
    src: Sources, person_id: str, engine: sa.Engine, settings: Settings | None
) -> PersonRecord:
    from features.online.store import open_online_store
    from serving.interventions import load_interventions
    from serving.settings import load_serving_settings

    store = open_online_store(settings)
    try:
        vectors = store.get_vectors([person_id])
    finally:
        store.dispose()
    return gather_person(
        person_id,
        engine=engine,
        vectors=vectors,
        model=src.model,
        catalogue=load_interventions(),
        currency=load_serving_settings().currency,
    )


def build_evidence_pack(
    version: str,
    out: Path,
    *,
    person: str | None = None,
    by: str = "riskcast",
    role: str = "auditor",
    model_name: str = PERSON_MODEL,
    at: datetime | None = None,
    within: InService | None = None,
    purpose: str = SUBJECT_ACCESS,
) -> BuiltPack:
    """Gather, build, write and record the pack of ``version`` into ``out`` (see the module).

    ``within``: the running service's stores (its settings, engine, ledger and access log),
    which are then used and left open; otherwise they are opened from the environment (the
    command) and closed after."""
    from serving.db import open_engine
    from training.tracking import tracking_uri

    settings = within.settings if within else get_settings()
    home = settings.home
    if settings.database_url is None:
        home.mkdir(parents=True, exist_ok=True)
    engine = within.engine if within else open_engine(settings.effective_database_url)
    ledger = within.ledger if within else open_ledger()
    uri = (within.tracking_uri if within else None) or tracking_uri(home)
    try:
        src = gather(model_name, version, home=home, uri=uri, ledger=ledger, engine=engine)
        record = (
            _person(src, person, engine, within.settings if within else None)
            if person is not None
            else None
        )
        generated = (at or datetime.now(UTC)).isoformat(timespec="seconds")
        documents = [
            technical_documentation(src, generated),
            impact_assessment(src, generated),
            monitoring_plan(
                src,
                generated,
                monitoring_results(model_name, src.version, within.settings if within else None),
            ),
        ]
        if record is not None:
            from serving.interventions import load_interventions

            documents.append(
                person_export(
                    record,
                    model_name=model_name,
                    version=src.version,
                    catalogue=load_interventions(),
                    generated_at=generated,
                )
            )
        pack = write_pack(out, documents, src)
        entry = record_pack(ledger, pack, src, by=by, role=role, person=record is not None)
        if record is not None:
            _log_export(
                record,
                src,
                by=by,
                role=role,
                purpose=purpose,
                log=within.access_log if within else None,
            )
    finally:
        if within is None:
            engine.dispose()
            ledger.dispose()
    return BuiltPack(pack, entry, documents, src)


@dataclass(frozen=True)
class InService:
    """The running service's stores, for a pack the service builds (`.service`)."""

    settings: Settings
    engine: sa.Engine
    ledger: Ledger
    access_log: AccessLogWriter
    tracking_uri: str | None = None


def _log_export(
    record: PersonRecord,
    src: Sources,
    *,
    by: str,
    role: str,
    purpose: str = SUBJECT_ACCESS,
    log: AccessLogWriter | None = None,
) -> None:
    """A person's export is a read of their data: in the access log like every other."""
    from serving.access_log import open_access_log

    own = log is None
    writer: AccessLogWriter = open_access_log() if log is None else log
    try:
        writer.append(
            actor=by,
            role=role,
            purpose=purpose,
            action="evidence-export",
            persons=[record.person_id],
            params={"version": src.version, "decisions": len(record.decisions)},
            model_version=src.version,
            status=200,
        )
    finally:
        if own:
            writer.dispose()  # type: ignore[attr-defined]
