"""Pure bitemporal versioning: merge a delivery's accepted rows into a table's earlier versions.

A version is identified by the table's ``version_key`` and the hash of its contract columns
(``_row_hash``). Against the versions that were current before this delivery:

- same key and hash: unchanged, the earlier version stays exactly as it was;
- an earlier current version whose (key, hash) is not delivered again is closed
  (``_valid_to`` = this delivery's ``extracted_at``): it was corrected (the key comes with new
  content) or deleted (the key is absent from this full delivery of the table);
- a delivered (key, hash) that was not current is a new version. If the key was never stored
  before, the row is simply new: ``_valid_from`` is null, it is known from its own knowledge
  time. Otherwise (a correction, or a row that comes back after a deletion) it is known from
  this delivery: ``_valid_from`` = ``extracted_at``. ``_extract_id`` is this delivery.
- A key never stored before is still *late* when an earlier delivery of the table could have
  carried it: its knowledge time is not after that delivery's ``extracted_at`` (or the table has
  no knowledge time, like persons). Such a row (typically quarantined before and fixed now)
  was not known to us until this delivery: ``_valid_from`` = ``extracted_at``, so features as of
  earlier dates never see it retroactively.
- Exception: an earlier version whose key has a *quarantined* row in this delivery stays
  current. The delivery did not validly supersede it, and dropping it would turn one bad row
  into a silent deletion.

Matching on (key, hash) rather than on the key alone means that ``social_status`` and
``releases``, whose natural key may repeat within a delivery, need no ordinal tiebreak: rows
sharing a key are told apart by their content, a changed one closes its old version and opens
a new one (valid from this delivery), so every as-of view holds exactly the rows known then.

Earlier closed versions are kept untouched. Output order is deterministic: earlier versions in
their stored order, then new versions in file order.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.contract import Table
from features.store.offline import FIRST_EXTRACT, ROW_HASH, VALID_FROM, VALID_TO, VERSION_COLUMNS

_POS = "_pos"
_KEY_HASH = "_key_hash"
_CURRENT = "_current"


def row_hash(t: Table) -> pl.Expr:
    """Hash of a row's contract columns (typed), identical for CSV and Parquet deliveries."""
    return pl.struct([pl.col(c) for c in t.column_names]).hash(seed=0).alias(ROW_HASH)


def key_hash(t: Table) -> pl.Expr:
    """Hash of the version key; joins on (key hash, row hash) are fast u64 joins.

    Two different rows are mistaken for one only if both 64-bit hashes collide (about 2^-128
    per pair, as the row hash covers the key too).
    """
    return pl.struct([pl.col(c) for c in t.version_key]).hash(seed=3).alias(_KEY_HASH)


def stored_columns(t: Table) -> list[str]:
    return [*t.column_names, *VERSION_COLUMNS]


def first_versions(accepted: pl.DataFrame, t: Table, extract_id: str) -> pl.DataFrame:
    """The versions a table's first delivery creates: every row new, nothing closed."""
    return accepted.select(
        *[pl.col(c).cast(t.schema[c]) for c in t.column_names],
        row_hash(t),
        pl.lit(extract_id, dtype=pl.String).alias(FIRST_EXTRACT),
        pl.lit(None, dtype=VERSION_COLUMNS[VALID_FROM]).alias(VALID_FROM),
        pl.lit(None, dtype=VERSION_COLUMNS[VALID_TO]).alias(VALID_TO),
    )


def merge_versions(
    previous: pl.LazyFrame | None,
    accepted: pl.DataFrame,
    t: Table,
    *,
    extract_id: str,
    extracted_at: datetime,
    quarantined_keys: pl.DataFrame | None = None,
    previously_extracted_at: datetime | None = None,
) -> pl.LazyFrame:
    """All versions of ``t`` after this delivery (see the module docstring for the rules).

    Only hashes of the earlier versions are held in memory; their rows stream from
    ``previous`` to the output.
    """
    new = first_versions(accepted, t, extract_id)
    if previous is None:
        return new.lazy()
    at = pl.lit(extracted_at, dtype=VERSION_COLUMNS[VALID_TO])
    ids = [_KEY_HASH, ROW_HASH]

    # Recompute hashes of stored versions so that a change of hash function (e.g. a polars
    # upgrade) can never make unchanged rows look corrected.
    old = previous.select(stored_columns(t)).with_columns(row_hash(t))
    old_ids = (
        old.with_row_index(_POS)
        .select(
            _POS,
            key_hash(t),
            pl.col(ROW_HASH),
            pl.col(VALID_TO).is_null().alias(_CURRENT),
        )
        .collect()
    )
    current = old_ids.filter(pl.col(_CURRENT)).select(_POS, *ids)
    new_ids = new.with_row_index(_POS).select(_POS, key_hash(t), ROW_HASH)

    vanished = current.join(new_ids.select(ids), on=ids, how="anti")
    if quarantined_keys is not None and quarantined_keys.height:
        protected = quarantined_keys.select(key_hash(t)).unique()
        vanished = vanished.join(protected, on=_KEY_HASH, how="anti")
    closing = vanished.get_column(_POS).sort()
    old_out = (
        old.with_row_index(_POS)
        .with_columns(
            pl.when(pl.col(VALID_TO).is_null() & pl.col(_POS).is_in(closing.implode()))
            .then(at)
            .otherwise(pl.col(VALID_TO))
            .alias(VALID_TO)
        )
        .select(stored_columns(t))
    )

    fresh = new_ids.join(current.select(ids), on=ids, how="anti").sort(_POS)
    seen = fresh.get_column(_KEY_HASH).is_in(old_ids.get_column(_KEY_HASH).implode())
    new_out = new[fresh.get_column(_POS)]
    if previously_extracted_at is not None:
        if t.knowledge_time is None:
            late = pl.repeat(True, new_out.height, eager=True)
        else:
            cutoff = pl.lit(previously_extracted_at, dtype=VERSION_COLUMNS[VALID_TO])
            late = new_out.select(pl.col(t.knowledge_time) <= cutoff).to_series().fill_null(False)
        seen = seen | late
    new_out = new_out.with_columns(
        pl.when(seen)
        .then(at)
        .otherwise(pl.lit(None, dtype=VERSION_COLUMNS[VALID_FROM]))
        .alias(VALID_FROM)
    )
    return pl.concat([old_out, new_out.lazy()], how="vertical")
