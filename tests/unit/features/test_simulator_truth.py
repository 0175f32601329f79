"""The simulator's truth: labels as the contract defines them, honest p_true, a bias that
touches registration but not offending, and place signals that lead."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.simulator import SimulationResult, SimulatorConfig, simulate
from training.labels import LabelDefinition, label_cases

START = date(2016, 1, 1)
EXTRACTED = date(2025, 12, 31)
AS_OF = [date(2022, 12, 31), date(2023, 12, 31), date(2024, 12, 31)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """8 000 persons: enough for a few hundred positive labels over three as-of dates."""
    out = tmp_path_factory.mktemp("truth") / "d1"
    return simulate(out, 8000, 21, START, EXTRACTED, as_of=AS_OF, chunk_size=4000)


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    ranks = np.argsort(np.argsort(score)) + 1.0
    pos = int(label.sum())
    neg = len(label) - pos
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


def test_labels_are_the_contract_label_recomputed_from_criminal_cases(
    world: SimulationResult,
) -> None:
    truth = pl.read_parquet(world.truth / "labels.parquet")
    cases = pl.scan_parquet(world.delivery / "criminal_cases.parquet")
    persons = pl.scan_parquet(world.delivery / "persons.parquet")
    definition = LabelDefinition(description="any new case", horizon_days=365)
    recount = label_cases(cases, persons, AS_OF, definition).collect()
    joined = truth.join(recount, on=["person_id", "as_of"], how="full", coalesce=True)
    assert joined.height == truth.height == recount.height == 8000 * len(AS_OF)
    assert (joined["label"] == joined["label_right"]).all()
    assert (joined["horizon_days"] == joined["horizon_days_right"]).all()
    assert truth["label"].sum() > 100
    # the delivered label is the latent registration event, nothing lost or added
    assert (truth["label"] == (truth["registrations_in_window"] > 0)).all()


def test_p_true_is_calibrated_and_discriminates(world: SimulationResult) -> None:
    truth = pl.read_parquet(world.truth / "labels.parquet")
    for as_of, group in truth.group_by("as_of"):
        p = group["p_true"].to_numpy()
        y = group["label"].to_numpy()
        se = float(np.sqrt((p * (1 - p)).sum())) / len(p)
        assert abs(y.mean() - p.mean()) < 4 * se, (as_of, y.mean(), p.mean(), se)
        assert _auc(p, y) > 0.8, as_of
    p = truth["p_true"].to_numpy()
    y = truth["label"].to_numpy()
    high = p > np.quantile(p, 0.99)  # the riskiest percent, a few hundred rows
    se = float(np.sqrt((p[high] * (1 - p[high])).sum())) / high.sum()
    assert abs(y[high].mean() - p[high].mean()) < 4 * se
    assert p.min() >= 0.0 and p.max() < 1.0
    assert (p > 0).mean() > 0.9  # zero only for persons under 14 throughout the window
    np.testing.assert_allclose(
        1 - truth["p_true"], (1 - truth["p_future"]) * (1 - truth["p_pending"]), atol=1e-12
    )


def test_base_rates_are_realistic_and_a_record_predicts_reoffending(
    world: SimulationResult,
) -> None:
    truth = pl.read_parquet(world.truth / "labels.parquet").filter(
        pl.col("as_of") == date(2024, 12, 31)
    )
    cases = pl.read_parquet(world.delivery / "criminal_cases.parquet")
    prior = cases.filter(pl.col("registered_at").dt.date() <= date(2024, 12, 31))["person_id"]
    with_record = truth.filter(pl.col("person_id").is_in(prior.implode()))
    overall = truth["label"].mean()
    assert 0.003 < overall < 0.03  # type: ignore[operator]
    assert 0.1 < with_record["label"].mean() < 0.45  # type: ignore[operator]
    assert 0.1 < with_record["p_true"].mean() < 0.45  # type: ignore[operator]


def test_offences_not_yet_registered_count_towards_p_true(world: SimulationResult) -> None:
    truth = pl.read_parquet(world.truth / "labels.parquet")
    assert (truth["p_pending"] > 0).sum() > 0
    offences = pl.read_parquet(world.truth / "offences.parquet")
    late = offences.filter(
        pl.col("detected")
        & (pl.col("offence_date") <= date(2024, 12, 31))
        & (pl.col("registered_at").dt.date() > date(2024, 12, 31))
    )
    assert late.height > 0  # registrations inside the window of offences committed before
    who = truth.filter(
        (pl.col("as_of") == date(2024, 12, 31))
        & pl.col("person_id").is_in(late["person_id"].implode())
    )
    assert (who["p_pending"] > 0).all()


def test_the_truth_keeps_latent_attributes_and_every_offence(world: SimulationResult) -> None:
    latent = pl.read_parquet(world.truth / "persons.parquet")
    offences = pl.read_parquet(world.truth / "offences.parquet")
    cases = pl.read_parquet(world.delivery / "criminal_cases.parquet")
    assert latent.height == 8000 and latent["ethnicity"].null_count() == 0
    assert offences["detected"].to_numpy().mean() < 0.9  # many offences are never registered
    registered = offences.filter(
        pl.col("detected") & (pl.col("registered_at").dt.date() <= EXTRACTED)
    )
    delivered = set(cases["record_id"])
    assert set(registered["record_id"]) <= delivered
    # a few more rows in the delivery: erroneous double entries, not offences of their own
    assert 0 <= len(delivered) - registered.height < 0.05 * len(delivered)
    counts = latent.join(
        offences.group_by("person_id").len(), on="person_id", how="left"
    ).with_columns(pl.col("len").fill_null(0))
    assert (counts["len"] == counts["offences_total"]).all()
    # the propensity matters: the top 3 % commit most offences
    top = counts.sort("log_propensity", descending=True).head(240)
    assert top["len"].to_numpy().sum() > 0.5 * counts["len"].to_numpy().sum()


def test_ethnicity_changes_registration_but_never_offending(tmp_path: Path) -> None:
    biased = SimulatorConfig.model_validate(
        {"crime": {"detection_bias": [{"region": "ALA", "ethnicity": "E2", "factor": 1.8}]}}
    )
    fair = SimulatorConfig.model_validate({"crime": {"detection_bias": []}})
    runs = [
        simulate(tmp_path / name, 4000, 5, START, EXTRACTED, config=cfg)
        for name, cfg in (("biased", biased), ("fair", fair))
    ]
    a, b = (pl.read_parquet(r.truth / "offences.parquet") for r in runs)
    committed = ["person_id", "offence_date", "category", "article", "gravity"]
    assert a.select(committed).equals(b.select(committed))  # not one offence differs
    persons = pl.read_parquet(runs[0].truth / "persons.parquet")
    info = a.join(persons, on="person_id", how="left", maintain_order="left")
    target = (
        (info["region"] == "ALA")
        & (info["ethnicity"] == "E2")
        & info["gravity"].is_in(["misdemeanour", "minor"])
    ).to_numpy()
    assert target.sum() > 0
    pa, pb = a["detect_prob"].to_numpy(), b["detect_prob"].to_numpy()
    np.testing.assert_allclose(pa[target], np.minimum(0.98, 1.8 * pb[target]))
    assert (pa[~target] == pb[~target]).all()
    flips = (a["detected"] != b["detected"]).to_numpy()
    assert flips.any() and target[flips].all()  # only the biased group's registrations move
    assert a["detected"].to_numpy()[target].mean() > b["detected"].to_numpy()[target].mean()


def test_appeals_lead_incidents_in_their_district(tmp_path: Path) -> None:
    cfg = SimulatorConfig.model_validate(
        {"places": {"incidents_per_1k_year": 20000, "appeals_per_1k_year": 10000}}
    )
    r = simulate(tmp_path / "p", 500, 9, START, EXTRACTED, config=cfg)
    week = ((pl.col("t").dt.date() - pl.lit(START)).dt.total_days() // 7).alias("w")
    incidents = (
        pl.read_parquet(
            r.delivery / "incidents.parquet", columns=["occurred_at", "district", "crime_type"]
        )
        .filter(pl.col("crime_type").is_in(["assault", "street_robbery"]))
        .select(pl.col("occurred_at").alias("t"), "district")
    )
    appeals = (
        pl.read_parquet(
            r.delivery / "appeals.parquet", columns=["submitted_at", "district", "category"]
        )
        .filter(pl.col("category").is_in(["violence", "bullying"]))
        .select(pl.col("submitted_at").alias("t"), "district")
        .drop_nulls()
    )
    weeks = pl.DataFrame({"w": np.arange(8, 500)}).join(
        incidents.select("district").unique(), how="cross"
    )
    x = (
        weeks.join(incidents.group_by("district", week).len("i"), on=["district", "w"], how="left")
        .join(appeals.group_by("district", week).len("a"), on=["district", "w"], how="left")
        .fill_null(0)
        .sort("district", "w")
    )

    def corr(shift: int) -> float:
        y = x.with_columns(pl.col("a").shift(shift).over("district").alias("s")).drop_nulls()
        y = y.with_columns(
            (pl.col("i") - pl.col("i").mean().over("district")).alias("i"),
            (pl.col("s") - pl.col("s").mean().over("district")).alias("s"),
        )
        return float(y.select(pl.corr("i", "s")).item())

    lead = corr(3)
    assert lead > 0.15
    assert lead > corr(-3) + 0.1  # appeals three weeks earlier say more than later ones
    assert lead > corr(0)  # and more than this week's


def test_recent_disorder_offences_escalate_into_violence(world: SimulationResult) -> None:
    admin = pl.read_parquet(world.delivery / "admin_offences.parquet").filter(
        pl.col("category").is_in(["public_order", "alcohol", "domestic"])
    )
    offences = pl.read_parquet(world.truth / "offences.parquet").with_row_index("i")
    recent = (
        offences.join(admin.select("person_id", pl.col("offence_date").alias("a")), on="person_id")
        .filter(
            (pl.col("a") < pl.col("offence_date"))
            & (pl.col("a") >= pl.col("offence_date") - pl.duration(days=60))
        )["i"]
        .unique()
    )
    flagged = offences.with_columns(pl.col("i").is_in(recent.implode()).alias("recent"))
    share = flagged.group_by("recent").agg((pl.col("category") == "violent").mean().alias("v"))
    v = dict(zip(share["recent"], share["v"], strict=True))
    assert flagged["recent"].sum() > 100
    assert v[True] > 1.2 * v[False]  # violence is likelier right after disorder offences


def test_offending_peaks_after_release_and_unpaid_debts_mark_risk(
    world: SimulationResult,
) -> None:
    releases = pl.read_parquet(world.delivery / "releases.parquet").filter(
        pl.col("sentence").is_in(["imprisonment", "parole"])
    )
    offences = pl.read_parquet(world.truth / "offences.parquet")
    after = offences.join(releases.select("person_id", "released_at"), on="person_id").with_columns(
        (pl.col("offence_date") - pl.col("released_at")).dt.total_days().alias("d")
    )
    early = after.filter(pl.col("d").is_between(0, 179)).height
    later = after.filter(pl.col("d").is_between(365, 544)).height
    assert early > 1.3 * later
    obligations = pl.read_parquet(world.delivery / "obligations.parquet")
    latent = pl.read_parquet(world.truth / "persons.parquet")
    unpaid = obligations.filter(
        (pl.col("due_at") < date(2024, 12, 31)) & pl.col("paid_at").is_null()
    )["person_id"]
    paid = obligations.filter(pl.col("paid_at") <= pl.col("due_at"))["person_id"]
    risk = latent.select(
        "person_id",
        "log_propensity",
        pl.col("person_id").is_in(unpaid.implode()).alias("unpaid"),
        pl.col("person_id").is_in(paid.implode()).alias("paid"),
    )
    mean_unpaid = risk.filter("unpaid")["log_propensity"].mean()
    mean_paid = risk.filter(pl.col("paid") & ~pl.col("unpaid"))["log_propensity"].mean()
    assert mean_unpaid > mean_paid + 0.2  # type: ignore[operator]
