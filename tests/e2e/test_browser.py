"""Headless Chromium through the pages of a real `riskcast serve` process.

An officer logs in with a token, is asked for the purpose of the read before any list is
shown, opens the unit's risk list and a person, records a referral and a disagreement
(override), and logs out, after which the old session cookie no longer opens a page; an auditor
then finds both decisions, the officer's reads of that person (purpose, model version) in the
access log, the verified ledger and the fairness report. Chromium enforces the pages' Content
Security Policy: any violation it reports fails the test. Every step leaves a screenshot in
``$RISKCAST_TEST_ARTIFACTS/browser/`` (default ``tests/artifacts/browser/``) beside the
server's log.

The browser is Debian's ``/usr/bin/chromium`` (never one Playwright downloads); `.ci/run`
installs it, and the test fails, never skips, when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.service_helpers import ServiceEnv, build_service_env
from tests.ui_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    Browsing,
    Server,
    artifacts,
    cells,
    riskcast_serve,
)

if TYPE_CHECKING:
    from fairness.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
REFERRAL_REASON = "browser e2e: agreed at the case review"
OVERRIDE_REASON = "browser e2e: the score ignores the job started last month"


def artifacts_dir() -> Path:
    return artifacts("browser")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Debian's Chromium is not installed at {CHROMIUM}; install it with "
            "`apt-get install -y --no-install-recommends chromium chromium-driver` (as root; "
            "`.ci/run` does this). Playwright's own browser downloads are not used.",
            pytrace=False,
        )
    return CHROMIUM


@dataclass
class Served:
    env: ServiceEnv
    server: Server
    report_outcome: str


@pytest.fixture(scope="module")
def served(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`riskcast serve` on a free port over the tiny promoted home (its output goes to the
    artifacts folder), plus the champion's fairness report and its ledger entry from
    `riskcast audit VERSION --by ada --role auditor`; the pages only read both, so the audit
    runs while the server starts."""
    from fairness.ledger import open_ledger
    from riskcast.settings import Settings as StoreSettings

    root = tmp_path_factory.mktemp("browser")
    env = build_service_env(root)
    ledger = open_ledger(StoreSettings(home=env.home, database_url=None))  # tables exist now
    with riskcast_serve(env.home, artifacts_dir() / "server.log") as server:
        try:
            outcome = _audit_entry(env, ledger)
        finally:
            ledger.dispose()
        yield Served(env, server, outcome)


def _audit_entry(env: ServiceEnv, ledger: Ledger) -> str:
    """`riskcast audit` of the champion (report under ``reports/``, an `audit` ledger entry
    by ada, the auditor); its outcome as the ledger records it."""
    from typer.testing import CliRunner

    from riskcast.settings import get_settings
    from serving.cli import build_app

    args = ["audit", env.model_version, "--by", "ada", "--role", "auditor"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RISKCAST_HOME", str(env.home))
        for name in ("MLFLOW_TRACKING_URI", "RISKCAST_DATABASE_URL"):
            mp.delenv(name, raising=False)
        get_settings.cache_clear()
        try:
            done = CliRunner().invoke(build_app(), args)
        finally:
            get_settings.cache_clear()
    assert done.exit_code == 0, done.output + repr(done.exception)
    report = env.home / "reports" / f"recidivism-risk-v{env.model_version}"
    assert (report / "fairness-report.html").is_file(), done.output
    entries = ledger.entries()
    assert [(e.kind, e.version, e.actor) for e in entries] == [
        ("audit", env.model_version, "ada")
    ], entries
    return entries[-1].decision


def test_officer_decision_reaches_the_auditor(served: Served, chromium: Path) -> None:
    env, server = served.env, served.server.base
    version = env.model_version
    shots = artifacts_dir()
    for old in shots.glob("*.png"):
        old.unlink()
    browsing = Browsing(server, env.tokens, shots)
    shot, watch, log_in = browsing.shot, browsing.watch, browsing.log_in
    failures = browsing.failures

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            served.server.wait_ready()  # it has been starting since the report was written
            officer = browser.new_context(viewport={"width": 1280, "height": 900})
            officer.set_default_timeout(TIMEOUT_MS)
            page = watch(officer.new_page())

            # -- the officer logs in: pages need the login; a wrong token is refused
            page.goto(f"{server}/ui/list")
            expect(page).to_have_url(f"{server}/login")
            page.fill("input[name=token]", "rc_not-a-token")
            page.click("button:has-text('Log in')")
            expect(page.locator("p.error")).to_contain_text("unknown or revoked token")
            shot(page, "01-login-refused")
            log_in(page, "olga")
            expect(page).to_have_url(f"{server}/ui/list")
            expect(page.locator("h1")).to_have_text("Risk list: AST")
            expect(page.locator("header .who")).to_contain_text("olga (officer, AST)")

            # -- nothing is read before the officer chooses a purpose (none is pre-selected)
            expect(page.locator("p.choose")).to_contain_text("Choose the purpose")
            expect(page.locator("main table")).to_have_count(0)
            expect(page.locator("select[name=purpose]")).to_have_value("")
            page.click("button:has-text('Show')")  # the browser refuses: a purpose is required
            expect(page).to_have_url(f"{server}/ui/list")
            shot(page, "02-choose-purpose")

            # -- the unit's risk list, read for a chosen purpose, with tiers and reasons
            page.select_option("select[name=purpose]", "support_referral")
            page.fill("input[name=capacity]", "10")
            page.click("button:has-text('Show')")
            expect(page.locator("main p.muted").first).to_contain_text("10 persons in the list")
            expect(page.locator("main p.muted").first).to_contain_text(f"Model version {version}")
            expect(page.locator("main p.muted").first).to_contain_text(
                "read logged with purpose support_referral"
            )
            tiers = {
                t for t in page.locator("select[name=tier] option").all_inner_texts() if t != "all"
            }
            assert tiers >= {"low", "medium", "high"}, tiers
            rows = page.locator("main table tbody tr")
            assert rows.count() == 10
            for row in rows.all()[:10]:
                assert row.locator("span.tier").inner_text() in tiers
                assert row.locator("li").count() >= 1  # top reasons
            first = rows.first
            person_id = first.locator("td a").inner_text().strip()
            tier = first.locator("span.tier").inner_text()
            assert person_id in env.persons["AST"], person_id
            meaning = page.locator("div.meaning")
            expect(meaning).to_contain_text("new criminal case registered within 12 months")
            expect(meaning).to_contain_text("base rate")
            expect(meaning.locator("ul.legend li")).to_have_count(len(tiers))
            expect(rows.first.locator("td").last).to_contain_text("no decision yet")
            shot(page, "02-risk-list")
            expect(page.locator("select[name=purpose]")).to_have_value("support_referral")
            list_url = page.url

            # -- the person: explanation chart, register facts, support, decision form
            first.locator("td a").click()
            expect(page).to_have_url(f"{server}/ui/person/{person_id}?purpose=support_referral")
            expect(page.locator("h1")).to_have_text(f"Person {person_id}")
            expect(page.locator("main span.tier").first).to_have_text(tier)
            chart = page.locator("svg[aria-label='contributions by domain']")
            assert chart.locator("rect").count() >= 3
            assert "criminal history" in chart.locator("text").all_text_contents()
            for heading in ("Why: contributions by domain", "Register facts behind it",
                            "Suggested support", "Record a decision"):  # fmt: skip
                expect(page.locator("h2", has_text=heading)).to_be_visible()
            for heading in ("Top reasons", "Static history", "Dynamic needs"):
                expect(page.locator("h3", has_text=heading)).to_be_visible()
            support = page.locator("section", has=page.locator("h2", has_text="Suggested support"))
            assert support.locator("li").count() >= 1
            expect(page.locator("form.decision select[name=purpose]")).to_have_value(
                "support_referral"
            )
            body = page.locator("main").inner_text()
            for banned in ("log-odds", "Log-odds", "raw score", "Base value", " at T"):
                assert banned not in body, banned
            expect(page.locator("div.meaning")).to_contain_text("base rate is")
            assert support.locator("ol.support > li").count() <= 3
            shot(page, "03-person")
            person_url = page.url

            # -- at phone width (390 px) the list and the person page do not scroll sideways
            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, storage_state=officer.storage_state()
            )
            phone.set_default_timeout(TIMEOUT_MS)
            small = watch(phone.new_page())
            for url, name in ((list_url, "02b-risk-list-phone"), (person_url, "03b-person-phone")):
                small.goto(url)
                expect(small.locator("h1")).to_be_visible()
                widths = small.evaluate(
                    "() => [document.documentElement.scrollWidth,"
                    " document.documentElement.clientWidth]"
                )
                assert widths[0] <= widths[1], (name, widths)
                shot(small, name)
            small.goto(list_url)
            table = small.locator("table.list")
            box = table.bounding_box()
            assert box is not None and box["width"] <= 390, box
            phone.close()

            # -- a referral to a named support measure, suggested for this person if any
            options = page.locator("select[name=measure_id] option")
            labels = options.all_inner_texts()
            pick = next((i for i, t in enumerate(labels) if "(suggested)" in t), 1)
            measure = options.nth(pick).get_attribute("value")
            measure_name = labels[pick].replace("(suggested)", "").strip()
            assert measure and measure_name
            if "(suggested)" in labels[pick]:  # the form names what the page suggests
                expect(support).to_contain_text(measure_name)
            page.select_option("select[name=action]", "referred")
            page.select_option("select[name=measure_id]", measure)
            page.fill("textarea[name=reason]", REFERRAL_REASON)
            page.click("button:has-text('Record decision')")
            expect(page.locator("p.notice")).to_contain_text(
                f"recorded: referred to {measure_name}"
            )
            earlier = page.locator("h3:has-text('Earlier decisions') + div table tbody tr")
            expect(earlier).to_have_count(1)
            assert cells(earlier.first)[1:] == ["olga", "referred", measure_name,
                                                 REFERRAL_REASON]  # fmt: skip
            assert cells(earlier.first)[0].endswith(" UTC"), cells(earlier.first)
            shot(page, "04-referral-recorded")

            # -- disagreeing with the score needs a reason; with one it is an override
            page.select_option("select[name=action]", "disagreed")
            page.click("button:has-text('Record decision')")
            expect(page.locator("p.error")).to_contain_text("needs a reason")
            expect(earlier).to_have_count(1)
            shot(page, "05-override-needs-a-reason")
            page.select_option("select[name=action]", "disagreed")
            page.fill("textarea[name=reason]", OVERRIDE_REASON)
            page.click("button:has-text('Record decision')")
            expect(page.locator("p.notice")).to_contain_text("recorded: disagreed")
            expect(earlier).to_have_count(2)
            assert cells(earlier.first)[1:] == ["olga", "disagreed (override)", "",
                                                 OVERRIDE_REASON]  # fmt: skip
            shot(page, "06-override-recorded")

            # -- officers get no auditor pages; logging out ends the session
            forbidden = page.goto(f"{server}/ui/audit")
            assert forbidden is not None and forbidden.status == 403
            expect(page.locator("h1")).to_have_text("Error 403")
            expect(page.locator("p.error")).to_contain_text("you are officer")
            shot(page, "07-officer-forbidden")
            session = [c for c in officer.cookies() if c["name"] == "riskcast_session"]
            assert len(session) == 1 and session[0]["value"] != env.tokens["olga"], session
            assert session[0]["httpOnly"] and session[0]["sameSite"] == "Strict", session
            page.goto(f"{server}/ui/list")
            page.click("button:has-text('Log out')")
            expect(page).to_have_url(f"{server}/login")
            page.goto(f"{server}/ui/person/{person_id}")
            expect(page).to_have_url(f"{server}/login")
            officer.close()

            # -- the old session cookie, replayed in another browser, opens nothing any more
            replay = browser.new_context()
            replay.set_default_timeout(TIMEOUT_MS)
            replay.add_cookies([{"name": "riskcast_session", "value": session[0]["value"],
                                 "url": server}])  # fmt: skip
            page = watch(replay.new_page())
            page.goto(f"{server}/ui/person/{person_id}?purpose=support_referral")
            expect(page).to_have_url(f"{server}/login")
            expect(page.locator("h1")).to_have_text("Log in")
            shot(page, "07b-old-session-refused")
            replay.close()

            # -- the auditor, in a fresh browser context
            auditor = browser.new_context(viewport={"width": 1280, "height": 900})
            auditor.set_default_timeout(TIMEOUT_MS)
            page = watch(auditor.new_page())
            log_in(page, "ada")
            expect(page).to_have_url(f"{server}/ui/audit")
            expect(page.locator("h1")).to_have_text("Audit")
            champion = page.locator("section", has=page.locator("h2", has_text="Champion"))
            expect(champion).to_contain_text(f"recidivism-risk version {version}")
            expect(champion).to_contain_text(f"decision {served.report_outcome}")

            per_unit = page.locator("h2:has-text('Overrides and decisions') + table tbody tr")
            units = [cells(r) for r in per_unit.all()]
            ast = [u for u in units if u[0] == "AST"]
            assert len(ast) == 1, units
            assert ast[0][2:4] == ["2", "1"], ast  # two decisions, one override
            assert "referred: 1" in ast[0][4] and "disagreed: 1" in ast[0][4], ast

            latest_rows = page.locator("h3:has-text('Latest decisions') + table tbody tr")
            latest = [cells(r) for r in latest_rows.all()]
            mine = [d for d in latest if d[3] == person_id]
            assert len(mine) == 2, latest
            override, referral = mine  # newest first
            assert override[2] == "olga" and override[4] == "disagreed override", override
            assert override[6] == OVERRIDE_REASON, override
            assert override[7] in (tier, tier.replace(" ", "_")), override  # words on officer pages
            assert referral[4] == "referred" and referral[5] == measure, referral
            assert referral[6] == REFERRAL_REASON, referral

            ledger = page.locator("section", has=page.locator("h2", has_text="Promotion ledger"))
            expect(ledger).to_contain_text("Chain: intact: 1 entries")
            entries = [cells(r) for r in ledger.locator("tbody tr").all()]
            assert entries[0][2:6] == ["audit", version, served.report_outcome,
                                       "ada (auditor)"], entries  # fmt: skip
            access = page.locator("section", has=page.locator("h2", has_text="Access log"))
            expect(access.locator("p").first).to_contain_text("Chain: intact")
            shot(page, "08-audit")

            # -- the access log, filtered to the officer's reads of this person
            page.fill("input[name=actor]", "olga")
            page.fill("input[name=person]", person_id)
            page.click("button:has-text('Filter')")
            expect(page).to_have_url(
                f"{server}/ui/audit?actor=olga&person={person_id}&since=&limit=50"
            )
            logged = [cells(r) for r in access.locator("tbody tr").all()]
            assert logged and all(e[2] == "olga (officer)" for e in logged), logged
            assert all(person_id in e[5] for e in logged), logged
            assert all(e[7] == version for e in logged), logged  # the model version
            by_action: dict[str, list[list[str]]] = {}
            for e in logged:
                by_action.setdefault(e[4], []).append(e)
            assert set(by_action) == {"risk-list", "scores", "decision"}, logged
            # only the purpose the officer chose: the landing page read nothing
            assert {e[3] for e in by_action["risk-list"]} == {"support_referral"}, logged
            reads = by_action["scores"] + by_action["decision"]
            assert all(e[3] == "support_referral" for e in reads), logged
            assert [e[8] for e in by_action["decision"]] == ["201", "201"], logged
            assert any('"referred"' in e[6] for e in by_action["decision"]), logged
            assert any('"disagreed"' in e[6] for e in by_action["decision"]), logged
            assert len(by_action["scores"]) >= 2 and all(e[8] == "200" for e in by_action["scores"])
            expect(access.locator("p").first).to_contain_text("Chain: intact")
            shot(page, "09-access-log")

            # -- the champion's fairness report
            page.click("a:has-text('Open the report')")
            expect(page).to_have_url(f"{server}/ui/fairness-report/{version}")
            expect(page.locator("h1")).to_contain_text("Fairness audit")
            expect(page.locator("body")).to_contain_text(f"Decision: {served.report_outcome}")
            expect(page.locator("h2", has_text="Proxy check")).to_be_visible()
            shot(page, "10-fairness-report")

            # -- auditors get no officer pages
            forbidden = page.goto(f"{server}/ui/list")
            assert forbidden is not None and forbidden.status == 403
            expect(page.locator("p.error")).to_contain_text("you are auditor")
            shot(page, "11-auditor-forbidden-list")
            auditor.close()
        except Exception:
            browsing.shoot_failure()  # the page the test stopped on
            raise
        finally:
            browser.close()
    assert not failures, failures
    assert len(list(shots.glob("*.png"))) == 15
