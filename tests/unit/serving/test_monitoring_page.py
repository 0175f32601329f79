"""The auditors' "Monitoring" page on three real checks (`tests.monitoring_helpers`): the plots
hold the checks' own figures, the breaches and the re-audit flag show, the report downloads
(HTML + JSON) carry the sha256 the page states and are kept once, officers are refused, the
empty state names the command, reads are in the access log, and the admin's stop form turns
the service's stop switch."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairness.monitoring.store import MonitoringStore, StoredCheck
from fairness.report_store import report_problems
from riskcast.names import PERSON_MODEL
from serving.app import create_app
from serving.db import stop_reason
from serving.services.monitoring import Line, Plot, Point, composition_shares
from serving.ui.charts import svg
from tests.monitoring_helpers import keep_checks
from tests.service_helpers import ServiceEnv, settings_for
from tests.ui_helpers import csrf_of, entries, last_seq, login, private_home


@pytest.fixture(scope="module")
def kept(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[StoredCheck]]:
    home = private_home(service_env, tmp_path_factory, "monitoring-page")
    return home, keep_checks(home, service_env.model_version)


@pytest.fixture
def page(kept: tuple[Path, list[StoredCheck]]) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(kept[0]))) as c:
        yield c


def _points(text: str, plot: str) -> dict[tuple[str, str], str]:
    """(group, as-of) -> value of the points of one plot (the first series of a group)."""
    start = text.index(f'data-plot="{plot}"')
    svg = text[start : text.index("</svg>", start)]
    out: dict[tuple[str, str], str] = {}
    for g, d, v in re.findall(
        r'<circle[^>]*data-group="([^"]+)" data-as-of="([^"]+)" data-value="([^"]+)"', svg
    ):
        out.setdefault((g, d), v)
    return out


def test_the_plots_and_alerts_show_the_checks_figures(
    page: TestClient, kept: tuple[Path, list[StoredCheck]], service_env: ServiceEnv
) -> None:
    home, checks = kept
    login(page, service_env.tokens["ada"])
    before = last_seq(page)
    r = page.get("/ui/monitoring", params={"group_column": "region"})
    assert r.status_code == 200, r.text
    text = r.text
    # input drift: the largest PSI of each region at each check, as the checks computed it
    psi = _points(text, "input-drift")
    for c in checks:
        for d in c.result.input_drift:
            if d.group_column == "region" and d.psi is not None:
                assert psi[(d.group, c.result.as_of.isoformat())] == f"{d.psi:.4f}"
    drifted = checks[-1].result.input_drift
    r2 = next(d for d in drifted if d.group == "R2")
    r1 = next(d for d in drifted if d.group == "R1")
    assert r2.psi is not None and r1.psi is not None and r2.psi > r1.psi > 0.25
    quiet = [d.psi for d in checks[0].result.input_drift if d.psi is not None]
    assert quiet and max(quiet) < 0.25  # the first check: no drift
    # estimated AUC with its interval, realised AUC at the matured cohort's date (dashed)
    auc = _points(text, "auc")
    last = checks[-1].result
    est = next(e for e in last.estimate if e.group == "R3")
    assert auc[("R3", last.as_of.isoformat())] == f"{est.auc.value:.4f}"
    assert f"[{est.auc.lower:.3f}, {est.auc.upper:.3f}]" in text
    assert last.matured is not None
    real = next(g for g in last.matured.realised if g.group == "R3")
    assert f'data-as-of="{last.matured.as_of.isoformat()}" data-value="{real.auc:.4f}"' in text
    # FPR at the policy's threshold, and the list composition over the units' lists
    fpr = _points(text, "fpr")
    at = next(t for t in est.thresholds if abs(t.threshold - 0.35) < 1e-9)
    assert fpr[("R3", last.as_of.isoformat())] == f"{at.fpr.value:.4f}"
    shares = composition_shares(checks[-1], "region")
    whole = next(u for u in last.composition if u.unit == "all")  # the whole list
    assert shares == whole.shares["region"] and abs(sum(shares.values()) - 1) < 1e-9
    comp = _points(text, "composition")
    assert comp[("R2", last.as_of.isoformat())] == f"{shares['R2']:.4f}"
    # the newest check's breaches, its re-audit flag, the ledger's monitoring alerts
    breaches = re.search(r'<table id="breaches">.*?</table>', text, re.S)
    assert breaches is not None
    for b in last.breaches:
        assert html.escape(b.message, quote=True) in breaches.group(0)
    assert last.reaudit and 'id="reaudit"' in text and "Re-audit required" in text
    assert f"{len(last.breaches)} breaches as of {last.as_of}" in text
    assert "re-audit required" in text
    # the read is in the access log: no persons, what was read
    read = [e for e in entries(page) if e.seq > before and e.action == "monitoring"]
    assert len(read) == 1 and read[0].persons == [] and read[0].purpose == "audit"
    # every check on record: these three and the one the fixture's materialisation ran
    on_record = MonitoringStore(f"sqlite:///{(home / 'riskcast.sqlite').resolve()}")
    ids = [c.id for c in on_record.checks(PERSON_MODEL)]
    on_record.dispose()
    assert read[0].params["checks"] == len(ids) >= 3 and read[0].params["through_check"] == ids[-1]
    assert ids[-1] == checks[-1].id
    # the navigation links the page; an officer sees no stop form (not even the page)
    assert '<a href="/ui/monitoring">Monitoring</a>' in text
    assert 'id="stop-form"' not in text  # auditors see the switch's state, admins the form


def test_the_report_downloads_carry_their_sha256_and_are_kept_once(
    page: TestClient, kept: tuple[Path, list[StoredCheck]], service_env: ServiceEnv
) -> None:
    home, checks = kept
    first = checks[0]
    login(page, service_env.tokens["ada"])
    base = f"/ui/monitoring/recidivism-risk/check/{first.id}/report"
    got = page.get(base + ".json")
    assert got.status_code == 200, got.text
    sha = hashlib.sha256(got.content).hexdigest()
    assert got.headers["x-report-sha256"] == sha
    body = got.json()
    assert body["check_id"] == first.id and body["result"]["as_of"] == "2025-03-31"
    assert body["result"]["breaches"] == [b.model_dump(mode="json") for b in first.result.breaches]
    shown = page.get(base + ".html")
    assert shown.status_code == 200 and f'<code id="sha256">{sha}</code>' in shown.text
    assert "script-src" not in shown.headers["content-security-policy"]
    kept_json = home / "reports/monitoring/recidivism-risk" / f"check-{first.id}"
    assert hashlib.sha256((kept_json / "monitoring-report.json").read_bytes()).hexdigest() == sha
    assert page.get(base + ".json").content == got.content  # the kept bytes, every time
    # kept once = recorded once in the ledger, with the JSON's sha256 and path, which
    # `ledger verify` checks like a fairness report's
    ledger = page.app.state.riskcast.ledger  # type: ignore[attr-defined]
    recorded = [
        e for e in ledger.entries(kind="monitor_report") if f"check-{first.id}/" in e.reasons[-1]
    ]
    assert len(recorded) == 1 and recorded[0].report_sha256 == sha
    assert recorded[0].actor == "ada" and recorded[0].role == "auditor"
    assert report_problems(recorded, home) == []
    logged = [e for e in entries(page) if e.action == "monitoring-report"]
    assert logged and logged[-1].params["sha256"] == sha and logged[-1].persons == []
    assert page.get("/ui/monitoring/recidivism-risk/check/999999/report.json").status_code == 404
    assert page.get("/ui/monitoring/nothing/check/1/report.json").status_code == 404


def test_officers_are_refused(page: TestClient, service_env: ServiceEnv) -> None:
    login(page, service_env.tokens["olga"])
    for path in ("/ui/monitoring", "/ui/monitoring/recidivism-risk/check/1/report.json"):
        r = page.get(path)
        assert r.status_code == 403, (path, r.text)
        assert "this page is for admin, auditor; you are officer" in r.text


def test_the_check_riskcast_monitor_kept_and_the_empty_state(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The fixture's `riskcast features materialize` ran `riskcast monitor` (its hook): the
    page shows that real check; without any check it names the command to run."""
    home = private_home(service_env, tmp_path_factory, "monitoring-empty")
    url = f"sqlite:///{(home / 'riskcast.sqlite').resolve()}"
    store = MonitoringStore(url)
    real = store.checks(PERSON_MODEL)
    store.dispose()
    assert len(real) == 1 and real[0].result.as_of.isoformat() == "2025-06-30"
    estimate = next(
        e for e in real[0].result.estimate if e.group_column == "region" and e.auc.value is not None
    )
    with TestClient(create_app(settings_for(home))) as c:
        login(c, service_env.tokens["ada"])
        r = c.get("/ui/monitoring", params={"group_column": "region"})
        assert r.status_code == 200, r.text
        assert f"Check #{real[0].id} of recidivism-risk" in r.text
        auc = _points(r.text, "auc")
        assert auc[(estimate.group, "2025-06-30")] == f"{estimate.auc.value:.4f}"
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE monitoring_figures"))
            conn.execute(sa.text("DROP TABLE monitoring_checks"))
        engine.dispose()
        r = c.get("/ui/monitoring")
        assert r.status_code == 200, r.text
        assert "No monitoring check on record for recidivism-risk" in r.text
        assert "<code>riskcast monitor [--as-of YYYY-MM-DD]</code>" in r.text
        assert "<svg" not in r.text


def test_the_admin_stops_the_champion_from_the_page(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = private_home(service_env, tmp_path_factory, "monitoring-stop")
    with TestClient(create_app(settings_for(home))) as c:
        login(c, service_env.tokens["ada"])
        csrf = csrf_of(c.get("/ui/monitoring").text)
        refused = c.post("/ui/monitoring/stop", data={"csrf": csrf, "reason": "drift"})
        assert refused.status_code == 403  # auditors may not stop
        login(c, service_env.tokens["root"])
        form = c.get("/ui/monitoring").text
        assert 'id="stop-form"' in form
        csrf = csrf_of(form)
        forged = c.post("/ui/monitoring/stop", data={"csrf": "0" * 64, "reason": "drift"})
        assert forged.status_code == 403
        short = c.post(
            "/ui/monitoring/stop", data={"csrf": csrf, "reason": "x"}, follow_redirects=False
        )
        assert short.status_code == 303 and "error=" in short.headers["location"]
        done = c.post(
            "/ui/monitoring/stop",
            data={"csrf": csrf, "reason": "re-audit due: FPR disparity twice"},
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
        after = c.get(done.headers["location"]).text
        assert 'id="stopped"' in after and "re-audit due: FPR disparity twice" in after
        # the service's one switch, as `GET /admin/stop` reads it: stopped, by whom, why
        reason = stop_reason(c.app.state.riskcast.engine)  # type: ignore[attr-defined]
        assert reason is not None and reason.startswith("re-audit due: FPR disparity twice")
        assert "stopped by root" in reason


def test_the_svg_escapes_names_and_places_points_by_value() -> None:
    hostile = '"><script>alert(1)</script>'
    plot = Plot(
        "p",
        "t <b>",
        "y",
        [
            Line(hostile, hostile, [Point(date(2025, 1, 1), 0.2, 0.1, 0.3),
                                    Point(date(2025, 4, 1), 0.4, 0.3, 0.5)]),
            Line("g realised", "g", [Point(date(2025, 1, 1), 0.6)], dashed=True),
        ],
    )  # fmt: skip
    drawn = str(svg(plot))
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn and "t &lt;b&gt;" in drawn
    ys = {
        v: float(cy)
        for cy, v in re.findall(r'<circle cx="[^"]+" cy="([^"]+)"[^>]*data-value="([^"]+)"', drawn)
    }
    assert ys["0.2000"] > ys["0.4000"] > ys["0.6000"]  # higher values drawn higher
    assert drawn.count('class="interval"') == 3  # the band and one whisker per point
