"""riskcast's Broward model audited beside COMPAS, with the project's table audit.

Both scores are audited on the same 6,172 filtered rows with `fairness.tableaudit.audit_frame`
(race, reference Caucasian): COMPAS flags decile ≥ 5; riskcast (its pooled out-of-fold,
calibrated probabilities from `train-table`) flags at the threshold that selects the same
share of people, so the two lists are the same length. A paired bootstrap (rows resampled
within race, the same draws for both scores) gives intervals for "riskcast's gap minus
COMPAS's gap" to the reference group. `fairness.mitigation.what_if_result` prices FPR-matching
group thresholds for riskcast (in-sample; it needs race at scoring time).

`audit_beside_compas` keeps the typed results (`AuditResult`, `MitigationWhatIf`) and
`beside_markdown` reads them through attributes; `beside_json` is the form ``results.json``
holds (each audit as `summary_table`, each what-if dumped as JSON).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from fairness.metrics import THRESHOLD_POINT, rates
from fairness.mitigation import what_if_result
from fairness.results import AttributeAudit, AuditResult, Estimate, MitigationWhatIf
from fairness.tableaudit import audit_frame, summary_table

REFERENCE = "Caucasian"
COMPAS_CUT = 5
METRICS = ("fpr", "fnr", "ppv", "selection_rate")
RISKCAST, COMPAS = "riskcast_probability", "decile_score"
MIN_GROUP = 50


def matched_threshold(score: NDArray[np.float64], share: float) -> float:
    """The threshold whose list (score ≥ threshold) holds ``share`` of the rows (the k-th
    highest score, k = round(share · n); ties can add a few rows)."""
    k = max(1, round(share * score.size))
    return float(np.sort(score)[::-1][k - 1])


def scored_table(
    race: NDArray[Any], y: NDArray[np.float64], p: NDArray[np.float64], decile: NDArray[Any]
) -> pl.DataFrame:
    return pl.DataFrame(
        {"race": race.astype(str), "two_year_recid": y.astype(np.int64),
         RISKCAST: p, COMPAS: decile.astype(np.int64)}
    )  # fmt: skip


def _group_rates(y: NDArray[np.float64], f: NDArray[np.float64]) -> dict[str, NDArray[Any]]:
    return {m: rates(y, f)[m] for m in METRICS}


def paired_gaps(
    frame: pl.DataFrame, threshold: float, n_boot: int, seed: int, confidence: float = 0.95
) -> list[dict[str, Any]]:
    """Per group (≥ MIN_GROUP rows) and metric: each score's gap to the reference group and
    |gap riskcast| − |gap COMPAS| with a paired percentile-bootstrap interval."""
    rng = np.random.default_rng(seed)
    race = frame["race"].to_numpy()
    y = frame["two_year_recid"].to_numpy().astype(np.float64)
    flags = {
        "riskcast": (frame[RISKCAST].to_numpy() >= threshold).astype(np.float64),
        "compas": (frame[COMPAS].to_numpy() >= COMPAS_CUT).astype(np.float64),
    }
    names, counts = np.unique(race, return_counts=True)
    groups = [str(g) for g, n in zip(names, counts, strict=True) if n >= MIN_GROUP]
    point: dict[str, dict[str, dict[str, float]]] = {}
    boot: dict[str, dict[str, dict[str, NDArray[Any]]]] = {}
    for g in groups:
        idx = np.flatnonzero(race == g)
        draws = rng.integers(0, idx.size, size=(n_boot, idx.size))
        yb = y[idx][draws]
        point[g], boot[g] = {}, {}
        for s, f in flags.items():
            point[g][s] = {m: float(v) for m, v in _group_rates(y[idx], f[idx]).items()}
            boot[g][s] = _group_rates(yb, f[idx][draws])
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    out: list[dict[str, Any]] = []
    for g in groups:
        if g == REFERENCE:
            continue
        for m in METRICS:
            gap = {s: point[g][s][m] - point[REFERENCE][s][m] for s in flags}
            reps = {s: boot[g][s][m] - boot[REFERENCE][s][m] for s in flags}
            diff = np.abs(reps["riskcast"]) - np.abs(reps["compas"])
            diff = diff[np.isfinite(diff)]
            low, high = (float(v) for v in np.percentile(diff, [lo, hi]))
            cis = {s: [float(v) for v in np.nanpercentile(reps[s], [lo, hi])] for s in flags}
            verdict = (
                "riskcast fairer"
                if high < 0
                else "COMPAS fairer"
                if low > 0
                else "no clear difference"
            )
            out.append(
                {"group": g, "metric": m,
                 "riskcast": point[g]["riskcast"][m], "compas": point[g]["compas"][m],
                 "reference_riskcast": point[REFERENCE]["riskcast"][m],
                 "reference_compas": point[REFERENCE]["compas"][m],
                 "gap_riskcast": gap["riskcast"], "gap_riskcast_ci": cis["riskcast"],
                 "gap_compas": gap["compas"], "gap_compas_ci": cis["compas"],
                 "abs_gap_difference": abs(gap["riskcast"]) - abs(gap["compas"]),
                 "abs_gap_difference_ci": [low, high], "verdict": verdict}
            )  # fmt: skip
    return out


def audit_beside_compas(frame: pl.DataFrame, *, n_boot: int = 500, seed: int = 0) -> dict[str, Any]:
    """Both audits (``audits``: `AuditResult`), the paired gap comparison (``gaps``) and the
    mitigation what-if of both scores (``mitigation``: `MitigationWhatIf`)."""
    p = frame[RISKCAST].to_numpy().astype(np.float64)
    y = frame["two_year_recid"].to_numpy().astype(np.float64)
    share = float(np.mean(frame[COMPAS].to_numpy() >= COMPAS_CUT))
    threshold = matched_threshold(p, share)
    common: dict[str, Any] = {
        "label": "two_year_recid", "protected": ["race"], "references": {"race": REFERENCE},
        "n_boot": n_boot, "seed": seed, "min_group_size": MIN_GROUP,
    }  # fmt: skip
    audits = {
        "riskcast": audit_frame(frame, score=RISKCAST, threshold=threshold, **common),
        "compas": audit_frame(frame, score=COMPAS, threshold=COMPAS_CUT, **common),
    }
    race = frame["race"].to_numpy().astype(str)
    keep = np.isin(race, [g for g, n in zip(*np.unique(race, return_counts=True), strict=True)
                          if n >= MIN_GROUP])  # fmt: skip
    mitigation: dict[str, MitigationWhatIf] = {
        "riskcast": what_if_result(y[keep], p[keep], race[keep], threshold, REFERENCE, seed),
        "compas": what_if_result(
            y[keep], frame[COMPAS].to_numpy().astype(np.float64)[keep], race[keep],
            float(COMPAS_CUT), REFERENCE, seed,
        ),
    }  # fmt: skip
    return {
        "compas_share_flagged": share,
        "riskcast_threshold": threshold,
        "riskcast_share_flagged": float(np.mean(p >= threshold)),
        "audits": audits,
        "gaps": paired_gaps(frame, threshold, n_boot, seed),
        "mitigation": mitigation,
        "n_boot": n_boot,
    }


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _ci(c: list[float]) -> str:
    return f"[{100 * c[0]:+.1f}, {100 * c[1]:+.1f}]"


def beside_markdown(res: dict[str, Any]) -> str:
    """The README block's fairness section."""
    lines = [
        "",
        "### riskcast beside COMPAS: error rates by race",
        "",
        f"Same 6,172 rows, audited with `fairness.tableaudit.audit_frame` (reference "
        f"{REFERENCE}, {res['n_boot']} bootstrap resamples within race, 95% intervals). COMPAS "
        f"flags decile ≥ {COMPAS_CUT} ({_pct(res['compas_share_flagged'])}% of people); "
        f"riskcast flags out-of-fold calibrated probability ≥ {res['riskcast_threshold']:.3f} "
        f"({_pct(res['riskcast_share_flagged'])}%), the same share. Per-group values in % "
        "with their interval:",
        "",
        "| race | n | base rate | FPR riskcast | FPR COMPAS | FNR riskcast | FNR COMPAS "
        "| PPV riskcast | PPV COMPAS | flagged riskcast | flagged COMPAS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rc = _race(res, "riskcast")
    cp = _race(res, "compas")

    def cell(est: Estimate | None) -> str:
        if est is None or est.value is None:
            return "insufficient"
        if est.low is None or est.high is None:
            return _pct(est.value)
        return f"{_pct(est.value)} ({_pct(est.low)}–{_pct(est.high)})"

    for a in sorted(rc.groups, key=lambda r: -r.n):
        b = cp.group(a.group)
        base = a.overall.get("base_rate")
        lines.append(
            f"| {a.group} | {a.n} | {_pct(None if base is None else base.value)} | "
            + " | ".join(
                cell(r.at(THRESHOLD_POINT).get(m))
                for m in ("fpr", "fnr", "ppv", "selection_rate")
                for r in (a, b)
            )
            + " |"
        )
    lines += [
        "",
        "Gap to Caucasian defendants (percentage points, 95% interval) and abs gap riskcast − "
        "abs gap COMPAS (paired bootstrap: the same resampled people under both scores; "
        "negative = riskcast's gap is smaller):",
        "",
        "| race | metric | gap riskcast | gap COMPAS "
        "| abs gap riskcast − abs gap COMPAS | reading |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["gaps"]:
        lines.append(
            f"| {r['group']} | {r['metric']} | {100 * r['gap_riskcast']:+.1f} "
            f"{_ci(r['gap_riskcast_ci'])} | {100 * r['gap_compas']:+.1f} "
            f"{_ci(r['gap_compas_ci'])} | {100 * r['abs_gap_difference']:+.1f} "
            f"{_ci(r['abs_gap_difference_ci'])} | {r['verdict']} |"
        )
    lines += [
        "",
        "Threshold mitigation (what-if, in-sample, groups ≥ 50 people; it needs race at "
        "scoring time, which riskcast never uses): FPR of every group matched to the "
        "Caucasian FPR with group-specific thresholds, and Fairlearn `ThresholdOptimizer` "
        "(FPR parity, accuracy objective):",
        "",
        "| score | accuracy before | group thresholds: accuracy cost | FPR / FNR "
        "African-American after | ThresholdOptimizer: accuracy cost |",
        "|---|---|---|---|---|",
    ]
    mitigation: dict[str, MitigationWhatIf] = res["mitigation"]
    for name, w in mitigation.items():
        aa = w.group_thresholds.groups.get("African-American")
        fpr, fnr = (None, None) if aa is None else (aa.fpr, aa.fnr)
        lines.append(
            f"| {name} | {w.before.accuracy:.3f} | "
            f"{w.group_thresholds.accuracy_cost:+.3f} | "
            f"{_pct(fpr)} / {_pct(fnr)} | "
            f"{w.threshold_optimizer.accuracy_cost:+.3f} |"
        )
    return "\n".join(lines)


def _race(res: dict[str, Any], score: str) -> AttributeAudit:
    """The race audit of ``score`` ("riskcast" or "compas") in `audit_beside_compas`'s result."""
    audit: AuditResult = res["audits"][score]
    return audit.attribute("race")


def beside_json(res: dict[str, Any]) -> dict[str, Any]:
    """`audit_beside_compas`'s result as ``results.json`` holds it: each audit in the
    `summary_table` form, each mitigation what-if as its JSON dump, the rest as it is."""
    audits: dict[str, AuditResult] = res["audits"]
    mitigation: dict[str, MitigationWhatIf] = res["mitigation"]
    return res | {
        "audits": {k: summary_table(a) for k, a in audits.items()},
        "mitigation": {k: w.model_dump(mode="json") for k, w in mitigation.items()},
    }
