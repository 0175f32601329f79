"""A tiny simulated delivery, ingested, and a fast training config for training tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from experiments.common import simulate_and_ingest

TINY_CONFIG = {
    "label": "any_new_case_12m",
    "population": "with_record",
    "snapshots": {"start": "2020-03-31", "end": "2024-12-31", "every_months": 3},
    "periods": {
        "tune": {"start": "2020-03-31", "end": "2022-06-30"},
        "calibrate": {"start": "2023-09-30", "end": "2023-12-31"},
        "test": {"start": "2024-12-31", "end": "2024-12-31"},
    },
    "folds": {"n_folds": 2, "valid_snapshots": 2, "min_train_snapshots": 2},
    "search": {
        "metric": "log_loss",
        "num_boost_round": 120,
        "early_stopping_rounds": 15,
        "startup_trials": 2,
        "pruning_warmup_trials": 1,
        "fixed": {"max_bin": 31, "bagging_freq": 1},
        "params": {
            "learning_rate": {"type": "float", "low": 0.05, "high": 0.2, "log": True},
            "num_leaves": {"type": "int", "low": 4, "high": 16},
            "min_child_samples": {"type": "int", "low": 10, "high": 60},
        },
    },
    "trials": 2,
    "seed": 3,
    "num_threads": 1,
    "tiers": [
        {"name": "low", "min_probability": 0.0},
        {"name": "medium", "min_probability": 0.15},
        {"name": "high", "min_probability": 0.35},
        {"name": "very_high", "min_probability": 0.6},
    ],
    "evaluation": {"bootstrap": 20, "shap_rows": 200},
    "model_name": "recidivism-risk",
    "experiment": "riskcast-tests",
}


def tiny_delivery(root: Path, persons: int = 3000, seed: int = 11) -> tuple[Path, Path]:
    """Simulate and ingest a small delivery; returns (delivery, home)."""
    delivery, home = root / "d1", root / "home"
    simulate_and_ingest(delivery, home, persons, seed)
    return delivery, home


def write_config(path: Path, **overrides: object) -> Path:
    raw = {**TINY_CONFIG, **overrides}
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def train_by_cli(
    config: Path, env: dict[str, str | None], model: str = "recidivism-risk"
) -> tuple[str, str]:
    """``riskcast train --config`` as a user runs it, with ``env`` set (None: unset) for the
    call only; its output and the registered version. Settings are re-read before and after."""
    import os
    import re

    from typer.testing import CliRunner

    from riskcast.settings import get_settings
    from serving.cli import build_app

    saved = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(build_app(), ["train", "--config", str(config)])
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output + repr(result.exception)
    match = re.search(rf"model version: {model} v(\d+)", result.output)
    assert match, result.output
    return result.output, match.group(1)
