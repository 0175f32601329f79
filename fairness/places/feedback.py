"""The feedback-loop check (pure): do registrations rise where the map sends patrols while an
independent signal of crime does not?

Registered incidents depend on where patrols are (an officer on the street registers what a
resident would not have reported), and the contract's incidents do not say who detected them.
So, per district, the weekly **registrations** are compared with the weekly **citizens'
appeals** about the same kind of trouble (``feedback.appeal_categories``: violence, alcohol,
noise by default), which patrols do not produce, before and after the district was first
flagged (had a cell in the top ``k`` of area in the audited predictions):

- before: up to ``lookback_weeks`` weeks before the onset (from the store's history), after:
  the onset to the last audited week;
- registration rise = registrations per week after / before, appeal rise likewise;
- divergence = registration rise / appeal rise, with a Wald interval on the log scale from the
  four Poisson counts (0.5 added to each, so zero counts give a finite, wide interval);
- **flagged** when registrations rose by at least ``min_registration_rise``, appeals are not
  shown to have risen (the lower bound of their rise's interval is at most
  ``max_appeal_rise``: a point estimate of a flat series is above 1 half of the time), and the
  divergence interval lies above 1; "insufficient evidence" with
  fewer than ``min_weeks_before`` weeks before, fewer than ``min_count`` registrations before
  or appeals in all. Districts never flagged get the same figures with the onset at the first
  audited week, as a reference (they cannot be flagged).

`STATEMENT` says what this can and cannot show; every report carries it.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from statistics import NormalDist

import polars as pl

from fairness.places.results import FeedbackRow, FeedbackStatus
from fairness.policy import PlacesFeedback
from fairness.results import Estimate

KEYS = ["region", "district"]
HALF = 0.5

STATEMENT = (
    "What the feedback-loop check can show: districts where registered incidents rose after "
    "the map flagged them while citizens' appeals about violence, public order and alcohol "
    "did not, which is the pattern more patrols finding more incidents would leave. What it "
    "cannot show: it cannot separate detection from crime (registrations can rise because "
    "crime rose in ways residents do not appeal about, and appeals can stay flat because "
    "residents stopped appealing once patrols came); appeals are an independent but noisy "
    "signal (they follow media, campaigns and the ease of appealing, and many districts have "
    "few); before and after are not a controlled comparison (seasons, other policing, changes "
    "in registration practice); on a version not yet served, the flags are those it would have "
    "raised, so a divergence shows where registrations and appeals already part ways in the "
    "places it would send patrols to (often places earlier maps sent them to), not an effect "
    "of this version. No causal claim is made: a flagged district is a question for the "
    "district's analysts and the auditors, not a finding."
)


def weekly_counts(
    frame: pl.DataFrame, at: str, *, categories: list[str] | None = None
) -> pl.DataFrame:
    """Counts per (region, district, week) of rows timed by ``at`` (a datetime column; weeks
    start on Monday, as the cell weeks do), optionally only rows whose ``category`` is listed.
    Rows without a district are left out (they are on no district's line)."""
    rows = frame if categories is None else frame.filter(pl.col("category").is_in(categories))
    return (
        rows.filter(pl.col("district").is_not_null())
        .with_columns(pl.col(at).dt.date().dt.truncate("1w").alias("week_start"))
        .group_by([*KEYS, "week_start"])
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort([*KEYS, "week_start"])
    )


def _window(series: pl.DataFrame, key: tuple[str, str], start: date, end: date) -> int:
    """The sum of a weekly series of one district over the weeks in [start, end)."""
    hit = series.filter(
        (pl.col("region") == key[0])
        & (pl.col("district") == key[1])
        & (pl.col("week_start") >= start)
        & (pl.col("week_start") < end)
    )
    return int(hit["count"].sum() or 0)


def _weeks(start: date, end: date) -> int:
    return max(0, (end - start).days // 7)


def divergence(
    reg_before: int, reg_after: int, app_before: int, app_after: int, confidence: float
) -> Estimate:
    """(reg_after / reg_before) / (app_after / app_before) with 0.5 added to every count, and
    its Wald interval on the log scale (the weeks cancel: both series share the periods)."""
    counts = [c + HALF for c in (reg_before, reg_after, app_before, app_after)]
    log_d = math.log(counts[1] / counts[0]) - math.log(counts[3] / counts[2])
    se = math.sqrt(sum(1 / c for c in counts))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return Estimate(
        value=math.exp(log_d), low=math.exp(log_d - z * se), high=math.exp(log_d + z * se)
    )


def rise(
    before: int, after: int, weeks_before: int, weeks_after: int, confidence: float
) -> Estimate:
    """(after / weeks_after) / (before / weeks_before) and its Wald interval on the log scale
    (0.5 added to both counts for the interval); no value without counts or weeks before."""
    if weeks_before <= 0 or weeks_after <= 0:
        return Estimate()
    b, a = before + HALF, after + HALF
    log_r = math.log((a / weeks_after) / (b / weeks_before))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    se = math.sqrt(1 / a + 1 / b)
    value = (after / weeks_after) / (before / weeks_before) if before > 0 else None
    low, high = math.exp(log_r - z * se), math.exp(log_r + z * se)
    if value is not None:
        low, high = min(low, value), max(high, value)
    return Estimate(value=value, low=low, high=high)


def feedback_loop(
    onsets: pl.DataFrame,
    registrations: pl.DataFrame,
    appeals: pl.DataFrame,
    *,
    first_week: date,
    last_week: date,
    rule: PlacesFeedback,
) -> list[FeedbackRow]:
    """The check per district of ``onsets`` (``region``, ``district``, ``onset``: the first
    flagged week, null if never flagged); ``registrations`` and ``appeals`` are weekly counts
    (`weekly_counts`) covering the audited weeks and the history before them."""
    end = last_week + timedelta(weeks=1)
    history = registrations["week_start"].min() if registrations.height else None
    data_start = history if isinstance(history, date) else first_week
    rows: list[FeedbackRow] = []
    for region, district, onset in onsets.sort(KEYS).iter_rows():
        key = (str(region), str(district))
        start = onset if isinstance(onset, date) else first_week
        before_start = max(start - timedelta(weeks=rule.lookback_weeks), data_start)
        wb, wa = _weeks(before_start, start), _weeks(start, end)
        rb, ra = (
            _window(registrations, key, before_start, start),
            _window(registrations, key, start, end),
        )
        ab, aa = _window(appeals, key, before_start, start), _window(appeals, key, start, end)
        reg_rise = rise(rb, ra, wb, wa, rule.confidence)
        app_rise = rise(ab, aa, wb, wa, rule.confidence)
        judged = wb > 0 and wa > 0 and ab + aa > 0 and rb + ra > 0
        div = divergence(rb, ra, ab, aa, rule.confidence) if judged else Estimate()
        status, detail = _judge(onset, wb, rb, ab + aa, reg_rise, app_rise, div, rule)
        rows.append(
            FeedbackRow(
                region=key[0], district=key[1], onset=onset if isinstance(onset, date) else None,
                weeks_before=wb, weeks_after=wa, registrations_before=rb,
                registrations_after=ra, appeals_before=ab, appeals_after=aa,
                registration_rise=reg_rise, appeal_rise=app_rise, divergence=div,
                status=status, detail=detail,
            )
        )  # fmt: skip
    return rows


def _judge(
    onset: object, weeks_before: int, reg_before: int, appeals: int,
    reg_rise: Estimate, app_rise: Estimate, div: Estimate, rule: PlacesFeedback,
) -> tuple[FeedbackStatus, str]:  # fmt: skip
    if not isinstance(onset, date):
        return "never flagged", "reference: onset taken at the first audited week"
    short = []
    if weeks_before < rule.min_weeks_before:
        short.append(f"{weeks_before} week(s) before the onset (< {rule.min_weeks_before})")
    if reg_before < rule.min_count:
        short.append(f"{reg_before} registrations before (< {rule.min_count})")
    if appeals < rule.min_count:
        short.append(f"{appeals} appeals in all (< {rule.min_count})")
    if short:
        return "insufficient evidence", "; ".join(short)
    rose = reg_rise.value is not None and reg_rise.value >= rule.min_registration_rise
    flat = app_rise.low is not None and app_rise.low <= rule.max_appeal_rise
    apart = div.low is not None and div.low > 1
    if rose and flat and apart:
        return "flagged", (
            f"registrations ×{reg_rise.value:.2f} while appeals ×{_x(app_rise)}; divergence "
            f"×{div.value:.2f} [{div.low:.2f}, {div.high:.2f}] above 1"
        )
    why = []
    if not rose:
        why.append(f"registrations ×{_x(reg_rise)} (< ×{rule.min_registration_rise})")
    if not flat:
        why.append(f"appeals rose: ×{_x(app_rise)}, interval above ×{rule.max_appeal_rise}")
    if not apart:
        why.append(f"the divergence ×{_x(div)} [{_x_low(div)}] reaches 1")
    return "ok", "; ".join(why)


def _x(e: Estimate) -> str:
    return "–" if e.value is None else f"{e.value:.2f}"


def _x_low(e: Estimate) -> str:
    return "–" if e.low is None or e.high is None else f"{e.low:.2f}, {e.high:.2f}"


def flag_onsets(district_weeks: pl.DataFrame) -> pl.DataFrame:
    """Per district the first week it had a flagged cell (null: never), from
    `fairness.places.exposure.district_weeks`."""
    return district_weeks.group_by(KEYS).agg(
        pl.col("week_start").filter(pl.col("any_flagged")).min().alias("onset")
    )
