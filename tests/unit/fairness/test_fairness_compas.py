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


def test_riskcast_beside_compas_same_list_length_and_paired_gaps() -> None:
    import numpy as np

    from experiments.compas.beside import (
        audit_beside_compas,
        beside_json,
        beside_markdown,
        matched_threshold,
        scored_table,
    )
    from fairness.tableaudit import summary_table

    assert matched_threshold(np.array([0.1, 0.9, 0.5, 0.7]), 0.5) == 0.7
    rng = np.random.default_rng(0)
    n = 600
    race = rng.choice(["Caucasian", "African-American", "Asian"], n, p=[0.45, 0.5, 0.05])
    y = rng.integers(0, 2, n).astype(np.float64)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    decile = np.clip((10 * p + rng.normal(0, 2, n)).round(), 1, 10)
    res = audit_beside_compas(scored_table(race, y, p, decile), n_boot=50, seed=1)
    assert abs(res["riskcast_share_flagged"] - res["compas_share_flagged"]) < 0.01
    gaps = {(g["group"], g["metric"]): g for g in res["gaps"]}
    assert {g for g, _ in gaps} == {"African-American"}  # Asian (< 50 people) left out
    fpr = gaps[("African-American", "fpr")]
    lo, hi = fpr["abs_gap_difference_ci"]
    assert lo <= hi and fpr["verdict"] in {
        "riskcast fairer", "COMPAS fairer", "no clear difference"
    }  # fmt: skip
    assert res["mitigation"]["riskcast"].group_thresholds.accuracy_cost is not None
    text = beside_markdown(res)
    assert "| Asian | " in text and "insufficient" in text
    stored = json.loads(json.dumps(beside_json(res)))  # what results.json holds
    assert stored["audits"] == {k: summary_table(a) for k, a in res["audits"].items()}
    assert stored["mitigation"]["riskcast"]["group_thresholds"]["accuracy_cost"] is not None
