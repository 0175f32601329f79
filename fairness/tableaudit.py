"""Audit any scored table: overall metrics plus `fairness.metrics.audit_attribute` per attribute.

`audit_frame` is pure (a polars frame in, a JSON-ready dict out); the CLI reads the file and
writes the report. Protected columns are audited as they are (no banding); the policy's
banding applies to riskcast's own snapshots (`fairness.policy.group_columns`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fairness.metrics import audit_attribute, num, operating_points
from fairness.policy import MISSING_GROUP
from features.errors import InputError
from training.evaluation import binary_metrics


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
) -> dict[str, Any]:
    """The audit of ``score`` against ``label`` per protected column (see module docstring)."""
    missing = [c for c in (label, score, *protected) if c not in frame.columns]
    if missing:
        raise InputError(f"the table has no column(s) {', '.join(missing)}")
    if not protected:
        raise InputError("name at least one protected column (--protected)")
    unknown_refs = sorted(set(references or {}) - set(protected))
    if unknown_refs:
        raise InputError(f"reference given for unaudited column(s) {', '.join(unknown_refs)}")
    nulls = frame.select(pl.col(label).is_null().sum(), pl.col(score).is_null().sum()).row(0)
    if any(nulls):
        raise InputError(f"{label!r} has {nulls[0]} and {score!r} has {nulls[1]} empty value(s)")
    y = frame[label].cast(pl.Float64).to_numpy()
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise InputError(f"label column {label!r} must hold only 0 and 1")
    s = frame[score].cast(pl.Float64).to_numpy()
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
    return {
        "label": label,
        "score": score,
        "threshold": threshold,
        "capacities": list(capacities),
        "min_group_size": min_group_size,
        "bootstrap": {"n_boot": n_boot, "confidence": confidence, "seed": seed},
        "overall": overall,
        "attributes": attributes,
    }


def summary_table(audit: Mapping[str, Any]) -> dict[str, Any]:
    """The ``--json`` summary: per attribute and group, n, base rate, selection rate, FPR, FNR,
    PPV (at the threshold) and AUC, each with its interval."""
    out: dict[str, Any] = {}
    for attr in audit["attributes"]:
        groups: dict[str, Any] = {}
        for row in attr["groups"]:
            at = row["points"].get("threshold", {})
            groups[row["group"]] = {
                "n": row["n"],
                "status": row["status"],
                "base_rate": row["overall"]["base_rate"],
                "selection_rate": at.get("selection_rate"),
                "fpr": at.get("fpr"),
                "fnr": at.get("fnr"),
                "ppv": at.get("ppv"),
                "auc": row["overall"]["auc"],
            }
        out[attr["attribute"]] = {"reference": attr["reference"], "groups": groups}
    return out
