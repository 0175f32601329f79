"""The known truth (p_true) for training's oracle metrics and for audits, found only through a
truth manifest (`riskcast.truth.TruthManifest`) that the caller names explicitly.

Production code never guesses where a truth lies nor which tool wrote it: the training config's
``truth_dir`` (or ``--truth``) names a manifest file or a folder holding
``truth-manifest.json``; null means there is no oracle. A run that used a truth records it as
structured tags (`TRUTH_MANIFEST_TAG`, `TRUTH_DIGEST_TAG`), and `oracle_for_run` reads them
back for audits.

Reading files happens in `resolve_truth`, `read_p_true` and `oracle_for_run` (the edges);
joining p_true onto rows (`oracle_column`) is pure.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from riskcast.errors import InputError
from riskcast.truth import TruthManifest, check_labels, manifest_file, read_truth_manifest

TRUTH_NOTE_TAG = "riskcast.truth"
"""A sentence for people (``oracle from <folder>`` or why there is none); never parsed."""
TRUTH_MANIFEST_TAG = "riskcast.truth_manifest"
"""The absolute path of the truth manifest a run's oracle came from."""
TRUTH_DIGEST_TAG = "riskcast.truth_digest"
"""The SHA-256 of the truth's labels file when the run used it."""


@dataclass(frozen=True)
class TruthRef:
    """A truth that training may use: its manifest, read and checked, and where it is."""

    manifest_path: Path
    manifest: TruthManifest

    @property
    def folder(self) -> Path:
        return self.manifest_path.parent

    @property
    def digest(self) -> str:
        return self.manifest.labels.sha256

    def tags(self) -> dict[str, str]:
        """The structured MLflow tags that name this truth."""
        return {TRUTH_MANIFEST_TAG: str(self.manifest_path), TRUTH_DIGEST_TAG: self.digest}


@dataclass(frozen=True)
class TruthChoice:
    """The truth a run uses (None: no oracle) and a sentence saying which, or why none."""

    truth: TruthRef | None
    note: str

    def tags(self) -> dict[str, str]:
        return {TRUTH_NOTE_TAG: self.note} | ({} if self.truth is None else self.truth.tags())


def resolve_truth(
    given: Path | None,
    *,
    known_extracts: Collection[str],
    label_is_any_case: bool,
) -> TruthChoice:
    """The truth named by ``given`` (a manifest file or a folder holding one), if it may be
    used: it must belong to a delivery in the store (``known_extracts``) and the label must be
    the outcome p_true is the probability of (any new case). Otherwise no oracle, with the
    reason. A manifest that is unreadable, or whose labels file does not match its digest, is
    an error (the caller asked for that truth explicitly)."""
    if given is None:
        return TruthChoice(None, "no truth folder given")
    path = manifest_file(Path(given)).resolve()
    if not path.is_file():
        return TruthChoice(None, f"{given} has no truth manifest")
    manifest = read_truth_manifest(path)
    if manifest.extract_id not in known_extracts:
        return TruthChoice(
            None,
            f"{path.parent} is the truth of {manifest.extract_id}, not of a delivery in the store",
        )
    if not label_is_any_case:
        return TruthChoice(None, "the truth's p_true is for any new case; the label is narrower")
    check_labels(path, manifest)
    return TruthChoice(TruthRef(path, manifest), f"oracle from {path.parent}")


def read_p_true(truth: TruthRef, horizon_days: int) -> pl.DataFrame:
    """``person_id, as_of, p_true`` of the truth's labels for one horizon (the I/O edge)."""
    path = truth.folder / truth.manifest.labels.file
    return (
        pl.scan_parquet(path)
        .filter(pl.col("horizon_days") == horizon_days)
        .select("person_id", "as_of", "p_true")
        .collect()
    )


def oracle_column(p_true: pl.DataFrame | None, keys: pl.DataFrame) -> np.ndarray | None:
    """p_true for each row of ``keys`` (by ``person_id, as_of``; NaN where unknown); None
    without a truth."""
    if p_true is None:
        return None
    joined = keys.select("person_id", "as_of").join(p_true, on=["person_id", "as_of"], how="left")
    return joined["p_true"].cast(pl.Float64).fill_null(float("nan")).to_numpy()


def oracle_for_run(
    tags: Mapping[str, str], keys: pl.DataFrame, horizon_days: int
) -> np.ndarray | None:
    """p_true for ``keys`` from the truth a training run recorded in its ``tags``; None when
    the run used no truth or the truth is no longer there. A truth that is there but differs
    from the one the run recorded (another digest) is an error: it is not this run's truth."""
    recorded = tags.get(TRUTH_MANIFEST_TAG)
    if not recorded:
        return None
    path = Path(recorded)
    if not path.is_file():
        return None
    manifest = read_truth_manifest(path)
    digest = tags.get(TRUTH_DIGEST_TAG)
    if digest and digest != manifest.labels.sha256:
        raise InputError(
            f"{path}: the truth's labels digest {manifest.labels.sha256} is not the "
            f"{digest} the run recorded"
        )
    try:
        check_labels(path, manifest)
    except InputError:
        if not (path.parent / manifest.labels.file).is_file():
            return None
        raise
    return oracle_column(read_p_true(TruthRef(path, manifest), horizon_days), keys)
