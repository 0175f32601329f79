"""What a training run reports: metrics of every scorer on the test snapshot and by period,
paired bootstrap of AUC differences, the oracle's figures and the gap to them, plots, and the
model card. Pure functions (arrays and frames in, numbers, figures and text out).

The generic metrics and plots come from `training.evaluation`; this module decides what is
compared with what.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from training.evaluation import binary_metrics, bootstrap_auc_difference
from training.model import CONTRIB_PREFIX, RiskModel

MODEL = "model"
ORACLE = "oracle"
HEADLINE = ("auc", "pr_auc", "brier", "log_loss", "ece", "capture_top_10")


@dataclass(frozen=True)
class Evaluation:
    """Test metrics per scorer, by-period metrics, AUC differences and the oracle gap."""

    test: dict[str, dict[str, float]]
    by_period: dict[str, dict[str, dict[str, float]]]
    auc_differences: dict[str, dict[str, float]]
    oracle_gap: dict[str, float] = field(default_factory=dict)
    oracle_coverage: float | None = None

    def flat_metrics(self) -> dict[str, float]:
        """MLflow metric names: ``test.<scorer>.<metric>``, ``period.<date>.<scorer>.<metric>``,
        ``test.auc_diff.<baseline>.mean|sd|z``, ``test.gap_to_oracle.<metric>``."""
        out: dict[str, float] = {}
        for scorer, metrics in self.test.items():
            out.update({f"test.{scorer}.{k}": v for k, v in metrics.items()})
        for period, scorers in self.by_period.items():
            for scorer, metrics in scorers.items():
                out.update({f"period.{period}.{scorer}.{k}": v for k, v in metrics.items()})
        for baseline, diff in self.auc_differences.items():
            out.update({f"test.auc_diff.{baseline}.{k}": v for k, v in diff.items()})
        out.update({f"test.gap_to_oracle.{k}": v for k, v in self.oracle_gap.items()})
        return {k: v for k, v in out.items() if not math.isnan(v)}


def evaluate(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    as_of: np.ndarray,
    *,
    n_boot: int,
    seed: int,
    oracle: np.ndarray | None = None,
) -> Evaluation:
    """Metrics of every scorer on the test rows, per test snapshot, and paired AUC
    differences of the model against each other scorer. ``oracle`` (p_true, NaN where
    unknown) is evaluated on the rows where it is known and reported with the gap to it."""
    test = {name: binary_metrics(y, p) for name, p in scores.items()}
    by_period = period_metrics(y, scores, as_of)
    diffs: dict[str, dict[str, float]] = {}
    for name, p in scores.items():
        if name == MODEL or name.startswith(MODEL + "_"):  # variants of the model itself
            continue
        mean, sd = bootstrap_auc_difference(y, scores[MODEL], p, n_boot=n_boot, seed=seed)
        diffs[name] = {"mean": mean, "sd": sd, "z": mean / sd if sd > 0 else float("nan")}
    gap: dict[str, float] = {}
    coverage = None
    if oracle is not None:
        known = ~np.isnan(oracle)
        coverage = float(known.mean())
        if known.any():
            test[ORACLE] = binary_metrics(y[known], oracle[known])
            on_same = binary_metrics(y[known], scores[MODEL][known])
            gap = {
                "auc": test[ORACLE]["auc"] - on_same["auc"],
                "brier": on_same["brier"] - test[ORACLE]["brier"],
            }
    return Evaluation(test, by_period, diffs, gap, coverage)


def period_metrics(
    y: np.ndarray, scores: Mapping[str, np.ndarray], as_of: np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """Headline metrics of every scorer on each as-of date."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for day in np.unique(as_of):
        mask = as_of == day
        key = str(day)[:10]
        out[key] = {}
        for name, p in scores.items():
            metrics = binary_metrics(y[mask], p[mask])
            out[key][name] = {k: metrics[k] for k in (*HEADLINE, "mean_predicted", "observed_rate")}
    return out


def metrics_table(evaluation: Evaluation) -> pl.DataFrame:
    """One row per scorer with the headline test metrics (for printing and the model card)."""
    rows = [
        {"scorer": name, **{k: metrics[k] for k in (*HEADLINE, "mean_predicted", "observed_rate")}}
        for name, metrics in evaluation.test.items()
    ]
    return pl.DataFrame(rows)


def domain_importance(model: RiskModel, prediction: pl.DataFrame) -> pl.DataFrame:
    """Mean |contribution| per RNR domain (contributions summed within the domain first)."""
    by_domain = model.domain_contributions(prediction).drop("bias")
    return pl.DataFrame(
        {
            "domain": by_domain.columns,
            "mean_abs_contribution": [
                float(np.abs(by_domain[c].to_numpy()).mean()) for c in by_domain.columns
            ],
        }
    ).sort("mean_abs_contribution", descending=True)


def plot_domain_importance(importance: pl.DataFrame) -> Figure:
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ordered = importance.sort("mean_abs_contribution")
    ax.barh(ordered["domain"].to_list(), ordered["mean_abs_contribution"].to_list())
    ax.set_xlabel("mean |TreeSHAP contribution| (log-odds), summed within domain")
    ax.set_title("What drives the score, by RNR domain (test snapshot)")
    fig.tight_layout()
    return fig


def plot_shap_beeswarm(
    model: RiskModel, frame: pl.DataFrame, prediction: pl.DataFrame, top: int = 20
) -> Figure:
    """A beeswarm of per-feature contributions (colour = feature value rank), top features."""
    contrib = prediction.select(CONTRIB_PREFIX + n for n in model.feature_names).to_numpy()
    values = frame.select(pl.col(n).cast(pl.Float64) for n in model.feature_names).to_numpy()
    order = np.argsort(-np.abs(contrib).mean(axis=0))[:top][::-1]
    fig = Figure(figsize=(8, 0.35 * len(order) + 1.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    domains = {f.name: f.domain for f in model.features}
    for row, j in enumerate(order):
        v = values[:, j]
        ranks = np.full(v.shape, 0.5)
        ok = ~np.isnan(v)
        if ok.sum() > 1:
            ranks[ok] = v[ok].argsort().argsort() / max(ok.sum() - 1, 1)
        jitter = rng.normal(0, 0.08, size=v.size)
        ax.scatter(contrib[:, j], row + jitter, c=ranks, cmap="coolwarm", s=4, alpha=0.6)
    names = [model.feature_names[j] for j in order]
    ax.set_yticks(range(len(order)), [f"{n} ({domains[n]})" for n in names], fontsize=7)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("TreeSHAP contribution to the raw score (log-odds); colour: feature value rank")
    ax.set_title("SHAP summary (test snapshot sample)")
    fig.tight_layout()
    return fig


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def model_card(
    *,
    model_name: str,
    label_name: str,
    label_description: str,
    horizon_days: int,
    population: str,
    periods: Mapping[str, list[date]],
    evaluation: Evaluation,
    calibration: Mapping[str, Any],
    tiers: list[tuple[str, float]],
    dataset: Mapping[str, Any],
    features: list[str],
    excluded: list[str],
) -> str:
    """The model card (markdown): intended use, data, metrics, calibration, limitations."""
    table = metrics_table(evaluation)
    lines = [
        f"# Model card: {model_name}",
        "",
        "## Intended use",
        f"Decision support for prevention officers: the calibrated probability that a person "
        f"has a new criminal case **registered** within "
        f"{horizon_days} days of the as-of date (label `{label_name}`: {label_description}). "
        "Officers use it to prioritise offers of support within their capacity; an officer "
        "decides, with reasons recorded, and every use is logged.",
        "",
        "## Population of validity",
        f"Trained, calibrated, evaluated, audited and served on: {population}. The service "
        "answers every other person with `outside_population` and the reason, never with a "
        "probability: outside this population the numbers mean nothing.",
        "",
        "## Not for use",
        "- any decision about detention, bail, sentencing, parole, charging or eligibility for "
        "benefits; any automated decision without a human;",
        "- persons outside the population above, or other horizons and events;",
        "- comparing groups, places or ethnicities: the label counts *registered* cases, which "
        "depend on detection and policing as much as on behaviour;",
        "- before the fairness audit (Step 3) passes: this version is only a `challenger`.",
        "",
        "## Data",
        "- snapshots (as-of dates) per period: "
        + "; ".join(f"{k}: {v[0]} .. {v[-1]} ({len(v)})" for k, v in periods.items()),
        f"- rows: {dataset.get('rows')}, positives {_fmt(dataset.get('label_rate'))} (rate); "
        f"dataset digest `{dataset.get('digest')}`, feature spec `{dataset.get('spec_hash')}`",
        f"- {len(features)} model inputs; never inputs (audit only): {', '.join(excluded)}",
        "- features as of T see only rows known by the end of T; labels count cases registered "
        "in (T, T + horizon] on knowledge time; periods are separated by one horizon.",
        "",
        "## Out-of-time test metrics",
        "| scorer | AUC | PR-AUC | Brier | log loss | ECE | top-10% capture | mean p | observed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.iter_rows(named=True):
        lines.append(
            f"| {row['scorer']} | {_fmt(row['auc'])} | {_fmt(row['pr_auc'])} | "
            f"{_fmt(row['brier'], 4)} | {_fmt(row['log_loss'], 4)} | {_fmt(row['ece'], 4)} | "
            f"{_fmt(row['capture_top_10'])} | {_fmt(row['mean_predicted'], 4)} | "
            f"{_fmt(row['observed_rate'], 4)} |"
        )
    lines.append("")
    for name, diff in evaluation.auc_differences.items():
        lines.append(
            f"- AUC(model) − AUC({name}) = {_fmt(diff['mean'], 4)} "
            f"(paired bootstrap sd {_fmt(diff['sd'], 4)}, {_fmt(diff['z'], 1)} sd)"
        )
    if evaluation.oracle_gap:
        gap = evaluation.oracle_gap
        lines.append(
            "- oracle (simulator's p_true, knows latent traits and unregistered offences): gap "
            f"AUC {_fmt(gap['auc'])}, Brier {_fmt(gap['brier'], 4)}"
        )
    lines += [
        "",
        "## Calibration",
        f"- method: {calibration.get('method')} ({calibration.get('how')}), fitted on the "
        "calibration period; scores are probabilities.",
        "- tiers (calibrated probability from): "
        + ", ".join(f"{name} ≥ {cut:.2f}" for name, cut in tiers),
        "",
        "## Known limitations",
        "- labels are registered cases: under-detection and detection bias (e.g. by region and "
        "group) are learnt as if they were behaviour; the audit must check group calibration;",
        "- features counting all history grow with the register's age; calibration can drift "
        "across snapshots: recalibrate on recent data, watch mean predicted vs observed;",
        "- explanations (TreeSHAP contributions, grouped by RNR domain) describe the model, not "
        "causes; only dynamic needs map to support measures;",
        "- trained on one jurisdiction's registers and period; performance elsewhere is unknown.",
    ]
    return "\n".join(lines) + "\n"
