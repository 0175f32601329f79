"""The "Monitoring" page's places section on two kept places checks (the second with district
south's counts doubled): the realised-vs-forecast plot holds the checks' own weekly totals, the
ratio table and the open alerts name south, the drift table lists the drifted input first, and
the JSON report holds the places part."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fairness.monitoring.store import StoredCheck
from riskcast.names import PLACES_MODEL
from serving.app import create_app
from tests.service_helpers import ServiceEnv, settings_for
from tests.ui_helpers import login, private_home
from tests.unit.fairness.test_monitoring_places import keep_places_checks


@pytest.fixture(scope="module")
def kept(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[StoredCheck]]:
    home = private_home(service_env, tmp_path_factory, "monitoring-places-page")
    return home, keep_places_checks(home)


@pytest.fixture
def page(kept: tuple[Path, list[StoredCheck]]) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(kept[0]))) as c:
        yield c


def _points(text: str, plot: str) -> dict[tuple[str, str], str]:
    start = text.index(f'data-plot="{plot}"')
    svg = text[start : text.index("</svg>", start)]
    out: dict[tuple[str, str], str] = {}
    for g, d, v in re.findall(
        r'<circle[^>]*data-group="([^"]+)" data-as-of="([^"]+)" data-value="([^"]+)"', svg
    ):
        out.setdefault((g, d), v)
    return out


def test_the_places_section_shows_the_realised_weeks_ratios_and_drift(
    page: TestClient, kept: tuple[Path, list[StoredCheck]], service_env: ServiceEnv
) -> None:
    _, checks = kept
    login(page, service_env.tokens["ada"])
    r = page.get("/ui/monitoring", params={"model": PLACES_MODEL, "group_column": "district"})
    assert r.status_code == 200, r.text
    text = r.text
    last = checks[-1].result
    assert last.places is not None and last.places.realised is not None
    weekly = _points(text, "places-realised")
    for w in last.places.realised.weekly:
        assert weekly[("forecast", w.week_start.isoformat())] == f"{w.expected:.4f}"
        assert weekly[("counted", w.week_start.isoformat())] == f"{float(w.observed):.4f}"
    ratio = _points(text, "places-ratio")
    south = next(c for c in last.places.realised.ratios if c.group == "south")
    assert ratio[("south", last.as_of.isoformat())] == f"{south.ratio:.4f}"
    assert 'data-plot="places-pai"' in text
    # the inputs' drift replaces the person model's largest PSI: per group and check the
    # largest change now / a year before over the tested inputs, either way, as a factor
    assert 'data-plot="input-drift"' not in text
    inputs = _points(text, "places-input-drift")
    for c in checks:
        d = c.result.places.input_drift if c.result.places is not None else None
        assert d is not None
        tested = [r for r in d.rows if r.group == "south" and r.p_value is not None]
        worst = max(max(r.ratio, 1 / r.ratio) for r in tested if r.ratio)
        assert inputs[("south", c.result.as_of.isoformat())] == f"{worst:.4f}"
    assert float(inputs[("south", last.as_of.isoformat())]) > 1.25  # the doubled district
    section = text[text.index('id="places"') : text.index('id="checks"')]
    ratios = section[section.index('id="places-ratios"') : section.index("</table>")]
    assert "district=south" in ratios and "alert" in ratios and "district=north" in ratios
    drift = section[section.index('id="places-drift"') :]
    body = drift.index("<tbody>")
    first_row = drift[body : drift.index("</tr>", body)]
    assert "count_4w" in first_row and "south" in first_row and "alert" in first_row
    assert "a year before" in section  # the drift rule's reference named
    assert 'id="places-score-drift"' in section and "district=south" in section
    drift_part = last.places.input_drift
    assert drift_part is not None
    evidence = section[section.index('id="places-evidence"') :]
    evidence = evidence[: evidence.index("</table>")]
    districts = [e for e in drift_part.evidence if e.group_column == "district"]
    assert evidence.count("<tr>") == len(districts) + 1 and len(districts) == 6
    for e in districts:  # each district's effective count and state, shown
        assert f"district={e.group}</td><td>{e.input}</td><td>{e.effective_count:.1f}" in evidence
    assert "cannot tell a change at the band" in section
    breaches = text[
        text.index('id="breaches"') : text.index("</table>", text.index('id="breaches"'))
    ]
    assert "count_ratio" in breaches and "district=south" in breaches
    # the checks list counts the places alerts with the drift breaches
    assert f"<td>{last.alert_count}</td>" in text


def test_the_report_json_holds_the_places_part(
    page: TestClient, kept: tuple[Path, list[StoredCheck]], service_env: ServiceEnv
) -> None:
    _, checks = kept
    login(page, service_env.tokens["ada"])
    c = checks[-1]
    r = page.get(f"/ui/monitoring/{PLACES_MODEL}/check/{c.id}/report.json")
    assert r.status_code == 200, r.text
    body = json.loads(r.content)
    places = body["result"]["places"]
    assert places["realised"]["weeks"] == 8
    assert {a["group"] for a in places["alerts"] if a["kind"] == "count_ratio"} >= {"south"}
    html = page.get(f"/ui/monitoring/{PLACES_MODEL}/check/{c.id}/report.html")
    assert html.status_code == 200 and r.headers["X-Report-Sha256"] in html.text


def test_the_report_has_a_places_block_with_intervals_drift_and_alerts(
    page: TestClient, kept: tuple[Path, list[StoredCheck]], service_env: ServiceEnv
) -> None:
    """The downloadable report (JSON and HTML) leads with the places figures: deviance, PAI
    and the ratios with their intervals, the input drift (summary and every row), the alerts,
    each as the check computed it."""
    _, checks = kept
    login(page, service_env.tokens["ada"])
    c = checks[-1]
    p = c.result.places
    assert p is not None and p.realised is not None and p.input_drift is not None
    body = json.loads(page.get(f"/ui/monitoring/{PLACES_MODEL}/check/{c.id}/report.json").content)
    block = body["places"]
    real = block["realised"]
    assert real["deviance"]["value"] == pytest.approx(p.realised.deviance)
    lo, hi = real["deviance"]["lower"], real["deviance"]["upper"]
    assert lo is not None and hi is not None and lo <= p.realised.deviance <= hi
    assert real["pai"]["value"] == pytest.approx(p.realised.pai.value)
    assert real["pai"]["lower"] <= real["pai"]["value"] <= real["pai"]["upper"]
    south = next(r for r in real["ratios"] if r["group"] == "south")
    assert south["status"] == "alert" and south["lower"] > p.ratio_band[1]
    drift = block["drift"]
    assert len(drift["rows"]) == len(p.input_drift.rows) and drift["tests"] > 0
    assert drift["alerts"] == len(p.input_drift.alerts()) >= 1
    kinds = {(a["kind"], a["group"]) for a in block["alerts"]}
    assert {("count_ratio", "south"), ("input_drift", "south")} <= kinds
    assert p.score_drift is not None  # the forecast (the cells' rates) did not move
    assert len(drift["evidence"]) == len(p.input_drift.evidence) == 1 + 1 + 6
    assert {e["state"] for e in drift["evidence"]} <= {
        "enough for the band",
        "insufficient for the band",
        "insufficient evidence",
    }
    score = block["score_drift"]
    assert len(score["rows"]) == len(p.score_drift.rows) and score["alerts"] == 0
    assert score["band"] == [0.8, 1.2]
    html = page.get(f"/ui/monitoring/{PLACES_MODEL}/check/{c.id}/report.html").text
    figures = html[html.index('id="places-figures"') :]
    assert f"{p.realised.deviance:.4f}" in figures and f"[{lo:.4f}, {hi:.4f}]" in figures
    assert f"{p.realised.pai.value:.2f}" in figures
    ratios = html[html.index('id="places-ratios"') :]
    assert f"[{south['lower']:.2f}, {south['upper']:.2f}]" in ratios
    rows = html[html.index('id="places-drift"') : html.index("Places: score drift")]
    assert rows.count("<tr>") == len(p.input_drift.rows) + 1  # + the header
    table = html[html.index('id="places-drift-evidence"') :]
    assert table[: table.index("</table>")].count("<tr>") == len(p.input_drift.evidence) + 1
    score_rows = html[html.index('id="places-score-drift"') : html.index('id="places-alerts"')]
    assert score_rows.count("<tr>") == len(p.score_drift.rows) + 1
    alerts = html[html.index('id="places-alerts"') :]
    assert "district=south" in alerts and "count_ratio" in alerts and "input_drift" in alerts


def test_the_places_figures_are_prometheus_gauges(
    page: TestClient, kept: tuple[Path, list[StoredCheck]]
) -> None:
    from riskcast.settings import get_settings
    from tests.service_helpers import environment

    last = kept[1][-1].result
    assert last.places is not None and last.places.realised is not None
    south = next(c for c in last.places.realised.ratios if c.group == "south")
    with environment(RISKCAST_HOME=str(kept[0]), RISKCAST_DATABASE_URL=None):
        get_settings.cache_clear()
        text = page.get("/metrics").text
    get_settings.cache_clear()
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("riskcast_monitoring_places_count_ratio{")
        and 'group="south"' in line
        and 'bound="value"' in line
    ]
    assert len(lines) == 1 and f'model="{PLACES_MODEL}"' in lines[0]
    assert float(lines[0].rsplit(" ", 1)[1]) == pytest.approx(south.ratio)
    places = [line for line in text.splitlines() if f'model="{PLACES_MODEL}"' in line]
    names = {line.split("{", 1)[0] for line in places if not line.startswith("#")}
    documented = {  # serving/metrics.py's docstring lists these for places
        "riskcast_monitoring_places_count_ratio", "riskcast_monitoring_places_pai",
        "riskcast_monitoring_places_pai_audited", "riskcast_monitoring_places_deviance",
        "riskcast_monitoring_places_expected", "riskcast_monitoring_places_observed",
        "riskcast_monitoring_places_input_rate_ratio", "riskcast_monitoring_places_score_ratio",
        "riskcast_monitoring_places_effective_count",
        "riskcast_monitoring_places_detectable_ratio", "riskcast_monitoring_breaches",
        "riskcast_monitoring_reaudit", "riskcast_monitoring_advisories",
    }  # fmt: skip
    exposure = {"riskcast_monitoring_places_flagged_area_share",
                "riskcast_monitoring_places_incident_share"}  # fmt: skip
    assert documented <= names <= documented | exposure, names ^ documented
    from serving import metrics

    doc = metrics.__doc__ or ""
    abbreviated = {"observed", "incident_share", "detectable_ratio"}  # "``x`` / ``_y``"
    for name in names - {"riskcast_monitoring_reaudit", "riskcast_monitoring_advisories"}:
        tail = name.removeprefix("riskcast_monitoring_places_")
        assert f"``{name}" in doc or (tail in abbreviated and f"``_{tail}" in doc), name
    assert "riskcast_monitoring_input_psi" not in names
    kinds = [line for line in text.splitlines() if line.startswith("riskcast_monitoring_breaches{")]
    assert any('kind="count_ratio"' in k and PLACES_MODEL in k and not k.endswith(" 0.0")
               for k in kinds)  # fmt: skip


def test_a_check_without_the_history_says_so_on_the_page_and_in_the_report(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A store too short for the reference weeks: the page and both reports state
    "insufficient history" with the dates, and no drift row or drift alert is shown."""
    from fairness.monitoring.store import MonitoringStore
    from tests.unit.fairness.test_monitoring_places import _check, short_history

    home = private_home(service_env, tmp_path_factory, "monitoring-places-short")
    history = short_history()
    store = MonitoringStore(f"sqlite:///{(home / 'riskcast.sqlite').resolve()}")
    try:
        c = store.record(_check(1, "south", history=history)[0])
    finally:
        store.dispose()
    with TestClient(create_app(settings_for(home))) as client:
        login(client, service_env.tokens["ada"])
        text = client.get(
            "/ui/monitoring", params={"model": PLACES_MODEL, "group_column": "district"}
        ).text
        body = json.loads(
            client.get(f"/ui/monitoring/{PLACES_MODEL}/check/{c.id}/report.json").content
        )
        html = client.get(f"/ui/monitoring/{PLACES_MODEL}/check/{c.id}/report.html").text
    note = text[text.index('id="places-drift-note"') :]
    note = note[: note.index("</p>")]
    assert "Not judged" in note and "insufficient history" in note
    assert history.needed_from.isoformat() in note
    drift = text[text.index('id="places-drift"') :]
    assert drift[drift.index("<tbody>") : drift.index("</tbody>")].count("<tr>") == 0
    block = body["places"]
    assert block["drift"] is None and block["drift_history"]["enough"] is False
    assert block["drift_history"]["needed_from"] == history.needed_from.isoformat()
    assert block["drift_history"]["state"].startswith("insufficient history")
    assert not any(a["kind"] == "input_drift" for a in block["alerts"])
    state = html[html.index('id="places-drift-history"') :]
    assert "insufficient history" in state[: state.index("</p>")]
