"""The feature spec compiled to DuckDB SQL over the store's Parquet files (a second opinion).

An independent compilation of `configs/features.yaml` for one as-of date: the same semantics
as `features.frames` (visibility at the end of the day, windows ``(T - w, T]`` on epoch days,
empty values, missing tables as null) written as plain SQL aggregates with ``FILTER``. The
benchmark runs both and compares them value by value; agreement is evidence that the Polars
builder computes what the spec says, and the timing ratio shows what the builder is worth.
"""

from __future__ import annotations

from datetime import date, timedelta

from features.contract import TABLES, ColumnType, Table
from features.frames.compile import output_dtype
from features.frames.definitions import (
    AS_OF,
    ENTITY_TABLES,
    Aggregation,
    DerivedOp,
    FeatureDef,
    FeatureSpec,
    Filter,
)
from features.store.offline import VALID_FROM, VALID_TO, OfflineStore

EPOCH = "DATE '1970-01-01'"
KEY = "person_id"
_SQL_TYPES = {"Int32": "INTEGER", "Int64": "BIGINT", "Float64": "DOUBLE", "String": "VARCHAR"}


def _lit(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _days(table: Table, column: str) -> str:
    """Epoch days of a date column (of a timestamp's UTC date; the session runs in UTC)."""
    col = _q(column)
    if table.column(column).type is ColumnType.TS:
        col = f"CAST({col} AS DATE)"
    return f"({col} - {EPOCH})"


class Compiler:
    """SQL for one spec at one as-of date; ``t`` is the as-of as epoch days."""

    def __init__(self, spec: FeatureSpec, as_of: date) -> None:
        self.spec = spec
        self.as_of = as_of
        self.t = (as_of - date(1970, 1, 1)).days
        cutoff = as_of + timedelta(days=1)
        self.cutoff = f"TIMESTAMPTZ '{cutoff.isoformat()} 00:00:00+00'"

    # ---- rows --------------------------------------------------------------------------------
    def visible(self, table: Table) -> str:
        """`features.store.offline.visible_as_of` in SQL."""
        parts = [f"({VALID_FROM} IS NULL OR {VALID_FROM} < {self.cutoff})"]
        if table.knowledge_time is not None:
            parts.append(f"{_q(table.knowledge_time)} < {self.cutoff}")
        parts.append(f"({VALID_TO} IS NULL OR {VALID_TO} >= {self.cutoff})")
        return " AND ".join(parts)

    def filter(self, flt: Filter, table: Table) -> str:
        col = _q(flt.column)
        if flt.in_ is not None:
            return f"{col} IN ({', '.join(_lit(v) for v in flt.in_)})"
        if flt.not_in is not None:
            return f"{col} NOT IN ({', '.join(_lit(v) for v in flt.not_in)})"
        if flt.equals is not None:
            return f"{col} = {_lit(flt.equals)}"
        if flt.is_null is not None:
            return f"{col} IS {'' if flt.is_null else 'NOT '}NULL"
        assert flt.compare is not None and flt.to is not None
        rhs = str(self.t) if flt.to == AS_OF else _days(table, flt.to)
        if flt.offset_days:
            rhs = f"({rhs} + {flt.offset_days})"
        test = f"{_days(table, flt.column)} {flt.compare} {rhs}"
        return f"COALESCE({test}, {_lit(flt.if_null)})"

    def mask(self, filters: list[Filter], table: Table, extra: list[str] | None = None) -> str:
        parts = [self.filter(f, table) for f in filters] + (extra or [])
        return " AND ".join(f"({p})" for p in parts) if parts else "TRUE"

    def window(self, table: Table, column: str, window: int | None, offset: int = 0) -> list[str]:
        if window is None:
            return []
        d, end = _days(table, column), self.t - offset
        return [f"{d} > {end - window}", f"{d} <= {end}"]

    def value(self, f: FeatureDef) -> str:
        assert f.column is not None
        col = _q(f.column)
        if f.value_map is not None:
            cases = " ".join(f"WHEN {_lit(k)} THEN {float(v)!r}" for k, v in f.value_map.items())
            return f"CAST(CASE {col} {cases} END AS DOUBLE)"
        if TABLES[f.source].column(f.column).type is ColumnType.BOOL:
            return f"CAST({col} AS INTEGER)"
        return col

    # ---- one feature -------------------------------------------------------------------------
    def feature(self, f: FeatureDef) -> tuple[list[str], str]:
        """(partial aggregates named ``p_<name>_<part>``, final expression over them)."""
        table = TABLES[f.source]
        agg = f.aggregation
        date_col = f.date_col()
        d = _days(table, date_col)
        win = self.window(table, date_col, f.window_days, f.window_offset_days)
        m = self.mask(f.filters, table, win)

        def p(part: str) -> str:
            return _q(f"p_{f.name}_{part}")

        def named(expr: str, part: str) -> str:
            return f"{expr} AS {p(part)}"

        t = self.t
        if agg is Aggregation.COUNT:
            return [named(f"count(*) FILTER (WHERE {m})", "n")], f"COALESCE({p('n')}, 0)"
        if agg is Aggregation.ANY:
            return [named(f"bool_or({m})", "a")], f"CAST(COALESCE({p('a')}, FALSE) AS INTEGER)"
        if agg is Aggregation.COUNT_DISTINCT:
            expr = f"count(DISTINCT {self.value(f)}) FILTER (WHERE {m})"
            return [named(expr, "n")], f"COALESCE({p('n')}, 0)"
        if agg is Aggregation.SUM:
            expr = f"sum(CAST({self.value(f)} AS DOUBLE)) FILTER (WHERE {m})"
            return [named(expr, "s")], f"COALESCE({p('s')}, 0.0)"
        if agg in {Aggregation.MIN, Aggregation.MAX, Aggregation.MEAN}:
            fn = {Aggregation.MIN: "min", Aggregation.MAX: "max", Aggregation.MEAN: "avg"}[agg]
            return [named(f"{fn}({self.value(f)}) FILTER (WHERE {m})", "v")], p("v")
        if agg is Aggregation.LAST:
            v = self.value(f)
            expr = f"arg_max({v}, ({d}, {v})) FILTER (WHERE {m})"
            return [named(expr, "v")], p("v")
        if agg is Aggregation.SHARE:
            c = self.mask(f.condition, table)
            parts = [
                named(f"count(*) FILTER (WHERE {m} AND ({c}))", "num"),
                named(f"count(*) FILTER (WHERE {m})", "den"),
            ]
            return parts, f"CASE WHEN {p('den')} > 0 THEN {p('num')} / {p('den')} END"
        if agg in {
            Aggregation.DAYS_SINCE_LAST,
            Aggregation.DAYS_SINCE_FIRST,
            Aggregation.MONTHS_SINCE_LAST,
            Aggregation.AGE_AT_FIRST,
        }:
            first = agg in {Aggregation.DAYS_SINCE_FIRST, Aggregation.AGE_AT_FIRST}
            part = [named(f"{'min' if first else 'max'}({d}) FILTER (WHERE {m})", "d")]
            if agg is Aggregation.MONTHS_SINCE_LAST:
                return part, months_sql(p("d"), str(t))
            if agg is Aggregation.AGE_AT_FIRST:
                return part, years_sql(f"({_q('birth_date')} - {EPOCH})", p("d"))
            return part, f"{t} - {p('d')}"
        if agg is Aggregation.TREND:
            assert f.window_days is not None and f.baseline_days is not None
            w, b = f.window_days, f.baseline_days
            recent = self.mask(f.filters, table, self.window(table, date_col, w))
            earlier = self.mask(f.filters, table, self.window(table, date_col, b - w, w))
            if f.column is not None:
                v = f"CAST({self.value(f)} AS DOUBLE)"
                parts = [
                    named(f"avg({v}) FILTER (WHERE {recent})", "r"),
                    named(f"avg({v}) FILTER (WHERE {earlier})", "b"),
                ]
                return parts, f"{p('r')} - {p('b')}"
            parts = [
                named(f"count(*) FILTER (WHERE {recent})", "r"),
                named(f"count(*) FILTER (WHERE {earlier})", "b"),
            ]
            rate_r = f"COALESCE({p('r')}, 0) * {365.0 / w!r}"
            final = f"{rate_r} - COALESCE({p('b')}, 0) * {365.0 / (b - w)!r}"
            return parts, final
        if agg in {Aggregation.STATE_AT, Aggregation.NO_STATE_AT, Aggregation.STATE_DAYS}:
            assert f.end_column is not None
            start, end = _days(table, date_col), _days(table, f.end_column)
            open_end = f"{_q(f.end_column)} IS NULL" if f.open_end else "FALSE"
            covers = self.mask(
                f.filters,
                table,
                [f"{start} <= {t}", f"({open_end} OR COALESCE({end} >= {t}, FALSE))"],
            )
            if agg is Aggregation.STATE_DAYS:
                part = [named(f"max({t} - {start}) FILTER (WHERE {covers})", "days")]
                return part, f"COALESCE({p('days')}, 0)"
            part = [named(f"bool_or({covers})", "a")]
            final = f"COALESCE({p('a')}, FALSE)"
            if agg is Aggregation.NO_STATE_AT:
                final = f"NOT {final}"
            return part, f"CAST({final} AS INTEGER)"
        raise ValueError(f"{f.name}: {agg} is not a table aggregation")

    def own(self, f: FeatureDef) -> str:
        """``value`` and ``age_at`` on the persons row."""
        if f.aggregation is Aggregation.AGE_AT:
            assert f.column is not None
            return years_sql(f"({_q(f.column)} - {EPOCH})", str(self.t))
        return self.value(f)

    def derived(self, f: FeatureDef) -> str:
        a = [_q(i) for i in f.inputs]
        if f.op is DerivedOp.SUB:
            return f"CAST({a[0]} AS DOUBLE) - CAST({a[1]} AS DOUBLE)"
        if f.op is DerivedOp.DIV:
            return f"CASE WHEN {a[1]} <> 0 THEN CAST({a[0]} AS DOUBLE) / {a[1]} END"
        return "CAST(" + " AND ".join(f"{x} > 0" for x in a) + " AS INTEGER)"


def years_sql(born: str, on: str) -> str:
    """Completed years between two epoch-day expressions (29 Feb counts on 1 March)."""
    b, o = f"({EPOCH} + CAST({born} AS INTEGER))", f"({EPOCH} + CAST({on} AS INTEGER))"
    return (
        f"(year({o}) - year({b}) - CASE WHEN month({o}) * 100 + day({o}) < "
        f"month({b}) * 100 + day({b}) THEN 1 ELSE 0 END)"
    )


def months_sql(since: str, on: str) -> str:
    s, o = f"({EPOCH} + CAST({since} AS INTEGER))", f"({EPOCH} + CAST({on} AS INTEGER))"
    return (
        f"((year({o}) * 12 + month({o})) - (year({s}) * 12 + month({s})) - "
        f"CASE WHEN day({o}) < day({s}) THEN 1 ELSE 0 END)"
    )


def feature_sql(spec: FeatureSpec, store: OfflineStore, as_of: date) -> str:
    """One SELECT giving (person_id, as_of, features...) for population ``all`` at ``as_of``."""
    c = Compiler(spec, as_of)
    state = store.state()
    own = TABLES[ENTITY_TABLES[spec.entity]]
    files = {name: (store.root / rel).as_posix() for name, rel in state.tables.items()}
    ctes = [
        f"base AS (SELECT * FROM read_parquet('{files[own.name]}') WHERE {c.visible(own)} "
        f"AND {_days(own, 'birth_date')} <= {c.t})"
    ]
    finals: dict[str, str] = {}
    joins: list[str] = []
    by_table: dict[str, list[FeatureDef]] = {}
    for f in spec.features:
        if not f.is_derived and f.source != own.name:
            by_table.setdefault(f.source, []).append(f)
    for name, feats in by_table.items():
        if name not in files:
            for f in feats:
                finals[f.name] = "NULL"
            continue
        partials: list[str] = []
        for f in feats:
            parts, final = c.feature(f)
            partials += parts
            finals[f.name] = final
        alias = f"agg_{name}"
        ctes.append(
            f"{alias} AS (SELECT {KEY}, {', '.join(partials)} FROM read_parquet('{files[name]}') "
            f"WHERE {c.visible(TABLES[name])} GROUP BY {KEY})"
        )
        joins.append(f"LEFT JOIN {alias} USING ({KEY})")
    for f in spec.features:
        if f.source == own.name:
            finals[f.name] = c.own(f)
    typed = {
        name: f"CAST({expr} AS {_SQL_TYPES[str(output_dtype(spec.feature(name)))]})"
        for name, expr in finals.items()
    }
    inner = ", ".join(f"{expr} AS {_q(name)}" for name, expr in typed.items())
    derived = [f for f in spec.features if f.is_derived]
    body = f"SELECT {KEY}, DATE '{as_of.isoformat()}' AS as_of, {inner} FROM base {' '.join(joins)}"
    for f in derived:  # each derived feature reads the ones before it
        body = f"SELECT *, {c.derived(f)} AS {_q(f.name)} FROM ({body})"
    columns = ", ".join(_q(n) for n in [KEY, "as_of", *spec.names])
    return f"WITH {', '.join(ctes)} SELECT {columns} FROM ({body})"
