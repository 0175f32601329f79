"""Every audit's report is kept, with one hash (the JSON's) in the ledger, the CLI and the page;
`riskcast ledger verify` fails when a kept report is changed or missing; the report names the
population it audits, has a table of contents and no ratio for signed quantities."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from fairness.ledger import open_ledger
from fairness.report import (
    NO_RATIO,
    SIGNED,
    group_metrics_figure,
    keep_report,
    render_html,
    report_content,
)
from fairness.report_store import (
    REPORT_REASON,
    STEM,
    kept_reports,
    latest_report,
    referenced,
    report_problems,
    report_reason,
    version_dir,
)
from fairness.results import AuditResult
from fairness.tableaudit import audit_frame
from riskcast.settings import get_settings
from serving.cli import build_app


def _audit(n: int = 900, seed: int = 0) -> AuditResult:
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.5, "A", "B")
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p).astype(int)
    frame = pl.DataFrame({"group": group, "y": y, "score": p})
    return audit_frame(
        frame, label="y", score="score", protected=["group"], threshold=0.35,
        references={"group": "A"}, min_group_size=50, n_boot=30,
    )  # fmt: skip


@pytest.fixture(scope="module")
def audit() -> AuditResult:
    return _audit()


def _content(audit: AuditResult, population: str | None = "adults with a record") -> Any:
    extra = {"population": population} if population else {}
    return report_content(
        audit, title="Fairness audit of m v1", model_version="m v1", data_digests={"test": "0"},
        policy_version="p", extra=extra,
    )  # fmt: skip


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- kept per audit
def test_two_audits_of_a_version_keep_two_reports(tmp_path: Path, audit: AuditResult) -> None:
    folder = version_dir(tmp_path, "m", "1")
    first = keep_report(_content(audit), folder)
    second = keep_report(_content(audit, "someone else"), folder)
    assert first.audit_id and second.audit_id and first.audit_id != second.audit_id
    assert [p.name for p in kept_reports(folder)] == sorted([first.audit_id, second.audit_id])
    for written in (first, second):  # nothing overwritten: each file has the hash returned
        assert written.json_path.is_file() and written.html_path.is_file()
        assert _sha(written.json_path) == written.sha256 == written.json_sha256
        assert written.audit_id is not None and written.audit_id.endswith(written.sha256[:12])
        page = written.html_path.read_text("utf-8")  # the HTML states the one hash and the id
        assert written.sha256 in page and written.audit_id in page
    assert latest_report(folder) == second.json_path.parent
    # the latest is also where readers looked before reports were kept per audit
    assert _sha(folder / f"{STEM}.json") == second.sha256


def test_latest_report_falls_back_to_a_report_from_before_audit_ids(tmp_path: Path) -> None:
    folder = version_dir(tmp_path, "m", "2")
    assert latest_report(folder) is None
    folder.mkdir(parents=True)
    (folder / f"{STEM}.json").write_text("{}", "utf-8")
    assert latest_report(folder) == folder


# --------------------------------------------------------------------------- ledger side
class _Entry:
    def __init__(self, seq: int, reasons: list[str], sha: str | None) -> None:
        self.seq, self.reasons, self.report_sha256 = seq, reasons, sha


def test_report_problems_name_changed_missing_and_outside(
    tmp_path: Path, audit: AuditResult
) -> None:
    kept = keep_report(_content(audit), version_dir(tmp_path, "m", "1"))
    reason = report_reason(kept.json_path, tmp_path)
    assert reason.startswith(REPORT_REASON) and reason.endswith(f"{kept.audit_id}/{STEM}.json")
    good = _Entry(1, ["PASS x", reason], kept.sha256)
    assert referenced(good) == reason[len(REPORT_REASON) :]
    legacy = _Entry(2, ["no report kept"], "ab" * 32)  # before reports were kept: not checked
    outside = _Entry(3, [f"{REPORT_REASON}../../etc/passwd"], "ab" * 32)
    assert report_problems([good, legacy], tmp_path) == []
    assert report_problems([outside], tmp_path) == [
        f"seq 3: report path '../../etc/passwd' lies outside {(tmp_path / 'reports').resolve()}"
    ]

    kept.json_path.write_text(kept.json_path.read_text("utf-8") + " ", "utf-8")
    (changed,) = report_problems([good], tmp_path)
    assert changed.startswith(f"seq 1: report m-v1/{kept.audit_id}/{STEM}.json was changed")
    assert f"the ledger recorded {kept.sha256[:12]}" in changed

    kept.json_path.unlink()
    (missing,) = report_problems([good], tmp_path)
    assert missing == (
        f"seq 1: report m-v1/{kept.audit_id}/{STEM}.json is missing (the ledger recorded "
        f"sha256 {kept.sha256[:12]}…)"
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("RISKCAST_HOME", str(home))
    monkeypatch.delenv("RISKCAST_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def test_ledger_verify_fails_on_a_tampered_or_missing_report(
    home: Path, audit: AuditResult
) -> None:
    kept = keep_report(_content(audit), version_dir(home, "m", "1"))
    ledger = open_ledger()
    ledger.append(
        "audit", actor="ana", role="auditor", version="1", decision="pass",
        reasons=["PASS", report_reason(kept.json_path, home)], report_sha256=kept.sha256,
    )  # fmt: skip
    ledger.dispose()
    runner, app = CliRunner(), build_app()
    intact = runner.invoke(app, ["ledger", "verify"])
    assert intact.exit_code == 0, intact.output
    assert intact.stdout.startswith("ledger intact: 1 entries")

    kept.json_path.write_text("{}", "utf-8")  # tampered
    broken = runner.invoke(app, ["ledger", "verify"])
    assert broken.exit_code == 1
    assert "ledger NOT intact" in broken.stderr
    assert f"seq 1: report m-v1/{kept.audit_id}/{STEM}.json was changed" in broken.stderr

    kept.json_path.unlink()  # deleted
    gone = runner.invoke(app, ["ledger", "verify"])
    assert gone.exit_code == 1 and "is missing" in gone.stderr


# --------------------------------------------------------------------------- the report page
def test_signed_quantities_get_no_ratio(audit: AuditResult) -> None:
    assert "calibration_gap" in SIGNED
    page = render_html(_content(audit))
    rows = re.findall(r"<tr><td>B</td><td>calibration gap</td><td>(.*?)</td><td>(.*?)</td>", page)
    assert rows, "the calibration gap's disparity row is in the report"
    for difference, ratio in rows:
        assert ratio == NO_RATIO and re.match(r"-?\d", difference)
    fpr = re.findall(r"<tr><td>B</td><td>false positive rate</td><td>.*?</td><td>(.*?)</td>", page)
    assert fpr and all(r != NO_RATIO for r in fpr)  # unsigned rates keep their ratio


def test_the_report_has_contents_and_states_its_population(audit: AuditResult) -> None:
    page = render_html(_content(audit), "f" * 64, "20260101T000000000000Z-ffffffffffff")
    nav = re.search(r"<nav class='toc'>(.*?)</nav>", page, re.S)
    assert nav is not None
    targets = re.findall(r"href='#([^']+)'", nav.group(1))
    assert len(targets) >= 5 and len(set(targets)) == len(targets)
    for target in targets:  # every entry leads to a heading
        assert f"id='{target}'" in page
    assert "Population audited" in nav.group(1) and "group (reference: A)" in nav.group(1)
    assert "adults with a record. Audited: 900 rows" in page
    undeclared = render_html(_content(audit, population=None))
    assert "No population of validity is declared" in undeclared and "900 rows" in undeclared
    assert "f" * 64 in page and "20260101T000000000000Z-ffffffffffff" in page


def test_figure_titles_do_not_overlap(audit: AuditResult) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = group_metrics_figure(audit.attributes[0], "threshold")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    suptitle = getattr(fig, "_suptitle", None)  # matplotlib keeps it there
    assert suptitle is not None
    boxes.append(suptitle.get_window_extent(renderer))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)


def test_audit_ids_sort_by_time(tmp_path: Path, audit: AuditResult) -> None:
    from fairness.report_store import keep

    folder = tmp_path / "v"
    early = datetime(2026, 1, 1, tzinfo=UTC)
    later = keep(_content(audit), render_html, folder, at=early + timedelta(microseconds=1))
    first = keep(_content(audit, "x"), render_html, folder, at=early)
    assert kept_reports(folder) == [first.folder, later.folder]
