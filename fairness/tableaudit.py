"""Audit any scored table: overall metrics plus `fairness.metrics.audit_attribute` per attribute.

`audit_frame` is pure (a polars frame in, a typed `fairness.results.AuditResult` out; its
inputs checked by `fairness.validation.validate_table`); the CLI reads the file and
writes the report. Protected columns are audited as they are (no banding); the policy's
banding applies to riskcast's own snapshots (`fairness.policy.group_columns`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fairness.metrics import THRESHOLD_POINT, audit_attribute, num, operating_points
from fairness.policy import MISSING_GROUP, Bootstrap
from fairness.results import AuditResult, Estimate, as_audit
from fairness.validation import validate_table
from riskcast.errors import InputError
from training.evaluation import binary_metrics


def read_table(path: Path) -> pl.DataFrame:
    """A CSV or Parquet file as a frame; other formats are refused with a clear message."""
    if not path.is_file():
        raise InputError(f"--data {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix in (".csv", ".txt"):
        return pl.read_csv(path, infer_schema_length=100_000)
    raise InputError(f"--data {path}: expected a .csv or .parquet file")


def audit_frame(
    frame: pl.DataFrame,
    *,
    label: str,
    score: str,
    protected: Sequence[str],
    threshold: float | None,
    capacities: Sequence[float] = (5, 10, 20),
    references: Mapping[str, str] | None = None,
    min_group_size: int = 50,
    n_boot: int = 300,
    confidence: float = 0.95,
    seed: int = 0,
) -> AuditResult:
    """The audit of ``score`` against ``label`` per protected column (see module docstring)."""
    y, s = validate_table(
        frame, label=label, score=score, protected=protected, references=references
    )
    points = operating_points(s, threshold, capacities)
    probabilities = bool(s.min() >= 0 and s.max() <= 1)
    overall: dict[str, float | None] = {"n": float(y.size), "base_rate": float(y.mean())}
    if probabilities:
        overall |= {k: num(v) for k, v in binary_metrics(y, s).items()}
    else:
        overall["auc"] = num(binary_metrics(y, (s - s.min()) / max(np.ptp(s), 1e-12))["auc"])
    attributes = []
    for i, col in enumerate(protected):
        groups = frame[col].cast(pl.String).fill_null(MISSING_GROUP).to_numpy()
        attributes.append(
            audit_attribute(
                col,
                y,
                s,
                groups,
                points,
                reference=(references or {}).get(col),
                min_group_size=min_group_size,
                n_boot=n_boot,
                confidence=confidence,
                seed=seed + i,
            )
        )
    return AuditResult(
        label=label,
        score=score,
        threshold=threshold,
        capacities=list(capacities),
        min_group_size=min_group_size,
        bootstrap=Bootstrap(n_boot=n_boot, confidence=confidence, seed=seed),
        overall=overall,
        attributes=attributes,
    )


def _dump(est: Estimate | None) -> dict[str, Any] | None:
    return None if est is None else est.model_dump(mode="json")


def summary_table(audit: AuditResult | Mapping[str, Any]) -> dict[str, Any]:
    """The ``--json`` summary: per attribute and group, n, base rate, selection rate, FPR, FNR,
    PPV (at the threshold) and AUC, each with its interval (plain JSON-ready dicts)."""
    out: dict[str, Any] = {}
    for attr in as_audit(audit).attributes:
        groups: dict[str, Any] = {}
        for row in attr.groups:
            at = row.at(THRESHOLD_POINT)
            groups[row.group] = {
                "n": row.n,
                "status": row.status,
                "base_rate": _dump(row.overall.get("base_rate")),
                "selection_rate": _dump(at.get("selection_rate")),
                "fpr": _dump(at.get("fpr")),
                "fnr": _dump(at.get("fnr")),
                "ppv": _dump(at.get("ppv")),
                "auc": _dump(row.overall.get("auc")),
            }
        out[attr.attribute] = {"reference": attr.reference, "groups": groups}
    return out
