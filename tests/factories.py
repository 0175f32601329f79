"""Seeded helpers that write small contract deliveries for tests (Parquet or CSV)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from features.contract import TABLES
from features.contract.manifest import build_manifest, write_manifest

# Each region's main city (configs/places.yaml boxes them with a margin of over a degree).
CITY = {"AST": (51.17, 71.45), "ALA": (43.24, 76.89), "SHY": (42.34, 69.59), "KAR": (49.80, 73.11)}


def typed_frame(table: str, rows: list[dict[str, object]]) -> pl.DataFrame:
    """A frame with exactly the contract's columns and types for ``table``."""
    schema = TABLES[table].schema
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def write_delivery(
    folder: Path,
    tables: dict[str, pl.DataFrame],
    *,
    extract_id: str = "test-extract",
    extracted_at: datetime = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
    fmt: str = "parquet",
) -> Path:
    """Write ``tables`` as a delivery with a correct manifest; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name, frame in tables.items():
        if fmt == "parquet":
            frame.write_parquet(folder / f"{name}.parquet")
        else:
            _to_csv_frame(frame).write_csv(folder / f"{name}.csv")
        rows[name] = frame.height
    write_manifest(folder, build_manifest(folder, extract_id, extracted_at, rows))
    return folder


def _to_csv_frame(frame: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            exprs.append(pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        else:
            exprs.append(pl.col(name))
    return frame.select(exprs)


# ---- valid small deliveries (ingest tests) ------------------------------------------------
EXTRACTED_AT = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)


def valid_tables(
    n_persons: int = 4, *, seed: int = 0, prefix: str = "P"
) -> dict[str, pl.DataFrame]:
    """A seeded, small delivery (every table) whose rows all pass every contract control.

    Extracted at `EXTRACTED_AT` or later. Every person has at least one row in each person
    table, ids are unique, times are consistent (events before registration, adults offending).
    """
    import random
    from datetime import date, timedelta

    rng = random.Random(seed)

    def day(lo: date, span: int) -> date:
        return lo + timedelta(days=rng.randrange(span))

    def ts(d: date, max_hours: int = 48) -> datetime:
        base = datetime(d.year, d.month, d.day, tzinfo=UTC)
        return base + timedelta(seconds=rng.randrange(max_hours * 3600))

    regions = ("AST", "ALA", "SHY", "KAR")
    rows: dict[str, list[dict[str, object]]] = {name: [] for name in TABLES}
    for i in range(n_persons):
        pid = f"{prefix}{seed:04d}{i:05d}"
        birth = day(date(1950, 1, 1), 365 * 45)
        region = rng.choice(regions)
        rows["persons"].append(
            {
                "person_id": pid,
                "birth_date": birth,
                "sex": rng.choice(("M", "F")),
                "region": region,
                "district": rng.choice((None, f"{region}-U1", f"{region}-U2")),
                "settlement": rng.choice((None, "urban", "rural")),
                "education": rng.choice((None, "primary", "higher", "unknown")),
                "ethnicity": rng.choice((None, "E1", "E2")),
            }
        )
        adult = birth + timedelta(days=365 * 15)
        for k in range(2):
            start = day(date(2015, 1, 1), 3000)
            rows["social_status"].append(
                {
                    "person_id": pid,
                    "status": ("employed", "unemployed", "student", "retired")[k + i % 3],
                    "valid_from": start,
                    "valid_to": rng.choice((None, start + timedelta(days=rng.randrange(400)))),
                    "recorded_at": ts(start + timedelta(days=rng.randrange(5))),
                }
            )
        offence = day(max(adult, date(2016, 1, 1)), 2500)
        registered = ts(offence + timedelta(days=rng.randrange(10)))
        outcome = rng.choice(("pending", "convicted", "sent_to_court", "acquitted"))
        rows["criminal_cases"].append(
            {
                "record_id": f"CR{seed:04d}{i:05d}",
                "case_id": f"CS{seed:04d}{i // 2:05d}",
                "person_id": pid,
                "offence_date": offence,
                "registered_at": registered,
                "article": rng.choice(("188", "190", "296")),
                "category": rng.choice(("violent", "property", "drugs")),
                "gravity": rng.choice(("minor", "medium", "grave")),
                "street": rng.random() < 0.5,
                "outcome": outcome,
                "outcome_at": None if outcome == "pending" else offence + timedelta(days=60),
                "region": region,
                "district": None,
            }
        )
        sanction = rng.choice(("warning", "fine", "arrest"))
        admin_day = day(date(2016, 1, 1), 3000)
        rows["admin_offences"].append(
            {
                "record_id": f"AD{seed:04d}{i:05d}",
                "person_id": pid,
                "offence_date": admin_day,
                "registered_at": ts(admin_day),
                "article": "608",
                "category": rng.choice(("traffic", "alcohol", "domestic")),
                "detected_by": rng.choice(("camera", "officer", "complaint")),
                "sanction": sanction,
                "fine_amount": float(rng.randrange(1, 500) * 100) if sanction == "fine" else None,
                "region": region,
            }
        )
        imposed = day(date(2016, 1, 1), 3000)
        amount = float(rng.randrange(1_000, 100_000))
        paid = rng.random() < 0.5
        rows["obligations"].append(
            {
                "obligation_id": f"OB{seed:04d}{i:05d}",
                "person_id": pid,
                "kind": rng.choice(("admin_fine", "alimony", "damages")),
                "imposed_at": imposed,
                "due_at": imposed + timedelta(days=90),
                "amount": amount,
                "paid_amount": amount if paid else float(rng.randrange(0, int(amount))),
                "paid_at": imposed + timedelta(days=30) if paid else None,
                "recorded_at": ts(imposed + timedelta(days=2)),
            }
        )
        released = day(date(2016, 1, 1), 3000)
        rows["releases"].append(
            {
                "person_id": pid,
                "released_at": released,
                "sentence": rng.choice(("imprisonment", "probation", "parole")),
                "sentence_months": rng.randrange(0, 60),
                "supervised_until": rng.choice((None, released + timedelta(days=365))),
                "recorded_at": ts(released + timedelta(days=1)),
            }
        )
    for j in range(max(2, n_persons)):
        region = rng.choice(regions)
        submitted = day(date(2016, 1, 1), 3000)
        rows["appeals"].append(
            {
                "appeal_id": f"AP{seed:04d}{j:05d}",
                "submitted_at": ts(submitted),
                "region": region,
                "district": f"{region}-U1",
                "category": rng.choice(("noise", "drugs", "other")),
                "text": rng.choice((None, "loud music at night")),
            }
        )
        occurred = ts(day(date(2016, 1, 1), 3000))
        rows["incidents"].append(
            {
                "incident_id": f"IN{seed:04d}{j:05d}",
                "occurred_at": occurred,
                "registered_at": occurred + timedelta(hours=rng.randrange(1, 30)),
                "region": region,
                "district": None,
                "lat": CITY[region][0] - 0.5 + rng.random(),  # inside the region's box
                "lon": CITY[region][1] - 0.5 + rng.random(),
                "crime_type": rng.choice(("theft", "assault", "vehicle")),
            }
        )
    return {name: typed_frame(name, table_rows) for name, table_rows in rows.items()}


def set_value(frame: pl.DataFrame, row: int, column: str, value: object) -> pl.DataFrame:
    """``frame`` with one cell replaced (0-based ``row``); the column keeps its dtype unless
    ``value`` is a string going into a non-string column, which turns the column into text
    (as a Parquet writer that stored numbers or dates as strings would)."""
    dtype = frame.schema[column]
    if isinstance(value, str) and dtype != pl.String:
        frame = frame.with_columns(_as_text(frame.get_column(column)).alias(column))
        dtype = pl.String()
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.lit(value, dtype=dtype))
        .otherwise(pl.col(column))
        .alias(column)
    )


def _as_text(series: pl.Series) -> pl.Series:
    if isinstance(series.dtype, pl.Datetime):
        return series.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    if series.dtype == pl.Date:
        return series.dt.strftime("%Y-%m-%d")
    return series.cast(pl.String)
