"""A fast, seeded, contract-valid delivery of N persons for benchmarks (no behavioural model).

Used by `experiments/bench_features.py` when `features.simulator.simulate` is not available:
volumes per person are roughly those of a national register (most persons have no case), and
every row passes the contract's controls, but nothing here is meant to be realistic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl

from features.contract import TABLES
from features.contract.manifest import build_manifest, write_manifest

EXTRACTED_AT = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
_EPOCH = date(1970, 1, 1)
_LAST = (EXTRACTED_AT.date() - _EPOCH).days
_FIRST = (date(2010, 1, 1) - _EPOCH).days


def _days(values: np.ndarray) -> pl.Series:
    return pl.Series(np.minimum(values, _LAST).astype(np.int32)).cast(pl.Date)


def _ts(day: np.ndarray, rng: np.random.Generator) -> pl.Series:
    seconds = np.minimum(day, _LAST).astype(np.int64) * 86_400 + rng.integers(0, 86_399, len(day))
    return pl.Series(seconds * 1_000_000).cast(pl.Datetime("us", "UTC"))


def _pick(
    rng: np.random.Generator, values: tuple[str, ...], n: int, p: list[float] | None = None
) -> pl.Series:
    return pl.Series(np.asarray(values)[rng.choice(len(values), n, p=p)])


def _ids(prefix: str, n: int) -> pl.Series:
    return pl.select(
        pl.format(prefix + "{}", pl.int_range(n, eager=False).cast(pl.String).str.zfill(9))
    ).to_series()


def _spread(rng: np.random.Generator, n: int, lam: float) -> np.ndarray:
    """Person index of each event row: Poisson counts per person, skewed by a latent rate."""
    rate = rng.gamma(0.3, lam / 0.3, n)
    counts = rng.poisson(rate)
    return np.repeat(np.arange(n), counts)


def synthetic_tables(n: int, seed: int = 0) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    pid = _ids("P", n)
    born = rng.integers((date(1945, 1, 1) - _EPOCH).days, (date(2007, 1, 1) - _EPOCH).days, n)
    persons = pl.DataFrame(
        {
            "person_id": pid,
            "birth_date": _days(born),
            "sex": _pick(rng, ("M", "F"), n),
            "region": _pick(rng, ("AST", "ALA", "SHY", "KAR"), n),
            "district": _pick(rng, ("D1", "D2", "D3"), n),
            "settlement": _pick(rng, ("urban", "rural"), n),
            "education": _pick(rng, TABLES["persons"].column("education").values, n),
            "ethnicity": _pick(rng, ("E1", "E2", "E3"), n),
        }
    )
    adult = np.maximum(born + 15 * 366, _FIRST)

    def event_days(idx: np.ndarray) -> np.ndarray:
        lo: np.ndarray = adult[idx]
        spread: np.ndarray = (rng.random(len(idx)) * np.maximum(_LAST - lo, 1)).astype(np.int64)
        days: np.ndarray = lo + spread
        return days

    def col(name: str, table: str, m: int) -> pl.Series:
        return _pick(rng, TABLES[table].column(name).values, m)

    i = _spread(rng, n, 0.35)
    m = len(i)
    offence = event_days(i)
    registered = offence + rng.exponential(15, m).astype(np.int64)
    pending = rng.random(m) < 0.25
    outcome = col("outcome", "criminal_cases", m).to_numpy().copy()
    outcome[pending] = "pending"
    outcome[~pending & (outcome == "pending")] = "convicted"
    outcome_at = offence + rng.integers(0, 500, m)
    cases = pl.DataFrame(
        {
            "record_id": _ids("CR", m),
            "case_id": _ids("CS", m),
            "person_id": pid.gather(i),
            "offence_date": _days(offence),
            "registered_at": _ts(registered, rng),
            "article": _pick(rng, ("185", "188", "190", "296", "121"), m),
            "category": col("category", "criminal_cases", m),
            "gravity": col("gravity", "criminal_cases", m),
            "street": rng.random(m) < 0.3,
            "outcome": outcome,
            "outcome_at": _days(outcome_at),
            "region": _pick(rng, ("AST", "ALA", "SHY", "KAR"), m),
            "district": pl.Series([None] * m, dtype=pl.String),
        }
    ).with_columns(
        pl.when(pl.col("outcome") != "pending").then(pl.col("outcome_at")).alias("outcome_at")
    )

    i = _spread(rng, n, 1.0)
    m = len(i)
    offence = event_days(i)
    sanction = col("sanction", "admin_offences", m)
    admin = pl.DataFrame(
        {
            "record_id": _ids("AD", m),
            "person_id": pid.gather(i),
            "offence_date": _days(offence),
            "registered_at": _ts(offence + rng.integers(0, 10, m), rng),
            "article": _pick(rng, ("608", "434", "590"), m),
            "category": col("category", "admin_offences", m),
            "detected_by": col("detected_by", "admin_offences", m),
            "sanction": sanction,
            "fine_amount": rng.integers(1, 500, m) * 100.0,
            "region": _pick(rng, ("AST", "ALA", "SHY", "KAR"), m),
        }
    ).with_columns(
        pl.when(pl.col("sanction") == "fine").then(pl.col("fine_amount")).alias("fine_amount")
    )

    i = _spread(rng, n, 0.5)
    m = len(i)
    imposed = event_days(i)
    amount = rng.integers(10, 5000, m) * 10.0
    state = rng.random(m)
    paid_at = np.minimum(imposed + rng.integers(0, 400, m), _LAST)
    obligations = pl.DataFrame(
        {
            "obligation_id": _ids("OB", m),
            "person_id": pid.gather(i),
            "kind": col("kind", "obligations", m),
            "imposed_at": _days(imposed),
            "due_at": _days(imposed + rng.integers(0, 120, m)),
            "amount": amount,
            "paid_amount": np.where(state < 0.5, amount, np.where(state < 0.7, amount / 2, 0.0)),
            "paid_at": _days(paid_at),
            "recorded_at": _ts(imposed + rng.integers(0, 5, m), rng),
        }
    ).with_columns(
        pl.when(pl.col("paid_amount") == pl.col("amount")).then(pl.col("paid_at")).alias("paid_at")
    )

    i = _spread(rng, n, 1.5)
    m = len(i)
    start = event_days(i)
    end = start + rng.integers(0, 1500, m)
    status = (
        pl.DataFrame(
            {
                "person_id": pid.gather(i),
                "status": col("status", "social_status", m),
                "valid_from": _days(start),
                "valid_to": _days(end),
                "recorded_at": _ts(start + rng.integers(0, 30, m), rng),
                "_open": (rng.random(m) < 0.4) | (end > _LAST),
            }
        )
        .with_columns(pl.when(~pl.col("_open")).then(pl.col("valid_to")).alias("valid_to"))
        .drop("_open")
    )
    status = status.unique(["person_id", "status", "valid_from"], keep="first")

    i = _spread(rng, n, 0.06)
    m = len(i)
    released = event_days(i)
    supervised = released + rng.integers(30, 1000, m)
    releases = (
        pl.DataFrame(
            {
                "person_id": pid.gather(i),
                "released_at": _days(released),
                "sentence": col("sentence", "releases", m),
                "sentence_months": rng.integers(0, 120, m),
                "supervised_until": _days(supervised),
                "recorded_at": _ts(released + rng.integers(0, 20, m), rng),
                "_sup": rng.random(m) < 0.5,
            }
        )
        .with_columns(
            pl.when(pl.col("_sup")).then(pl.col("supervised_until")).alias("supervised_until")
        )
        .drop("_sup")
    )
    releases = releases.unique(["person_id", "released_at", "sentence"], keep="first")
    tables = {
        "persons": persons,
        "social_status": status,
        "criminal_cases": cases,
        "admin_offences": admin,
        "obligations": obligations,
        "releases": releases,
    }
    return {
        name: frame.select(pl.col(c).cast(dtype) for c, dtype in TABLES[name].schema.items())
        for name, frame in tables.items()
    }


def write_synthetic_delivery(folder: Path, n: int, seed: int = 0) -> Path:
    """Write the delivery (Parquet + manifest) and return its folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name, frame in synthetic_tables(n, seed).items():
        frame.write_parquet(folder / f"{name}.parquet")
        rows[name] = frame.height
    write_manifest(folder, build_manifest(folder, f"synthetic-{n}", EXTRACTED_AT, rows))
    return folder
