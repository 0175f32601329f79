"""Nothing lost: on corrupted deliveries every row is accepted, quarantined or a duplicate."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from features.contract import TABLE_ORDER, TABLES, RuleContext
from features.ingest import ingest_delivery
from features.ingest.validate import validate_frames
from features.store.offline import OfflineStore
from tests.factories import EXTRACTED_AT, set_value, valid_tables, write_delivery

CORRUPTIONS = ("duplicate", "conflict", "bad_enum", "null", "unknown_person", "bad_type")


def _corrupt(frames: dict[str, pl.DataFrame], kind: str, table: str, pick: int) -> None:
    frame = frames[table]
    t = TABLES[table]
    row = pick % frame.height
    if kind == "duplicate":
        frames[table] = pl.concat([frame, frame.slice(row, 1)])
    elif kind == "conflict" and t.id_column is not None:
        # same id as another row, different content: this row's content, another row's id
        other = (row + 1) % frame.height
        twin = frame.slice(row, 1).with_columns(
            pl.lit(frame.get_column(t.id_column)[other]).alias(t.id_column)
        )
        frames[table] = pl.concat([frame, twin])
    elif kind == "bad_enum":
        enums = [c.name for c in t.columns if c.values]
        frames[table] = set_value(frame, row, enums[pick % len(enums)], "bogus")
    elif kind == "null":
        required = [c.name for c in t.columns if not c.nullable]
        frames[table] = set_value(frame, row, required[pick % len(required)], None)
    elif kind == "unknown_person" and "person_id" in frame.columns and table != "persons":
        frames[table] = set_value(frame, row, "person_id", f"P-GHOST-{pick}")
    elif kind == "bad_type":
        typed = [c.name for c in t.columns if c.type.value not in ("str", "enum")]
        if typed:
            frames[table] = set_value(frame, row, typed[pick % len(typed)], "garbage")


corruption = st.tuples(
    st.sampled_from(CORRUPTIONS), st.sampled_from(TABLE_ORDER), st.integers(0, 1000)
)


def _delivery(seed: int, n: int, damage: list[tuple[str, str, int]]) -> dict[str, pl.DataFrame]:
    frames = valid_tables(n, seed=seed)
    for kind, table, pick in damage:
        _corrupt(frames, kind, table, pick)
    return frames


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 6),
    damage=st.lists(corruption, max_size=12),
)
def test_every_row_is_accepted_quarantined_or_a_duplicate(
    seed: int, n: int, damage: list[tuple[str, str, int]]
) -> None:
    frames = _delivery(seed, n, damage)
    results = validate_frames(frames, RuleContext(EXTRACTED_AT))
    for name, frame in frames.items():
        r = results[name]
        assert r.rows_in == frame.height
        assert r.rows_in == r.accepted.height + r.quarantined + r.duplicates_dropped
        rows = [
            *r.accepted.get_column("_row").to_list(),
            *r.quarantine.get_column("_row").to_list(),
            *r.duplicate_rows.to_list(),
        ]
        assert sorted(rows) == list(range(1, frame.height + 1))  # each row exactly once
        # a quarantined row lists at least one rule and one message per rule
        for rules, messages in r.quarantine.select("_rules", "_messages").iter_rows():
            assert rules and len(rules) == len(messages)
        # rule counts are rows per rule
        exploded = r.quarantine.get_column("_rules").explode().value_counts()
        assert dict(exploded.iter_rows()) == r.rule_counts if r.quarantined else not r.rule_counts
        # dropped duplicates really are copies of a kept row
        numbered = frame.with_row_index("_row", offset=1)
        dropped = pl.col("_row").is_in(r.duplicate_rows.to_list())
        unmatched = numbered.filter(dropped).join(
            numbered.filter(~dropped), on=frame.columns, how="anti", nulls_equal=True
        )
        assert unmatched.height == 0


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), damage=st.lists(corruption, max_size=8))
def test_the_store_and_report_conserve_rows(seed: int, damage: list[tuple[str, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frames = _delivery(seed, 3, damage)
        write_delivery(root / "d", frames, extract_id=f"x{seed}")
        report = ingest_delivery(root / "d", root / "home")
        store = OfflineStore(root / "home")
        state = store.state()
        for name, frame in frames.items():
            counts = report.tables[name]
            assert counts.rows_in == frame.height
            assert (
                counts.rows_in == counts.accepted + counts.quarantined + counts.duplicates_dropped
            )
            assert store.scan(name).select(pl.len()).collect().item() == counts.accepted
            quarantine = pl.read_parquet(store.root / state.quarantine[f"x{seed}"][name])
            assert quarantine.height == counts.quarantined
