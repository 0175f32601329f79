"""Headless Chromium through the officers' hotspot map (`/ui/map`) of a real `riskcast serve`.

An officer logs in, opens the map of the unit, is asked for the purpose before anything is read,
then sees every cell of the unit as an SVG hexagon coloured by its expected count (darker =
more), the top cells with their reasons, and switches the forecast week with the selector. At
phone width (390 px) the page does not scroll sideways. An officer of another region gets 403
from the page and from `GET /v1/hotspots`, and the auditor finds the map reads in the access log
with their purpose and the model version, and the refused one.

The forecast is the seeded stand-in `tests.unit.serving.test_hotspots_data.synthetic_forecast`
stored in the home's hotspot store (the same store `riskcast places materialize` writes), so
the expected counts the page must show are known here. Screenshots go to
``$RISKCAST_TEST_ARTIFACTS/map/`` (default ``tests/artifacts/map/``) beside the server's log;
the browser is Debian's ``/usr/bin/chromium`` and the test fails, never skips, without it.
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.service_helpers import ServiceEnv, build_service_env
from tests.ui_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    Browsing,
    artifacts,
    cells,
    riskcast_serve,
    wait_ok,
)
from tests.unit.serving.test_hotspots_data import synthetic_forecast

ROOT = Path(__file__).resolve().parents[2]
PURPOSE = "prevention_planning"
VERSION = "5"  # the stand-in forecast's model version, as the page and the log must show it
REGION, OTHER = "AST", "SHY"  # olga's region; oleg's


def artifacts_dir() -> Path:
    return artifacts("map")


@dataclass
class Served:
    env: ServiceEnv
    base: str
    forecast: pl.DataFrame
    process: subprocess.Popen[str]
    log: Path
    started: float


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`riskcast serve` on a free port over the tiny promoted home, with the stand-in forecast
    materialized into its hotspot store."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Debian's Chromium is not installed at {CHROMIUM}; install it with "
            "`apt-get install -y --no-install-recommends chromium` (as root; `.ci/run` does "
            "this). Playwright's own browser downloads are not used.",
            pytrace=False,
        )
    from serving.places.cli import store_forecast

    env = build_service_env(tmp_path_factory.mktemp("browser-map"))
    forecast = synthetic_forecast(11, regions=(REGION, OTHER), model_version=VERSION)
    store_forecast(forecast, f"sqlite:///{(env.home / 'riskcast.sqlite').resolve()}")
    with riskcast_serve(env.home, artifacts_dir() / "server.log") as server:
        for path in ("/healthz", "/readyz"):
            wait_ok(server.base + path, server.process, server.log, server.started + 180)
        yield Served(env, server.base, forecast, server.process, server.log, server.started)


def week_of(forecast: pl.DataFrame, region: str, horizon: int) -> pl.DataFrame:
    """The region's cells in the week of ``horizon``, highest expected count first."""
    return forecast.filter((pl.col("region") == region) & (pl.col("horizon") == horizon)).sort(
        ["expected_count", "cell_id"], descending=[True, False]
    )


def api_status(base: str, token: str, region: str) -> int:
    request = urllib.request.Request(
        f"{base}/v1/hotspots?region={region}&purpose={PURPOSE}",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_officer_reads_the_hotspot_map(served: Served) -> None:
    env, server, forecast = served.env, served.base, served.forecast
    shots = artifacts_dir()
    for old in shots.glob("*.png"):
        old.unlink()
    browsing = Browsing(server, env.tokens, shots)
    shot, watch, log_in = browsing.shot, browsing.watch, browsing.log_in
    failures = browsing.failures

    first, second = week_of(forecast, REGION, 1), week_of(forecast, REGION, 2)
    weeks = sorted({d.isoformat() for d in forecast["week_start"].to_list()})
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            officer = browser.new_context(viewport={"width": 1280, "height": 900})
            officer.set_default_timeout(TIMEOUT_MS)
            page = watch(officer.new_page())
            log_in(page, "olga")
            expect(page).to_have_url(f"{server}/ui/list")

            # -- the map page asks for the purpose first and reads nothing before
            page.goto(f"{server}/ui/map?region={REGION}")
            expect(page.locator("h1")).to_have_text(f"Hotspot map: {REGION}")
            expect(page.locator("p.choose")).to_contain_text("Choose the purpose")
            expect(page.locator("svg.map")).to_have_count(0)
            expect(page.locator("select[name=purpose]")).to_have_value("")
            weeks_offered = page.locator("select[name=week] option")
            assert [o.get_attribute("value") for o in weeks_offered.all()] == weeks
            shot(page, "map-00-choose-purpose")

            # -- with a purpose: every cell of the unit as a hexagon, coloured by expected count
            page.select_option("select[name=purpose]", PURPOSE)
            page.click("button:has-text('Show')")
            facts = page.locator("main p.muted", has_text="read logged with purpose")
            expect(facts).to_contain_text(f"street-crime version {VERSION}")
            expect(facts).to_contain_text(f"week of {weeks[0]}")
            expect(facts).to_contain_text(f"{first.height} cells")
            expect(facts).to_contain_text(f"read logged with purpose {PURPOSE}")
            check_hexagons(page, first)
            check_top_table(page, first, top=20)
            shot(page, "map-01-desktop")
            map_url = page.url

            # -- the week selector: the second week's forecast, re-ranked
            page.select_option("select[name=week]", weeks[1])
            page.click("button:has-text('Show')")
            expect(facts).to_contain_text(f"week of {weeks[1]}")
            expect(page.locator("select[name=week]")).to_have_value(weeks[1])
            expect(page.locator("select[name=purpose]")).to_have_value(PURPOSE)
            check_hexagons(page, second)
            check_top_table(page, second, top=20)
            shot(page, "map-02-week-switched")

            # -- at phone width the page does not scroll sideways; the map shrinks to fit
            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, storage_state=officer.storage_state()
            )
            phone.set_default_timeout(TIMEOUT_MS)
            small = watch(phone.new_page())
            small.goto(map_url)
            expect(small.locator("svg.map polygon")).to_have_count(first.height)
            widths = small.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], widths
            box = small.locator("svg.map").bounding_box()
            assert box is not None and box["width"] <= 390, box
            shot(small, "map-03-phone")
            phone.close()
            officer.close()

            # -- an officer of another region: 403 on the page and the API, nothing leaks
            other = browser.new_context(viewport={"width": 1280, "height": 900})
            other.set_default_timeout(TIMEOUT_MS)
            page = watch(other.new_page())
            log_in(page, "oleg")
            refused = page.goto(f"{server}/ui/map?region={REGION}&purpose={PURPOSE}")
            assert refused is not None and refused.status == 403
            expect(page.locator("h1")).to_have_text("Error 403")
            expect(page.locator("svg.map polygon")).to_have_count(0)
            assert first["cell_id"][0] not in page.content()
            shot(page, "map-04-other-region-refused")
            page.goto(f"{server}/ui/map?region={REGION}")  # before a purpose: no unit facts
            body = page.content()
            assert not any(d in body for d in first["district"].unique().to_list()), body
            own = page.goto(f"{server}/ui/map?region={OTHER}&purpose={PURPOSE}")
            assert own is not None and own.status == 200
            expect(page.locator("svg.map polygon")).to_have_count(
                week_of(forecast, OTHER, 1).height
            )
            other.close()
            assert api_status(server, env.tokens["oleg"], REGION) == 403
            assert api_status(server, env.tokens["olga"], REGION) == 200

            # -- the auditor finds the map reads with purpose and model version
            auditor = browser.new_context(viewport={"width": 1280, "height": 900})
            auditor.set_default_timeout(TIMEOUT_MS)
            page = watch(auditor.new_page())
            log_in(page, "ada")
            expect(page).to_have_url(f"{server}/ui/audit")
            access = page.locator("section", has=page.locator("h2", has_text="Access log"))
            logged: dict[str, list[list[str]]] = {}
            for actor in ("olga", "oleg"):
                page.fill("input[name=actor]", actor)
                page.click("button:has-text('Filter')")
                logged[actor] = [cells(r) for r in access.locator("tbody tr").all()]
            maps = [e for e in logged["olga"] if e[4] == "hotspot-map"]
            assert len(maps) == 3, logged["olga"]  # two desktop weeks and the phone
            assert all(e[3] == PURPOSE and e[7] == VERSION and e[8] == "200" for e in maps), maps
            assert any(e[4] == "hotspots" and e[8] == "200" for e in logged["olga"]), logged
            oleg = {(e[4], e[8]) for e in logged["oleg"]}
            assert {("hotspot-map", "403"), ("hotspot-map", "200"), ("hotspots", "403")} <= oleg
            refusals = [e for e in logged["oleg"] if e[8] == "403"]
            assert all(e[3] == PURPOSE and e[7] == VERSION for e in refusals), refusals
            expect(access.locator("p").first).to_contain_text("Chain: intact")
            shot(page, "map-05-access-log")
            auditor.close()
        except Exception:
            browsing.shoot_failure()  # the page the test stopped on
            raise
        finally:
            browser.close()
    assert not failures, failures


def check_hexagons(page: Page, week: pl.DataFrame) -> None:
    """One polygon per cell of the unit, each a hexagon (or an H3 pentagon) filled with a
    legend colour, the colour never lighter for a cell with more expected incidents."""
    polygons = page.locator("svg.map polygon")
    expect(polygons).to_have_count(week.height)
    legend = [r.get_attribute("fill") for r in page.locator("ul.map-legend li svg rect").all()]
    assert len(legend) >= 3 and len(set(legend)) == len(legend), legend
    drawn = polygons.evaluate_all(
        "ps => ps.map(p => [p.dataset.cell, p.getAttribute('fill'),"
        " p.getAttribute('points').trim().split(/\\s+/).length])"
    )
    expected = dict(zip(week["cell_id"].to_list(), week["expected_count"].to_list(), strict=True))
    assert {d[0] for d in drawn} == set(expected)
    assert all(d[2] in (5, 6) for d in drawn), drawn[:3]
    assert all(d[1] in legend for d in drawn), drawn[:3]
    order = sorted(drawn, key=lambda d: expected[d[0]])
    shades = [legend.index(d[1]) for d in order]
    assert shades == sorted(shades), "a cell with more expected incidents is drawn lighter"
    assert shades[0] == 0 and shades[-1] == len(legend) - 1, shades
    labels = page.locator("svg.map text").all_text_contents()
    assert labels and sorted(int(t) for t in labels) == list(range(1, len(labels) + 1))


def check_top_table(page: Page, week: pl.DataFrame, top: int) -> None:
    """The top cells in rank order with their expected counts and reasons in words."""
    rows = page.locator("table.hotspots tbody tr")
    expect(rows).to_have_count(top)
    shown = [cells(r) for r in rows.all()]
    assert [r[0] for r in shown] == [str(i) for i in range(1, top + 1)]
    assert [r[1].split()[0] for r in shown] == week["cell_id"].head(top).to_list()
    assert [r[3] for r in shown] == [f"{x:.2f}" for x in week["expected_count"].head(top)]
    for row in rows.all():
        reasons = row.locator("td").last.locator("li").all_inner_texts()
        assert len(reasons) == 3, reasons
        assert all("the forecast" in r for r in reasons), reasons  # raises/lowers, in words
