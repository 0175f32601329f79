"""The model card of a places version (markdown; logged with the run and shown as the
registered version's description)."""

from __future__ import annotations

from typing import Any

from training.places.evaluate import PlacesEvaluation


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "-" if v != v else f"{v:.{digits}f}"


def model_card(
    *,
    model_name: str,
    objective: str,
    by_objective: dict[str, float],
    horizons: int,
    features: list[str],
    descriptions: dict[str, str],
    plan: dict[str, Any],
    evaluation: PlacesEvaluation,
    alpha: float,
    level: float,
    baselines: dict[str, dict[str, float]],
    truth_note: str,
    resolution: int,
) -> str:
    test = plan["test"]
    lines = [
        f"# {model_name}: expected street incidents per H3 cell (resolution {resolution}) and week",
        "",
        "## What it forecasts",
        f"The number of incidents the register will *register* in each of the next {horizons} "
        "weeks (Monday to Sunday, UTC) in each cell of the universe as of the forecast date "
        "(cells with an incident in the last 3 years, and their neighbours). It uses only "
        "what was registered by the end of the forecast date.",
        "",
        "## Model",
        f"- LightGBM, objective **{objective}** (log link), chosen on the rolling-origin folds "
        "by mean Poisson deviance: "
        + ", ".join(f"{k} {_f(v, 5)}" for k, v in sorted(by_objective.items())),
        f"- **one model for all {horizons} horizons**, the horizon (weeks ahead) is an input; "
        "per-horizon models were not trained in this run.",
        f"- Tuned with Optuna (TPE, seeded) on {len(plan['folds'])} rolling-origin folds of "
        f"{len(plan['train'])} training origins ({plan['train'][0]} to {plan['train'][-1]}); "
        "the final model is fitted on all training origins with the best parameters.",
        f"- {level:.0%} intervals per cell-week: negative-binomial quantiles around the expected "
        f"count, dispersion alpha = {_f(alpha, 4)} estimated out of fold on the last tuning fold "
        "(alpha = 0 gives Poisson quantiles). Out-of-time coverage: "
        f"{_f(evaluation.coverage)}.",
        "- Reasons per cell-week: the 3 inputs with the largest absolute TreeSHAP contribution "
        "to the log expected count (LightGBM `pred_contrib`).",
        "",
        f"## Out-of-time test: {len(test)} weekly origins {test[0]} to {test[-1]} (horizon 1)",
        "",
        "| scorer | PAI@1% | PAI@5% | PAI@10% | PEI@5% | hit@5% | deviance |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in evaluation.overall.items():
        dev = "-" if name == "truth" else _f(m.get("deviance"), 4)
        lines.append(
            f"| {name} | {_f(m.get('pai_1'), 2)} | {_f(m.get('pai_5'), 2)} | "
            f"{_f(m.get('pai_10'), 2)} | {_f(m.get('pei_5'))} | {_f(m.get('hit_5'))} | {dev} |"
        )
    lines += ["", "Paired bootstrap over weeks (model − baseline, 95 % interval):", ""]
    for name, d in evaluation.differences.items():
        if "mean" in d:
            lines.append(
                f"- {name}: {_f(d['mean'], 4)} [{_f(d['low'], 4)}, {_f(d['high'], 4)}] over "
                f"{int(d['weeks'])} weeks"
            )
        else:
            lines.append(f"- {name}: {_f(d.get('share'))}")
    lines += [
        "",
        "## Baselines (same origins, same test weeks)",
        "- last4: mean weekly count of the last 4 weeks per cell.",
        "- kde: Gaussian kernel density of the last N weeks' incidents, integrated per cell; "
        f"chosen on the tuning folds by PAI@5%: {baselines.get('kde', {})}.",
        "- hawkes: self-exciting estimate (background = long-run cell rate and the mean rate, "
        "excitation = exponentially decaying recent incidents of the cell and its ring-1 "
        "neighbours), weights by Poisson likelihood, decay by deviance on the tuning origins: "
        f"{baselines.get('hawkes', {})}. No maintained Python package fits a spatio-temporal "
        "Hawkes/ETAS model on cells.",
        "- last4 and kde mix 2 % of the universe's weekly rate, spread by area, into their "
        "forecasts so that a zero forecast does not make the deviance infinite (their rankings "
        "are unchanged).",
        "",
        f"Truth: {truth_note}.",
        "",
        "## Calibration (test, horizon 1)",
        "",
        "| region | expected | observed | observed/expected |",
        "|---|---|---|---|",
    ]
    for row in evaluation.calibration_region.iter_rows(named=True):
        lines.append(
            f"| {row['region']} | {_f(row['expected'], 1)} | {_f(row['observed'], 1)} | "
            f"{_f(row['ratio'])} |"
        )
    lines += ["", "## Inputs", ""]
    lines += [f"- `{f}`: {descriptions.get(f, '')}" for f in features]
    lines += [
        "",
        "## Limits",
        "- Registered incidents depend on where patrols go: a model trained on them can learn "
        "where police look as well as where crime is. The places audit's feedback-loop check "
        "compares registrations with citizens' appeals per district.",
        "- The forecast is for planning prevention at places, never for decisions about people.",
    ]
    return "\n".join(lines) + "\n"
