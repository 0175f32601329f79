"""The one place where the audit's inputs are checked (like Fairlearn's
``_validate_and_reformat_input``): outcomes, scores and group labels of equal length, outcomes
0/1, scores finite, the reference group present, the table's columns present and filled.

Every check raises `riskcast.errors.InputError` naming the field (argument or column) and the
rule, so an auditor can fix the table; `fairness.metrics`, `fairness.tableaudit` and
`fairness.policy` call these instead of checking on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from riskcast.errors import InputError


@dataclass(frozen=True)
class AuditInputs:
    """Validated audit inputs: 1-D float outcomes (0/1), finite scores, string group labels."""

    y: NDArray[np.float64]
    score: NDArray[np.float64]
    groups: NDArray[np.str_]


def validate_audit_inputs(
    y_true: Any,
    y_score: Any,
    groups: Sequence[Any] | NDArray[Any],
    *,
    context: str = "audit",
    y_name: str = "y_true",
    score_name: str = "y_score",
    groups_name: str = "groups",
) -> AuditInputs:
    """The three arrays reformatted (flattened, float / str), or an `InputError` naming the
    field: lengths differ or are zero, outcomes missing or not 0/1, scores not finite."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    g = np.asarray([str(x) for x in np.asarray(groups, dtype=object).ravel()])
    if not (y.size == s.size == g.size) or y.size == 0:
        raise InputError(
            f"{context}: {y.size} {y_name}, {s.size} {score_name}, {g.size} {groups_name} "
            "(lengths must be equal and non-zero)"
        )
    missing = int(np.isnan(y).sum())
    if missing:
        raise InputError(f"{context}: {y_name} has {missing} missing value(s)")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise InputError(f"{context}: {y_name} (outcomes) must hold only 0 and 1")
    bad = int((~np.isfinite(s)).sum())
    if bad:
        raise InputError(f"{context}: {score_name} (scores) must be finite ({bad} are not)")
    return AuditInputs(y, s, g)


def validate_reference(reference: str, groups: Iterable[str], *, context: str = "audit") -> None:
    """The reference group must be one of the audited groups."""
    if reference not in set(groups):
        raise InputError(f"{context}: reference group {reference!r} is not in the data")


def require_columns(frame: pl.DataFrame, columns: Iterable[str], *, what: str) -> None:
    """Every name in ``columns`` is a column of ``frame``; else ``"{what} a, b"``."""
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise InputError(f"{what} {', '.join(missing)}")


def validate_table(
    frame: pl.DataFrame,
    *,
    label: str,
    score: str,
    protected: Sequence[str],
    references: Mapping[str, str] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A scored table's outcomes and scores, after checking its columns: label, score and
    protected columns present, at least one protected column, references only for audited
    columns, label and score filled, label 0/1, scores finite."""
    require_columns(frame, (label, score, *protected), what="the table has no column(s)")
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
    if not np.all(np.isfinite(s)):
        raise InputError(f"score column {score!r} must hold finite numbers")
    return y, s
