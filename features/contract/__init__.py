"""The register-extract contract as code: the single source of truth for tables and controls."""

from features.contract.controls import (
    PERSON_BIRTH_DATE,
    PERSON_KNOWN,
    RAW_PREFIX,
    RULES,
    RULES_BY_ID,
    UNIQUE_CONFLICT,
    Rule,
    RuleContext,
    RuleKind,
    rule,
    rules_for,
)
from features.contract.schema import (
    CONTRACT_VERSION,
    PROTECTED_ATTRIBUTES,
    TABLE_ORDER,
    TABLES,
    Column,
    ColumnType,
    Table,
    table,
)

__all__ = [
    "CONTRACT_VERSION",
    "PERSON_BIRTH_DATE",
    "PERSON_KNOWN",
    "PROTECTED_ATTRIBUTES",
    "RAW_PREFIX",
    "RULES",
    "RULES_BY_ID",
    "TABLES",
    "TABLE_ORDER",
    "UNIQUE_CONFLICT",
    "Column",
    "ColumnType",
    "Rule",
    "RuleContext",
    "RuleKind",
    "Table",
    "rule",
    "rules_for",
    "table",
]
