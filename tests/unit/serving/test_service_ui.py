"""The server-rendered pages: login, officer list and person page, decision, auditor view; the
purpose an officer must choose before anything is read, the status the access log records for
a page, persons the API does not score, and HTML error pages for malformed forms.

Sessions, CSRF and the security headers are in ``test_service_ui_sessions.py``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.db import decisions
from tests.service_helpers import ServiceEnv, settings_for
from tests.ui_helpers import csrf_of, entries, last_seq, login, private_home

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def app_client(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    # a configured page purpose must not count as the officer's choice
    settings = settings_for(private_home(service_env, tmp_path_factory))
    with TestClient(create_app(settings)) as c:
        yield c


def person_with_purpose(c: TestClient, person_id: str, purpose: str = "case_review") -> str:
    page = c.get(f"/ui/person/{person_id}", params={"purpose": purpose})
    assert page.status_code == 200, page.text
    return str(page.text)


def decisions_of(c: TestClient, person_id: str) -> int:
    engine = c.app.state.riskcast.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(decisions.c.person_id == person_id)
        return int(conn.execute(query).scalar_one())


def test_pages_need_a_login(app_client: TestClient) -> None:
    app_client.cookies.clear()
    r = app_client.get("/ui/list", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    form = app_client.get("/login")
    assert "Log in" in form.text
    bad = app_client.post(
        "/login", data={"token": "rc_nope", "csrf": csrf_of(form.text)}, follow_redirects=False
    )
    assert bad.status_code == 401 and "unknown or revoked" in bad.text


def test_officer_list_person_and_decision_then_auditor_view(
    app_client: TestClient, service_env: ServiceEnv
) -> None:
    c = app_client
    login(c, service_env.tokens["olga"])
    listing = c.get("/ui/list", params={"purpose": "supervision"})
    assert listing.status_code == 200, listing.text
    assert "Risk list: AST" in listing.text and "<li>" in listing.text
    assert '<option value="supervision" selected>' in listing.text  # the one chosen
    inside, outside = len(service_env.persons["AST"]), len(service_env.outside["AST"])
    assert f"{inside} persons are inside it and {outside} outside it" in listing.text
    assert not any(f"/ui/person/{pid}?" in listing.text for pid in service_env.outside["AST"])
    pid = re.search(r'href="/ui/person/([^"?]+)\?purpose=supervision"', listing.text)
    assert pid, listing.text[:2000]
    person_id = pid.group(1)

    page = c.get(f"/ui/person/{person_id}", params={"purpose": "case_review"})
    assert page.status_code == 200, page.text
    assert "<svg" in page.text and "<rect" in page.text
    assert "Register facts behind it" in page.text and "Suggested support" in page.text
    token = csrf_of(page.text)

    refused = c.post(
        f"/ui/person/{person_id}/decision",
        data={"csrf": token, "action": "disagreed", "reason": "", "purpose": "case_review"},
    )
    assert refused.status_code == 200 and "needs a reason" in refused.text
    forged = c.post(
        f"/ui/person/{person_id}/decision",
        data={"csrf": "0" * 64, "action": "contacted", "purpose": "case_review"},
    )
    assert forged.status_code == 403
    done = c.post(
        f"/ui/person/{person_id}/decision",
        data={
            "csrf": token,
            "action": "disagreed",
            "reason": "ui test: score ignores recent job",
            "purpose": "case_review",
        },
    )
    assert done.status_code == 200 and "recorded: disagreed" in done.text

    # another region's person reads like one that does not exist (the API's rule)
    other = service_env.persons["SHY"][0]
    elsewhere = c.get(f"/ui/person/{other}", params={"purpose": "case_review"})
    assert elsewhere.status_code == 404 and "register of your regions" in elsewhere.text
    unknown = c.get("/ui/person/no-such-person", params={"purpose": "case_review"})
    assert unknown.status_code == 404 and "register of your regions" in unknown.text
    assert c.get("/ui/audit").status_code == 403

    login(c, service_env.tokens["ada"])
    assert c.get("/ui/list").status_code == 403
    audit = c.get("/ui/audit", params={"person": person_id})
    assert audit.status_code == 200, audit.text
    text = audit.text
    assert "ui test: score ignores recent job" in text and "override" in text
    assert text.count("intact") >= 2  # ledger and access log verified
    assert "olga (officer)" in text and "case_review" in text
    assert f'href="/ui/person/{person_id}' not in text  # auditors get no person pages
    assert "No fairness report found" in text or "Open the report" in text


def test_page_reads_are_in_the_access_log(app_client: TestClient, service_env: ServiceEnv) -> None:
    c = app_client
    login(c, service_env.tokens["olga"])
    person_id = service_env.persons["AST"][3]
    person_with_purpose(c, person_id, "support_referral")
    last = entries(c, actor="olga", person=person_id)[-1]
    assert (last.purpose, last.action, last.status) == ("support_referral", "scores", 200)
    before = last_seq(c)
    bad = c.get(f"/ui/person/{person_id}", params={"purpose": "curiosity"})
    assert bad.status_code == 422 and "not allowed" in bad.text
    assert last_seq(c) == before  # nothing read


def test_nothing_is_read_until_the_officer_chooses_a_purpose(
    app_client: TestClient, service_env: ServiceEnv
) -> None:
    c = app_client
    login(c, service_env.tokens["olga"])
    person_id = service_env.persons["AST"][7]
    before = last_seq(c)
    # the shared home may already hold decisions from other tests: compare, do not assume zero
    decided_before = decisions_of(c, person_id)
    landing = c.get("/ui")  # where the login sends an officer
    assert landing.status_code == 200 and "Choose the purpose" in landing.text
    assert "<table" not in landing.text and "/ui/person/" not in landing.text
    assert 'value="" selected>choose a purpose' in landing.text
    assert not re.search(r'<option value="[^"]+" selected>', landing.text)  # no purpose chosen yet
    person = c.get(f"/ui/person/{person_id}")
    assert person.status_code == 200 and "Choose the purpose" in person.text
    assert "<svg" not in person.text and "probability" not in person.text
    assert 'name="action"' not in person.text
    assert last_seq(c) == before  # no read, no entry

    token = csrf_of(person.text)
    posted = c.post(
        f"/ui/person/{person_id}/decision",
        data={"csrf": token, "action": "contacted"},
    )
    assert posted.status_code == 422 and posted.headers["content-type"].startswith("text/html")
    assert "choose the purpose" in posted.text
    assert last_seq(c) == before and decisions_of(c, person_id) == decided_before

    # chosen once in this session, it is pre-selected (still not read without the choice)
    person_with_purpose(c, person_id, "prevention_planning")
    after = last_seq(c)
    again = c.get("/ui/list")
    assert "<table" not in again.text
    assert '<option value="prevention_planning" selected>' in again.text
    assert last_seq(c) == after
    login(c, service_env.tokens["olga"])  # a new session remembers nothing
    assert 'value="" selected>choose a purpose' in c.get("/ui/list").text


def test_the_access_log_records_the_status_the_page_answered(
    app_client: TestClient, service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = app_client
    login(c, service_env.tokens["olga"])
    unknown = c.get("/ui/person/nobody-here", params={"purpose": "case_review"})
    assert unknown.status_code == 404
    last = entries(c, actor="olga")[-1]
    assert (last.action, last.purpose, last.status) == ("scores", "case_review", 404)

    other = service_env.persons["SHY"][1]  # refused (403, as the API logs it), answered 404
    assert c.get(f"/ui/person/{other}", params={"purpose": "case_review"}).status_code == 404
    refused, answered = entries(c, actor="olga")[-2:]
    assert (refused.persons, refused.status) == ([other], 403)
    assert (answered.persons, answered.status) == ([], 404)

    # an error after the API's function returned: logged with the status answered
    import serving.ui.officer

    def broken(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("database gone"))

    monkeypatch.setattr(serving.ui.officer, "measure_choices", broken)
    person_id = service_env.persons["AST"][9]
    down = c.get(f"/ui/person/{person_id}", params={"purpose": "case_review"})
    assert down.status_code == 503 and down.headers["content-type"].startswith("text/html")
    assert "Error 503" in down.text
    last = entries(c, actor="olga", person=person_id)[-1]
    assert (last.action, last.status) == ("scores", 503)

    monkeypatch.setattr(serving.ui.officer, "measure_choices", lambda *a: 1 / 0)
    crashing = TestClient(c.app, raise_server_exceptions=False, cookies=dict(c.cookies))
    assert crashing.get(f"/ui/person/{person_id}?purpose=case_review").status_code == 500
    last = entries(c, actor="olga", person=person_id)[-1]
    assert (last.action, last.status) == ("scores", 500)


def test_persons_the_api_does_not_score_get_a_notice_and_no_form(
    app_client: TestClient, service_env: ServiceEnv
) -> None:
    c = app_client
    login(c, service_env.tokens["olga"])
    outside = service_env.outside["AST"][0]
    page = c.get(f"/ui/person/{outside}", params={"purpose": "case_review"})
    assert page.status_code == 200, page.text
    assert "Not scored (outside population)" in page.text
    assert "no score to record a decision against" in page.text
    assert "<svg" not in page.text and 'class="tier"' not in page.text
    assert "probability " not in page.text and "/decision" not in page.text
    last = entries(c, actor="olga")[-1]
    assert (last.persons, last.status) == ([outside], 200)  # the page's status

    unknown = c.get("/ui/person/no-such-one", params={"purpose": "case_review"})
    assert unknown.status_code == 404
    assert "Not scored (unknown)" in unknown.text and "/decision" not in unknown.text
    assert entries(c, actor="olga")[-1].status == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/login", b"token=%ff&csrf=x"),  # not UTF-8
        ("/login", b"&".join(b"f%d=1" % i for i in range(60))),  # too many fields
        ("/logout", b"csrf=\xff"),
        ("/ui/person/p1/decision", b"csrf=%fe%ff&purpose=case_review"),
    ],
)
def test_malformed_forms_get_an_html_error_page(
    app_client: TestClient, service_env: ServiceEnv, path: str, body: bytes
) -> None:
    c = app_client
    login(c, service_env.tokens["olga"])
    r = c.post(path, content=body, headers=FORM)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "Error 422" in r.text and "malformed form" in r.text


def test_form_fields_the_form_cannot_send_get_an_html_error_page(
    app_client: TestClient, service_env: ServiceEnv
) -> None:
    c = app_client
    login(c, service_env.tokens["olga"])
    person_id = service_env.persons["AST"][11]
    token = csrf_of(person_with_purpose(c, person_id))
    before = last_seq(c)
    decided_before = decisions_of(c, person_id)  # the shared home may hold other tests' decisions
    for data in (
        {"csrf": token, "action": "hugged", "purpose": "case_review"},
        {"csrf": token, "purpose": "case_review"},  # no action
        {"csrf": token, "action": "contacted", "purpose": "curiosity"},
    ):
        r = c.post(f"/ui/person/{person_id}/decision", data=data)
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html"), r.text
        assert "Error 422" in r.text
    json_body = c.post(f"/ui/person/{person_id}/decision", json={"csrf": token})
    assert json_body.status_code == 415 and json_body.headers["content-type"].startswith(
        "text/html"
    )
    assert decisions_of(c, person_id) == decided_before and last_seq(c) == before


def test_logout_and_other_roles(app_client: TestClient, service_env: ServiceEnv) -> None:
    c = app_client
    login(c, service_env.tokens["dan"])
    assert "No pages for your role" in c.get("/ui").text
    token = csrf_of(c.get("/ui/none").text)
    out = c.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    assert c.get("/ui/list", follow_redirects=False).status_code == 303


def test_list_paging_keeps_the_list_size_and_bad_addresses_get_a_page(
    app_client: TestClient, service_env: ServiceEnv
) -> None:
    c = app_client
    login(c, service_env.tokens["olga"])
    listing = c.get("/ui/list", params={"capacity": 12, "limit": 5, "purpose": "case_review"})
    assert listing.status_code == 200, listing.text
    nxt = re.search(r'href="(/ui/list\?[^"]*offset=5[^"]*)"', listing.text)
    assert nxt, listing.text[-1500:]
    assert "capacity=12&" in nxt.group(1).replace("&amp;", "&")
    bad = c.get("/ui/list", params={"capacity": 0})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert "Error 422" in bad.text and "capacity" in bad.text
    api = c.get("/v1/risk-lists", params={"region": "AST", "capacity": 0, "purpose": "case_review"})
    assert api.status_code in (401, 422) and api.headers["content-type"] == "application/json"


def test_decision_form_names_the_support_measures(
    app_client: TestClient, service_env: ServiceEnv
) -> None:
    c = app_client
    login(c, service_env.tokens["olga"])
    person_id = service_env.persons["AST"][5]
    page = person_with_purpose(c, person_id)
    select = re.search(r'<select name="measure_id">(.*?)</select>', page, re.S)
    assert select, page[-3000:]
    measures = re.findall(r'<option value="([a-z_]+)">([^<]+)</option>', select.group(1))
    assert measures and all(label != value for value, label in measures)
    suggested = [v for v, label in measures if label.endswith("(suggested)")]
    assert [v for v, _ in measures[: len(suggested)]] == suggested  # suggested first
    done = c.post(
        f"/ui/person/{person_id}/decision",
        data={"csrf": csrf_of(page), "action": "referred", "purpose": "case_review",
              "measure_id": measures[0][0]},
    )  # fmt: skip
    name = measures[0][1].removesuffix(" (suggested)")
    assert done.status_code == 200 and f"recorded: referred to {name}" in done.text
    logged = entries(c, actor="olga", person=person_id)[-2:]  # the decision, then the re-read
    assert [(e.action, e.status) for e in logged] == [("decision", 201), ("scores", 200)]
