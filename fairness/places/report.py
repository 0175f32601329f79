"""The places audit report: JSON content, a self-contained HTML page and the exposure bar plot.

Kept exactly as the person reports are (`fairness.report_store.keep`): every audit in a folder
of its own under ``RISKCAST_HOME/reports/street-crime-v<N>/<audit-id>/fairness-report.{json,
html}``, the JSON's sha256 is the report's one hash (the ledger records it and the kept path;
`riskcast ledger verify` checks both). `places_content` is pure; `render_places_html` renders
the content (it reads the audit back into `PlacesAudit`); `exposure_figure` draws the bar plot
without pyplot.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fairness.places.feedback import STATEMENT
from fairness.places.results import ExposureRow, PlacesAudit
from fairness.report import STYLE, WrittenReport
from fairness.report_store import keep, version_dir
from fairness.results import Estimate
from riskcast.digest import sha256_file

KIND = "places"
EXPOSURE_PNG = "exposure-by-district.png"


def places_content(
    audit: PlacesAudit,
    *,
    policy_version: str,
    rationale: str,
    data_digests: Mapping[str, str],
    notes: list[str] | None = None,
    run_id: str | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The report's content (what the JSON holds and the HTML shows)."""
    decision = audit.decision.as_dict() if audit.decision else None
    return {
        "kind": KIND,
        "title": f"Places audit of {audit.model_name} v{audit.version}",
        "created_at": (created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "model_version": f"{audit.model_name} v{audit.version}",
        "policy_version": policy_version,
        "run_id": run_id,
        "data_digests": dict(data_digests),
        "decision": decision or {"outcome": "not evaluated", "reasons": []},
        "notes": list(notes or []),
        "places": audit.model_dump(mode="json"),
        "feedback_statement": STATEMENT,
        "rationale": rationale,
    }


# --------------------------------------------------------------------------- figure
def _png(fig: Figure) -> str:
    """The figure as base64 PNG (embedded in the page, so the report is one file)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def exposure_figure(rows: list[ExposureRow]) -> Figure | None:
    """Per district: its share of the flagged area, of the incidents and of the residents
    (grouped horizontal bars); flagged districts are named in red."""
    if not rows:
        return None
    fig = Figure(figsize=(9, 0.42 * len(rows) + 1.6), layout="constrained")
    ax = fig.subplots()
    names = [f"{r.region} / {r.district}" for r in rows]
    ys = list(range(len(rows)))
    bars = [
        ("flagged area", [r.flagged_area_share for r in rows], "tab:red", -0.27),
        ("incidents", [r.incident_share for r in rows], "tab:blue", 0.0),
        ("residents", [r.resident_share or 0.0 for r in rows], "tab:gray", 0.27),
    ]
    for label, values, colour, shift in bars:
        if label == "residents" and all(r.resident_share is None for r in rows):
            continue
        ax.barh([y + shift for y in ys], values, height=0.26, color=colour, label=label)
    ax.set_yticks(ys, names)
    for tick, r in zip(ax.get_yticklabels(), rows, strict=True):
        if r.status in ("flagged", "no incidents"):
            tick.set_color("tab:red")
    ax.invert_yaxis()
    ax.set_xlabel("share")
    ax.set_title("Exposure by district: share of flagged area vs incidents vs residents")
    ax.legend(loc="lower right")
    return fig


# --------------------------------------------------------------------------- HTML
def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _est(e: Estimate, digits: int = 2) -> str:
    if e.value is None:
        return "–"
    if e.low is None or e.high is None:
        return _num(e.value, digits)
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _table(header: list[str], rows: list[list[str]], flagged: list[bool] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    marks = flagged or [False] * len(rows)
    body = "".join(
        f"<tr{' class=fail' if mark else ''}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
        for row, mark in zip(rows, marks, strict=True)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_places_html(
    content: Mapping[str, Any], json_sha256: str | None = None, audit_id: str | None = None
) -> str:
    """The report page: summary, decision, measures, comparison, exposure (table and plot),
    the feedback-loop check and its statement, notes, digests and the policy rationale."""
    audit = PlacesAudit.model_validate(content["places"])
    decision = content["decision"]
    outcome = str(decision.get("outcome", ""))
    parts: list[str] = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(content['title'])}"
        f"</title><style>{STYLE}</style></head><body><h1>{_e(content['title'])}</h1>"
    ]
    identity = (
        f"<tr><th>report</th><td>audit id <code>{_e(audit_id or '–')}</code>; this report's "
        f"content is <code>fairness-report.json</code>, sha256 <code>{_e(json_sha256)}</code> "
        "(the hash the ledger records)</td></tr>"
        if json_sha256
        else ""
    )
    parts.append(
        "<h2>Summary</h2><table>"
        f"<tr><th>model version</th><td>{_e(content['model_version'])}</td></tr>"
        f"<tr><th>policy version</th><td>{_e(content['policy_version'])}</td></tr>"
        f"<tr><th>date</th><td>{_e(content['created_at'])}</td></tr>{identity}"
        f"<tr><th>audited</th><td>{audit.cells:,} cells, {audit.weeks} out-of-time weeks "
        f"({_e(audit.first_week)} to {_e(audit.last_week)}), horizon 1</td></tr>"
        f"<tr><th>flagged area</th><td>top {audit.area_share * 100:g} % of area per week"
        "</td></tr></table>"
    )
    reasons = "".join(f"<li>{_e(r)}</li>" for r in decision.get("reasons", []))
    parts.append(
        f"<h2>Decision: <span class='{_e(outcome)}'>{_e(outcome)}</span></h2>"
        f"<ul>{reasons or '<li>not evaluated</li>'}</ul>"
    )
    pai = f"PAI@{audit.area_share * 100:g} %"
    parts.append("<h2>Measures (mean over weeks)</h2>")
    parts.append(
        _table(
            ["score", "weeks", pai, "Poisson deviance"],
            [
                [_e(m.score), str(m.weeks), _num(m.pai, 2), _num(m.deviance, 4)]
                for m in audit.measures
            ],
        )
    )
    if audit.comparison:
        parts.append("<h2>Challenger versus champion (paired bootstrap over weeks)</h2>")
        parts.append(
            _table(
                ["measure", "weeks", "challenger", "champion", "ratio [interval]"],
                [
                    [
                        _e(c.measure),
                        str(c.weeks),
                        _num(c.challenger),
                        _num(c.champion),
                        _est(c.ratio, 3),
                    ]
                    for c in audit.comparison
                ],
            )
        )
    parts.append("<h2>Exposure by district</h2>")
    parts.append(
        "<p>Share of the flagged area (mean over weeks) against the share of observed incidents "
        "and of residents. A district is flagged when the lower bound of flagged-area share / "
        "incident share exceeds the policy's ratio (and it holds enough of the flagged area). "
        "Residents are context, not the yardstick.</p>"
    )
    parts.append(
        _table(
            [
                "region",
                "district",
                "flagged area",
                "incidents",
                "residents",
                "area / incidents [interval]",
                "area / residents",
                "weeks flagged",
                "status",
            ],
            [
                [
                    _e(r.region),
                    _e(r.district),
                    _num(r.flagged_area_share),
                    _num(r.incident_share),
                    _num(r.resident_share),
                    _est(r.ratio),
                    _num(r.resident_ratio, 2),
                    str(r.weeks_flagged),
                    _e(r.status),
                ]
                for r in audit.exposure
            ],
            [r.status in ("flagged", "no incidents") for r in audit.exposure],
        )
    )
    fig = exposure_figure(audit.exposure)
    if fig is not None:
        parts.append(
            f"<figure><img alt='exposure by district' src='data:image/png;base64,{_png(fig)}'>"
            "<figcaption>Exposure by district</figcaption></figure>"
        )
    parts.append("<h2>Feedback-loop check</h2>")
    parts.append(f"<p><strong>{_e(content['feedback_statement'])}</strong></p>")
    sources = "; ".join(f"{k}: {v}" for k, v in audit.feedback_sources.items())
    if sources:
        parts.append(f"<p>Sources: {_e(sources)}</p>")
    parts.append(
        _table(
            [
                "region",
                "district",
                "first flagged",
                "weeks before / after",
                "registrations before / after",
                "appeals before / after",
                "registration rise",
                "appeal rise",
                "divergence",
                "status",
                "why",
            ],
            [
                [
                    _e(r.region),
                    _e(r.district),
                    _e(r.onset or "never"),
                    f"{r.weeks_before} / {r.weeks_after}",
                    f"{r.registrations_before} / {r.registrations_after}",
                    f"{r.appeals_before} / {r.appeals_after}",
                    _est(r.registration_rise),
                    _est(r.appeal_rise),
                    _est(r.divergence),
                    _e(r.status),
                    _e(r.detail),
                ]
                for r in audit.feedback
            ],
            [r.status == "flagged" for r in audit.feedback],
        )
    )
    if content.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in content["notes"]))
        parts.append("</ul>")
    digests = "".join(
        f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>"
        for k, v in content["data_digests"].items()
    )
    parts.append(f"<h2>Data digests</h2><table>{digests}</table>")
    if content.get("rationale"):
        parts.append(f"<h2>Policy rationale</h2><pre>{_e(content['rationale'])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def keep_places_report(
    content: Mapping[str, Any], home: Path, model_name: str, version: str
) -> WrittenReport:
    """Keep the report in a new audit folder of the version (`fairness.report_store.keep`)."""
    kept = keep(content, render_places_html, version_dir(home, model_name, version))
    fig = exposure_figure(PlacesAudit.model_validate(content["places"]).exposure)
    if fig is not None:  # also as a file beside the report (the page embeds the same plot)
        (kept.folder / EXPOSURE_PNG).write_bytes(base64.b64decode(_png(fig)))
    return WrittenReport(
        kept.html_path, kept.json_path, sha256_file(kept.html_path), kept.sha256, kept.audit_id
    )
