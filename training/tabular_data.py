"""Reading and preparing a third party's flat table for `train-table`.

Real tables are messy; each case gets a documented handling or a clear `InputError`:

- **duplicate column names** (CSV): identical content -> the first copy is kept (noted);
  different content -> refused, naming the column and positions, unless the name is dropped
  with ``--drop`` (then every copy goes);
- **text values** are typed by content: "", NA, N/A, NaN, null, None are missing; columns whose
  every value is a number become numeric, true/false become 0/1, and every value matching one
  date format (ISO, day/month/year, ...) make a **date column**;
- **date columns are not inputs**: an absolute date teaches the model the calendar, which does
  not carry over to new data. Derive durations (days between two dates) before training;
- **constant** columns (one value, no missing) and **id-like** columns (named ``id`` or
  ``*_id``, or integer/text with a distinct value on every row) are not inputs (noted);
- other **text** columns are one-hot encoded: an indicator per value for the up to 20 most
  frequent values seen on at least max(10, 0.5% of rows) rows (the rest is "other");
- non-negative integer columns with at least 10% zeros are taken for **counts** (log1p in the
  logistic baseline);
- **missing values** in inputs stay missing (LightGBM routes them; the logistic baseline
  imputes the median and adds an indicator);
- the **target** must be binary: 0/1, true/false or yes/no (y/n); rows with a missing target
  are dropped (noted); anything else is refused with the values found;
- **protected** columns are never inputs; they label the per-group calibration report.

Model input names are sanitised to ``[A-Za-z0-9_=]`` (LightGBM refuses JSON characters).
"""

from __future__ import annotations

import csv
import difflib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from riskcast.errors import InputError

NULL_TOKENS = ("", "na", "n/a", "nan", "null", "none", "#n/a")
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
)
TARGET_PAIRS = ({"0", "1"}, {"false", "true"}, {"no", "yes"}, {"n", "y"}, {"f", "t"})
POSITIVE = {"1", "true", "yes", "y", "t"}
MAX_LEVELS = 20
MIN_ID_ROWS = 20


@dataclass
class PreparedTable:
    """Model inputs, outcome and protected labels of a flat table, with what was done to it."""

    frame: pl.DataFrame
    y: NDArray[np.float64]
    groups: dict[str, NDArray[np.str_]]
    monotone: dict[str, int]
    count_features: list[str]
    source: dict[str, str]
    notes: list[str] = field(default_factory=list)
    digest: str = ""

    @property
    def features(self) -> list[str]:
        return list(self.frame.columns)


def read_table(path: Path, notes: list[str], drop: Sequence[str] = ()) -> pl.DataFrame:
    """Read a CSV or Parquet file into a frame with unique column names (see module doc)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix not in (".csv", ".txt", ".tsv"):
            raise InputError(f"{path}: expected a .csv or .parquet file")
        sep = "\t" if suffix == ".tsv" else ","
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh, delimiter=sep), None)
        if not header:
            raise InputError(f"{path}: the file is empty")
        raw = pl.read_csv(path, separator=sep, infer_schema=False, encoding="utf8-lossy")
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot be read as a table: {exc}") from exc
    if raw.width != len(header):
        raise InputError(f"{path}: header has {len(header)} names but rows have {raw.width}")
    return _resolve_duplicates(raw, [h.strip() for h in header], notes, set(drop))


def _resolve_duplicates(
    raw: pl.DataFrame, header: list[str], notes: list[str], drop: set[str]
) -> pl.DataFrame:
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        positions.setdefault(name, []).append(i)
    keep: list[int] = []
    for name, idx in positions.items():
        if len(idx) == 1 or name in drop:
            keep.append(idx[0])
            continue
        first = raw.to_series(idx[0])
        if all(first.equals(raw.to_series(j), check_names=False) for j in idx[1:]):
            notes.append(f"column {name!r} appears {len(idx)} times, identical content: kept one")
            keep.append(idx[0])
        else:
            cols = ", ".join(str(j + 1) for j in idx)
            raise InputError(
                f"column {name!r} appears {len(idx)} times (columns {cols}) with different "
                "content: rename the copies, or --drop the name"
            )
    keep.sort()
    return pl.DataFrame([raw.to_series(i).alias(header[i]) for i in keep])


def _infer_text(s: pl.Series) -> pl.Series:
    """Type a text column by its content: null tokens, numbers, booleans, dates, else text."""
    stripped = pl.col(s.name).str.strip_chars()
    is_null = stripped.str.to_lowercase().is_in(list(NULL_TOKENS))
    t: pl.Series = (
        s.to_frame().select(pl.when(is_null).then(None).otherwise(stripped).alias(s.name))
    ).to_series()
    present = int(t.is_not_null().sum())
    if present == 0:
        return t
    num = t.cast(pl.Float64, strict=False)
    if int(num.is_not_null().sum()) == present:
        finite = num.drop_nulls()
        integral = bool((finite == finite.round(0)).all()) and bool((finite.abs() < 2**53).all())
        return num.cast(pl.Int64) if integral else num
    low = t.str.to_lowercase()
    if set(low.drop_nulls().unique().to_list()) <= {"true", "false"}:
        return low == "true"
    for fmt in DATE_FORMATS:
        parsed = t.str.to_datetime(format=fmt, strict=False)
        if int(parsed.is_not_null().sum()) == present:
            return parsed
    return t


def _suggest(name: str, columns: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(columns), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _require(names: Sequence[str], columns: Sequence[str], what: str) -> None:
    for n in names:
        if n not in columns:
            raise InputError(f"{what} column {n!r} is not in the table{_suggest(n, columns)}")


def _binary_target(s: pl.Series) -> tuple[NDArray[np.float64], pl.Series]:
    """0/1 outcome and the mask of rows that have one; a clear error otherwise."""
    if s.dtype.is_float():
        s = s.fill_nan(None)
    present = s.is_not_null()
    values = s.filter(present)
    if values.len() == 0:
        raise InputError(f"target {s.name!r} has no values")
    if values.dtype.is_numeric():
        nums = values.cast(pl.Float64)
        text = nums.cast(pl.String).replace({"0.0": "0", "1.0": "1"})
    else:
        text = values.cast(pl.String).str.strip_chars().str.to_lowercase()
    found = set(text.unique().to_list())
    if not any(found <= pair for pair in TARGET_PAIRS):
        shown = ", ".join(sorted(map(str, values.unique().to_list()))[:8])
        raise InputError(
            f"target {s.name!r} must be binary (0/1, true/false, yes/no); found "
            f"{len(found)} distinct value(s): {shown}"
        )
    y = text.is_in(list(POSITIVE)).to_numpy().astype(np.float64)
    if np.unique(y).size < 2:
        raise InputError(f"target {s.name!r} holds only one class; nothing to learn")
    return y, present


def _sanitise(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_=]+", "_", name).strip("_") or "col"
    out, k = base, 2
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _is_id_like(s: pl.Series) -> bool:
    if re.fullmatch(r"(?i)(.*_)?id", s.name):
        return True
    if not (s.dtype.is_integer() or s.dtype == pl.String):
        return False
    present = s.drop_nulls()
    return present.len() >= MIN_ID_ROWS and present.n_unique() == present.len()


def _is_count(s: pl.Series) -> bool:
    """Counts (log1p in the logistic baseline): non-negative integers, > 1 somewhere, >= 10%
    zeros (so ages and years are not taken for counts)."""
    if not s.dtype.is_integer():
        return False
    v = s.drop_nulls().cast(pl.Float64).to_numpy()
    return bool(v.size > 0 and v.min() == 0 and v.max() > 1 and np.mean(v == 0) >= 0.1)


def parse_monotone(spec: str | None) -> dict[str, int]:
    """``"age=-1,priors=+1"`` -> ``{"age": -1, "priors": 1}``; a clear error otherwise."""
    out: dict[str, int] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.rpartition("=")
        if not sep or not name.strip() or value.strip() not in ("+1", "1", "-1", "0"):
            raise InputError(f"--monotone expects COL=+1 or COL=-1 items, got {part.strip()!r}")
        out[name.strip()] = int(value.strip())
    return out


def prepare_table(
    table: pl.DataFrame,
    target: str,
    *,
    protected: Sequence[str] = (),
    drop: Sequence[str] = (),
    monotone: dict[str, int] | None = None,
    notes: list[str] | None = None,
    digest: str = "",
) -> PreparedTable:
    """Turn a raw table into model inputs, 0/1 outcome and protected labels (see module doc)."""
    notes = [] if notes is None else notes
    monotone = monotone or {}
    columns = table.columns
    _require([target], columns, "target")
    _require(protected, columns, "protected")
    _require(drop, columns, "dropped")
    _require(list(monotone), columns, "monotone")
    clash = sorted(set(monotone) & ({target} | set(protected) | set(drop)))
    if clash:
        raise InputError(f"--monotone names columns that are not inputs: {', '.join(clash)}")
    if target in protected or target in drop:
        raise InputError(f"target {target!r} cannot also be protected or dropped")
    typed = pl.DataFrame(
        [_infer_text(table[c]) if table[c].dtype == pl.String else table[c] for c in columns]
    )
    y, present = _binary_target(typed[target])
    if int((~present).sum()):
        notes.append(f"{int((~present).sum())} row(s) without a target value were dropped")
        typed = typed.filter(present)
    groups = {
        p: np.asarray(typed[p].cast(pl.String).fill_null("missing").to_numpy(), dtype=np.str_)
        for p in protected
    }
    taken: set[str] = set()
    inputs: list[pl.Series] = []
    source: dict[str, str] = {}
    counts: list[str] = []
    skipped: dict[str, list[str]] = {"date": [], "constant": [], "id-like": []}
    for name in columns:
        if name == target or name in protected or name in drop:
            continue
        s = typed[name]
        if s.dtype.is_temporal():
            skipped["date"].append(name)
        elif s.n_unique() <= 1:
            skipped["constant"].append(name)
        elif name not in monotone and _is_id_like(s):
            skipped["id-like"].append(name)
        elif s.dtype == pl.String or s.dtype == pl.Categorical:
            inputs.extend(_one_hot(s.cast(pl.String), taken, source, notes))
        else:
            out = _sanitise(name, taken)
            source[out] = name
            col = s.cast(pl.Float64).alias(out)
            bad = int((~col.is_finite()).fill_null(False).sum())
            if bad:
                notes.append(f"column {name!r}: {bad} infinite or NaN value(s) read as missing")
                col = (
                    col.to_frame()
                    .select(pl.when(pl.col(out).is_finite()).then(pl.col(out)).alias(out))
                    .to_series()
                )
            if _is_count(s):
                counts.append(out)
            inputs.append(col)
    numeric_inputs = set(source.values()) - {
        c for c in columns if typed[c].dtype in (pl.String, pl.Categorical)
    }
    for c in monotone:
        if c not in numeric_inputs:
            raise InputError(f"--monotone column {c!r} is not a numeric input (text/date/constant)")
    for why, names in skipped.items():
        if names:
            notes.append(f"not inputs ({why}): {', '.join(names)}")
    if not inputs:
        raise InputError("no usable input columns remain after the handling above")
    renamed = {orig: model for model, orig in source.items()}
    return PreparedTable(
        frame=pl.DataFrame(inputs),
        y=y,
        groups=groups,
        monotone={renamed[c]: d for c, d in monotone.items() if d and c in renamed},
        count_features=counts,
        source=source,
        notes=notes,
        digest=digest,
    )


def _one_hot(
    s: pl.Series, taken: set[str], source: dict[str, str], notes: list[str]
) -> list[pl.Series]:
    n = s.len()
    floor = max(10, int(0.005 * n))
    freq = Counter(v for v in s.to_list() if v is not None)
    levels = [v for v, c in freq.most_common(MAX_LEVELS) if c >= floor]
    out = []
    for level in levels:
        name = _sanitise(f"{s.name}={level}", taken)
        source[name] = s.name
        out.append((s == level).fill_null(False).cast(pl.Float64).alias(name))
    if s.null_count():
        name = _sanitise(f"{s.name}=missing", taken)
        source[name] = s.name
        out.append(s.is_null().cast(pl.Float64).alias(name))
    rest = len(freq) - len(levels)
    notes.append(
        f"text column {s.name!r}: indicators for {len(levels)} value(s)"
        + (f", {rest} rarer value(s) as 'other'" if rest else "")
    )
    return out
