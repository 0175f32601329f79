"""What a probability means: the event and its horizon, the base rate, the tiers' bands.

Why: "59 %" alone does not say of what, by when, nor whether it is high. The event comes from
the champion's own label (its metadata names the label and horizon it was trained on; the
label's description is `configs/labels.yaml`'s), never from text written here; the base rate is
the mean probability over the served population (every materialised person inside the model's
population of validity, from the score book); a tier is shown with its probability band and
its share of that population.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from riskcast.configio import find_config
from riskcast.errors import RiskcastError
from serving.schemas import ScoreMeaning, TierBand
from serving.scorebook import ScoreBook
from serving.state import LoadedModel, ServiceState

LABELS_FILE = "labels.yaml"


def tier_label(name: str) -> str:
    """A tier in words: ``very_high`` -> ``very high``."""
    return name.replace("_", " ")


def horizon_words(days: int) -> str:
    """365 -> "12 months", 730 -> "24 months", 90 -> "3 months", 10 -> "10 days"."""
    if days % 365 == 0:
        return f"{days // 365 * 12} months"
    if days % 30 == 0:
        months = days // 30
        return f"{months} month" + ("s" if months != 1 else "")
    return f"{days} day" + ("s" if days != 1 else "")


@lru_cache(maxsize=8)
def _label_descriptions(path: Path) -> dict[str, str]:
    from training.labels import load_label_config

    return {name: d.description for name, d in load_label_config(path).labels.items()}


def label_description(label: str) -> str | None:
    """The label's description in `configs/labels.yaml` (None: not found there)."""
    try:
        return _label_descriptions(find_config(LABELS_FILE)).get(label)
    except (RiskcastError, OSError):
        return None


def event_words(label: str | None, horizon_days: int | None) -> str:
    """The event the model forecasts, in words, with its horizon (from the label's config
    description, its "N days" said in months)."""
    described = label_description(label) if label else None
    if described is not None:
        if horizon_days:
            described = described.replace(f"{horizon_days} days", horizon_words(horizon_days))
        return described
    if label is None:
        return "the event the model was trained on"
    within = f" within {horizon_words(horizon_days)}" if horizon_days else ""
    return f"the event `{label}`{within}"


def tier_bands(champion: LoadedModel, book: ScoreBook | None) -> list[TierBand]:
    """The champion's tiers, lowest first, with their probability bands and shares."""
    ordered = sorted(champion.model.tiers, key=lambda t: t.min_probability)
    shares = book.tier_shares() if book is not None else {}
    bands = []
    for i, t in enumerate(ordered):
        upper = ordered[i + 1].min_probability if i + 1 < len(ordered) else None
        bands.append(
            TierBand(
                name=t.name,
                label=tier_label(t.name),
                min_probability=t.min_probability,
                max_probability=upper,
                share=shares.get(t.name, 0.0) if book is not None else None,
            )
        )
    return bands


def score_meaning(state: ServiceState, champion: LoadedModel) -> ScoreMeaning:
    """What the champion's probabilities mean, for a list or a person page."""
    meta = champion.model.metadata
    label = meta.get("label")
    horizon = meta.get("horizon_days")
    horizon_days = int(horizon) if isinstance(horizon, int | float | str) and horizon else None
    book = state.book()
    if book is not None and book.model_version != champion.version:
        book = None
    return ScoreMeaning(
        label=None if label is None else str(label),
        event=event_words(None if label is None else str(label), horizon_days),
        horizon_days=horizon_days,
        base_rate=None if book is None else book.base_rate,
        served=None if book is None else book.size,
        tiers=tier_bands(champion, book),
    )
