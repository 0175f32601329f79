"""Monitoring checks for the pages' tests: real `CheckResult`s computed by
`fairness.monitoring.check.run_check` on simulated populations (whose truth is known), kept in
a home's monitoring store and their alerts in its ledger as `riskcast monitor` keeps them
(`fairness.monitoring.cli.record_alerts`).

Three quarterly checks of the person model's champion: a quiet one, then two in which the
region R2's input drifted and women's scores rose (so the estimated FPR of ``sex=F`` differs
from the men's beyond the fairness policy twice in a row: the re-audit rule fires on the third).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl

from fairness.monitoring.check import CheckInputs, CheckResult, run_check
from fairness.monitoring.cli import record_alerts
from fairness.monitoring.config import DriftSettings, EstimateSettings, MonitoringConfig
from fairness.monitoring.store import MonitoringStore, StoredCheck
from fairness.policy import load_policy
from riskcast.names import PERSON_MODEL
from tests.service_helpers import environment
from training.model import Tier

TIERS = [Tier("low", 0.0), Tier("medium", 0.15), Tier("high", 0.35), Tier("very_high", 0.6)]
AS_OF = (date(2025, 3, 31), date(2025, 6, 30), date(2025, 9, 30))


def population(
    rng: np.random.Generator, n: int, shift_region: str | None = None, rise_f: float = 0.0
) -> pl.DataFrame:
    region = rng.choice(["R1", "R2", "R3"], n)
    sex = rng.choice(["F", "M"], n)
    x = rng.normal(0, 1, n)
    if shift_region is not None:
        x = np.where(region == shift_region, x + 1.0, x)
    x = np.where(sex == "F", x + rise_f, x)
    p = 1 / (1 + np.exp(-(-1.2 + 0.9 * x)))
    return pl.DataFrame({"x": x, "probability": p, "region": region, "sex": sex})


def config() -> MonitoringConfig:
    return MonitoringConfig(
        config_version="t",
        group_columns=["sex", "region"],
        drift=DriftSettings(seed=3),
        estimate=EstimateSettings(replicates=30),
    )


def check(
    version: str, as_of: date, *, drifted: bool, previous: CheckResult | None, seed: int
) -> CheckResult:
    rng = np.random.default_rng(seed)
    n = 4_000
    cohort = population(rng, n)
    matured = cohort.with_columns(
        pl.Series("label", (rng.random(n) < cohort["probability"].to_numpy()).astype(np.int64)),
        pl.Series("person_id", [str(i) for i in range(n)]),
        pl.Series("listed", rng.random(n) < 0.3),
    )
    inputs = CheckInputs(
        model=PERSON_MODEL,
        version=version,
        as_of=as_of,
        checked_at=datetime(as_of.year, as_of.month, as_of.day, 6, tzinfo=UTC),
        reference_note="the audited test snapshot (simulated)",
        reference=population(rng, n),
        current=population(rng, n, "R2" if drifted else None, 1.5 if drifted else 0.0),
        inputs=["x"],
        categorical=[],
        tiers=TIERS,
        matured=matured,
        matured_as_of=date(as_of.year - 1, as_of.month, as_of.day),
        previous_breaches=previous.breaches if previous else None,
    )
    return run_check(inputs, config(), load_policy())


def keep_checks(home: Path, version: str) -> list[StoredCheck]:
    """Three checks kept in ``home``'s monitoring store, their alerts in its ledger."""
    store = MonitoringStore(f"sqlite:///{(home / 'riskcast.sqlite').resolve()}")
    kept: list[StoredCheck] = []
    previous: CheckResult | None = None
    try:
        for i, day in enumerate(AS_OF):
            result = check(version, day, drifted=i > 0, previous=previous, seed=11 + i)
            kept.append(store.record(result))
            previous = result
    finally:
        store.dispose()
    with environment(RISKCAST_HOME=str(home), RISKCAST_DATABASE_URL=None):
        for stored in kept:
            record_alerts(stored, by="riskcast-monitor")
    return kept
