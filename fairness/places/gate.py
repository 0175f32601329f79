"""The places gate (pure): the challenger versus the champion on PAI@k and Poisson deviance.

Both versions' test predictions are joined on (cell, week): only the weeks and cells both
forecast are compared, with the challenger's ``observed`` (the newer delivery's counts), so the
two are judged on the same incidents. Per common week each gets its PAI@k and mean deviance;
the **paired bootstrap over weeks** (`paired_ratio`: the same resampled weeks for both, seeded)
gives the interval of mean(challenger) / mean(champion). Weeks are resampled, not cells,
because cells of one week share its weather, events and registration backlog.

Rules (``places.gate`` in ``configs/fairness.yaml``), non-inferiority on the interval:

- PAI@k: the interval's *lower* bound must reach ``min_pai_ratio`` (0.95: at most 5 % worse,
  shown with confidence; above 1 demands an improvement);
- deviance: the interval's *upper* bound must stay within ``max_deviance_ratio``;
- fewer than ``min_weeks`` common weeks (or no champion predictions) is insufficient evidence;
- no champion: the first version passes ("nothing to compare"), as for persons.

Outcome (`fairness.gate.outcome_of`): fail if any check fails, else insufficient evidence if
any lacks it (and the policy requires it), else pass.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray

from fairness.gate import outcome_of
from fairness.places.metrics import SCORE, weekly_measures
from fairness.places.results import Comparison
from fairness.policy import PlacesPolicy
from fairness.results import FAIL, NO_EVIDENCE, PASS, Estimate, GateCheck, GateDecision

PAI = "PAI"
DEVIANCE = "Poisson deviance"
CHAMPION_SCORE = "champion_expected_count"


def pai_name(k: float) -> str:
    return f"{PAI}@{k * 100:g} %"


def paired_ratio(
    a: NDArray[np.float64], b: NDArray[np.float64], *, n_boot: int, confidence: float, seed: int
) -> Estimate:
    """mean(a) / mean(b) and its percentile interval over ``n_boot`` paired resamples of the
    positions (weeks); no interval with fewer than two positions or ``n_boot`` 0."""
    if a.size == 0 or float(b.mean()) <= 0:
        return Estimate()
    value = float(a.mean() / b.mean())
    if a.size < 2 or n_boot <= 0:
        return Estimate(value=value)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    den = b[idx].mean(axis=1)
    ratios = a[idx].mean(axis=1)[den > 0] / den[den > 0]
    if ratios.size == 0:
        return Estimate(value=value)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return Estimate(value=value, low=float(min(low, value)), high=float(max(high, value)))


def paired_frame(challenger: pl.DataFrame, champion: pl.DataFrame) -> pl.DataFrame:
    """The rows both forecast: the challenger's frame with the champion's score beside it as
    `CHAMPION_SCORE` (inner join on cell and week)."""
    theirs = champion.select("cell_id", "week_start", pl.col(SCORE).alias(CHAMPION_SCORE)).unique(
        subset=["cell_id", "week_start"], keep="first"
    )
    return challenger.join(theirs, on=["cell_id", "week_start"], how="inner")


def compare(
    challenger: pl.DataFrame, champion: pl.DataFrame, policy: PlacesPolicy
) -> list[Comparison]:
    """PAI@k and deviance of both on their common weeks, with paired bootstrap ratios."""
    both = paired_frame(challenger, champion)
    k, boot = policy.area_share, policy.bootstrap
    mine = weekly_measures(both, k, SCORE)
    theirs = weekly_measures(both, k, CHAMPION_SCORE)
    weekly = mine.join(theirs, on="week_start", suffix="_champion")
    out: list[Comparison] = []
    for i, (measure, column) in enumerate(((pai_name(k), "pai"), (DEVIANCE, "deviance"))):
        rows = weekly.drop_nulls([column, f"{column}_champion"])
        a = rows[column].to_numpy().astype(np.float64)
        b = rows[f"{column}_champion"].to_numpy().astype(np.float64)
        ratio = paired_ratio(
            a, b, n_boot=boot.n_boot, confidence=boot.confidence, seed=boot.seed + i
        )
        out.append(
            Comparison(
                measure=measure,
                challenger=float(a.mean()) if a.size else None,
                champion=float(b.mean()) if b.size else None,
                ratio=ratio,
                weeks=int(a.size),
            )
        )
    return out


def _fmt(e: Estimate) -> str:
    if e.value is None:
        return "undefined"
    if e.low is None or e.high is None:
        return f"{e.value:.3f} (no interval)"
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def comparison_checks(comparisons: list[Comparison], policy: PlacesPolicy) -> list[GateCheck]:
    """One check per measure (see the module docstring for the rules)."""
    gate = policy.gate
    checks: list[GateCheck] = []
    for c in comparisons:
        pai = c.measure.startswith(PAI)
        name = f"{c.measure} vs champion"
        low, high = c.ratio.low, c.ratio.high
        what = (
            f"challenger / champion {_fmt(c.ratio)} over {c.weeks} common week(s); "
            f"challenger {c.challenger if c.challenger is None else round(c.challenger, 4)}, "
            f"champion {c.champion if c.champion is None else round(c.champion, 4)}"
        )
        if c.weeks < gate.min_weeks or low is None or high is None:
            checks.append(
                GateCheck(
                    name=name,
                    outcome=NO_EVIDENCE,
                    detail=f"{what}: fewer than {gate.min_weeks} comparable weeks",
                )
            )
        elif pai:
            ok = low >= gate.min_pai_ratio
            checks.append(
                GateCheck(
                    name=name,
                    outcome=PASS if ok else FAIL,
                    detail=f"{what}; lower bound {'≥' if ok else '<'} {gate.min_pai_ratio}",
                )
            )
        else:
            ok = high <= gate.max_deviance_ratio
            checks.append(
                GateCheck(
                    name=name,
                    outcome=PASS if ok else FAIL,
                    detail=f"{what}; upper bound {'≤' if ok else '>'} {gate.max_deviance_ratio}",
                )
            )
    return checks


def decide_places(
    challenger: pl.DataFrame,
    champion: pl.DataFrame | None,
    policy: PlacesPolicy,
    *,
    champion_version: str | None = None,
    champion_missing: str | None = None,
) -> tuple[list[Comparison], GateDecision]:
    """The comparisons and the gate's decision on ``challenger`` against ``champion``'s test
    predictions (None: no champion, or ``champion_missing`` says why they are not available)."""
    if champion is None and champion_version is None:
        check = GateCheck(
            name="versus champion", outcome=PASS, detail="no current champion: nothing to compare"
        )
        return [], GateDecision(outcome=PASS, checks=[check], champion=None)
    if champion is None:
        check = GateCheck(
            name="versus champion",
            outcome=NO_EVIDENCE,
            detail=f"v{champion_version}'s test predictions: {champion_missing or 'not found'}",
        )
        checks = [check]
        comparisons: list[Comparison] = []
    else:
        comparisons = compare(challenger, champion, policy)
        checks = comparison_checks(comparisons, policy)
    outcome = outcome_of(checks, policy.gate.require_sufficient_evidence)
    return comparisons, GateDecision(outcome=outcome, checks=checks, champion=champion_version)
