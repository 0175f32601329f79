"""`riskcast evidence-pack`: on a trained, audited and promoted tiny home with decisions, the
pack holds every document filled from the real sources, its manifest matches its files, the
ledger records it and still verifies, and a person's export holds their data only."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fairness.ledger import open_ledger
from riskcast.errors import InputError, NotFoundError
from serving.cli import build_app
from serving.evidence.build import build_evidence_pack
from serving.evidence.documents import hanley_mcneil, wilson
from serving.evidence.pack import MANIFEST, pack_problems
from serving.evidence.yaml_notes import comment_notes
from tests.service_helpers import ServiceEnv, environment, serve, settings_for
from tests.ui_helpers import private_home

MODEL = "recidivism-risk"
DOCS = ("technical_documentation", "impact_assessment", "monitoring_plan", "person_export")


@dataclass
class Pack:
    home: Path
    folder: Path
    output: str
    version: str
    person: str
    other: str
    report: dict[str, Any]

    def doc(self, kind: str) -> dict[str, Any]:
        return json.loads((self.folder / f"{kind}.json").read_text("utf-8"))


def section(doc: dict[str, Any], title: str) -> dict[str, Any]:
    return next(s for s in doc["sections"] if s["title"] == title)


def _small_home_policy(path: Path) -> list[str]:
    """The shipped policy with groups of 5 judged (the tiny home's test snapshot has about 50
    persons: under the shipped minimum every group would be insufficient evidence)."""
    import yaml

    from riskcast.configio import find_config

    raw = yaml.safe_load(find_config("fairness.yaml").read_text("utf-8"))
    raw["min_group_size"] = 5
    raw["bootstrap"]["n_boot"] = 100
    path.write_text(yaml.safe_dump(raw), "utf-8")
    return ["--policy", str(path)]


@pytest.fixture(scope="module")
def home_env(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """A private copy of the service home, audited and promoted (an auditor's override: the
    tiny home lacks evidence for some groups), with three decisions by an officer."""
    home = private_home(service_env, tmp_path_factory, "evidence")
    version = service_env.model_version
    env = {"RISKCAST_HOME": str(home), "MLFLOW_TRACKING_URI": None, "RISKCAST_DATABASE_URL": None}
    with environment(**env):
        from training.tracking import tracking_session

        with tracking_session(f"sqlite:///{(home / 'mlflow.db').resolve()}") as client:
            client.delete_registered_model_alias(MODEL, "champion")  # promoted below, for real
        runner = CliRunner()
        policy = _small_home_policy(home.parent / "fairness.yaml")
        audited = runner.invoke(build_app(), ["audit", version, "--by", "dan", *policy])
        assert audited.exit_code == 0, audited.output + repr(audited.exception)
        with environment(RISKCAST_TOKEN=service_env.tokens["ada"]):
            promoted = runner.invoke(
                build_app(),
                ["promote", version, "--override", "--reason", "tiny test home, reviewed", *policy],
            )
        assert promoted.exit_code == 0, promoted.output + repr(promoted.exception)
        from serving.app import create_app

        first, second = service_env.persons["AST"][:2]
        decisions = [
            {"person_id": first, "action": "contacted", "purpose": "case_review"},
            {"person_id": first, "action": "disagreed", "purpose": "case_review",
             "reason": "moved away last spring, the record is out of date"},
            {"person_id": second, "action": "no_action", "purpose": "case_review"},
        ]  # fmt: skip
        with serve(create_app(settings_for(home))) as c:
            for body in decisions:
                r = c.post("/v1/decisions", json_body=body, token=service_env.tokens["olga"])
                assert r.status_code == 201, r.text
        yield home, version


@pytest.fixture(scope="module")
def pack(home_env: tuple[Path, str], service_env: ServiceEnv) -> Pack:
    home, version = home_env
    first, second = service_env.persons["AST"][:2]
    out = home.parent / "pack"
    with environment(RISKCAST_HOME=str(home), MLFLOW_TRACKING_URI=None, RISKCAST_DATABASE_URL=None):
        result = CliRunner().invoke(
            build_app(),
            ["evidence-pack", version, "--out", str(out), "--person", first, "--by", "ada"],
        )
    assert result.exit_code == 0, result.output + repr(result.exception)
    kept = sorted((home / "reports" / f"{MODEL}-v{version}").glob("*Z-*/fairness-report.json"))
    report = json.loads(kept[-1].read_text("utf-8"))
    return Pack(home, out, result.output, version, first, second, report)


def test_every_document_is_written_as_html_and_json(pack: Pack) -> None:
    for kind in DOCS:
        doc = pack.doc(kind)
        assert doc["kind"] == kind and doc["version"] == pack.version
        page = (pack.folder / f"{kind}.html").read_text("utf-8")
        raw = (pack.folder / f"{kind}.json").read_bytes()
        assert hashlib.sha256(raw).hexdigest() in page  # the page states its content's hash
        for s in doc["sections"]:
            assert f">{s['title']}</h2>" in page


def test_technical_documentation_is_filled_from_the_sources(pack: Pack) -> None:
    from features.frames.definitions import load_spec
    from training.tracking import download_risk_model

    doc = pack.doc("technical_documentation")
    uri = f"sqlite:///{(pack.home / 'mlflow.db').resolve()}"
    model = download_risk_model(MODEL, pack.version, home=pack.home, uri=uri)
    assert model.scope is not None
    population = section(doc, "Population of validity")["paragraphs"][0]
    assert population.startswith(model.scope.describe())
    assert population == pack.report["population"]  # the audit measured the same population
    assert (
        "Decision support for prevention officers"
        in section(doc, "Intended purpose")["paragraphs"][0]
    )
    inputs = section(doc, "Data and features")["tables"][0]["rows"]
    spec = load_spec()
    assert [r["name"] for r in inputs] == list(model.feature_names)
    assert all(r["source"] == spec.feature(r["name"]).source for r in inputs)
    # the out-of-time metrics are the run's, with an interval around the model's AUC
    with environment(RISKCAST_HOME=str(pack.home), MLFLOW_TRACKING_URI=None):
        from serving.evidence.sources import run_record

        metrics = run_record(pack.report["run_id"], uri, MODEL, pack.version).metrics
    rows = section(doc, "Out-of-time metrics")["tables"][0]["rows"]
    model_row = next(r for r in rows if r["scorer"] == "model")
    auc, low, high = map(float, re.findall(r"[0-9.]+", model_row["AUC [95 % CI]"]))
    assert auc == pytest.approx(metrics["test.model.auc"], abs=5e-4) and low < auc < high
    # per-group rows are the audit's groups, with its numbers and intervals
    groups = section(doc, "Per-group calibration and error rates")["tables"][0]["rows"]
    audited = [(a["attribute"], g) for a in pack.report["audit"]["attributes"] for g in a["groups"]]
    assert len(groups) == len(audited)
    with_interval = 0
    for row, (attribute, g) in zip(groups, audited, strict=True):
        assert row["attribute"] == attribute and row["n"] == g["n"]
        fpr = g["points"].get("threshold", {}).get("fpr", {})
        shown = row["false positive rate at threshold"]
        if fpr.get("value") is None:
            assert shown is None
        elif fpr.get("low") is None:
            assert shown == f"{fpr['value']:.3f}"
        else:
            with_interval += 1
            assert shown == f"{fpr['value']:.3f} [{fpr['low']:.3f}, {fpr['high']:.3f}]"
    assert with_interval > 0


def test_impact_assessment_names_risks_oversight_and_complaints(pack: Pack) -> None:
    doc = pack.doc("impact_assessment")
    risks = section(doc, "Risks per group")["tables"][0]["rows"]
    judged = [
        d for a in pack.report["audit"]["attributes"] for d in a["disparities"]
        if d["point"] == "threshold" and d["status"] == "ok"
        and d["difference"]["value"] is not None
    ]  # fmt: skip
    assert len(risks) == len(judged) > 0
    oversight = section(doc, "Oversight measures")
    assert oversight["facts"]["champion"] == "this version"
    assert oversight["facts"]["stop switch"].startswith("off")
    counts = oversight["tables"][0]["rows"]
    assert sum(r["decisions"] for r in counts) == 3 and sum(r["overrides"] for r in counts) == 1
    assert all(set(r) == {"region", "district", "action", "decisions", "overrides"} for r in counts)
    kinds = [r["kind"] for r in oversight["tables"][1]["rows"]]
    assert "audit" in kinds and "override" in kinds
    assert section(doc, "What happens on a complaint")["items"]


def test_monitoring_plan_states_thresholds_with_their_rationale(
    pack: Pack, service_env: ServiceEnv
) -> None:
    doc = pack.doc("monitoring_plan")
    rows = {r["setting"]: r for r in section(doc, "Thresholds and rationale")["tables"][0]["rows"]}
    assert rows["drift.psi_alert"]["value"] == "0.25"
    assert "major shift" in rows["drift.psi_alert"]["rationale"]
    assert [r["role"] for r in section(doc, "Who acts")["tables"][0]["rows"]][:3] == [
        "data_scientist", "auditor", "admin",
    ]  # fmt: skip
    results = section(doc, "Monitoring results on record")
    check = _latest_check(pack)
    if check is None:
        assert "no monitoring check on record" in doc["gaps"] and not results["tables"]
    else:  # the newest check's figures, per group only
        assert results["facts"]["as of"] == check.result.as_of.isoformat()
        figures = results["tables"][0]["rows"]
        assert figures and all("=" in r["group"] for r in figures)
        assert not any("unit=" in str(r["labels"]) for r in figures)
    text = (pack.folder / "monitoring_plan.json").read_text("utf-8")
    ids = [p for persons in service_env.persons.values() for p in persons]
    assert not any(f'"{p}"' in text for p in ids)  # no person leaves through the plan


def _latest_check(pack: Pack) -> Any:
    """The newest monitoring check of the version, or None (also without a monitoring
    store in this deployment)."""
    try:
        from fairness.monitoring.store import open_monitoring_store
    except ImportError:
        return None
    with environment(RISKCAST_HOME=str(pack.home), RISKCAST_DATABASE_URL=None):
        store = open_monitoring_store()
        try:
            return store.latest(MODEL, pack.version)
        finally:
            store.dispose()


def test_the_manifest_matches_the_files_and_the_ledger_records_it(pack: Pack) -> None:
    manifest = (pack.folder / MANIFEST).read_bytes()
    listed = json.loads(manifest)["files"]
    on_disk = sorted(
        p.relative_to(pack.folder).as_posix()
        for p in pack.folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
    )
    assert sorted(f["path"] for f in listed) == on_disk
    assert "annex/fairness-report.json" in on_disk
    for f in listed:
        assert hashlib.sha256((pack.folder / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert pack_problems(pack.folder) == []
    sha = hashlib.sha256(manifest).hexdigest()
    assert f"manifest sha256: {sha}" in pack.output
    with environment(RISKCAST_HOME=str(pack.home), RISKCAST_DATABASE_URL=None):
        entry = open_ledger().last(kind="evidence_pack")
        assert entry is not None and entry.report_sha256 == sha and entry.actor == "ada"
        assert pack.person not in json.dumps(entry.model_dump(mode="json"))
        verified = CliRunner().invoke(build_app(), ["ledger", "verify"])
    assert verified.exit_code == 0, verified.output


def test_tampering_with_a_file_is_found(pack: Pack, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(pack.folder, copy)
    page = copy / "impact_assessment.html"
    page.write_text(page.read_text("utf-8").replace("Risks", "Chances"), "utf-8")
    assert pack_problems(copy) == ["impact_assessment.html: sha256 differs from the manifest"]


def test_the_person_export_holds_their_decisions_and_explanation_only(pack: Pack) -> None:
    doc = pack.doc("person_export")
    rows = section(doc, "Decisions")["tables"][0]["rows"]
    assert [r["action"] for r in rows] == ["contacted", "disagreed"]
    assert rows[1]["override"] is True and "moved away" in rows[1]["reason"]
    assert all(r["probability"] is not None and r["model_version"] == pack.version for r in rows)
    explained = section(doc, "The score and what it rests on")
    assert "a probability of" in explained["paragraphs"][0] and explained["items"]
    text = (pack.folder / "person_export.json").read_text("utf-8")
    text += (pack.folder / "person_export.html").read_text("utf-8")
    assert pack.person in text and pack.other not in text
    with environment(RISKCAST_HOME=str(pack.home), RISKCAST_DATABASE_URL=None):
        from serving.access_log import open_access_log

        log = open_access_log()
        exports = [e for e in log.entries() if e.action == "evidence-export"]
        log.dispose()
    assert len(exports) == 1 and exports[0].purpose == "subject_access"
    assert exports[0].params["decisions"] == 2


def test_unknown_version_or_person_is_refused_by_name(pack: Pack) -> None:
    env = {"RISKCAST_HOME": str(pack.home), "MLFLOW_TRACKING_URI": None}
    with environment(**env, RISKCAST_DATABASE_URL=None):
        seq = open_ledger().last()
        with pytest.raises(NotFoundError, match="version 424242"):
            build_evidence_pack("424242", pack.home.parent / "none-1")
        with pytest.raises(InputError, match="'v1'"):
            build_evidence_pack("v1", pack.home.parent / "none-2")
        with pytest.raises(NotFoundError, match="person 'nobody-here'"):
            build_evidence_pack(pack.version, pack.home.parent / "none-3", person="nobody-here")
        assert open_ledger().last() == seq  # nothing recorded for a refused pack
    assert not (pack.home.parent / "none-3").exists()


def test_rationale_comments_are_read_per_key() -> None:
    text = (
        "drift:\n  # opens the section\n  # on two lines\n"
        "  psi_alert: 0.25   # a major shift\n"
        "                    # (continued)\n"
        "  name: 'a # not a comment'\n"
        "top: 1  # top level\n"
    )
    assert comment_notes(text) == {
        "drift": "opens the section on two lines",
        "drift.psi_alert": "a major shift (continued)",
        "top": "top level",
    }


def test_intervals_from_logged_figures() -> None:
    """Wilson against its textbook value; Hanley-McNeil's width against the spread of AUCs
    simulated at the same AUC and class sizes (binormal scores)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    low, high = wilson(30, 100) or (0.0, 0.0)
    assert low == pytest.approx(0.2189, abs=1e-3) and high == pytest.approx(0.3958, abs=1e-3)
    rng = np.random.default_rng(7)
    shift = 1.19  # binormal, unit variances: AUC = Phi(shift / sqrt 2) = 0.80
    y = np.r_[np.ones(100), np.zeros(400)]
    aucs = [
        roc_auc_score(y, np.r_[rng.normal(shift, 1, 100), rng.normal(0, 1, 400)])
        for _ in range(400)
    ]
    low, high = hanley_mcneil(float(np.mean(aucs)), 100, 400) or (0.0, 0.0)
    assert (high - low) / (2 * 1.959964) == pytest.approx(np.std(aucs), rel=0.15)
    assert hanley_mcneil(0.8, 0, 10) is None and wilson(0, 0) is None
