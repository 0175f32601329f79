"""Steps that several experiments (and the training tests) share, kept in one place so that
their simulated deliveries stay the same: the same dates, so results stay comparable."""

from __future__ import annotations

from datetime import date
from pathlib import Path


def simulate_args(out: Path, persons: int, seed: int) -> tuple[str, ...]:
    """`riskcast simulate` arguments of a delivery from 2016 on, extracted at the end of 2025
    with a snapshot at the end of 2024 (the dates every experiment uses)."""
    return (
        "simulate",
        "--out",
        str(out),
        "--persons",
        str(persons),
        "--seed",
        str(seed),
        "--start",
        "2016-01-01",
        "--extracted-at",
        "2025-12-31",
        "--as-of",
        "2024-12-31",
    )


def simulate_and_ingest(
    delivery: Path,
    home: Path,
    persons: int,
    seed: int,
    *,
    overwrite: bool = False,
    start: date = date(2016, 1, 1),
    as_of: date = date(2024, 12, 31),
) -> None:
    """Simulate the same delivery as `simulate_args` in-process into ``delivery`` (unless
    ``start``/``as_of`` say otherwise) and ingest it into ``home``."""
    from features.ingest import ingest_delivery
    from features.simulator import simulate

    simulate(
        delivery,
        persons=persons,
        seed=seed,
        start=start,
        extracted_at=date(2025, 12, 31),
        as_of=[as_of],
        overwrite=overwrite,
    )
    ingest_delivery(delivery, home)
