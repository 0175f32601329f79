"""Writing an evidence pack: each document as JSON and HTML, the kept audit and the model card
as annexes, a manifest with the sha256 of every file, and the manifest's sha256 in the ledger.

The pack's one hash is the manifest's sha256 (the manifest names every other file's sha256),
as a fairness report's one hash is its JSON's: the ledger records it (kind ``evidence_pack``),
so a pack handed to a supervisor can be checked against the deployment's ledger, and
`pack_problems` re-checks every file against the manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairness.ledger import Ledger, LedgerEntry, ledger_version
from fairness.report_store import json_bytes
from riskcast.atomic import write_bytes, write_text
from riskcast.digest import sha256_file
from riskcast.errors import ConflictError, NotFoundError
from serving.evidence.model import Document
from serving.evidence.render import render_document
from serving.evidence.sources import Sources

MANIFEST = "manifest.json"
KIND = "evidence_pack"
PACK_REASON = "evidence pack written to: "


@dataclass(frozen=True)
class WrittenPack:
    folder: Path
    manifest: Path
    sha256: str  # the manifest's: the pack's one hash
    files: list[dict[str, Any]]
    gaps: list[str]


def _empty_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConflictError(
            f"--out {out}: exists and is not an empty folder (a pack is never written over another)"
        )
    out.mkdir(parents=True, exist_ok=True)


def write_pack(out: Path, documents: list[Document], src: Sources) -> WrittenPack:
    """Write ``documents`` (JSON, and HTML stating the JSON's sha256), the annexes and the
    manifest into the empty (or new) folder ``out``."""
    _empty_folder(out)
    written: list[Path] = []
    for doc in documents:
        raw = json_bytes(doc.as_json())
        write_bytes(out / f"{doc.kind}.json", raw)
        write_text(out / f"{doc.kind}.html", render_document(doc, hashlib.sha256(raw).hexdigest()))
        written += [out / f"{doc.kind}.json", out / f"{doc.kind}.html"]
    annex = out / "annex"
    if src.audit is not None:
        annex.mkdir()
        for path in (src.audit.json_path, src.audit.html_path):
            if path.is_file():
                written.append(Path(shutil.copyfile(path, annex / path.name)))
    if src.card:
        annex.mkdir(exist_ok=True)
        write_text(annex / "model_card.md", src.card)
        written.append(annex / "model_card.md")
    files = [
        {"path": p.relative_to(out).as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in written
    ]
    gaps = sorted({g for d in documents for g in d.gaps})
    manifest = {
        "pack": "riskcast evidence pack",
        "model": src.model_name,
        "version": src.version,
        "generated_at": documents[0].generated_at,
        "documents": [d.kind for d in documents],
        "files": files,
        "gaps": gaps,
        "sources": {
            "mlflow_run": src.run_id,
            "fairness_report_sha256": src.audit.sha256 if src.audit else None,
            **src.config_digests,
        },
    }
    raw = json_bytes(manifest)
    write_bytes(out / MANIFEST, raw)
    return WrittenPack(out, out / MANIFEST, hashlib.sha256(raw).hexdigest(), files, gaps)


def record_pack(
    ledger: Ledger, pack: WrittenPack, src: Sources, *, by: str, role: str, person: bool
) -> LedgerEntry:
    """The ledger entry of a pack: its manifest's sha256 and where it was written. A person's
    export is noted without the person's id (the ledger is read by more people than the
    export is for)."""
    docs = [f["path"] for f in pack.files if f["path"].endswith(".json") and "/" not in f["path"]]
    reasons = [
        "documents: " + ", ".join(d.removesuffix(".json") for d in docs),
        *(["with one person's decision history (the id is not recorded here)"] if person else []),
        *(f"not on record: {g}" for g in pack.gaps),
        f"{PACK_REASON}{pack.folder.resolve()}",
    ]
    return ledger.append(
        KIND,
        actor=by,
        role=role,
        version=ledger_version(src.model_name, src.version),
        decision="assembled",
        reasons=reasons,
        report_sha256=pack.sha256,
    )


def pack_problems(folder: Path) -> list[str]:
    """One line per file of the manifest that is missing or no longer has its sha256."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise NotFoundError(f"{folder}: no {MANIFEST}, not an evidence pack")
    problems = []
    for f in json.loads(manifest.read_text(encoding="utf-8"))["files"]:
        path = folder / f["path"]
        if not path.is_file():
            problems.append(f"{f['path']}: missing")
        elif sha256_file(path) != f["sha256"]:
            problems.append(f"{f['path']}: sha256 differs from the manifest")
    return problems
