"""A model card longer than MLflow's SQL registry allows is cut at a line, with a pointer to the
whole card (PostgreSQL refuses descriptions over 5,000 characters; SQLite does not check)."""

from __future__ import annotations

from training.tracking import DESCRIPTION_LIMIT, fit_description


def test_a_card_that_fits_is_kept_as_it_is() -> None:
    card = "# card\n" + "x" * (DESCRIPTION_LIMIT - 7)
    assert len(card) == DESCRIPTION_LIMIT
    assert fit_description(card) == card


def test_a_long_card_is_cut_at_a_line_and_says_where_the_whole_card_is() -> None:
    lines = [f"| feature_{i} | a description a patrol planner can read |" for i in range(400)]
    card = "# Model card\n" + "\n".join(lines)
    assert len(card) > DESCRIPTION_LIMIT
    short = fit_description(card)
    assert len(short) <= DESCRIPTION_LIMIT
    kept, note = short.split("\n\n…", 1)
    assert card.startswith(kept) and kept.endswith("|")  # whole lines only
    assert "model_card.md" in note


def test_one_long_line_is_still_cut_to_the_limit() -> None:
    assert len(fit_description("y" * 20_000, limit=300)) <= 300
