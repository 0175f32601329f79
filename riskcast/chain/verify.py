"""What `HashChain.verify` finds wrong with a chain, each problem naming the seq.

Kept apart from `riskcast.chain` (which reads the rows and recomputes their hashes) so that the
rules can be read in one place:

- in the table: a gap in ``seq`` (deleted), a hash that is not the HMAC of the content under
  the chain key (edited; "without the chain key" when it is the plain sha256 an attacker
  without the key, or a riskcast before chain keys, would write), a ``prev_hash`` that is not
  the previous entry's hash (chain broken, or reordered), a time going backwards;
- against the anchors (`riskcast.chain.anchors`): the table ending before the newest anchored
  seq (the newest entries deleted), or a stored hash that differs from the one anchored when
  that seq was committed (edited and re-hashed, e.g. with a stolen key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from riskcast.chain.anchors import Anchor

GENESIS = "0" * 64
MAX_LISTED = 10  # anchored seqs listed one by one when their hashes differ


@dataclass(frozen=True)
class Checked:
    """One stored row and what its content hashes to (``unreadable`` says why it did not)."""

    seq: int
    at: datetime
    prev_hash: str
    hash: str
    keyed: str | None = None
    plain: str | None = None
    unreadable: str | None = None


def chain_problems(
    rows: Sequence[Checked], label: str, start: tuple[int, str] | None = None
) -> list[str]:
    """The problems of the table alone, in seq order; a run of more than `MAX_LISTED`
    consecutive entries with the same hash problem is one line. ``start``: the (seq, hash) of
    a sealed head the live rows continue from (`riskcast.chain.seal`), else the genesis."""
    by_hash = {row.hash: row.seq for row in rows}
    found: list[tuple[int, str, str]] = []  # (seq, kind, problem); kinds "plain", "edited", ""
    mismatched = unkeyed = 0
    expected_seq, prev_hash = (start[0] + 1, start[1]) if start else (1, GENESIS)
    prev_at = None
    for row in rows:
        seq = row.seq
        if start and seq <= start[0]:
            found.append((seq, "", f"seq {seq}: live, yet sealed (the seal is at seq {start[0]})"))
        if seq > expected_seq:
            gone = str(expected_seq) if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            found.append((seq, "", f"seq {gone}: missing (deleted entry; seq jumps to {seq})"))
        if row.unreadable is not None:
            found.append((seq, "", f"seq {seq}: content edited (unreadable: {row.unreadable})"))
        elif row.keyed != row.hash:
            mismatched += 1
            if row.plain == row.hash:
                unkeyed += 1
                found.append((seq, "plain", f"seq {seq}: {_PLAIN}"))
            else:
                found.append(
                    (
                        seq,
                        "edited",
                        f"seq {seq}: content edited (stored hash {row.hash[:12]}…, "
                        f"content hashes to {(row.keyed or '')[:12]}…)",
                    )
                )
        if row.prev_hash != prev_hash:
            before = f"seq {expected_seq - 1}" if prev_at or start else "genesis"
            other = by_hash.get(row.prev_hash)
            if other is not None:
                text = f"seq {seq}: reordered (chained after seq {other}, not {before})"
            else:
                text = (
                    f"seq {seq}: chain broken (prev_hash {row.prev_hash[:12]}… is not the "
                    f"hash of {before})"
                )
            found.append((seq, "", text))
        if prev_at is not None and row.at < prev_at:
            found.append(
                (seq, "", f"seq {seq}: reordered (recorded before the entry preceding it)")
            )
        expected_seq, prev_hash, prev_at = seq + 1, row.hash, row.at
    if rows and mismatched == len(rows):  # one line, not one per entry: a key or format issue
        summary = (
            f"seq {rows[0].seq}-{rows[-1].seq}: no entry carries this chain key's HMAC "
            f"({unkeyed} of {len(rows)} are plain sha256): the {label} was written with "
            "another RISKCAST_CHAIN_KEY, or by a riskcast before chain keys (recreate it: "
            "serving/README.md, 'Chain key'), or rewritten whole"
        )
        return [summary, *(text for _, kind, text in found if not kind)]
    return _runs(found)


_PLAIN = (
    "hashed without the chain key (re-hashed by someone who does not hold RISKCAST_CHAIN_KEY, "
    "or written before chain keys)"
)
_RUN = {
    "plain": _PLAIN,
    "edited": "content edited (stored hashes are not the HMAC of their content)",
}


def _runs(found: list[tuple[int, str, str]]) -> list[str]:
    """The problems, with each run of consecutive entries sharing a hash problem longer than
    `MAX_LISTED` as one line (a log re-hashed from an early entry on would be a line each)."""
    problems: list[str] = []
    i = 0
    while i < len(found):
        seq, kind, _ = found[i]
        j = i + 1
        while kind and j < len(found) and found[j][1] == kind and found[j][0] == seq + (j - i):
            j += 1
        if j - i > MAX_LISTED:
            problems.append(f"seq {seq}-{found[j - 1][0]}: {_RUN[kind]} ({j - i} entries)")
        else:
            problems.extend(t for _, _, t in found[i:j])
        i = j
    return problems


def anchor_problems(
    rows: Sequence[Checked], anchors: list[Anchor] | None, path: Path, label: str
) -> list[str]:
    """The problems found by comparing the table with its anchors (read before the table, so
    that commits made meanwhile are never mistaken for deletions)."""
    if anchors is None:
        if not rows:
            return []
        return [
            f"no anchor file {path}: the newest entries cannot be checked (every process that "
            "appends writes it; verify with the same RISKCAST_HOME / RISKCAST_CHAIN_ANCHOR_DIR "
            "and database URL as they use)"
        ]
    stored = {row.seq: row.hash for row in rows}
    last = rows[-1].seq if rows else 0
    problems = []
    newest = max(anchors, key=lambda a: a.seq, default=None)
    if newest is not None and newest.seq > last:
        gone = str(newest.seq) if newest.seq == last + 1 else f"{last + 1}-{newest.seq}"
        problems.append(
            f"seq {gone}: missing at the end (the newest entries deleted): {path.name} anchors "
            f"seq {newest.seq} (hash {newest.hash[:12]}…) as committed, the {label} ends at "
            f"seq {last}"
        )
    differing: dict[int, str] = {}
    for anchor in anchors:
        if anchor.seq in stored and stored[anchor.seq] != anchor.hash:
            differing.setdefault(anchor.seq, anchor.hash)
    for seq in sorted(differing)[:MAX_LISTED]:
        problems.append(
            f"seq {seq}: stored hash {stored[seq][:12]}… differs from the one anchored when it "
            f"was committed ({differing[seq][:12]}…): edited and re-hashed, or replaced"
        )
    if len(differing) > MAX_LISTED:
        problems.append(f"… and {len(differing) - MAX_LISTED} more anchored seqs differ")
    return problems
