"""`riskcast retention apply`: enforce the configured retention of access-log detail and
decisions (configs/retention.yaml), keeping the access log verifiable.

The access log's entries older than ``access_log_days`` are sealed and archived
(`riskcast.chain.seal.seal_before`: head hash kept under the chain key's HMAC, rows archived to
``RISKCAST_HOME/archive`` with their sha256, then removed from the live table); decisions
recorded before ``decisions_days`` are deleted. One ``retention`` ledger entry records both
(counts, the sealed head and the archive's sha256), so the ledger says when and what was
removed, and `access-log verify` verifies the live log from the sealed head.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from fairness.ledger import Ledger
from riskcast.chain.seal import Seal, seal_before
from riskcast.configio import find_config, load_yaml_model
from serving.access_log import AccessLog, archive_dir
from serving.db import decisions

RETENTION_FILE = "retention.yaml"
RETENTION_VERSION = "-"
"""The ledger entry's ``version``: retention concerns no model version."""


class RetentionConfig(BaseModel):
    """Retention periods in days (see configs/retention.yaml for the rationale)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config_version: str
    access_log_days: int = Field(ge=1, description="access-log entries kept live")
    decisions_days: int = Field(ge=1, description="decisions kept")


def load_retention(path: Path | None = None) -> RetentionConfig:
    return load_yaml_model(
        RetentionConfig, path or find_config(RETENTION_FILE), "retention configuration"
    )


@dataclass(frozen=True)
class RetentionResult:
    seal: Seal | None
    decisions_deleted: int
    ledger_seq: int
    seconds: float


def apply_retention(
    config: RetentionConfig,
    *,
    access_log: AccessLog,
    engine: sa.Engine,
    ledger: Ledger,
    home: Path,
    by: str,
    now: datetime | None = None,
) -> RetentionResult:
    """Seal and archive the access log before ``now - access_log_days`` and delete decisions
    before ``now - decisions_days``; one ``retention`` ledger entry records what was done."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    log_cutoff = now - timedelta(days=config.access_log_days)
    seal = seal_before(access_log.chain, log_cutoff, archive_dir(home))
    decided_cutoff = now - timedelta(days=config.decisions_days)
    with engine.begin() as conn:
        deleted = conn.execute(
            sa.delete(decisions).where(decisions.c.recorded_at < decided_cutoff)
        ).rowcount
    digests = {"decisions_deleted": str(int(deleted or 0))}
    reasons = [
        f"retention ({config.config_version}): access-log entries before {log_cutoff:%Y-%m-%d} "
        f"sealed and archived, decisions before {decided_cutoff:%Y-%m-%d} deleted",
        f"{int(deleted or 0)} decision(s) deleted",
    ]
    if seal is None:
        reasons.append("access log: nothing old enough to seal (the head always stays live)")
    else:
        reasons.append(
            f"access log: seq up to {seal.through_seq} ({seal.entries} entries) sealed at head "
            f"{seal.head_hash} and archived to {seal.archive} (sha256 {seal.archive_sha256})"
        )
        digests |= {
            "sealed_through_seq": str(seal.through_seq),
            "sealed_head": seal.head_hash,
            "archive_sha256": seal.archive_sha256,
        }
    entry = ledger.append(
        "retention",
        actor=by,
        role="admin",
        version=RETENTION_VERSION,
        decision="applied",
        reasons=reasons,
        data_digests=digests,
    )
    return RetentionResult(seal, int(deleted or 0), entry.seq, time.perf_counter() - started)
