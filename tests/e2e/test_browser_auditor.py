"""The auditors' page and a kept fairness report in headless Chromium: the override banner is
visible, long ledger reasons are collapsed until opened, the report's table of contents leads
to its sections. Screenshots go to ``$RISKCAST_TEST_ARTIFACTS/browser/`` (default
``tests/artifacts/browser/``): ``auditor-01-override-banner.png``, ``auditor-02-reasons-open.png``,
``auditor-03-fairness-report.png``.

The pages are fetched through the app (logged in as the auditor) and rendered by Chromium
from their HTML; `tests/e2e/test_browser.py` drives the served pages end to end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect, sync_playwright

from serving.app import create_app
from tests.service_helpers import ServiceEnv, service_env, settings_for
from tests.ui_helpers import login, private_home
from tests.unit.serving.test_auditor_pages import WHY, _keep, _override

__all__ = ["service_env"]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def artifacts() -> Path:
    root = os.environ.get("RISKCAST_TEST_ARTIFACTS")
    folder = (Path(root) if root else ROOT / "tests" / "artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def pages(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Debian's Chromium is not installed at {CHROMIUM}", pytrace=False)
    home = private_home(service_env, tmp_path_factory, "browser-auditor")
    _override(home, service_env.model_version)
    _keep(home, service_env.model_version)  # the newest report of the champion
    with TestClient(create_app(settings_for(home))) as c:
        login(c, service_env.tokens["ada"])
        audit = c.get("/ui/audit")
        report = c.get(f"/ui/fairness-report/{service_env.model_version}")
    assert audit.status_code == 200 and report.status_code == 200
    yield {"audit": audit.text, "report": report.text}


def test_auditor_page_and_report_in_chromium(pages: dict[str, str]) -> None:
    out = artifacts()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_content(pages["audit"])
            banner = page.locator("#override-banner")
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("serves by an auditor's override")
            expect(banner).to_contain_text("Cy Auditor (auditor)")
            expect(banner).to_contain_text(WHY.strip()[:40])
            long_reasons = page.locator("details.reasons").first
            expect(long_reasons.locator("li").first).to_be_hidden()
            page.screenshot(path=str(out / "auditor-01-override-banner.png"), full_page=True)
            long_reasons.locator("summary").click()
            expect(long_reasons.locator("li").first).to_be_visible()
            long_reasons.scroll_into_view_if_needed()
            page.screenshot(path=str(out / "auditor-02-reasons-open.png"), full_page=True)

            page.set_content(pages["report"])
            toc = page.locator("nav.toc a")
            assert toc.count() >= 5
            expect(page.locator("p.population")).to_be_visible()
            page.screenshot(path=str(out / "auditor-03-fairness-report.png"), full_page=True)
        finally:
            browser.close()
