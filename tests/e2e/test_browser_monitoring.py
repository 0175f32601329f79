"""Headless Chromium through the auditors' "Monitoring" page of a real `riskcast serve`.

The home holds the check the fixture's materialisation ran (`riskcast monitor`'s hook) and three
simulated quarterly checks (`tests.monitoring_helpers`: drift in region R2, the re-audit rule
firing on the third). The auditor logs in, follows "Monitoring" from the navigation, sees the
four plots drawn as SVG (each point the check's own figure), the breaches and the re-audit flag,
opens a check's HTML report (stating the sha256 of its JSON); the admin sees the stop form. Any
Content Security Policy violation Chromium reports fails the test. Screenshots go to
``docs/screenshots/issue-13/``; the server's log to ``$RISKCAST_TEST_ARTIFACTS/monitoring/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect, sync_playwright

from fairness.monitoring.store import StoredCheck
from riskcast.names import PLACES_MODEL
from tests.monitoring_helpers import keep_checks
from tests.service_helpers import ServiceEnv, service_env
from tests.ui_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    TIMEOUT_MS,
    Browsing,
    Server,
    artifacts,
    private_home,
    riskcast_serve,
)
from tests.unit.fairness.test_monitoring_places import keep_places_checks

__all__ = ["service_env"]

SHOTS = ROOT / "docs" / "screenshots" / "issue-13"


@pytest.fixture(scope="module")
def served(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceEnv, Server, list[StoredCheck], list[StoredCheck]]]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Debian's Chromium is not installed at {CHROMIUM}", pytrace=False)
    home = private_home(service_env, tmp_path_factory, "browser-monitoring")
    checks = keep_checks(home, service_env.model_version)
    places = keep_places_checks(home)  # the places champion's two checks: south doubled in the 2nd
    with riskcast_serve(home, artifacts("monitoring") / "server.log") as server:
        server.wait_ready(180)
        yield service_env, server, checks, places


def test_auditor_reads_the_monitoring_page(
    served: tuple[ServiceEnv, Server, list[StoredCheck], list[StoredCheck]],
) -> None:
    env, server, checks, places = served
    SHOTS.mkdir(parents=True, exist_ok=True)
    browsing = Browsing(server.base, env.tokens, SHOTS)
    last = checks[-1].result
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            page = browsing.watch(context.new_page())
            browsing.log_in(page, "ada")
            expect(page).to_have_url(f"{server.base}/ui/audit")
            page.click("header a:has-text('Monitoring')")
            expect(page).to_have_url(f"{server.base}/ui/monitoring")
            expect(page.locator("h1")).to_have_text("Monitoring")
            page.select_option("select[name=group_column]", "region")
            page.click("#monitoring-choice button")

            # -- four plots drawn as SVG, each with its points; R2's drift above the others
            charts = page.locator("svg.chart")
            expect(charts).to_have_count(4)
            keys = [c.get_attribute("data-plot") for c in charts.all()]
            assert keys == ["input-drift", "auc", "fpr", "composition"], keys
            for chart in charts.all():
                box = chart.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100, box
                assert chart.locator("circle").count() >= 3
            day = last.as_of.isoformat()
            drift = page.locator(f'svg[data-plot="input-drift"] circle[data-as-of="{day}"]')
            psi = {
                c.get_attribute("data-group"): c.get_attribute("data-value") for c in drift.all()
            }
            expected = {
                d.group: f"{d.psi:.4f}"
                for d in last.input_drift
                if d.group_column == "region" and d.psi is not None
            }
            assert {g: psi[g] for g in expected} == expected
            assert float(expected["R2"]) > max(float(v) for g, v in expected.items() if g != "R2")
            expect(page.locator("svg.chart polygon.interval").first).to_be_visible()

            # -- the newest check's breaches and the re-audit flag
            expect(page.locator("#reaudit")).to_contain_text("Re-audit required")
            expect(page.locator("#breaches tbody tr")).to_have_count(len(last.breaches))
            expect(page.locator("#alerts")).to_contain_text("re-audit required")
            expect(page.locator("#stop-form")).to_have_count(0)
            browsing.shot(page, "monitoring-01-auditor")

            # -- the HTML report of the newest check states the sha256 of its JSON
            json_href = page.locator(f'a[href$="/check/{checks[-1].id}/report.json"]')
            href = json_href.get_attribute("href")
            assert href is not None
            page.click(f'a[href$="/check/{checks[-1].id}/report.html"]')
            expect(page.locator("h1")).to_contain_text("Monitoring report")
            shown = page.locator("#sha256").inner_text()
            reply = context.request.get(server.base + href)  # the session's cookie
            assert reply.status == 200 and reply.headers["x-report-sha256"] == shown
            raw = reply.body()
            assert hashlib.sha256(raw).hexdigest() == shown
            assert json.loads(raw)["check_id"] == checks[-1].id
            browsing.shot(page, "monitoring-02-report")

            # -- the places champion: realised vs forecast, ratios by district, the drift table
            page.goto(f"{server.base}/ui/monitoring")
            page.select_option("select[name=model]", PLACES_MODEL)
            page.click("#monitoring-choice button")
            page.select_option("select[name=group_column]", "district")
            page.click("#monitoring-choice button")
            newest = places[-1].result
            assert newest.places is not None and newest.places.realised is not None
            section = page.locator("#places")
            expect(section).to_be_visible()
            expect(page.locator("#places-summary")).to_contain_text("Observed / forecast")
            weekly = page.locator('svg[data-plot="places-realised"] circle[data-group="counted"]')
            counted = {
                c.get_attribute("data-as-of"): c.get_attribute("data-value") for c in weekly.all()
            }
            assert counted == {
                w.week_start.isoformat(): f"{float(w.observed):.4f}"
                for w in newest.places.realised.weekly
            }
            for key in ("places-ratio", "places-pai"):
                chart = page.locator(f'svg[data-plot="{key}"]')
                box = chart.bounding_box()
                assert box is not None and box["width"] > 300, (key, box)
            south = page.locator("#places-ratios tbody tr", has_text="district=south")
            expect(south).to_contain_text("alert")
            north = page.locator("#places-ratios tbody tr", has_text="district=north")
            expect(north).to_contain_text("ok")
            first = page.locator("#places-drift tbody tr").first
            expect(first).to_contain_text("count_4w")
            expect(first).to_contain_text("alert")
            expect(page.locator("#breaches")).to_contain_text("count_ratio")
            section.scroll_into_view_if_needed()
            browsing.shot(page, "monitoring-04-places")
            context.close()

            # -- the admin sees the stop switch's form on the page
            admin = browser.new_context(viewport={"width": 1280, "height": 900})
            admin.set_default_timeout(TIMEOUT_MS)
            page = browsing.watch(admin.new_page())
            browsing.log_in(page, "root")
            page.goto(f"{server.base}/ui/monitoring")
            expect(page.locator("#stop-form button")).to_have_text("Stop scoring")
            page.locator("#stop").scroll_into_view_if_needed()
            browsing.shot(page, "monitoring-03-admin-stop-switch")
            admin.close()
        except Exception:
            browsing.shoot_failure()
            raise
        finally:
            browser.close()
    assert not browsing.failures, browsing.failures
