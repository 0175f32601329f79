"""The gate on real models: it passes a fair one and refuses one with a deliberately biased input.

Two models are trained through `training.pipeline.train` on one small simulated delivery with
the same config; the second also has an extra input, joined the way a careless data scientist
would (config ``extra_inputs``): a vendor's ``external_risk_score`` per person and as-of date.
The score is excellent (the simulator's own p_true, as log-odds), but from 2024 on the vendor
adds ``UPLIFT`` to the log-odds of everyone the register records as ethnicity E2. The column
is derived from ethnicity yet is not named as a protected attribute, so the input guard lets
it through; the gate (`fairness.promotion.promote`, what `riskcast promote` runs) must refuse
the model for it, naming the checks and the group. The raw protected attribute as an extra
input is refused by the guard before anything is trained.

Why the uplift hits the out-of-time test snapshot (where the model is used) and not the
training history: an uplift present in the training data too is mostly learned away
(boosting and calibration fit the inflated score to E2's recorded outcomes). Tried with
uplifts of 1.5 to 7, what remained was an E2 calibration gap about 0.09 above E1's, with an
interval reaching below the 0.05 tolerance for a group of ~60, so the gate cannot establish
it. The sizes: 8 000 persons give about 300 persons with a record in the test snapshot, so E1
and E2 reach the policy's ``min_group_size`` (with the model tests' 3 000 persons E2 has 19;
with population ``all`` the 1 % base rate leaves almost nobody above the threshold).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from fairness.gate import FAIL, PASS, Check
from fairness.promotion import PromotionOutcome
from riskcast.errors import ConfigError
from tests.training_helpers import write_config

PERSONS = 8_000
SEED = 11
UPLIFT = 3.0  # log-odds added to E2's vendor score from UPLIFT_FROM on
UPLIFT_FROM = date(2024, 1, 1)  # after the tuning and calibration periods: the test snapshot
SCORE = "external_risk_score"
ETHNICITY_CHECKS = (
    "fpr disparity by ethnicity vs E1",
    "calibration_gap disparity by ethnicity vs E1",
)


@dataclass(frozen=True)
class World:
    root: Path
    delivery: Path
    home: Path
    uri: str
    fair_config: Path
    dates: list[date]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A delivery with p_true at every snapshot of the tiny training config, ingested into a
    home of its own (RISKCAST_HOME points there while the module's tests run)."""
    from features.ingest import ingest_delivery
    from features.simulator import simulate
    from riskcast.settings import get_settings
    from training.config import load_training_config

    root = tmp_path_factory.mktemp("biased-feature")
    delivery, home = root / "d1", root / "home"
    fair_config = write_config(root / "fair.yaml", trials=1, truth_dir=str(root / "d1_truth"))
    dates = load_training_config(fair_config).training.snapshots.dates()
    simulate(
        delivery,
        persons=PERSONS,
        seed=SEED,
        start=date(2016, 1, 1),
        extracted_at=date(2025, 12, 31),
        as_of=dates,
    )
    ingest_delivery(delivery, home)
    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RISKCAST_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("RISKCAST_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        yield World(root, delivery, home, uri, fair_config, dates)
    get_settings.cache_clear()


def _register_ethnicity(world: World) -> pl.DataFrame:
    """What the data scientist has: the register's persons table (ethnicity, 4 % missing)."""
    return pl.read_parquet(world.delivery / "persons.parquet").select("person_id", "ethnicity")


def _vendor_scores(world: World) -> Path:
    """The biased extra input: log-odds of p_true, plus UPLIFT for E2 from UPLIFT_FROM on."""
    truth = pl.read_parquet(world.root / "d1_truth" / "labels.parquet")
    p = pl.col("p_true").clip(1e-6, 1 - 1e-6)
    uplifted = (pl.col("ethnicity") == "E2").fill_null(False) & (pl.col("as_of") >= UPLIFT_FROM)
    scores = (
        truth.join(_register_ethnicity(world), on="person_id", how="left")
        .select(
            "person_id",
            "as_of",
            ((p / (1 - p)).log() + pl.when(uplifted).then(UPLIFT).otherwise(0.0)).alias(SCORE),
        )
        .sort("as_of", "person_id")
    )
    assert set(scores["as_of"].unique().to_list()) == set(world.dates)
    path = world.root / "vendor-scores.parquet"
    scores.write_parquet(path)
    return path


def _promote(world: World, version: str) -> PromotionOutcome:
    from fairness.ledger import open_ledger
    from fairness.policy import load_policy
    from fairness.promotion import promote

    return promote(
        version, load_policy(), open_ledger(), home=world.home, by="ana",
        reason="model-behaviour test", role="data_scientist", override=False, uri=world.uri,
    )  # fmt: skip


def _fairness_checks(outcome: PromotionOutcome) -> dict[str, Check]:
    """The fairness checks of the decision (evidence and binding disparities), by name."""
    return {
        c.name: c
        for c in outcome.decision.checks
        if c.name.startswith("evidence ") or " disparity by " in c.name
    }


@pytest.mark.parametrize("column", ["ethnicity", "region"])
def test_guard_refuses_a_protected_attribute_as_an_extra_input(world: World, column: str) -> None:
    from training.pipeline import train

    table = world.root / f"raw-{column}.parquet"
    pl.read_parquet(world.delivery / "persons.parquet").select("person_id", column).write_parquet(
        table
    )
    config = write_config(world.root / f"raw-{column}.yaml", trials=1, extra_inputs=str(table))
    with pytest.raises(ConfigError, match=f"must never be model inputs: {column} "):
        train(home=world.home, config=config)


def test_gate_passes_the_fair_model_and_refuses_the_biased_one(world: World) -> None:
    from fairness.ledger import open_ledger
    from fairness.promotion import current_champion
    from training.pipeline import train

    biased_config = write_config(
        world.root / "biased.yaml",
        trials=1,
        truth_dir=str(world.root / "d1_truth"),
        extra_inputs=str(_vendor_scores(world)),
    )
    biased = train(home=world.home, config=biased_config)
    fair = train(home=world.home, config=world.fair_config)
    assert biased.n_features == fair.n_features + 1  # the only difference: the vendor score

    # the biased model: refused, naming both binding checks and the group
    refused = _promote(world, biased.model_version)
    assert (refused.decision.outcome, refused.promoted) == (FAIL, False)
    checks = _fairness_checks(refused)
    for name in ETHNICITY_CHECKS:
        assert checks[name].outcome == FAIL, checks[name].reason()
        assert checks[name].detail.startswith("E2: difference +"), checks[name].detail
        assert f"FAIL: {name}: E2: " in "\n".join(refused.decision.reasons)
    assert current_champion("recidivism-risk", world.uri) is None
    entry = open_ledger().entries(version=biased.model_version)[-1]
    assert entry.kind == "refusal"
    assert any(r.startswith(f"FAIL: {ETHNICITY_CHECKS[1]}: E2: ") for r in entry.reasons)
    report = json.loads(refused.report.with_suffix(".json").read_text(encoding="utf-8"))
    proxies = {p["attribute"]: p for p in report["proxies"]}
    assert SCORE in proxies["ethnicity"]["strongest"]  # the report points at the proxy too

    # the fair model: no fairness check fails (small groups: insufficient evidence at most);
    # only a check outside fairness may refuse it (the overall ECE, on ~300 test rows)
    audited = _promote(world, fair.model_version)
    checks = _fairness_checks(audited)
    for name in ETHNICITY_CHECKS:
        assert checks[name].outcome == PASS, checks[name].reason()
    assert not [c.reason() for c in checks.values() if c.outcome == FAIL]
    others = {c.name for c in audited.decision.checks if c.outcome == FAIL} - set(checks)
    assert others <= {"calibration (ECE)"}, audited.decision.reasons
