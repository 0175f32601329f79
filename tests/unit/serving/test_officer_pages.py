"""What officers can act on (issue 11, items 1-5 and the lists' part of 11): support only for
needs present and material, a probability that says what it means, the latest decision on the
list, bounded list sizes, and a 503 (not an empty list) when nothing is materialised."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.explain import sentence, suggest_support
from serving.interventions import load_interventions
from serving.services.exports import count_large_exports
from serving.services.meaning import event_words, horizon_words
from serving.ui.render import strength, when
from tests.service_helpers import ServiceEnv, settings_for
from tests.ui_helpers import csrf_of, login, private_home
from training.model import FeatureInfo

PURPOSE = "case_review"
OFFICER_PAGE_BANS = ("log-odds", "Log-odds", "raw score", "Base value", "very_high", "at T")


# ---- support: present and material needs only, at most three, ranked, citing the fact ------
@dataclass
class _Model:
    features: list[FeatureInfo]


FEATURES = [
    FeatureInfo("obligations_overdue_amount", "financial_discipline", "dynamic", 1,
                "total amount of obligations overdue at T (partial payments are not dated)"),
    FeatureInfo("obligations_oldest_overdue_days", "financial_discipline", "dynamic", 1,
                "days since the due date of the oldest obligation overdue at T; null if none"),
    FeatureInfo("under_supervision_at", "supervision_release", "dynamic", 0,
                "1 if a release's supervision period covers T"),
    FeatureInfo("status_homeless_at", "employment_social", "dynamic", 1,
                "1 if a homelessness spell covers T"),
    FeatureInfo("cases_drugs_1825d", "substance_related", "dynamic", 1,
                "drug offences in the last five years"),
    FeatureInfo("admin_domestic_365d", "violence_escalation", "dynamic", 1,
                "domestic administrative offences in the last 365 days"),
    FeatureInfo("status_unemployed_at", "employment_social", "dynamic", 1,
                "1 if an unemployment spell covers T"),
    FeatureInfo("offences_total", "criminal_history", "static", 1, "offences, all history"),
]  # fmt: skip


def support_for(values: list[float], contrib: list[float]) -> list[dict[str, Any]]:
    catalogue = load_interventions()
    found = suggest_support(
        _Model(FEATURES),  # type: ignore[arg-type]
        np.array(values, dtype=np.float64),
        np.array([*contrib, -1.0], dtype=np.float64),
        catalogue,
        as_of="2025-06-30",
        currency="KZT",
    )
    return [m.model_dump() for m in found]


def test_no_measure_for_a_missing_zero_or_no_value_nor_below_the_threshold() -> None:
    nan = float("nan")
    #          amount, oldest, supervised, homeless, drugs, domestic, unemployed, static
    values = [0.0, nan, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0]
    contrib = [0.30, 0.20, 0.20, 0.20, 0.20, 0.20, 0.20, 1.5]
    assert support_for(values, contrib) == []  # needs raise the score, none is present
    present = [1000.0, 12.0, 1.0, 1.0, 2.0, 1.0, 1.0, 9.0]
    small = [0.049, 0.01, 0.007, 0.001, 0.02, 0.03, 0.04, 1.5]
    assert support_for(present, small) == []  # present, none material (< 0.05)


def test_at_most_three_measures_ranked_by_contribution_citing_the_facts() -> None:
    values = [1_429_649.76, 2431.0, 1.0, 1.0, 2.0, 1.0, 1.0, 9.0]
    contrib = [0.40, 0.30, 0.06, 0.50, 0.08, 0.07, 0.10, 1.5]
    found = support_for(values, contrib)
    assert len(found) == 3
    # employment support lists the employment_social domain: homeless and unemployed (0.60)
    assert [m["id"] for m in found] == ["debt_counselling", "employment_support",
                                        "housing_support"]  # fmt: skip
    scores = [m["contribution"] for m in found]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(0.70)
    debt = found[0]
    assert debt["facts"] == [
        "Total amount of obligations overdue on 2025-06-30 (partial payments are not dated): "
        "1,429,649.76 KZT",
        "Days since the due date of the oldest obligation overdue on 2025-06-30: 2431",
    ]
    assert all("_" not in f for m in found for f in m["facts"])  # sentences, not feature ids


def test_sentences_say_the_date_and_the_currency() -> None:
    flag = FEATURES[2]
    assert sentence(flag, 1.0) == "Yes: a release's supervision period covers T"  # unchanged
    assert sentence(flag, 1.0, "2025-06-30") == (
        "Yes: a release's supervision period covers 2025-06-30"
    )
    assert sentence(FEATURES[0], 12.5, "2025-06-30 00:00:00", "KZT").endswith(": 12.50 KZT")
    assert " T" not in sentence(FEATURES[1], None, "2025-06-30")


def test_words_for_officers() -> None:
    assert horizon_words(365) == "12 months" and horizon_words(90) == "3 months"
    assert event_words("any_new_case_12m", 365) == (
        "at least one new criminal case registered within 12 months"
    )
    assert "within 12 months" in event_words("no_such_label", 365)
    assert strength(0.8) == "raises strongly" and strength(-0.01) == "lowers slightly"
    assert when("2025-06-30T14:03:07.123456+00:00") == "2025-06-30 14:03 UTC"


# ---- the pages -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def officer_client(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    home = private_home(service_env, tmp_path_factory, "officer")
    with TestClient(create_app(settings_for(home, large_export_persons=10))) as c:
        keeper = c.app.state.riskcast.book_keeper  # type: ignore[attr-defined]
        assert keeper is not None and keeper.wait(timeout=120) is not None, keeper.status
        yield c


def visible(html: str) -> str:
    """The page's text as shown (tags, attribute values and the style sheet left out)."""
    html = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_list_says_what_the_probability_means(
    officer_client: TestClient, service_env: ServiceEnv
) -> None:
    c = officer_client
    login(c, service_env.tokens["olga"])
    page = c.get("/ui/list", params={"purpose": PURPOSE, "capacity": 20})
    assert page.status_code == 200, page.text
    text = visible(page.text)
    assert "at least one new criminal case registered within 12 months" in text
    assert "base rate" in text and re.search(r"it is \d+\.\d% across the \d+ persons", text)
    assert "very high" in text and "or more" in text  # the legend: top tier and its band
    assert re.search(r"high \d+\.\d% to below \d+\.\d%", text)
    for banned in OFFICER_PAGE_BANS:
        assert banned not in text, banned
    assert not re.search(r"\bT\b", text)
    api = c.get("/v1/risk-lists", params={"region": "AST", "purpose": PURPOSE, "limit": 5})
    assert api.status_code in (401, 403)  # the API needs a bearer token, not the page cookie


def test_person_page_in_plain_language(officer_client: TestClient, service_env: ServiceEnv) -> None:
    c = officer_client
    login(c, service_env.tokens["olga"])
    for person_id in service_env.persons["AST"][:15]:
        page = c.get(f"/ui/person/{person_id}", params={"purpose": PURPOSE})
        assert page.status_code == 200, page.text
        text = visible(page.text)
        assert "new criminal case registered within 12 months" in text
        assert "base rate is" in text and "Tier " in text
        for banned in OFFICER_PAGE_BANS:
            assert banned not in text, (banned, person_id)
        assert not re.search(r"\bT\b", text), person_id
        assert not re.search(r"[+-]\d\.\d{3}\b", text), person_id  # no contributions as numbers
        support = text.split("Suggested support", 1)[1].split("Record a decision", 1)[0]
        assert support.count("Because:") <= 3
        assert "Not recorded" not in support and "No:" not in support
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", support), support  # no feature ids


def test_list_shows_the_latest_decision_and_filters_persons_without_one(
    officer_client: TestClient, service_env: ServiceEnv
) -> None:
    c = officer_client
    login(c, service_env.tokens["olga"])
    listing = c.get("/ui/list", params={"purpose": PURPOSE, "capacity": 10})
    first = re.search(r'href="/ui/person/([^"?]+)\?', listing.text)
    assert first
    person_id = first.group(1)
    page = c.get(f"/ui/person/{person_id}", params={"purpose": PURPOSE})
    done = c.post(
        f"/ui/person/{person_id}/decision",
        data={"csrf": csrf_of(page.text), "action": "referred", "purpose": PURPOSE,
              "measure_id": "debt_counselling"},
    )  # fmt: skip
    assert done.status_code == 200
    assert "recorded: referred to Debt counselling and payment plan" in done.text
    assert "debt_counselling" not in visible(done.text)  # the measure's name, not its id
    again = c.get("/ui/list", params={"purpose": PURPOSE, "capacity": 10})
    row = re.search(rf"/ui/person/{person_id}\?.*?</tr>", again.text, re.S)
    assert row, again.text[-3000:]
    shown = " ".join(visible(row.group(0)).split())
    assert "referred to Debt counselling and payment plan" in shown and "by olga" in shown
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", shown)
    assert "no decision yet" in visible(again.text)  # the others
    undecided = c.get("/ui/list", params={"purpose": PURPOSE, "capacity": 10, "undecided": True})
    assert undecided.status_code == 200
    assert f"/ui/person/{person_id}?" not in undecided.text
    assert "(no decision yet)" in visible(undecided.text)
    ids = re.findall(r'href="/ui/person/([^"?]+)\?', undecided.text)
    assert len(ids) == 10  # the list is filled up from below the cut


def test_lists_above_the_role_limit_are_refused_naming_it(
    officer_client: TestClient, service_env: ServiceEnv
) -> None:
    c = officer_client
    login(c, service_env.tokens["olga"])
    page = c.get("/ui/list", params={"purpose": PURPOSE, "capacity": 100_000})
    assert page.status_code == 422 and "limit of 500" in page.text and "officer" in page.text
    c.cookies.clear()
    token = {"Authorization": f"Bearer {service_env.tokens['olga']}"}
    query = {"region": "AST", "purpose": PURPOSE}
    api = c.get("/v1/risk-lists", params={**query, "capacity": 501}, headers=token)
    assert api.status_code == 422, api.text
    assert "above the limit of 500 for the role officer" in api.text
    assert "RISKCAST_MAX_LIST_CAPACITY" in api.text
    paged = c.get("/v1/risk-lists", params={**query, "limit": 201}, headers=token)
    assert paged.status_code == 422 and "limit of 200" in paged.text
    fine = c.get("/v1/risk-lists", params={**query, "capacity": 500, "limit": 200}, headers=token)
    assert fine.status_code == 200
    body = fine.json()
    assert body["meaning"]["horizon_days"] == 365 and body["meaning"]["base_rate"] > 0
    assert "latest_decision" in body["rows"][0]
    # a read naming more than `large_export_persons` (10 here) persons is counted for auditors
    log = c.app.state.riskcast.access_log  # type: ignore[attr-defined]
    counted = count_large_exports(log, 10)
    assert counted.count >= 1 and counted.by_actor.get("olga", 0) >= 1
    assert "olga" in counted.describe() and counted.persons >= 200
    assert count_large_exports(log, 10_000).count == 0


def test_lists_and_scores_from_an_empty_online_store_answer_503(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = private_home(service_env, tmp_path_factory, "empty")
    with TestClient(create_app(settings_for(home, scorebook=False))) as c:
        state = c.app.state.riskcast  # type: ignore[attr-defined]
        state.store.current = lambda: None  # nothing materialised
        token = {"Authorization": f"Bearer {service_env.tokens['olga']}"}
        api = c.get("/v1/risk-lists", params={"region": "AST", "purpose": PURPOSE}, headers=token)
        assert api.status_code == 503, api.text
        assert "no materialised feature vectors" in api.json()["detail"]
        scores = c.post(
            "/v1/scores",
            json={"ids": service_env.persons["AST"][:2], "purpose": PURPOSE},
            headers=token,
        )
        assert scores.status_code == 503, scores.text  # not "unknown" for everyone
        assert "no materialised feature vectors" in scores.json()["detail"]
        login(c, service_env.tokens["olga"])
        page = c.get("/ui/list", params={"purpose": PURPOSE})
        assert page.status_code == 503 and "Nobody in this list" not in page.text
        assert "no materialised feature vectors" in page.text
