"""fairness.results and fairness.validation: the audit's typed results validate, refuse what
cannot be, round-trip through the report's JSON with the keys it always had, and are read
through attributes by the gate and the report; bad inputs are refused naming the field."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from fairness.gate import FAIL, PASS, decide
from fairness.metrics import audit_attribute, operating_points
from fairness.policy import FairnessPolicy, group_columns, load_policy
from fairness.report import render_html, report_content
from fairness.results import (
    INSUFFICIENT,
    OK,
    AttributeAudit,
    AuditResult,
    Disparity,
    Estimate,
    GateCheck,
    GateDecision,
    GroupMetrics,
    ResultModel,
)
from fairness.tableaudit import audit_frame, summary_table
from riskcast.errors import InputError


@pytest.fixture(scope="module")
def policy() -> FairnessPolicy:
    return load_policy()


def _frame(n: int = 1200, bias: float = 0.0, seed: int = 0) -> pl.DataFrame:
    """Groups A, B (large) and C (20 rows: insufficient evidence); ``bias`` inflates B."""
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.5, "A", "B")
    group[:20] = "C"
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p).astype(int)
    score = np.clip(p + np.where(group == "B", bias, 0.0), 0, 1)
    return pl.DataFrame({"group": group, "y": y, "score": score})


def _audit(frame: pl.DataFrame) -> AuditResult:
    return audit_frame(
        frame, label="y", score="score", protected=["group"], threshold=0.35,
        references={"group": "A"}, min_group_size=50, n_boot=40,
    )  # fmt: skip


@pytest.fixture(scope="module")
def audit() -> AuditResult:
    return _audit(_frame())


# --------------------------------------------------------------------------- the models
def test_the_audit_is_typed_and_marks_small_groups(audit: AuditResult) -> None:
    attr = audit.attribute("group")
    assert isinstance(attr, AttributeAudit) and attr.reference == "A"
    small = attr.group("C")
    assert isinstance(small, GroupMetrics)
    assert small.status == INSUFFICIENT and small.n == 20 and not small.sufficient
    assert all(e.value is None for e in small.at("threshold").values())
    assert [g.group for g in attr.insufficient_groups] == ["C"]
    fpr = attr.disparities_of("fpr", "threshold")
    assert {d.group for d in fpr} == {"B", "C"}
    by_group = {d.group: d for d in fpr}
    assert isinstance(by_group["B"], Disparity) and by_group["B"].status == OK
    assert by_group["B"].difference.has_interval
    assert by_group["C"].status == INSUFFICIENT and by_group["C"].difference == Estimate()


def test_models_refuse_impossible_values() -> None:
    with pytest.raises(ValidationError, match="both low and high"):
        Estimate(value=0.1, low=0.0)
    with pytest.raises(ValidationError, match="above high"):
        Estimate(value=0.1, low=0.2, high=0.1)
    with pytest.raises(ValidationError, match="finite"):
        Estimate(value=float("nan"))
    with pytest.raises(ValidationError, match="lacks evidence yet carries values"):
        GroupMetrics(
            group="C", n=3, status=INSUFFICIENT, points={"threshold": {"fpr": Estimate(value=0.2)}}
        )
    with pytest.raises(ValidationError, match="lacks evidence yet carries values"):
        Disparity(
            group="C", point="threshold", metric="fpr", status=INSUFFICIENT,
            difference=Estimate(value=0.1), ratio=Estimate(),
        )  # fmt: skip
    ok = GroupMetrics(group="A", n=100, status=OK)
    with pytest.raises(ValidationError, match="reference 'Z' is not a group"):
        AttributeAudit(attribute="g", reference="Z", groups=[ok])
    with pytest.raises(ValidationError, match="extra"):
        Estimate.model_validate({"value": 0.1, "lo": 0.0})
    with pytest.raises(ValidationError, match="frozen"):
        ok.n = 5  # type: ignore[misc]


def test_the_audit_round_trips_through_the_reports_json(
    audit: AuditResult, policy: FairnessPolicy
) -> None:
    dumped = json.loads(json.dumps(audit.model_dump(mode="json")))
    again = AuditResult.model_validate(dumped)
    assert again == audit and again.model_dump(mode="json") == dumped
    # the keys readers of stored reports know
    assert list(dumped) == [
        "label", "score", "threshold", "capacities", "min_group_size", "bootstrap", "overall",
        "attributes",
    ]  # fmt: skip
    attr = dumped["attributes"][0]
    assert list(attr) == [
        "attribute", "reference", "n", "scores_are_probabilities", "groups", "disparities",
        "composition",
    ]  # fmt: skip
    assert list(attr["groups"][0]) == [
        "group", "n", "positives", "reference", "status", "overall", "points",
        "calibration_slope", "calibration_bins",
    ]  # fmt: skip
    assert list(attr["disparities"][0]) == [
        "group", "point", "metric", "status", "difference", "ratio",
    ]  # fmt: skip
    assert set(attr["disparities"][0]["difference"]) == {"value", "low", "high"}
    assert dumped["bootstrap"] == {"n_boot": 40, "confidence": 0.95, "seed": 0}

    content = report_content(
        audit, title="t", model_version=None, data_digests={}, policy_version="p",
        decision=decide(audit, None, policy),
    )  # fmt: skip
    stored = json.loads(json.dumps(content, default=str))
    assert stored["audit"] == dumped
    assert set(stored["decision"]) == {"outcome", "reasons", "checks"}  # no champion: not set
    assert AuditResult.model_validate(stored["audit"]) == audit


def test_the_decision_names_the_champion_only_when_compared() -> None:
    check = GateCheck(name="x", outcome=PASS, detail="fine")
    assert "champion" not in GateDecision(outcome=PASS, checks=[check]).as_dict()
    versus = GateDecision(outcome=PASS, checks=[check], champion=None).as_dict()
    assert versus["champion"] is None and versus["reasons"] == ["PASS: x: fine"]


# --------------------------------------------------------------------------- attribute access
def test_results_have_no_mapping_access(audit: AuditResult) -> None:
    """Results are read through attributes only: no ``result["key"]``, no ``.get``, and a
    model is never equal to a dict (so every reader, the gate and the report included, reads
    attributes; the JSON on disk is ``model_dump(mode="json")``)."""
    for name in ("__getitem__", "get", "keys", "values", "items", "__len__"):
        assert not hasattr(ResultModel, name), name
    with pytest.raises(TypeError, match="not subscriptable"):
        audit["attributes"]  # type: ignore[index]
    assert Estimate() != {"value": None, "low": None, "high": None}  # type: ignore[comparison-overlap]
    assert Estimate().model_dump() == {"value": None, "low": None, "high": None}


def test_gate_report_and_summary_read_attributes(policy: FairnessPolicy) -> None:
    fair, biased = _audit(_frame()), _audit(_frame(bias=0.2))
    decision = decide(biased, fair, policy)
    assert decision.outcome == FAIL
    failed = {c.name for c in decision.checks if c.outcome == FAIL}
    assert "fpr disparity by group vs A" in failed and "disparities vs champion" in failed
    content = report_content(
        biased, title="t", model_version=None, data_digests={"d": "0"}, policy_version="p",
        decision=decision,
    )  # fmt: skip
    page = render_html(content)
    assert "group (reference: A)" in page and "insufficient evidence" in page
    summary = summary_table(biased)
    assert summary["group"]["groups"]["C"]["status"] == INSUFFICIENT


def test_the_gate_judges_a_stored_audit_like_the_typed_one(
    audit: AuditResult, policy: FairnessPolicy
) -> None:
    typed = decide(audit, None, policy)
    stored = decide(json.loads(json.dumps(audit.model_dump(mode="json"))), None, policy)
    assert stored == typed


def test_the_gate_reads_a_disparity_beyond_its_tolerance(policy: FairnessPolicy) -> None:
    """A hand-built typed audit: B's FPR difference interval wholly above the tolerance."""
    est = Estimate(value=0.1, low=0.05, high=0.15)
    rows = [
        GroupMetrics(group=g, n=500, status=OK, points={"threshold": {"fpr": est}})
        for g in ("A", "B")
    ]
    far = Disparity(
        group="B", point="threshold", metric="fpr", status=OK,
        difference=Estimate(value=0.2, low=0.15, high=0.25), ratio=Estimate(value=3.0),
    )  # fmt: skip
    audit = AuditResult(
        overall={"ece": 0.01},
        attributes=[AttributeAudit(attribute="g", reference="A", groups=rows, disparities=[far])],
    )
    decision = decide(audit, None, policy)
    check = next(c for c in decision.checks if c.name == "fpr disparity by g vs A")
    assert (decision.outcome, check.outcome) == (FAIL, FAIL)
    assert check.detail.startswith("B: difference +0.200 [+0.150, +0.250] beyond")
    near = far.model_copy(update={"difference": Estimate(value=0.2, low=-0.01, high=0.25)})
    calm = audit.model_copy(
        update={"attributes": [audit.attributes[0].model_copy(update={"disparities": [near]})]}
    )
    assert decide(calm, None, policy).outcome == PASS


# --------------------------------------------------------------------------- validation
Y = np.array([1.0, 0.0, 1.0, 0.0])
S = np.array([0.9, 0.2, 0.6, 0.4])
G = np.array(["A", "A", "B", "B"])


@pytest.mark.parametrize(
    ("y", "s", "g", "field"),
    [
        (Y[:3], S, G, "groups"),
        (np.array([1.0, np.nan, 1.0, 0.0]), S, G, "y_true has 1 missing"),
        (np.array([1.0, 2.0, 1.0, 0.0]), S, G, "y_true (outcomes) must hold only 0 and 1"),
        (Y, np.array([0.9, np.inf, 0.6, 0.4]), G, "y_score (scores) must be finite"),
    ],
)
def test_audit_inputs_are_refused_naming_the_field(
    y: np.ndarray, s: np.ndarray, g: np.ndarray, field: str
) -> None:
    with pytest.raises(InputError, match=re.escape(field)):
        audit_attribute("g", y, s, g, operating_points(S, 0.5, []), min_group_size=1, n_boot=5)


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (pl.DataFrame({"y": [1, 0], "score": [0.5, 0.2]}), "no column(s) grp"),
        (pl.DataFrame({"y": [1, 2], "score": [0.5, 0.2], "grp": ["a", "b"]}), "'y' must hold"),
        (pl.DataFrame({"y": [1, None], "score": [0.5, 0.2], "grp": ["a", "b"]}), "'y' has 1"),
        (
            pl.DataFrame({"y": [1, 0], "score": [0.5, float("nan")], "grp": ["a", "b"]}),
            "score column 'score' must hold finite",
        ),
    ],
)
def test_a_table_is_refused_naming_the_column(frame: pl.DataFrame, field: str) -> None:
    with pytest.raises(InputError, match=re.escape(field)):
        audit_frame(frame, label="y", score="score", protected=["grp"], threshold=0.5, n_boot=5)


def test_a_frame_without_a_protected_column_is_refused(policy: FairnessPolicy) -> None:
    with pytest.raises(InputError, match=re.escape("lacks protected column(s) age_at, ethnicity")):
        group_columns(pl.DataFrame({"sex": ["F"], "region": ["AST"], "settlement": ["x"]}), policy)


def test_the_old_names_still_resolve_to_the_shared_ones() -> None:
    from fairness.policy import MODEL_NAME
    from fairness.promotion import CHAMPION
    from riskcast import names

    assert MODEL_NAME == names.PERSON_MODEL and CHAMPION == names.CHAMPION
