"""The database side of `riskcast.chain.HashChain`: the append-only triggers (the engine and its
SQLite transactions come from `riskcast.db`)."""

from __future__ import annotations

import sqlalchemy as sa


def append_only_ddl(
    conn: sa.Connection, table: sa.Table, schema: str | None, message: str
) -> list[str]:
    """The statements creating the triggers that refuse UPDATE and DELETE (and TRUNCATE on
    PostgreSQL) on ``table``, raising ``message``; only the missing ones on PostgreSQL."""
    quote = conn.dialect.identifier_preparer
    target = quote.format_table(table)
    if conn.dialect.name == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table.name}_no_{op.lower()} BEFORE {op} "
            f"ON {target} BEGIN SELECT RAISE(ABORT, '{message}'); END"
            for op in ("UPDATE", "DELETE")
        ]
    if conn.dialect.name != "postgresql":
        return []
    prefix = f"{quote.quote_schema(schema)}." if schema else ""
    function = f"{prefix}{table.name}_append_only"
    statements = [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{message}: % refused', TG_OP; END $$"
    ]
    existing = set(
        conn.execute(
            sa.text("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t)"),
            {"t": target},
        ).scalars()
    )
    for name, when in (
        (f"{table.name}_no_change", "BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW"),
        (f"{table.name}_no_truncate", "BEFORE TRUNCATE ON {t} FOR EACH STATEMENT"),
    ):
        if name not in existing:
            statements.append(
                f"CREATE TRIGGER {name} {when.format(t=target)} EXECUTE FUNCTION {function}()"
            )
    return statements
