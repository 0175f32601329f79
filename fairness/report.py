"""The audit report: one self-contained HTML file (plots as base64 PNG) and the same content
as JSON, with their sha256.

`report_content(audit, ...)` is pure (dicts in, the JSON content out); `figures(content)`
builds matplotlib figures without pyplot; `render_html(content)` returns the page;
`write_report(content, out_dir)` writes ``<stem>.html`` and ``<stem>.json`` and returns the
paths and hashes. `log_report_to_mlflow` attaches both to a run (I/O at the edge).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fairness.metrics import THRESHOLD_POINT

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


@dataclass(frozen=True)
class WrittenReport:
    html_path: Path
    json_path: Path
    html_sha256: str
    json_sha256: str


def report_content(
    audit: Mapping[str, Any],
    *,
    title: str,
    model_version: str | None,
    data_digests: Mapping[str, str],
    policy_version: str | None,
    decision: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The report's content (what the JSON holds and the HTML shows)."""
    return {
        "title": title,
        "created_at": (created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "model_version": model_version,
        "policy_version": policy_version,
        "data_digests": dict(data_digests),
        "decision": dict(decision) if decision else {"outcome": "not evaluated", "reasons": []},
        "notes": list(notes or []),
        "audit": dict(audit),
        **dict(extra or {}),
    }


# --------------------------------------------------------------------------- figures
def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def group_metrics_figure(attr: Mapping[str, Any], point: str) -> Figure:
    """Selection rate, FPR, FNR, PPV per group at ``point`` with CI whiskers."""
    rows = [r for r in attr["groups"] if r["status"] == "ok"]
    fig = Figure(figsize=(11, 0.45 * max(len(rows), 2) + 1.4))
    axes = fig.subplots(1, len(PLOTTED), sharey=True)
    names = [r["group"] for r in rows]
    for ax, metric in zip(axes, PLOTTED, strict=True):
        for i, r in enumerate(rows):
            est = r["points"][point][metric]
            if est["value"] is None:
                continue
            lo = est["low"] if est["low"] is not None else est["value"]
            hi = est["high"] if est["high"] is not None else est["value"]
            colour = "tab:orange" if r["reference"] else "tab:blue"
            ax.errorbar(
                est["value"],
                i,
                xerr=[[est["value"] - lo], [hi - est["value"]]],
                fmt="o",
                color=colour,
                capsize=3,
            )
        ax.set_title(LABELS[metric], fontsize=9)
        ax.set_xlim(0, 1)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names, fontsize=8)
    fig.suptitle(f"{attr['attribute']} at {point} (orange = reference; whiskers = CI)", fontsize=10)
    return fig


def calibration_figure(attr: Mapping[str, Any]) -> Figure | None:
    rows = [r for r in attr["groups"] if r["status"] == "ok" and r["calibration_bins"]]
    if not rows:
        return None
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for r in rows[:10]:
        bins = r["calibration_bins"]
        ax.plot(
            [b["mean_predicted"] for b in bins],
            [b["observed"] for b in bins],
            marker="o",
            markersize=3,
            label=f"{r['group']} (n={r['n']})",
        )
    ax.set_xlabel("mean predicted (decile of the group's scores)")
    ax.set_ylabel("observed rate")
    ax.set_title(f"calibration within {attr['attribute']}", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def composition_figure(attr: Mapping[str, Any]) -> Figure:
    comp: Mapping[str, Mapping[str, float]] = attr["composition"]
    bars = list(comp)
    groups = list(comp["population"])
    fig = Figure(figsize=(8, 0.4 * len(bars) + 1.5))
    ax = fig.subplots()
    left = [0.0] * len(bars)
    for g in groups:
        widths = [comp[b].get(g, 0.0) for b in bars]
        ax.barh(bars, widths, left=left, label=g)
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the population / of the list")
    ax.set_title(f"list composition by {attr['attribute']}", fontsize=10)
    ax.legend(fontsize=7, ncol=min(len(groups), 4), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return fig


def figures(content: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Per attribute: ``[(caption, base64 png), ...]``."""
    audit = content["audit"]
    out: dict[str, list[tuple[str, str]]] = {}
    points = [THRESHOLD_POINT] if audit.get("threshold") is not None else []
    points += [f"top_{c:g}%" for c in audit.get("capacities", [])][:1] if not points else []
    for attr in audit["attributes"]:
        imgs = [(f"group metrics at {p}", _png(group_metrics_figure(attr, p))) for p in points]
        cal = calibration_figure(attr)
        if cal is not None:
            imgs.append(("calibration by group", _png(cal)))
        imgs.append(("list composition at each capacity", _png(composition_figure(attr))))
        out[attr["attribute"]] = imgs
    return out


# --------------------------------------------------------------------------- HTML
def _fmt(est: Any) -> str:
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


def _group_table(attr: Mapping[str, Any], point: str) -> str:
    head = "<tr><th>group</th><th>n</th><th>status</th><th>base rate</th><th>AUC</th>"
    head += "".join(f"<th>{LABELS[m]}</th>" for m in PLOTTED) + "</tr>"
    body = []
    for r in attr["groups"]:
        name = html.escape(r["group"]) + (" (reference)" if r["reference"] else "")
        status = "insufficient evidence" if r["status"] != "ok" else "ok"
        cells = [
            name,
            str(r["n"]),
            status,
            _fmt(r["overall"]["base_rate"]),
            _fmt(r["overall"]["auc"]),
        ]
        cells += [_fmt(r["points"][point][m]) for m in PLOTTED]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _disparity_table(attr: Mapping[str, Any], point: str) -> str:
    rows = [d for d in attr["disparities"] if d["point"] == point]
    head = "<tr><th>group</th><th>metric</th><th>difference vs reference</th><th>ratio</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(d['group'])}</td><td>{LABELS.get(d['metric'], d['metric'])}</td>"
        f"<td>{_fmt(d['difference']) if d['status'] == 'ok' else 'insufficient evidence'}</td>"
        f"<td>{_fmt(d['ratio']) if d['status'] == 'ok' else 'insufficient evidence'}</td></tr>"
        for d in rows
    )
    return f"<table>{head}{body}</table>"


def mitigation_records(m: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per method and group: accuracy (cost), selection rate, FPR, FNR."""
    rows = []
    for method in ("before", "group_thresholds", "threshold_optimizer"):
        s = m[method]
        for group, r in s["groups"].items():
            rows.append(
                {
                    "method": method,
                    "accuracy": s["accuracy"],
                    "accuracy cost": s.get("accuracy_cost", 0.0),
                    "group": group,
                    "FPR": r["fpr"] if r["fpr"] is not None else "–",
                    "FNR": r["fnr"] if r["fnr"] is not None else "–",
                    "selection rate": r["selection_rate"],
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
img{max-width:100%}pre{white-space:pre-wrap;background:#f7f7f7;padding:0.6em}"""


def render_html(content: Mapping[str, Any]) -> str:
    audit = content["audit"]
    decision = content["decision"]
    outcome = str(decision.get("outcome", ""))
    reasons = "".join(f"<li>{html.escape(str(r))}</li>" for r in decision.get("reasons", []))
    digests = "".join(
        f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(v)}</code></td></tr>"
        for k, v in content["data_digests"].items()
    )
    overall = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in audit["overall"].items()
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(content['title'])}"
        f"</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(content['title'])}</h1>",
        "<table>"
        f"<tr><th>model version</th><td>{html.escape(str(content['model_version']))}</td></tr>"
        f"<tr><th>policy version</th><td>{html.escape(str(content['policy_version']))}</td></tr>"
        f"<tr><th>date</th><td>{html.escape(content['created_at'])}</td></tr>"
        f"<tr><th>score / label</th><td>{html.escape(str(audit['score']))} / "
        f"{html.escape(str(audit['label']))}</td></tr>"
        f"<tr><th>threshold</th><td>{html.escape(str(audit['threshold']))}</td></tr>"
        f"<tr><th>minimum group size</th><td>{audit['min_group_size']}</td></tr>"
        f"<tr><th>bootstrap</th><td>{html.escape(json.dumps(audit['bootstrap']))}</td></tr>"
        "</table>",
        f"<h2>Decision: <span class='{html.escape(outcome)}'>{html.escape(outcome)}</span></h2>",
        f"<ul>{reasons or '<li>no reasons recorded</li>'}</ul>",
        f"<h2>Data digests</h2><table>{digests}</table>",
        f"<h2>Overall</h2><table>{overall}</table>",
    ]
    if content["notes"]:
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in content["notes"])
        parts.append(f"<h2>Notes</h2><ul>{notes}</ul>")
    figs = figures(content)
    for attr in audit["attributes"]:
        name = attr["attribute"]
        parts.append(f"<h2>{html.escape(name)} (reference: {html.escape(attr['reference'])})</h2>")
        for point in [*attr["groups"][0]["points"]]:
            parts.append(f"<h3>at {html.escape(point)}</h3>{_group_table(attr, point)}")
            parts.append(_disparity_table(attr, point))
        parts.append(f"<h3>overall (threshold-free)</h3>{_disparity_table(attr, 'overall')}")
        for caption, png in figs.get(name, []):
            parts.append(
                f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{png}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    for key, caption in (("proxies", "Proxy check"), ("label_bias", "Label bias")):
        if content.get(key):
            parts.append(f"<h2>{caption}</h2>{_records_table(content[key])}")
    for attr_name, m in (content.get("mitigation") or {}).items():
        parts.append(f"<h2>Mitigation what-if: {html.escape(attr_name)}</h2>")
        parts.append(f"<p><strong>{html.escape(m['statement'])}</strong></p>")
        parts.append(_records_table(mitigation_records(m)))
    if content.get("rationale"):
        parts.append(
            f"<h2>Policy rationale</h2><pre>{html.escape(str(content['rationale']))}</pre>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_report(
    content: Mapping[str, Any], out_dir: Path, stem: str = "fairness-report"
) -> WrittenReport:
    """Write ``<stem>.html`` and ``<stem>.json`` into ``out_dir`` (atomically); hashes returned."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    _atomic_write(json_path, json.dumps(content, indent=2, default=str) + "\n")
    _atomic_write(html_path, render_html(content))
    return WrittenReport(html_path, json_path, sha256_of(html_path), sha256_of(json_path))


def log_report_to_mlflow(run_id: str, written: WrittenReport, tracking_uri: str) -> None:
    """Attach the report (HTML + JSON) to an MLflow run under ``fairness/``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    client.log_artifact(run_id, str(written.html_path), "fairness")
    client.log_artifact(run_id, str(written.json_path), "fairness")
