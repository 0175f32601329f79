"""`riskcast audit-table` reproduces ProPublica's COMPAS error rates on all 7,214 rows."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from experiments.compas.features import DATA
from serving.cli import build_app


def test_audit_table_reproduces_propublica(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(
        build_app(),
        [
            "audit-table",
            "--data", str(DATA),
            "--label", "two_year_recid",
            "--score", "decile_score",
            "--threshold", "5",
            "--protected", "race",
            "--reference", "race=Caucasian",
            "--n-boot", "40",
            "--out", str(tmp_path / "report"),
            "--json", str(summary),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    race = json.loads(summary.read_text())["race"]
    assert race["reference"] == "Caucasian"
    groups = race["groups"]
    assert sum(g["n"] for g in groups.values()) == 7214
    black, white = groups["African-American"], groups["Caucasian"]
    assert round(100 * black["fpr"]["value"], 1) == 44.8
    assert round(100 * white["fpr"]["value"], 1) == 23.5
    assert round(100 * black["fnr"]["value"], 1) == 28.0
    assert round(100 * white["fnr"]["value"], 1) == 47.7
    assert black["fpr"]["low"] < black["fpr"]["value"] < black["fpr"]["high"]
    assert groups["Native American"]["status"] == "insufficient_evidence"
    html = (tmp_path / "report" / "fairness-report.html").read_text()
    assert "data:image/png;base64," in html and "African-American" in html
    content = json.loads((tmp_path / "report" / "fairness-report.json").read_text())
    assert content["decision"]["outcome"] == "fail"  # FPR disparity far beyond tolerance
    assert any("fpr disparity by race" in r for r in content["decision"]["reasons"])
    assert content["data_digests"]["compas-scores-two-years.csv"]
