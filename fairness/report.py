"""The audit report: one self-contained HTML file (plots as base64 PNG) and the same content
as JSON, with their sha256.

`report_content(audit, ...)` is pure (the typed `fairness.results.AuditResult` and report
sections in, the JSON content out: ``model_dump(mode="json")`` at this edge, so the keys stay
those readers of stored reports know); `figures(content)` builds matplotlib figures without
pyplot; `render_html(content)` returns the page (a table of contents, the population audited, the
decision, then per attribute its tables and figures), reading the content's audit back into its
typed model; `write_report(content, out_dir)` writes ``<stem>.html`` and ``<stem>.json``
(atomically, `riskcast.atomic`) and returns the paths and hashes; `keep_report` writes a new
audit's report into a folder of its own (`fairness.report_store`: the JSON's sha256 is the
report's one hash). `log_report_to_mlflow` attaches both to a run (I/O at the edge).

Signed quantities (`SIGNED`: the calibration gap, mean predicted minus observed) get
differences only: a ratio of two numbers that may have either sign (``-4.979``) means nothing.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pydantic_core import to_jsonable_python

from fairness.metrics import OVERALL_POINT, THRESHOLD_POINT
from fairness.report_store import keep
from fairness.results import (
    AttributeAudit,
    AuditResult,
    Estimate,
    GateDecision,
    MitigationSummary,
    MitigationWhatIf,
    as_audit,
)
from riskcast.atomic import write_text
from riskcast.digest import sha256_file

PLOTTED = ("selection_rate", "fpr", "fnr", "ppv")
LABELS = {
    "selection_rate": "selection rate",
    "fpr": "false positive rate",
    "fnr": "false negative rate",
    "ppv": "positive predictive value",
    "auc": "AUC",
    "base_rate": "base rate",
    "mean_predicted": "mean predicted",
    "calibration_gap": "calibration gap",
}
SIGNED = frozenset({"calibration_gap"})
"""Metrics whose values may be negative: their disparities are differences only."""
NO_RATIO = "– (signed: difference only)"


@dataclass(frozen=True)
class WrittenReport:
    """A written report. Its one hash is the JSON's (`sha256`): the JSON holds the content,
    the HTML renders it and states that hash. ``audit_id``: the folder it is kept in (None for
    `write_report`, which writes where it is told)."""

    html_path: Path
    json_path: Path
    html_sha256: str
    json_sha256: str
    audit_id: str | None = None

    @property
    def sha256(self) -> str:
        """The report's hash as the ledger, the CLI and the page give it: the JSON's."""
        return self.json_sha256


def report_content(
    audit: AuditResult,
    *,
    title: str,
    model_version: str | None,
    data_digests: Mapping[str, str],
    policy_version: str | None,
    decision: GateDecision | Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The report's content (what the JSON holds and the HTML shows): plain JSON values, the
    audit and any typed section of ``extra`` (proxies, label bias, mitigation) dumped here."""
    if isinstance(decision, GateDecision):
        decision = decision.as_dict()
    sections: dict[str, Any] = to_jsonable_python(dict(extra or {}))
    return {
        "title": title,
        "created_at": (created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "model_version": model_version,
        "policy_version": policy_version,
        "data_digests": dict(data_digests),
        "decision": dict(decision) if decision else {"outcome": "not evaluated", "reasons": []},
        "notes": list(notes or []),
        "audit": audit.model_dump(mode="json"),
        **sections,
    }


# --------------------------------------------------------------------------- figures
def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def group_metrics_figure(attr: AttributeAudit, point: str) -> Figure:
    """Selection rate, FPR, FNR, PPV per group at ``point`` with CI whiskers."""
    rows = [r for r in attr.groups if r.sufficient]
    fig = Figure(figsize=(11, 0.45 * max(len(rows), 2) + 1.8), layout="constrained")
    axes = fig.subplots(1, len(PLOTTED), sharey=True)
    names = [r.group for r in rows]
    for ax, metric in zip(axes, PLOTTED, strict=True):
        for i, r in enumerate(rows):
            est = r.at(point)[metric]
            if est.value is None:
                continue
            lo = est.low if est.low is not None else est.value
            hi = est.high if est.high is not None else est.value
            colour = "tab:orange" if r.reference else "tab:blue"
            ax.errorbar(
                est.value,
                i,
                xerr=[[est.value - lo], [hi - est.value]],
                fmt="o",
                color=colour,
                capsize=3,
            )
        ax.set_title(_wrapped(LABELS[metric]), fontsize=9)
        ax.set_xlim(0, 1)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names, fontsize=8)
    fig.suptitle(
        _wrapped(f"{attr.attribute} at {point} (orange = reference; whiskers = CI)", 90),
        fontsize=10,
    )
    return fig


def _wrapped(title: str, width: int = 16) -> str:
    """A title broken into lines of at most ``width`` characters, so that the titles of
    neighbouring panels never run into each other."""
    return "\n".join(textwrap.wrap(title, width)) or title


def calibration_figure(attr: AttributeAudit) -> Figure | None:
    rows = [r for r in attr.groups if r.sufficient and r.calibration_bins]
    if not rows:
        return None
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for r in rows[:10]:
        bins = r.calibration_bins
        ax.plot(
            [b.mean_predicted for b in bins],
            [b.observed for b in bins],
            marker="o",
            markersize=3,
            label=f"{r.group} (n={r.n})",
        )
    ax.set_xlabel("mean predicted (decile of the group's scores)")
    ax.set_ylabel("observed rate")
    ax.set_title(_wrapped(f"calibration within {attr.attribute}", 50), fontsize=10)
    ax.legend(fontsize=7)
    return fig


def composition_figure(attr: AttributeAudit) -> Figure:
    comp = attr.composition
    bars = list(comp)
    groups = list(comp["population"])
    fig = Figure(figsize=(8, 0.4 * len(bars) + 1.5), layout="constrained")
    ax = fig.subplots()
    left = [0.0] * len(bars)
    for g in groups:
        widths = [comp[b].get(g, 0.0) for b in bars]
        ax.barh(bars, widths, left=left, label=g)
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the population / of the list")
    ax.set_title(_wrapped(f"list composition by {attr.attribute}", 60), fontsize=10)
    ax.legend(fontsize=7, ncol=min(len(groups), 4), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return fig


def figures(content: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Per attribute: ``[(caption, base64 png), ...]``."""
    audit = as_audit(content["audit"])
    out: dict[str, list[tuple[str, str]]] = {}
    points = [THRESHOLD_POINT] if audit.threshold is not None else []
    points += [f"top_{c:g}%" for c in audit.capacities][:1] if not points else []
    for attr in audit.attributes:
        imgs = [(f"group metrics at {p}", _png(group_metrics_figure(attr, p))) for p in points]
        cal = calibration_figure(attr)
        if cal is not None:
            imgs.append(("calibration by group", _png(cal)))
        imgs.append(("list composition at each capacity", _png(composition_figure(attr))))
        out[attr.attribute] = imgs
    return out


# --------------------------------------------------------------------------- HTML
def _fmt(est: Any) -> str:
    if isinstance(est, Estimate):
        est = est.model_dump()
    if isinstance(est, Mapping):
        if est.get("value") is None:
            return "–"
        ci = (
            f" [{est['low']:.3f}, {est['high']:.3f}]"
            if est.get("low") is not None and est.get("high") is not None
            else ""
        )
        return f"{est['value']:.3f}{ci}"
    if isinstance(est, float):
        return "–" if not math.isfinite(est) else f"{est:.3f}"
    if est is None:
        return "–"
    if isinstance(est, list):
        return html.escape(", ".join(_fmt_plain(v) for v in est)) or "–"
    return html.escape(str(est))


def _fmt_plain(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _group_table(attr: AttributeAudit, point: str) -> str:
    head = "<tr><th>group</th><th>n</th><th>status</th><th>base rate</th><th>AUC</th>"
    head += "".join(f"<th>{LABELS[m]}</th>" for m in PLOTTED) + "</tr>"
    body = []
    for r in attr.groups:
        name = html.escape(r.group) + (" (reference)" if r.reference else "")
        status = "ok" if r.sufficient else "insufficient evidence"
        cells = [
            name,
            str(r.n),
            status,
            _fmt(r.overall["base_rate"]),
            _fmt(r.overall["auc"]),
        ]
        cells += [_fmt(r.at(point)[m]) for m in PLOTTED]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _disparity_table(attr: AttributeAudit, point: str) -> str:
    rows = [d for d in attr.disparities if d.point == point]
    head = "<tr><th>group</th><th>metric</th><th>difference vs reference</th><th>ratio</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(d.group)}</td><td>{LABELS.get(d.metric, d.metric)}</td>"
        f"<td>{_fmt(d.difference) if d.sufficient else 'insufficient evidence'}</td>"
        f"<td>{_ratio_cell(d.metric, d.ratio) if d.sufficient else 'insufficient evidence'}"
        "</td></tr>"
        for d in rows
    )
    return f"<table>{head}{body}</table>"


def _ratio_cell(metric: str, ratio: Estimate) -> str:
    """The ratio, except for a signed metric (a ratio of values of either sign means
    nothing: the difference says it)."""
    return NO_RATIO if metric in SIGNED else _fmt(ratio)


def mitigation_records(m: MitigationWhatIf | Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per method and group: accuracy (cost), selection rate, FPR, FNR."""
    what_if = m if isinstance(m, MitigationWhatIf) else MitigationWhatIf.model_validate(m)
    methods: list[tuple[str, MitigationSummary, float]] = [
        ("before", what_if.before, 0.0),
        ("group_thresholds", what_if.group_thresholds, what_if.group_thresholds.accuracy_cost),
        (
            "threshold_optimizer",
            what_if.threshold_optimizer,
            what_if.threshold_optimizer.accuracy_cost,
        ),
    ]
    rows = []
    for method, s, cost in methods:
        for group, r in s.groups.items():
            rows.append(
                {
                    "method": method,
                    "accuracy": s.accuracy,
                    "accuracy cost": cost,
                    "group": group,
                    "FPR": r.fpr if r.fpr is not None else "–",
                    "FNR": r.fnr if r.fnr is not None else "–",
                    "selection rate": r.selection_rate,
                }
            )
    return rows


def _records_table(records: Sequence[Mapping[str, Any]]) -> str:
    keys = list(records[0])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(k))}</td>" for k in keys) + "</tr>" for r in records
    )
    return f"<table><tr>{head}</tr>{body}</table>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.6em 0;font-size:0.85em}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f3f3f3}
.pass{color:#1a7f37}.fail{color:#b42318}.insufficient_evidence{color:#b54708}
img{max-width:100%}pre{white-space:pre-wrap;background:#f7f7f7;padding:0.6em}
nav.toc{background:#f7f7f7;padding:0.4em 1em;margin:1em 0}nav.toc ol{margin:0.3em 0}
.population{border-left:4px solid #1f6feb;padding:0.3em 0.8em;background:#f3f8ff}"""


def _anchor(text: str) -> str:
    """An id for a section heading (ASCII letters, digits and hyphens)."""
    return "s-" + (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section")


def audited_rows(audit: AuditResult) -> int | None:
    """How many rows the audit measured (each attribute partitions the same rows)."""
    if not audit.attributes:
        return None
    first = audit.attributes[0]
    return first.n if first.n is not None else sum(g.n for g in first.groups)


def population_statement(content: Mapping[str, Any], audit: AuditResult) -> str:
    """Whom the audit measured: the version's declared population of validity (else that none
    was declared: the rows given), and how many rows."""
    rows = audited_rows(audit)
    counted = f"{rows:,} rows" if rows is not None else "the rows"
    declared = content.get("population")
    if declared:
        return f"{declared}. Audited: {counted} scored with outcomes known."
    return (
        f"No population of validity is declared: the audit measures {counted} of the table it "
        "was given, and says nothing about anyone outside them."
    )


def render_html(
    content: Mapping[str, Any], json_sha256: str | None = None, audit_id: str | None = None
) -> str:
    """The report page: a table of contents, the population audited, the decision, the
    digests, the overall metrics, per attribute its tables and figures, then the proxy check,
    label bias, mitigation and the policy rationale. ``json_sha256`` and ``audit_id`` (the
    report's one hash and folder) are stated when given."""
    audit = as_audit(content["audit"])
    decision = content["decision"]
    outcome = str(decision.get("outcome", ""))
    bootstrap = audit.bootstrap.model_dump(mode="json") if audit.bootstrap else None
    reasons = "".join(f"<li>{html.escape(str(r))}</li>" for r in decision.get("reasons", []))
    digests = "".join(
        f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(v)}</code></td></tr>"
        for k, v in content["data_digests"].items()
    )
    overall = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in audit.overall.items()
    )
    toc: list[tuple[str, str]] = []
    body: list[str] = []

    def section(title: str, level: int = 2, shown: str | None = None) -> None:
        ident = _anchor(title)
        if level == 2:
            toc.append((ident, title))
        body.append(f"<h{level} id='{ident}'>{shown or html.escape(title)}</h{level}>")

    identity = ""
    if json_sha256:
        identity = (
            f"<tr><th>report</th><td>audit id <code>{html.escape(audit_id or '–')}</code>; "
            f"this report's content is <code>fairness-report.json</code>, sha256 "
            f"<code>{html.escape(json_sha256)}</code> (the hash the ledger records)</td></tr>"
        )
    section("Population audited")
    body.append(f"<p class='population'>{html.escape(population_statement(content, audit))}</p>")
    section("Summary")
    body.append(
        "<table>"
        f"<tr><th>model version</th><td>{html.escape(str(content['model_version']))}</td></tr>"
        f"<tr><th>policy version</th><td>{html.escape(str(content['policy_version']))}</td></tr>"
        + (
            f"<tr><th>population of validity</th><td>{html.escape(str(content['population']))}"
            "</td></tr>"
            if content.get("population")
            else ""
        )
        + f"<tr><th>date</th><td>{html.escape(content['created_at'])}</td></tr>"
        + identity
        + f"<tr><th>score / label</th><td>{html.escape(str(audit.score))} / "
        f"{html.escape(str(audit.label))}</td></tr>"
        f"<tr><th>threshold</th><td>{html.escape(str(audit.threshold))}</td></tr>"
        f"<tr><th>minimum group size</th><td>{audit.min_group_size}</td></tr>"
        f"<tr><th>bootstrap</th><td>{html.escape(json.dumps(bootstrap))}</td></tr>"
        "</table>"
    )
    section(
        "Decision",
        shown=f"Decision: <span class='{html.escape(outcome)}'>{html.escape(outcome)}</span>",
    )
    body.append(f"<ul>{reasons or '<li>no reasons recorded</li>'}</ul>")
    section("Data digests")
    body.append(f"<table>{digests}</table>")
    section("Overall")
    body.append(f"<table>{overall}</table>")
    if content["notes"]:
        section("Notes")
        body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in content["notes"]))
        body.append("</ul>")
    figs = figures(content)
    for attr in audit.attributes:
        name = attr.attribute
        section(f"{name} (reference: {attr.reference})")
        for point in [*attr.groups[0].points]:
            body.append(f"<h3>at {html.escape(point)}</h3>{_group_table(attr, point)}")
            body.append(_disparity_table(attr, point))
        body.append(f"<h3>overall (threshold-free)</h3>{_disparity_table(attr, OVERALL_POINT)}")
        for caption, png in figs.get(name, []):
            body.append(
                f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{png}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    for key, caption in (("proxies", "Proxy check"), ("label_bias", "Label bias")):
        if content.get(key):
            section(caption)
            body.append(_records_table(content[key]))
    for attr_name, raw in (content.get("mitigation") or {}).items():
        m = MitigationWhatIf.model_validate(raw)
        section(f"Mitigation what-if: {attr_name}")
        body.append(f"<p><strong>{html.escape(m.statement)}</strong></p>")
        body.append(_records_table(mitigation_records(m)))
    if content.get("rationale"):
        section("Policy rationale")
        body.append(f"<pre>{html.escape(str(content['rationale']))}</pre>")
    contents = "".join(f"<li><a href='#{i}'>{html.escape(t)}</a></li>" for i, t in toc)
    head = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(content['title'])}"
        f"</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(content['title'])}</h1>",
        f"<nav class='toc'><strong>Contents</strong><ol>{contents}</ol></nav>",
    ]
    return "\n".join([*head, *body, "</body></html>"])


def write_report(
    content: Mapping[str, Any], out_dir: Path, stem: str = "fairness-report"
) -> WrittenReport:
    """Write ``<stem>.html`` and ``<stem>.json`` into ``out_dir`` (atomically); hashes returned.
    (`keep_report` keeps every audit of a model version instead.)"""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    write_text(json_path, json.dumps(content, indent=2, default=str) + "\n")
    json_sha = sha256_file(json_path)
    write_text(html_path, render_html(content, json_sha))
    return WrittenReport(html_path, json_path, sha256_file(html_path), json_sha)


def keep_report(content: Mapping[str, Any], version_dir: Path) -> WrittenReport:
    """Write a new audit's report into a folder of its own under ``version_dir`` (never
    overwriting an earlier audit's) and copy it to ``version_dir`` as the latest; the HTML
    states the JSON's sha256 and the audit id (`fairness.report_store.keep`)."""
    kept = keep(content, render_html, version_dir)
    return WrittenReport(
        kept.html_path, kept.json_path, sha256_file(kept.html_path), kept.sha256, kept.audit_id
    )


def log_report_to_mlflow(run_id: str, written: WrittenReport, tracking_uri: str) -> None:
    """Attach the report (HTML + JSON) to an MLflow run under ``fairness/``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    client.log_artifact(run_id, str(written.html_path), "fairness")
    client.log_artifact(run_id, str(written.json_path), "fairness")
