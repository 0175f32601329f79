"""Input drift of the places champion's cell features: rate ratios of a window of recent weeks
against the same weeks a year before, overdispersion-aware, with the false discovery rate
controlled across every (input, group) test of a check (pure).

Why not the person rule (PSI + KS per group, `drift.input_drift`)? The places inputs are
counts per cell and week (lags, windows, smoothed maps), mostly zero, strongly seasonal, and
a district holds ~100 cells: one week of a district against the 26 audited test weeks raised
717 alerts on a simulated store where nothing had changed (bench_monitoring.md, "Places
monitoring"): the season had moved (test weeks up to September, check in December), a point
mass at 0 makes PSI and KS jumpy, and 2,960 tests at alpha 0.01 each raise ~30 by chance alone.

The rule here, per model input ``x`` and per group (overall, each region, each district):

- **window**: the ``window_weeks`` weekly origins ending at the check date (the current
  frame); **reference**: the same origins ``season_lag_weeks`` (52) earlier, the same weeks
  of the year, so the season cancels out of the comparison;
- **rate ratio** ``RR = (S_cur / n_cur) / (S_ref / n_ref)``, with ``S`` the sum of ``x`` over
  the group's cell-weeks and ``n`` their number (the mean value per cell-week now vs then);
- **overdispersion**: ``Var(S) = phi · E(S)`` (quasi-Poisson). ``phi`` is estimated per input
  from the spread of the districts' ratios around the common ratio (Pearson residuals of the
  homogeneity model of the 2 x districts table), robustly: the mean of ``r²`` with the
  largest tenth left out, over chi-square(1)'s mean below its 90th percentile (0.623), so a
  few districts that did change do not hide themselves by inflating it (steadier than the
  median at 30 districts). It absorbs the extra-Poisson variation (clustered incidents) and
  the overlap of windows (a 52-week count of four consecutive origins shares 49 weeks, so the
  sum of four behaves like four times one count: variance x16, mean x4, ``phi`` ~4), and it
  makes the rule unit-free (smoothed maps, intensities);
- **district-level noise**: weather, events and patrols move a whole district's level between
  years, a variance that grows with the count's square, not its mean, so the quasi-Poisson
  part understates it for busy districts. ``tau²``, the variance of the districts' true
  log-ratios, is estimated robustly across districts (`between_variance`), never below
  ``min_between_sd²``, and added to each log-ratio's variance (for a region or overall, as
  ``tau² · Σ share²`` of its districts' reference sums: independent district deviations
  average out). Without it 3 of 12 stationary seeds of the unit test raised an alert;
- **two conditions for an alert**: the change is real and it is large. Real: the two-sided
  p-value of ``RR = 1`` (``z = log RR / se``, ``se² = phi (1/S_cur + 1/S_ref) + tau²`` on
  the log scale) survives Benjamini–Hochberg over all tests of the check (inputs x groups with
  enough evidence) at false discovery rate ``fdr``. Large: the point estimate lies outside
  ``[ratio_low, ratio_high]``. A change inside the band (a year's trend, a small recording
  change) never alerts however much data show it, and a large ratio from a few incidents
  never alerts either. (Testing against the band edge instead, "the interval wholly outside
  the band", needs about five times the incidents for the same power: a district with ~12
  incidents a week then misses a rise by half in most seeds of the unit test.) Under a
  stationary delivery every test is a true null, so BH bounds the chance of any alert at
  ``fdr`` if the noise is estimated well, and the band requirement lowers it further (1 of 40
  stationary seeds of the unit test's scenario alerted, bench_monitoring.md);
- **evidence**: a group whose reference holds fewer than ``min_effective_count`` effective
  events (``S_ref / phi``) is "insufficient evidence" (at 10 effective events the 95 %
  interval of a ratio of 1 already spans about [0.4, 2.5]). Above it a row may still be unable
  to see a change at the band's edge: its **detectable ratio** is the smallest rise whose
  (unadjusted) interval would clear 1, ``exp(z · se)`` with ``se`` at a ratio of 1 (BH only
  raises it). Per group, `group_evidence` keeps the ``evidence_input`` (the quarter's count),
  its effective count and detectable ratio, and the state "insufficient evidence",
  "insufficient for the band" (detectable beyond ``ratio_high``: a change to the band's edge
  is within the noise, so an "ok" says little) or "enough for the band" (rural districts,
  20-70 incidents a quarter, are mostly the second: a rise by half was caught in none of 12);
  inputs that take negative
  values (beyond rounding) or are named in ``exclude`` (calendar terms, functions of the date
  alone; codes such as the cell's ring) are not rates and are listed as skipped.

The interval shown is the ``confidence`` interval of RR (``exp(log RR ± z·se)``), unadjusted;
the alert rule is the q-value's and the point estimate's.

**History**: the reference origins lie ``season_lag_weeks`` before the window, and each of
their features looks back up to the spec's longest window (156 weeks for ``count_all_156w``):
the store must hold incidents from ``oldest reference origin - longest window``. A store that
starts later gives the reference truncated windows (too few incidents, ratios far above 1 that
are not drift), so `drift_history` checks it first, and a check without that history states
"insufficient history" and compares nothing (no ratio, no alert) rather than compare against
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field
from scipy import special, stats

from fairness.monitoring.places_config import PlacesDriftSettings

ALL = "all"
RateStatus = Literal["ok", "alert", "insufficient evidence"]
EvidenceState = Literal["enough for the band", "insufficient for the band", "insufficient evidence"]
_CHI2_1_MEDIAN = float(stats.chi2.ppf(0.5, 1))  # 0.4549: the robust between-variance's target
_TRIM = 0.9  # the dispersion's trimmed mean keeps the smallest 90 % of squared residuals
_TRIMMED_CHI2_1_MEAN = float(  # E[chi2(1) | below its 90th percentile] = 0.623
    (stats.chi2.cdf(stats.chi2.ppf(_TRIM, 1), 3)) / _TRIM
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateDrift(_Model):
    """One input in one group: the mean per cell-week then and now, their ratio with its
    interval, the band test's p-value, its BH q-value and the status."""

    input: str
    group_column: str
    group: str
    cell_weeks_reference: int
    cell_weeks_current: int
    mean_reference: float
    mean_current: float
    ratio: float | None
    lower: float | None
    upper: float | None
    p_value: float | None
    q_value: float | None
    dispersion: float  # phi of the input (quasi-Poisson)
    between_variance: float  # tau² of the group's log-ratio (district-level noise)
    status: RateStatus
    # the reference's effective events (S_ref / phi) and the smallest ratio above 1 whose
    # unadjusted interval would clear 1 (None: checks kept before they were reported)
    effective_count: float | None = None
    detectable_ratio: float | None = None


class GroupEvidence(_Model):
    """How much a group's drift rows can see: its best-measured input (the most effective
    events), that input's effective count and detectable ratio, and the state it gives."""

    group_column: str
    group: str
    input: str | None
    effective_count: float
    detectable_ratio: float | None
    state: EvidenceState


class PlacesDrift(_Model):
    """Every (input, group) rate ratio of a check and what it was judged with."""

    reference_origins: list[date]
    current_origins: list[date]
    band: tuple[float, float]
    fdr: float
    tests: int  # the tests BH ran over (rows with enough evidence)
    rows: list[RateDrift]
    skipped: list[str]  # inputs that are not rates (negative values, or configured out)
    note: str | None = None
    # per group: can its rows see a change at the band's edge (`group_evidence`)
    evidence: list[GroupEvidence] = Field(default_factory=list)

    def alerts(self) -> list[RateDrift]:
        return [r for r in self.rows if r.status == "alert"]


class DriftHistory(_Model):
    """Whether the store holds the history the reference weeks' features look back over:
    incidents from ``needed_from`` (the first day of the oldest reference origin's longest
    window); the store's start is read as its first registered incident."""

    reference_first: date  # the oldest reference origin (season_lag_weeks before the window)
    lookback_weeks: int  # the longest window any cell feature looks back over
    season_lag_weeks: int
    needed_from: date
    store_starts: date | None  # None: the store holds no incident at all
    enough: bool

    @property
    def message(self) -> str:
        """The plain state the report and the page show."""
        starts = self.store_starts.isoformat() if self.store_starts else "nowhere (no incident)"
        if self.enough:
            return (
                f"history sufficient: the reference weeks from {self.reference_first} need "
                f"incidents from {self.needed_from}, the store starts at {starts}"
            )
        return (
            f"insufficient history: needs weekly origins from {self.reference_first} "
            f"({self.season_lag_weeks} weeks before the window) with their longest feature "
            f"window ({self.lookback_weeks} weeks), i.e. incidents from {self.needed_from}; "
            f"the store starts at {starts}. Input and score drift are not judged (no ratio, no "
            f"alert) until the store holds that history"
        )


def drift_history(
    reference_origins: Sequence[date],
    lookback_weeks: int,
    store_starts: date | None,
    season_lag_weeks: int,
) -> DriftHistory:
    """Whether the store starting at ``store_starts`` covers the reference origins' longest
    window. A window of ``L`` weeks at a Sunday origin ``T`` starts on the Monday ``T - 7L + 1``
    (the builder's grid: ``anchor_week(T) - (L - 1)`` weeks); the store covers it when its first
    incident falls in that first week or before (a first incident a few days into the week is
    the start of the record, not a gap: a store never starts with an incident at 00:00 Monday).
    """
    first = min(reference_origins)
    needed = first - timedelta(weeks=lookback_weeks) + timedelta(days=1)
    enough = store_starts is not None and store_starts <= needed + timedelta(days=6)
    return DriftHistory(
        reference_first=first,
        lookback_weeks=lookback_weeks,
        season_lag_weeks=season_lag_weeks,
        needed_from=needed,
        store_starts=store_starts,
        enough=enough,
    )


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values) of ``p``, in its order (step-up, monotone, <= 1)."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def ratio_p_value(log_ratio: float, se: float) -> float:
    """Two-sided p-value of "the true ratio is 1" given ``log RR`` and its standard error."""
    return (
        float(special.erfc(abs(log_ratio) / se / np.sqrt(2.0))) if se > 0 else float(log_ratio == 0)
    )


def dispersion(s_ref: np.ndarray, s_cur: np.ndarray, n_ref: np.ndarray, n_cur: np.ndarray) -> float:
    """Quasi-Poisson dispersion of the units' splits between the periods around the common
    ratio: the mean squared Pearson residual with the largest tenth left out, over the mean of
    chi-square(1) below its 90th percentile (0.623), so a few units that did change do not
    inflate it (a trimmed mean: steadier than the median at 30 districts). 1 when nothing can
    be said."""
    total = s_ref + s_cur
    ok = (total > 0) & (n_ref > 0) & (n_cur > 0)
    if ok.sum() < 2 or s_ref[ok].sum() <= 0 or s_cur[ok].sum() <= 0:
        return 1.0
    k = (s_cur[ok].sum() / n_cur[ok].sum()) / (s_ref[ok].sum() / n_ref[ok].sum())
    w = k * n_cur[ok] / n_ref[ok]
    p = w / (1 + w)
    var = total[ok] * p * (1 - p)
    r2 = np.sort((s_cur[ok] - total[ok] * p) ** 2 / np.maximum(var, 1e-300))
    kept = r2[: max(int(np.floor(_TRIM * r2.size)), 1)]
    phi = float(kept.mean() / _TRIMMED_CHI2_1_MEAN)
    return phi if np.isfinite(phi) and phi > 0 else 1e-12


def between_variance(y: np.ndarray, v: np.ndarray) -> float:
    """The variance of the units' true log-ratios beyond their within variance ``v`` (the
    district-weeks' weather, events and patrols, which scale with the count, not its root),
    robustly: the ``tau²`` at which the median of ``(y − median y)² / (v + tau²)`` is chi-square
    (1)'s median, so a few districts that did change do not count as noise. 0 with fewer than
    five units or no excess."""
    ok = np.isfinite(y) & np.isfinite(v)
    y, v = y[ok], v[ok]
    if y.size < 5:
        return 0.0
    d2 = (y - np.median(y)) ** 2

    def excess(t: float) -> float:
        return float(np.median(d2 / (v + t))) - _CHI2_1_MEDIAN

    if excess(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, float(d2.max())
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return hi


def _negative(values: pl.Series) -> bool:
    """Values below 0 beyond rounding (an exponentially weighted sum computed by differences
    leaves -1e-17 where it should be 0): not a rate."""
    low, high = values.min(), values.max()
    if low is None or high is None:
        return False
    return float(low) < -1e-9 * max(abs(float(high)), 1.0)  # type: ignore[arg-type]


def _sums(frame: pl.DataFrame, inputs: Sequence[str], keys: Sequence[str]) -> pl.DataFrame:
    return frame.group_by(list(keys)).agg(
        *[pl.col(x).cast(pl.Float64).clip(lower_bound=0).sum().alias(f"s:{x}") for x in inputs],
        *[pl.col(x).is_not_null().sum().cast(pl.Float64).alias(f"n:{x}") for x in inputs],
    )


def _group_labels(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    return frame.with_columns(
        [pl.col(c).cast(pl.String).fill_null("(missing)") for c in columns]
    ).with_columns(pl.lit(ALL).alias(ALL))


def _log_ratio(
    s_ref: np.ndarray, s_cur: np.ndarray, n_ref: np.ndarray, n_cur: np.ndarray, phi: float
) -> tuple[np.ndarray, np.ndarray]:
    """log RR and its Poisson-part variance ``phi (1/a + 1/b)``; half an effective event on
    each side keeps a period with nothing finite (Haldane)."""
    a, b = s_cur + 0.5 * phi, s_ref + 0.5 * phi
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(a / n_cur) - np.log(b / n_ref)
    return y, phi * (1 / a + 1 / b)


def places_input_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    inputs: Sequence[str],
    settings: PlacesDriftSettings,
    group_columns: Sequence[str] = ("region", "district"),
) -> PlacesDrift:
    """Rate ratios of every input, overall and per group of each column (see the module).

    ``reference`` and ``current`` are cell frames (one row per cell and origin, column
    ``as_of``) of the reference weeks and of the window. The noise of each input is estimated
    over the units of the finest grouping (the combinations of the group columns: districts)."""
    columns = [c for c in group_columns if c in reference.columns and c in current.columns]
    ref, cur = _group_labels(reference, columns), _group_labels(current, columns)
    skipped = [
        x
        for x in inputs
        if x in settings.exclude
        or not ref.schema[x].is_numeric()
        or not cur.schema[x].is_numeric()
        or _negative(ref[x])
        or _negative(cur[x])
    ]
    rates = [x for x in inputs if x not in skipped]
    keys = columns or [ALL]
    units = (
        _sums(ref, rates, keys)
        .join(_sums(cur, rates, keys), on=keys, how="full", coalesce=True, suffix="_cur")
        .fill_null(0)
        .with_columns(pl.lit(ALL).alias(ALL))
    )
    z = float(stats.norm.ppf(0.5 + settings.confidence / 2))
    out: list[RateDrift] = []
    for x in rates:
        s_ref, s_cur = units[f"s:{x}"].to_numpy(), units[f"s:{x}_cur"].to_numpy()
        n_ref, n_cur = units[f"n:{x}"].to_numpy(), units[f"n:{x}_cur"].to_numpy()
        phi = dispersion(s_ref, s_cur, n_ref, n_cur)
        y, v = _log_ratio(s_ref, s_cur, n_ref, n_cur, phi)
        enough = (n_ref > 0) & (n_cur > 0) & (s_ref / phi >= settings.min_effective_count)
        tau2 = max(between_variance(y[enough], v[enough]), settings.min_between_sd**2)
        for column in [ALL, *columns]:
            labels, code = np.unique(units[column].to_numpy().astype(str), return_inverse=True)
            k = labels.size
            sums = [np.bincount(code, w, minlength=k) for w in (s_ref, s_cur, n_ref, n_cur)]
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(sums[0][code] > 0, s_ref / sums[0][code], 0.0)
            spread = np.bincount(code, share**2, minlength=k)  # tau² of a sum of units
            for i, label in enumerate(labels):
                out.append(
                    _judge(x, column, str(label), [float(a[i]) for a in sums], phi,
                           tau2 * float(spread[i]), settings, z)
                )  # fmt: skip
    tested = [i for i, r in enumerate(out) if r.p_value is not None]
    q = benjamini_hochberg(np.asarray([out[i].p_value for i in tested], dtype=np.float64))
    for i, qi in zip(tested, q, strict=True):
        ratio = out[i].ratio
        beyond = ratio is not None and not settings.ratio_low <= ratio <= settings.ratio_high
        status: RateStatus = "alert" if qi <= settings.fdr and beyond else "ok"
        out[i] = out[i].model_copy(update={"q_value": float(qi), "status": status})
    order = {c: k for k, c in enumerate([ALL, *columns])}
    out.sort(key=lambda r: (order.get(r.group_column, 99), r.group, r.input))
    evidence = group_evidence(out, settings)
    return PlacesDrift(
        reference_origins=sorted(_origins(reference)),
        current_origins=sorted(_origins(current)),
        band=(settings.ratio_low, settings.ratio_high),
        fdr=settings.fdr,
        tests=len(tested),
        rows=out,
        skipped=skipped,
        evidence=evidence,
    )


def group_evidence(rows: Sequence[RateDrift], s: PlacesDriftSettings) -> list[GroupEvidence]:
    """Per group, in the rows' order: the ``evidence_input``'s effective count (a quarter's
    incidents: the drift window fills most of its window, so a change since the window began
    moves it by most of its size; a year's count has more events but moves by a sixth), else
    the input with the most effective events, and whether a change to the band's edge
    (``ratio_high``) could be told from noise there."""
    best: dict[tuple[str, str], RateDrift] = {}
    for r in rows:
        key = (r.group_column, r.group)
        held = best.get(key)
        if (
            held is None
            or (r.input == s.evidence_input) > (held.input == s.evidence_input)
            or (
                (r.input == s.evidence_input) == (held.input == s.evidence_input)
                and (r.effective_count or 0.0) > (held.effective_count or 0.0)
            )
        ):
            best[key] = r
    out = []
    for (column, group), r in best.items():
        count = r.effective_count or 0.0
        state: EvidenceState
        if count < s.min_effective_count or r.detectable_ratio is None:
            state = "insufficient evidence"
        elif r.detectable_ratio > s.ratio_high:
            state = "insufficient for the band"
        else:
            state = "enough for the band"
        out.append(
            GroupEvidence(
                group_column=column, group=group, input=r.input, effective_count=count,
                detectable_ratio=r.detectable_ratio, state=state,
            )
        )  # fmt: skip
    return out


def _origins(frame: pl.DataFrame) -> list[date]:
    return frame["as_of"].unique().to_list() if "as_of" in frame.columns else []


def _judge(
    x: str,
    column: str,
    group: str,
    sums: list[float],
    phi: float,
    tau2: float,
    s: PlacesDriftSettings,
    z: float,
) -> RateDrift:
    s_ref, s_cur, n_ref, n_cur = sums
    m_ref = s_ref / n_ref if n_ref else 0.0
    m_cur = s_cur / n_cur if n_cur else 0.0
    base = {
        "input": x, "group_column": column, "group": group,
        "cell_weeks_reference": int(n_ref), "cell_weeks_current": int(n_cur),
        "mean_reference": m_ref, "mean_current": m_cur, "dispersion": phi,
        "between_variance": tau2,
    }  # fmt: skip
    base["effective_count"] = s_ref / phi
    if n_ref and n_cur:  # se of the log ratio had the mean not moved: what a change must beat
        same = [np.asarray([a]) for a in (s_ref, s_ref * n_cur / n_ref, n_ref, n_cur)]
        v0 = _log_ratio(same[0], same[1], same[2], same[3], phi)[1]
        base["detectable_ratio"] = float(np.exp(z * np.sqrt(v0[0] + tau2)))
    if n_ref == 0 or n_cur == 0 or s_ref / phi < s.min_effective_count:
        ratio = m_cur / m_ref if m_ref > 0 and n_cur else None
        return RateDrift.model_validate(
            base | {"ratio": ratio, "lower": None, "upper": None, "p_value": None,
                    "q_value": None, "status": "insufficient evidence"}
        )  # fmt: skip
    arrays = [np.asarray([a]) for a in (s_ref, s_cur, n_ref, n_cur)]
    y, v = _log_ratio(arrays[0], arrays[1], arrays[2], arrays[3], phi)
    log_ratio, se = float(y[0]), float(np.sqrt(v[0] + tau2))
    return RateDrift.model_validate(
        base | {"ratio": m_cur / m_ref, "lower": float(np.exp(log_ratio - z * se)),
                "upper": float(np.exp(log_ratio + z * se)),
                "p_value": ratio_p_value(log_ratio, se), "q_value": None, "status": "ok"}
    )  # fmt: skip
