"""The rationale written as comments beside the numbers of a YAML configuration.

riskcast keeps a threshold's reason next to the threshold (``configs/monitoring.yaml``: "psi_alert:
0.25  # 0.1-0.25 moderate shift ..."), where an operator who changes one sees the other. The
evidence pack must state both, so this reads the comments back: per dotted key, its trailing
comment and the comment-only lines aligned under it, and per section the comment block that
opens it. Pure (text in, mapping out).
"""

from __future__ import annotations

import re

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")
_COMMENT_ONLY = re.compile(r"^(?P<indent> *)#(?P<text>.*)$")


def _split_comment(rest: str) -> tuple[str, int | None]:
    """The comment of a key line's remainder (outside quotes) and its column in ``rest``."""
    quote: str | None = None
    for i, ch in enumerate(rest):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1] == " "):
            return rest[i + 1 :].strip(), i
    return "", None


def comment_notes(text: str) -> dict[str, str]:
    """``{"drift.psi_alert": "0.1-0.25 moderate shift ...", "drift": "Population stability
    ...", ...}``: each key's trailing comment with its aligned continuation lines, and each
    section's opening comment block (comment lines just under ``section:``)."""
    notes: dict[str, str] = {}
    path: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
    current: str | None = None  # the key whose comment may continue
    column: int | None = None  # where its comment starts
    opening: str | None = None  # a section whose opening comments are being read
    for line in text.splitlines():
        comment = _COMMENT_ONLY.match(line)
        if comment:
            at = len(comment.group("indent"))
            words = comment.group("text").strip()
            if current is not None and column is not None and at == column:
                notes[current] = f"{notes[current]} {words}".strip()
            elif opening is not None:
                notes[opening] = f"{notes.get(opening, '')} {words}".strip()
            continue
        match = _KEY.match(line)
        if not match:
            current = opening = None
            continue
        indent = len(match.group("indent"))
        while path and path[-1][0] >= indent:
            path.pop()
        dotted = ".".join([*(k for _, k in path), match.group("key")])
        rest = match.group("rest")
        note, at_column = _split_comment(rest)
        current = column = opening = None
        if note:
            notes[dotted] = note
            current = dotted
            column = len(line) - len(rest) + (at_column or 0)
        if not rest.split("#")[0].strip():  # a section (or a block value) opens here
            path.append((indent, match.group("key")))
            opening = dotted if not note else None
    return notes
