"""Which forecast origins a places run uses, and its rolling-origin folds (pure date logic).

Origins are Sundays: as of the end of Sunday ``T``, week 1 is the Monday after. Horizon ``h``'s
label is known at the end of ``T + 7h``, so

- the **test** origins are the last ``test_weeks`` Sundays whose week ``H`` (the last horizon)
  has ended by the store's last extraction, one a week;
- the **training** origins end ``7H`` days before the first test origin (every label they use
  was known then, as it would have been for a model trained that day) and go back
  ``train_weeks`` weeks, one every ``train_every_weeks`` weeks;
- each **fold** validates on a block of ``valid_origins`` consecutive training origins and
  trains on the training origins whose week ``H`` ended by the block's first origin (no label
  of the training rows lies in the validation period). The folds are the last blocks, oldest
  first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from riskcast.errors import InputError
from training.places.config import PlacesTrainingConfig


def sunday_on_or_before(day: date) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7)


def last_complete_origin(last_day: date, horizons: int) -> date:
    """The last Sunday whose forecast week ``horizons`` ended a full day before ``last_day``
    (the last extraction date; a delivery cut at 23:59:59 has not quite finished its day)."""
    return sunday_on_or_before(last_day - timedelta(days=7 * horizons + 1))


@dataclass(frozen=True)
class Fold:
    train: tuple[date, ...]
    valid: tuple[date, ...]


@dataclass(frozen=True)
class OriginPlan:
    train: tuple[date, ...]
    test: tuple[date, ...]
    folds: tuple[Fold, ...]
    horizons: int

    @property
    def all(self) -> list[date]:
        return sorted(set(self.train) | set(self.test))

    @property
    def tuning_valid(self) -> list[date]:
        return sorted({d for f in self.folds for d in f.valid})

    def as_dict(self) -> dict[str, object]:
        return {
            "train": [str(d) for d in self.train],
            "test": [str(d) for d in self.test],
            "folds": [
                {"train": [str(d) for d in f.train], "valid": [str(d) for d in f.valid]}
                for f in self.folds
            ],
            "horizons": self.horizons,
        }


def plan_origins(cfg: PlacesTrainingConfig, last_day: date, first_day: date) -> OriginPlan:
    """The origins for a store whose extractions end on ``last_day`` and whose incidents
    start on ``first_day`` (training origins need a year of history for the lags)."""
    h = cfg.horizons
    last = last_complete_origin(last_day, h)
    test = tuple(last - timedelta(weeks=k) for k in reversed(range(cfg.origins.test_weeks)))
    last_train = test[0] - timedelta(weeks=h)
    earliest = max(
        last_train - timedelta(weeks=cfg.origins.train_weeks), first_day + timedelta(weeks=52)
    )
    step = cfg.origins.train_every_weeks
    train: list[date] = []
    t = last_train
    while t >= earliest:
        train.append(t)
        t -= timedelta(weeks=step)
    train.reverse()
    if len(train) < 2:
        raise InputError(
            f"places training: the store's incidents ({first_day} to {last_day}) leave "
            f"{len(train)} training origins before the {cfg.origins.test_weeks} test weeks; "
            "lower origins.test_weeks or deliver a longer history"
        )
    folds = make_folds(train, cfg.folds.n_folds, cfg.folds.valid_origins, h)
    return OriginPlan(tuple(train), test, folds, h)


def make_folds(
    train: list[date], n_folds: int, valid_origins: int, horizons: int
) -> tuple[Fold, ...]:
    """The last ``n_folds`` blocks of ``valid_origins`` origins, each with the earlier origins
    whose labels were all known at the block's start; blocks without such origins are dropped."""
    folds: list[Fold] = []
    for k in range(n_folds, 0, -1):
        end = len(train) - (k - 1) * valid_origins
        start = end - valid_origins
        if start < 1:
            continue
        valid = tuple(train[start:end])
        fit = tuple(d for d in train[:start] if d + timedelta(weeks=horizons) <= valid[0])
        if len(fit) >= 1:
            folds.append(Fold(fit, valid))
    if not folds:
        raise InputError(
            f"places training: {len(train)} training origins are too few for one fold of "
            f"{valid_origins} validation origins after a gap of {horizons} weeks; lower "
            "folds.valid_origins or raise origins.train_weeks"
        )
    return tuple(folds)
