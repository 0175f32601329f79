"""Time-series plots as inline SVG, drawn on the server (no scripts, no libraries, no network).

Why SVG markup and not images: the pages' policy allows no scripts and no images from
elsewhere, and a plot in the page's own markup is readable by a screen reader (each point has a
``<title>`` with its value) and by tests (each point carries ``data-group``, ``data-as-of`` and
``data-value``). Only presentation attributes are used (``fill``, ``stroke``): the pages' policy
forbids inline ``style`` attributes.

A `Line` is one group's values over time; its optional interval (``lower``/``upper``) is drawn
as a shaded band, and a dashed line marks a second kind of value (e.g. the realised
performance next to its estimate). The x axis is time (the checks' as-of dates, spaced as the
dates are); the y axis spans the values, bands and reference lines shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from markupsafe import Markup, escape

from serving.services.monitoring import Line, Plot

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)
WIDTH, HEIGHT = 680, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 26, 34


def _fmt(v: float) -> str:
    return f"{v:.4f}"


def _bounds(plot: Plot) -> tuple[float, float]:
    ys = [*plot.references.values()]
    for line in plot.lines:
        for p in line.points:
            ys += [v for v in (p.value, p.lower, p.upper) if v is not None]
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def svg(plot: Plot) -> Markup:
    """The plot as an ``<svg class="chart">`` element (one colour per group, in order)."""
    days = sorted({p.as_of for line in plot.lines for p in line.points})
    lo, hi = _bounds(plot)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    first = days[0].toordinal() if days else 0
    span = max(1, days[-1].toordinal() - first) if len(days) > 1 else 1

    def x(d: date) -> float:
        if len(days) < 2:
            return LEFT + inner_w / 2
        return LEFT + inner_w * (d.toordinal() - first) / span

    def y(v: float) -> float:
        return TOP + inner_h * (1 - (v - lo) / (hi - lo))

    out: list[str] = [
        f'<svg class="chart" data-plot="{escape(plot.key)}" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(plot.title)}">',
        f"<title>{escape(plot.title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{inner_w}" height="{inner_h}" fill="#ffffff" '
        'stroke="#c9d0d8"/>',
        f'<text x="{LEFT}" y="16" font-size="12" font-weight="600" fill="#1d2733">'
        f"{escape(plot.title)}</text>",
    ]
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + inner_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#eef1f4"/>'
            f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#5b6775">{v:.3g}</text>'
        )
    for d in days:
        out.append(
            f'<text x="{x(d):.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="10" '
            f'text-anchor="middle" fill="#5b6775">{d.isoformat()}</text>'
        )
    out.append(
        f'<text x="12" y="{TOP + inner_h / 2:.1f}" font-size="10" fill="#5b6775" '
        f'transform="rotate(-90 12 {TOP + inner_h / 2:.1f})" text-anchor="middle">'
        f"{escape(plot.y_label)}</text>"
    )
    for label, v in plot.references.items():
        out.append(
            f'<line class="reference" x1="{LEFT}" x2="{LEFT + inner_w}" y1="{y(v):.1f}" '
            f'y2="{y(v):.1f}" stroke="#b3261e" stroke-dasharray="2 3"/>'
            f'<text x="{LEFT + inner_w - 2}" y="{y(v) - 3:.1f}" font-size="9" '
            f'text-anchor="end" fill="#b3261e">{escape(label)} {v:g}</text>'
        )
    colours = _colours(plot.lines)
    for line in plot.lines:
        out.append(_line(line, colours[line.group], x, y))
    out += _legend(plot.lines, colours, LEFT + inner_w + 10)
    out.append("</svg>")
    return Markup("".join(out))


def _colours(lines: Sequence[Line]) -> dict[str, str]:
    groups = list(dict.fromkeys(line.group for line in lines))
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}


def _line(
    line: Line, colour: str, fx: Callable[[date], float], fy: Callable[[float], float]
) -> str:
    pts = sorted(line.points, key=lambda p: p.as_of)
    parts: list[str] = [f'<g class="series" data-group="{escape(line.group)}">']
    band = [(p.as_of, p.lower, p.upper) for p in pts if p.lower is not None and p.upper is not None]
    if len(band) > 1:
        upper = " ".join(f"{fx(d):.1f},{fy(hi):.1f}" for d, _, hi in band)
        lower = " ".join(f"{fx(d):.1f},{fy(lo):.1f}" for d, lo, _ in reversed(band))
        parts.append(
            f'<polygon class="interval" points="{upper} {lower}" fill="{colour}" '
            'fill-opacity="0.15" stroke="none"/>'
        )
    for d, lo, hi in band:
        parts.append(
            f'<line class="interval" x1="{fx(d):.1f}" x2="{fx(d):.1f}" '
            f'y1="{fy(lo):.1f}" y2="{fy(hi):.1f}" stroke="{colour}" '
            'stroke-opacity="0.5"/>'
        )
    if len(pts) > 1:
        path = " ".join(f"{fx(p.as_of):.1f},{fy(p.value):.1f}" for p in pts)
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
    for p in pts:
        interval = (
            f" [{p.lower:.3f}, {p.upper:.3f}]"
            if p.lower is not None and p.upper is not None
            else ""
        )
        parts.append(
            f'<circle cx="{fx(p.as_of):.1f}" cy="{fy(p.value):.1f}" r="3.5" '
            f'fill="{"#ffffff" if line.dashed else colour}" stroke="{colour}" '
            f'data-group="{escape(line.group)}" data-as-of="{p.as_of.isoformat()}" '
            f'data-value="{_fmt(p.value)}"><title>{escape(line.label)} {p.as_of.isoformat()}: '
            f"{p.value:.3f}{interval}</title></circle>"
        )
    parts.append("</g>")
    return "".join(parts)


def _legend(lines: Sequence[Line], colours: dict[str, str], left: float) -> list[str]:
    """One entry per group (its colour); when a plot has dashed lines, two more saying which
    kind of value is solid and which dashed (from the lines' labels)."""
    entries: list[tuple[str, str, bool]] = [(g, c, False) for g, c in colours.items()]
    solid = next((ln for ln in lines if not ln.dashed), None)
    dashed = next((ln for ln in lines if ln.dashed), None)
    if solid is not None and dashed is not None:
        entries += [
            (solid.label.removeprefix(solid.group).strip() or "solid", "#1d2733", False),
            (dashed.label.removeprefix(dashed.group).strip() or "dashed", "#1d2733", True),
        ]
    rows = (HEIGHT - TOP - 10) // 13
    out: list[str] = []
    for i, (label, colour, is_dashed) in enumerate(entries[:rows]):
        top = TOP + 6 + i * 13
        dash = ' stroke-dasharray="5 3"' if is_dashed else ""
        out.append(
            f'<line x1="{left}" x2="{left + 16}" y1="{top}" y2="{top}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{left + 20}" y="{top + 4}" font-size="10" fill="#1d2733">'
            f"{escape(label[:22])}</text>"
        )
    return out
