"""The feedback-loop check on seeded weekly series: a district whose registrations rise after
it was flagged while its appeals stay flat is flagged; one where both rise is not; thin
evidence is said, never flagged; never-flagged districts are references."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from fairness.places.feedback import STATEMENT, divergence, feedback_loop, weekly_counts
from fairness.policy import PlacesFeedback

FIRST = date(2026, 1, 5)  # the first audited week (a Monday)
WEEKS = 26
RULE = PlacesFeedback()


def _series(
    rng: np.random.Generator, district: str, before: float, after: float
) -> list[tuple[str, str, date, int]]:
    """Weekly Poisson counts: ``before`` per week for 26 weeks before the audit, then ``after``."""
    rows = []
    for w in range(-26, WEEKS):
        rate = before if w < 0 else after
        rows.append(("R1", district, FIRST + timedelta(weeks=w), int(rng.poisson(rate))))
    return rows


def _frame(rows: list[tuple[str, str, date, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["region", "district", "week_start", "count"], orient="row")


@pytest.fixture(scope="module")
def rows() -> dict[str, object]:
    rng = np.random.default_rng(11)
    registrations = _frame(
        _series(rng, "loop", 20, 32) + _series(rng, "both", 20, 32)
        + _series(rng, "quiet", 20, 20) + _series(rng, "thin", 1, 2)
        + _series(rng, "never", 10, 10)
    )  # fmt: skip
    appeals = _frame(
        _series(rng, "loop", 6, 6) + _series(rng, "both", 6, 9.6)
        + _series(rng, "quiet", 6, 6) + _series(rng, "thin", 0.2, 0.2)
        + _series(rng, "never", 3, 3)
    )  # fmt: skip
    onsets = pl.DataFrame(
        {
            "region": ["R1"] * 5,
            "district": ["loop", "both", "quiet", "thin", "never"],
            "onset": [FIRST, FIRST, FIRST + timedelta(weeks=4), FIRST, None],
        },
        schema={"region": pl.String, "district": pl.String, "onset": pl.Date},
    )
    found = feedback_loop(
        onsets, registrations, appeals, first_week=FIRST,
        last_week=FIRST + timedelta(weeks=WEEKS - 1), rule=RULE,
    )  # fmt: skip
    return {r.district: r for r in found}


def test_rise_after_flagging_with_flat_appeals_is_flagged(rows: dict[str, object]) -> None:
    loop = rows["loop"]
    assert loop.status == "flagged", loop.detail  # type: ignore[attr-defined]
    assert loop.registration_rise.value > 1.4  # type: ignore[attr-defined]
    assert loop.divergence.low > 1  # type: ignore[attr-defined]
    assert loop.weeks_before == 26 and loop.weeks_after == WEEKS  # type: ignore[attr-defined]


def test_both_rising_is_not_flagged(rows: dict[str, object]) -> None:
    both = rows["both"]
    assert both.status == "ok"  # type: ignore[attr-defined]
    assert "appeals rose" in both.detail  # type: ignore[attr-defined]


def test_flat_registrations_thin_evidence_and_references(rows: dict[str, object]) -> None:
    assert rows["quiet"].status == "ok"  # type: ignore[attr-defined]
    assert rows["quiet"].onset == FIRST + timedelta(weeks=4)  # type: ignore[attr-defined]
    assert rows["thin"].status == "insufficient evidence"  # type: ignore[attr-defined]
    assert "appeals in all" in rows["thin"].detail  # type: ignore[attr-defined]
    never = rows["never"]
    assert never.status == "never flagged" and never.onset is None  # type: ignore[attr-defined]


def test_divergence_interval_and_zero_counts() -> None:
    even = divergence(100, 100, 50, 50, 0.95)
    assert even.value == pytest.approx(1.0)
    assert even.low is not None and even.high is not None and even.low < 1 < even.high
    empty = divergence(0, 0, 0, 0, 0.95)  # finite, wide, centred on 1
    assert empty.value == pytest.approx(1.0) and empty.low is not None and empty.low < 0.1


def test_weekly_counts_by_category_and_monday_weeks() -> None:
    at = datetime(2026, 1, 7, 12, tzinfo=UTC)  # a Wednesday
    appeals = pl.DataFrame(
        {
            "submitted_at": [at, at, at + timedelta(days=6), at],
            "region": ["R1"] * 4,
            "district": ["a", "a", "a", None],
            "category": ["violence", "utilities", "noise", "violence"],
        }
    )
    counts = weekly_counts(appeals, "submitted_at", categories=["violence", "noise"])
    assert counts.rows() == [("R1", "a", date(2026, 1, 5), 1), ("R1", "a", date(2026, 1, 12), 1)]


def test_the_statement_says_what_it_cannot_show() -> None:
    for words in ("cannot separate detection from crime", "noisy", "No causal claim"):
        assert words in STATEMENT
