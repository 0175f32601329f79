"""`riskcast places evaluate`: the out-of-time metrics of a registered version, recomputed from
the test predictions its run logged (`registry.TEST_PREDICTIONS`), overall and per region."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Group
from rich.table import Table

from training.places.config import load_places_training_config
from training.places.evaluate import evaluate_places
from training.places.metrics import AREA_SHARES, share_label
from training.places.registry import TEST_PREDICTIONS, download_run_artifact, load_places_model


def _table(title: str, overall: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    cols = [f"PAI@{share_label(s)}%" for s in AREA_SHARES] + ["PEI@5%", "hit@5%", "deviance"]
    table.add_column("scorer")
    for c in cols:
        table.add_column(c, justify="right")
    for name, m in overall.items():
        values = [m.get(f"pai_{share_label(s)}") for s in AREA_SHARES]
        values += [m.get("pei_5"), m.get("hit_5"), m.get("deviance")]
        table.add_row(name, *("-" if v is None or v != v else f"{v:.3f}" for v in values))
    return table


def version_metrics(home: Path, version_or_alias: str, *, config: Path | None = None) -> Group:
    """Tables (overall, per region) and the paired differences of a registered version."""
    cfg, _ = load_places_training_config(config)
    loaded = load_places_model(cfg.model_name, version_or_alias, home=home)
    path = download_run_artifact(loaded.run_id, TEST_PREDICTIONS, home=home)
    frame = pl.read_parquet(path)
    ev = evaluate_places(frame, bootstrap=cfg.bootstrap, seed=cfg.seed, lower=None, upper=None)
    weeks = frame["week_start"]
    parts: list[Table | str] = [
        _table(
            f"{loaded.name} v{loaded.version}: {weeks.n_unique()} out-of-time weeks "
            f"{weeks.min()!s} to {weeks.max()!s} (horizon 1)",
            ev.overall,
        )
    ]
    for region, overall in sorted(ev.by_region.items()):
        parts.append(_table(f"region {region}", overall))
    for name, d in ev.differences.items():
        if "mean" in d:
            parts.append(
                f"{name}: {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] over "
                f"{int(d['weeks'])} weeks"
            )
    return Group(*parts)
