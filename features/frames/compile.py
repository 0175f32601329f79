"""Compile feature definitions to Polars expressions (pure; no I/O).

A table feature compiles to element-wise *row* columns (masks, windows, mapped values),
*partials* (plain reductions of those columns in the one ``group_by`` of its source table) and
a *final* expression that turns partials into the feature; entities without rows get the
aggregation's *empty* value after the join. Dates are compared as epoch days (Int32), which
keeps every condition a cheap integer test the streaming engine evaluates row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from features.contract import TABLES, ColumnType, Table
from features.contract.controls import completed_years as contract_completed_years
from features.frames.definitions import AS_OF, Aggregation, DerivedOp, FeatureDef, Filter

BIRTH_DATE = "birth_date"
"""Column of the population frame that age features read."""
DAYS_PER_YEAR = 365.0
SUM_SCALE = 1_000_000
"""SUM features add values in units of 1e-6 (exact, order-independent; |total| < 9.2e12)."""

_INT = pl.Int32()
_FLOAT = pl.Float64()


@dataclass(frozen=True)
class Compiled:
    """A table feature as Polars expressions.

    ``rows`` are element-wise columns computed on the visible rows (named like the partials);
    ``partials`` reduce them in the table's ``group_by`` with plain reductions only (sum, min,
    max, mean, any, n_unique, max_by), which the streaming engine runs natively; ``final``
    turns partials into the feature, on the aggregate (or after the join when ``late``).
    """

    name: str
    rows: tuple[pl.Expr, ...]
    partials: tuple[pl.Expr, ...]
    final: pl.Expr
    empty: int | float | None
    """The value for an entity without rows in a delivered table (filled after the join)."""
    late: bool = False
    """The final reads the entity frame (birth date): computed after the join, not before."""
    relevant: pl.Expr | None = None
    """Rows that can change the feature (None: every row); rows relevant to no feature of a
    table are dropped before its group_by, which leaves every value unchanged."""


def partial_name(feature: str, part: str) -> str:
    return f"__{feature}__{part}"


def days(expr: pl.Expr, col_type: ColumnType) -> pl.Expr:
    """Epoch days of a date, or of a timestamp's UTC date (the contract's comparison rule)."""
    if col_type is ColumnType.TS:
        expr = expr.dt.date()
    return expr.cast(pl.Int32)


def date_days(table: Table, column: str) -> pl.Expr:
    return days(pl.col(column), table.column(column).type)


def clock_days(clock: str = AS_OF) -> pl.Expr:
    return pl.col(clock).cast(pl.Int32)


def filter_expr(flt: Filter, table: Table, clock: str = AS_OF) -> pl.Expr:
    """One declarative filter as a boolean that is never null (null never matches a value)."""
    col = pl.col(flt.column)
    nullable = table.column(flt.column).nullable

    def never_null(expr: pl.Expr) -> pl.Expr:
        return expr.fill_null(False) if nullable else expr

    values = flt.in_ if flt.in_ is not None else flt.not_in
    if values is not None:
        if len(values) == 1:  # one value: a plain comparison is cheaper than a set lookup
            hit = col == pl.lit(values[0], dtype=table.column(flt.column).dtype)
        else:
            hit = col.is_in(_typed(values, table, flt.column))
        return never_null(hit if flt.in_ is not None else hit.not_())
    if flt.equals is not None:
        return never_null(col == pl.lit(flt.equals, dtype=table.column(flt.column).dtype))
    if flt.is_null is not None:
        return col.is_null() if flt.is_null else col.is_not_null()
    assert flt.compare is not None and flt.to is not None  # validated
    lhs = date_days(table, flt.column)
    rhs = clock_days(clock) if flt.to == AS_OF else date_days(table, flt.to)
    if flt.offset_days:
        rhs = rhs + flt.offset_days
    ops = {"<": lhs < rhs, "<=": lhs <= rhs, ">": lhs > rhs, ">=": lhs >= rhs}
    return ops[flt.compare].fill_null(flt.if_null)


def _typed(values: list[str | int | float | bool], table: Table, column: str) -> pl.Series:
    """Filter values with the column's dtype (Polars 2 refuses lossy ``is_in`` coercions)."""
    return pl.Series(values, dtype=table.column(column).dtype).implode()


def mask_expr(filters: list[Filter], table: Table, clock: str = AS_OF) -> pl.Expr | None:
    exprs = [filter_expr(f, table, clock) for f in filters]
    if not exprs:
        return None
    out = exprs[0]
    for e in exprs[1:]:
        out = out & e
    return out


def window_expr(
    table: Table, date_col: str, window: int | None, offset: int = 0, clock: str = AS_OF
) -> pl.Expr | None:
    """Event date in ``(T - offset - window, T - offset]``; None when the window is all history."""
    if window is None:
        return None
    d = date_days(table, date_col)
    end = clock_days(clock) - offset
    return (d > end - window) & (d <= end)


def _and(*parts: pl.Expr | None) -> pl.Expr | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    out = present[0]
    for p in present[1:]:
        out = out & p
    return out


def value_expr(feature: FeatureDef, table: Table) -> pl.Expr:
    """The feature's value column, through its ``value_map`` when given (unmapped -> null)."""
    assert feature.column is not None
    col = pl.col(feature.column)
    if feature.value_map is not None:
        keys = list(feature.value_map)
        return col.replace_strict(
            keys, [feature.value_map[k] for k in keys], default=None, return_dtype=pl.Float64
        )
    col_type = table.column(feature.column).type
    if col_type is ColumnType.BOOL:
        return col.cast(pl.Int32)
    return col


def output_dtype(feature: FeatureDef) -> pl.DataType:
    """The dtype of a feature's column in every frame (and of its null when a table is missing)."""
    agg = feature.aggregation
    if feature.is_derived:
        return _INT if feature.op is DerivedOp.AND_POSITIVE else _FLOAT
    if agg in {Aggregation.SUM, Aggregation.MEAN, Aggregation.SHARE, Aggregation.TREND}:
        return _FLOAT
    if agg in {Aggregation.MIN, Aggregation.MAX, Aggregation.LAST, Aggregation.VALUE}:
        if feature.value_map is not None:
            return _FLOAT
        assert feature.column is not None
        column = TABLES[feature.source].column(feature.column)
        return pl.Int32() if column.type is ColumnType.BOOL else column.dtype
    return _INT


def compile_table_feature(feature: FeatureDef, clock: str = AS_OF) -> Compiled:
    """Row columns and partials for the source table's pass, and the feature's final value.

    The final is computed on the aggregated table (one row per entity that has rows) before
    the join, so only finished features are joined; entities without rows get ``empty``.
    """
    table = TABLES[feature.source]
    agg = feature.aggregation
    name = feature.name
    dtype = output_dtype(feature)
    date_col = feature.date_col()
    d = date_days(table, date_col)
    t = clock_days(clock)
    base = mask_expr(feature.filters, table, clock)
    window = window_expr(table, date_col, feature.window_days, feature.window_offset_days, clock)
    mask = _and(base, window)

    rows: list[pl.Expr] = []
    partials: list[pl.Expr] = []

    def part(label: str, row: pl.Expr, reduce: str) -> pl.Expr:
        """Register a row column and its reduction; returns the partial's column."""
        col = partial_name(name, label)
        rows.append(row.alias(col))
        c = pl.col(col)
        reduced = c.drop_nulls().n_unique() if reduce == "n_unique" else getattr(c, reduce)()
        partials.append(reduced.alias(col))
        return c

    def when(value: pl.Expr) -> pl.Expr:
        return value if mask is None else pl.when(mask).then(value)

    matched = pl.lit(True) if mask is None else mask
    relevant = mask
    final: pl.Expr
    if agg is Aggregation.COUNT:
        final = part("n", matched, "sum").fill_null(0)
    elif agg is Aggregation.ANY:
        final = part("any", matched, "any").fill_null(False)
    elif agg is Aggregation.COUNT_DISTINCT:
        final = part("n", when(value_expr(feature, table)), "n_unique").fill_null(0)
    elif agg is Aggregation.SUM:
        # Summed in fixed point (integer micro-units), so the value never depends on row
        # order: float addition is not associative, and the rows' order in the group_by
        # changes with the other snapshots built alongside (training's digest of the test
        # snapshot would not match the audit's rebuild of it).
        micro = (value_expr(feature, table).cast(pl.Float64) * SUM_SCALE).round().cast(pl.Int64)
        total = part("sum", when(micro), "sum")
        final = (total.cast(pl.Float64) / SUM_SCALE).fill_null(0.0)
    elif agg in {Aggregation.MIN, Aggregation.MAX, Aggregation.MEAN}:
        final = part("v", when(value_expr(feature, table)), str(agg))
    elif agg is Aggregation.LAST:
        value = value_expr(feature, table)
        v_col, k_col = partial_name(name, "v"), partial_name(name, "k")
        rows += [
            when(value).alias(v_col),
            when(pl.struct(d.alias("d"), value.alias("v"))).alias(k_col),
        ]
        partials.append(pl.col(v_col).max_by(k_col).alias(v_col))  # ties: the largest value
        final = pl.col(v_col)
    elif agg is Aggregation.SHARE:
        condition = mask_expr(feature.condition, table, clock)
        assert condition is not None
        num = part("num", matched & condition, "sum")
        den = part("den", matched, "sum")
        final = pl.when(den > 0).then(num / den)
    elif agg in {
        Aggregation.DAYS_SINCE_LAST,
        Aggregation.DAYS_SINCE_FIRST,
        Aggregation.MONTHS_SINCE_LAST,
        Aggregation.AGE_AT_FIRST,
    }:
        first = agg in {Aggregation.DAYS_SINCE_FIRST, Aggregation.AGE_AT_FIRST}
        day = part("d", when(d), "min" if first else "max")
        if agg is Aggregation.MONTHS_SINCE_LAST:
            final = completed_months(day, t)
        elif agg is Aggregation.AGE_AT_FIRST:
            final = completed_years(pl.col(BIRTH_DATE).cast(pl.Int32), day)
        else:
            final = t - day
    elif agg is Aggregation.TREND:
        assert feature.window_days is not None and feature.baseline_days is not None
        recent_w, base_w = feature.window_days, feature.baseline_days
        recent = _and(base, window_expr(table, date_col, recent_w, 0, clock))
        earlier = _and(base, window_expr(table, date_col, base_w - recent_w, recent_w, clock))
        assert recent is not None and earlier is not None
        relevant = recent | earlier
        if feature.column is not None:
            value = value_expr(feature, table).cast(pl.Float64)
            r = part("r", pl.when(recent).then(value), "mean")
            b = part("b", pl.when(earlier).then(value), "mean")
            final = r - b
        else:
            r = part("r", recent, "sum").fill_null(0)
            b = part("b", earlier, "sum").fill_null(0)
            final = r * (DAYS_PER_YEAR / recent_w) - b * (DAYS_PER_YEAR / (base_w - recent_w))
    elif agg in {Aggregation.STATE_AT, Aggregation.NO_STATE_AT, Aggregation.STATE_DAYS}:
        covers = spell_covers(feature, table, clock)
        relevant = covers
        if agg is Aggregation.STATE_DAYS:
            final = part("days", pl.when(covers).then(t - d), "max").fill_null(0)
        else:
            final = part("any", covers, "any").fill_null(False)
            if agg is Aggregation.NO_STATE_AT:
                final = final.not_()
    else:  # AGE_AT and VALUE read the population frame, not a table pass
        raise ValueError(f"{name}: aggregation {agg} is not computed from a table pass")
    return Compiled(
        name=name,
        rows=tuple(rows),
        partials=tuple(partials),
        final=final.cast(dtype).alias(name),
        empty=EMPTY.get(agg) if agg is not Aggregation.TREND or feature.column is None else None,
        late=agg is Aggregation.AGE_AT_FIRST,
        relevant=relevant,
    )


EMPTY: dict[Aggregation | None, int | float] = {
    Aggregation.COUNT: 0,
    Aggregation.COUNT_DISTINCT: 0,
    Aggregation.ANY: 0,
    Aggregation.SUM: 0.0,
    Aggregation.TREND: 0.0,  # count trends only; mean trends stay null
    Aggregation.STATE_AT: 0,
    Aggregation.NO_STATE_AT: 1,
    Aggregation.STATE_DAYS: 0,
}
"""Empty values of aggregations whose value without rows is not null."""


def spell_covers(feature: FeatureDef, table: Table, clock: str = AS_OF) -> pl.Expr:
    """A matching row whose [start, end] covers day T (null end = ongoing iff ``open_end``)."""
    assert feature.end_column is not None
    t = clock_days(clock)
    start = date_days(table, feature.date_col())
    end = date_days(table, feature.end_column)
    open_end = end.is_null() if feature.open_end else pl.lit(False)
    covers = (start <= t) & (open_end | (end >= t).fill_null(False))
    base = mask_expr(feature.filters, table, clock)
    return covers if base is None else covers & base


def completed_years(born: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Age in completed years between two epoch-day expressions (the contract's rule)."""
    return contract_completed_years(born.cast(pl.Date), on.cast(pl.Date))


def completed_months(since: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Completed calendar months from ``since`` to ``on`` (epoch days); a day-of-month the month
    lacks (e.g. the 31st) is reached on the 1st of the next month, as birthdays are."""
    s = since.cast(pl.Date)
    o = on.cast(pl.Date)
    months = (o.dt.year().cast(pl.Int32) * 12 + o.dt.month().cast(pl.Int32)) - (
        s.dt.year().cast(pl.Int32) * 12 + s.dt.month().cast(pl.Int32)
    )
    return months - (o.dt.day() < s.dt.day()).cast(pl.Int32)


def entity_feature(feature: FeatureDef, clock: str = AS_OF) -> pl.Expr:
    """Features read from the entity's own row (``value``, ``age_at``) on the population frame."""
    table = TABLES[feature.source]
    dtype = output_dtype(feature)
    if feature.aggregation is Aggregation.AGE_AT:
        assert feature.column is not None
        born = date_days(table, feature.column)
        expr = completed_years(born, clock_days(clock))
    else:
        expr = value_expr(feature, table)
    return expr.cast(dtype).alias(feature.name)


def derived_feature(feature: FeatureDef) -> pl.Expr:
    """A feature computed from earlier features; null inputs give null."""
    cols = [pl.col(i) for i in feature.inputs]
    if feature.op is DerivedOp.SUB:
        expr = cols[0].cast(pl.Float64) - cols[1].cast(pl.Float64)
    elif feature.op is DerivedOp.DIV:
        expr = pl.when(cols[1] != 0).then(cols[0].cast(pl.Float64) / cols[1].cast(pl.Float64))
    else:
        positive = [c > 0 for c in cols]
        both = positive[0]
        for c in positive[1:]:
            both = both & c
        expr = both
    return expr.cast(output_dtype(feature)).alias(feature.name)
