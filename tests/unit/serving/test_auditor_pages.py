"""The auditors' page: a banner when the champion serves by an override (who, when, why), long
ledger reasons collapsed, the ledger paginated (newest first), the kept reports checked against
the ledger's hashes, the report's audit id and one hash, and the count of large exports."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from fairness.ledger import Ledger, open_ledger
from fairness.report import keep_report, report_content
from fairness.report_store import report_reason, version_dir
from fairness.tableaudit import audit_frame
from serving.access_log import open_access_log
from serving.app import create_app
from serving.services.exports import count_large_exports
from tests.service_helpers import ServiceEnv, settings_for
from tests.ui_helpers import login, private_home

MODEL = "recidivism-risk"
WHY = "refusal reviewed by hand: the small groups were read one by one " + "and accepted " * 12


@pytest.fixture
def home(service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return private_home(service_env, tmp_path_factory, "auditor-pages")


def _ledger(home: Path) -> Ledger:
    return open_ledger(settings_for(home).kernel)


def _client(home: Path, **settings: object) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(home, **settings))) as c:
        yield c


@pytest.fixture
def page(home: Path, service_env: ServiceEnv) -> Iterator[TestClient]:
    yield from _client(home, large_export_persons=5)


def _keep(home: Path, version: str) -> tuple[str, str, Path]:
    """A kept report of ``version``: (audit id, sha256 of its JSON, the JSON's path)."""
    rng = np.random.default_rng(0)
    p = rng.beta(2, 5, 400)
    frame = pl.DataFrame(
        {"g": np.where(rng.random(400) < 0.5, "A", "B"), "y": (rng.random(400) < p), "s": p}
    ).with_columns(pl.col("y").cast(pl.Int64))
    audit = audit_frame(
        frame, label="y", score="s", protected=["g"], threshold=0.35, min_group_size=50,
        n_boot=10,
    )  # fmt: skip
    content = report_content(
        audit, title=f"Fairness audit of {MODEL} v{version}", model_version=version,
        data_digests={"test": "d"}, policy_version="p", decision={"outcome": "fail"},
    )  # fmt: skip
    written = keep_report(content, version_dir(home, MODEL, version))
    assert written.audit_id is not None
    return written.audit_id, written.sha256, written.json_path


def _override(home: Path, version: str) -> None:
    """What `riskcast promote --override` records for ``version``: its audit and override."""
    _, sha, json_path = _keep(home, version)
    kept_at = report_reason(json_path, home)
    ledger = _ledger(home)
    common = {"actor": "Cy Auditor", "role": "auditor", "version": version, "report_sha256": sha}
    ledger.append("audit", decision="fail", reasons=["FAIL: fpr", kept_at], **common)
    ledger.append(
        "override", decision="overridden",
        reasons=[f"reason: {WHY}", "previous champion: none", "gate outcome overridden: fail",
                 "FAIL: fpr disparity by group vs A", kept_at],
        **common,
    )  # fmt: skip
    ledger.dispose()


def test_no_banner_without_an_override(page: TestClient, service_env: ServiceEnv) -> None:
    login(page, service_env.tokens["ada"])
    r = page.get("/ui/audit")
    assert r.status_code == 200, r.text
    assert 'id="override-banner"' not in r.text
    assert re.search(r'<p id="large-exports">(no read|\d+ reads) named more than 5 persons', r.text)


def test_banner_when_the_champion_serves_by_override(home: Path, service_env: ServiceEnv) -> None:
    _override(home, service_env.model_version)
    for c in _client(home):
        login(c, service_env.tokens["ada"])
        r = c.get("/ui/audit")
        assert r.status_code == 200, r.text
        banner = re.search(r'<div class="unscored" id="override-banner".*?</div>', r.text, re.S)
        assert banner is not None, r.text
        text = " ".join(re.sub(r"<[^>]+>", " ", banner.group(0)).split())
        assert "serves by an auditor's override" in text
        assert "Cy Auditor (auditor)" in text and WHY.strip() in text
        assert re.search(r"on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", text)
        assert "gate said fail" in text
        # long reasons collapse; short ones stay as they are
        assert re.search(r"<details class=\"reasons\"><summary>reason: refusal reviewed", r.text)
        assert "FAIL: fpr; report kept at: " in r.text
        # the report: its audit id and its one hash (the JSON's), kept reports match the ledger
        assert "every kept report the ledger names has the sha256 it recorded" in r.text


def test_the_report_shows_its_audit_id_and_hash_and_tampering_shows(
    home: Path, service_env: ServiceEnv
) -> None:
    audit_id, sha, json_path = _keep(home, service_env.model_version)
    ledger = _ledger(home)
    ledger.append(
        "audit", actor="ada", role="auditor", version=service_env.model_version,
        decision="fail", reasons=[report_reason(json_path, home)], report_sha256=sha,
    )  # fmt: skip
    ledger.dispose()
    for c in _client(home):
        login(c, service_env.tokens["ada"])
        text = c.get("/ui/audit").text
        assert f"audit id <code>{audit_id}</code>" in text and f"<code>{sha}</code>" in text
        json_path.write_text("{}", "utf-8")
        tampered = c.get("/ui/audit").text
        assert "CHANGED OR MISSING" in tampered and "was changed" in tampered


def _ledger_section(html: str) -> str:
    start = html.index('<section id="ledger">')
    return html[start : html.index("</section>", start)]


def test_the_ledger_paginates_newest_first(home: Path, service_env: ServiceEnv) -> None:
    ledger = _ledger(home)
    before = len(ledger.entries())
    for i in range(30):
        ledger.append(
            "audit", actor="ana", role="data_scientist", version="77", decision="pass",
            reasons=[f"entry {i}"],
        )  # fmt: skip
    total = len(ledger.entries())
    ledger.dispose()
    assert total == before + 30
    for c in _client(home):
        login(c, service_env.tokens["ada"])
        first = c.get("/ui/audit").text
        section = _ledger_section(first)
        seqs = [int(s) for s in re.findall(r"<tr><td>(\d+)</td><td>\d{4}-", section)]
        assert seqs == list(range(total, total - 25, -1))  # 25 a page, newest first
        assert f"page 1 of 2 ({total} entries, 25 a page)" in section
        link = re.search(r'<a href="([^"]*ledger_page=2[^"]*)" rel="next">older</a>', section)
        assert link is not None
        second = c.get(link.group(1).replace("&amp;", "&")).text
        section = _ledger_section(second)
        seqs = [int(s) for s in re.findall(r"<tr><td>(\d+)</td><td>\d{4}-", section)]
        assert seqs == list(range(total - 25, 0, -1))
        assert 'rel="prev">newer</a>' in section and "page 2 of 2" in section
        beyond = c.get("/ui/audit", params={"ledger_page": 99}).text  # the last page
        assert "page 2 of 2" in beyond


def test_large_exports_are_counted(home: Path, service_env: ServiceEnv) -> None:
    log = open_access_log(settings_for(home).kernel)
    log.verify()  # creates the table if no test read anything yet
    before = count_large_exports(log, 10)
    log.append(
        actor="olga", role="officer", purpose="prevention_planning", action="risk-list",
        persons=[f"P{i}" for i in range(12)], params={"capacity": 12}, model_version=None,
        status=200,
    )  # fmt: skip
    log.dispose()
    for c in _client(home, large_export_persons=10):
        login(c, service_env.tokens["ada"])
        text = c.get("/ui/audit").text
        found = re.search(r'<p id="large-exports">(.*?)</p>', text)
        assert found is not None
        count = before.count + 1
        assert f"{count} reads named more than 10 persons" in found.group(1)
        assert f"olga: {before.by_actor.get('olga', 0) + 1}" in found.group(1)
