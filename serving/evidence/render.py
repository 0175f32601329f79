"""One self-contained HTML page per document, in the fairness report's style.

The page uses the fairness report's stylesheet (`fairness.report.STYLE`) and its layout: a
title, a table of contents, then per section its paragraphs, facts, items and tables. No
scripts and no external resources, so the page reads the same offline, years later, as the
JSON beside it (which holds the same content: `serving.evidence.model.Document`).
"""

from __future__ import annotations

import html
import math
import re

from fairness.report import STYLE
from serving.evidence.model import Cell, Document, Section, Table

EXTRA_STYLE = ".gaps{border-left:4px solid #b54708;padding:0.3em 0.8em;background:#fff8f0}"


def cell(value: Cell) -> str:
    """A value as the page shows it: floats to 4 significant digits, none as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return html.escape(str(value))


def _anchor(index: int, title: str) -> str:
    return f"s{index}-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section")


def _table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in t.columns) + "</tr>" for r in t.rows
    )
    empty = "" if t.rows else f"<tr><td colspan='{max(len(t.columns), 1)}'>none</td></tr>"
    return f"<table><caption>{html.escape(t.caption)}</caption><tr>{head}</tr>{body}{empty}</table>"


def _section(index: int, s: Section) -> str:
    parts = [f"<h2 id='{_anchor(index, s.title)}'>{html.escape(s.title)}</h2>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
    if s.facts:
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{cell(v)}</td></tr>" for k, v in s.facts.items()
        )
        parts.append(f"<table>{rows}</table>")
    if s.items:
        parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in s.items) + "</ul>")
    parts += [_table(t) for t in s.tables]
    return "\n".join(parts)


def render_document(doc: Document, json_sha256: str) -> str:
    """The page of ``doc``; it states the sha256 of its JSON (the content's one hash, as the
    fairness report does) and lists the document's gaps first."""
    toc = "".join(
        f"<li><a href='#{_anchor(i, s.title)}'>{html.escape(s.title)}</a></li>"
        for i, s in enumerate(doc.sections)
    )
    gaps = (
        "<div class='gaps'><strong>Not on record</strong><ul>"
        + "".join(f"<li>{html.escape(g)}</li>" for g in doc.gaps)
        + "</ul></div>"
        if doc.gaps
        else ""
    )
    head = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(doc.title)}"
        f"</title><style>{STYLE}\n{EXTRA_STYLE}</style></head><body>"
        f"<h1>{html.escape(doc.title)}</h1>"
        f"<p>{html.escape(doc.model)} v{html.escape(doc.version)}, generated "
        f"{html.escape(doc.generated_at)}; the content of this page is <code>{doc.kind}.json"
        f"</code>, sha256 <code>{html.escape(json_sha256)}</code>.</p>"
        f"<nav class='toc'><strong>Contents</strong><ol>{toc}</ol></nav>{gaps}"
    )
    body = [_section(i, s) for i, s in enumerate(doc.sections)]
    return "\n".join([head, *body, "</body></html>"]) + "\n"
