"""The MLflow ``pyfunc`` wrapper of `training.places.model.PlacesModel` (only logging or loading
through MLflow imports MLflow; `training.places.model` does not import this). Loading and the
pandas boundary are the person model's (`training.pyfunc.FramePyfunc`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl

from training.places.model import ARTIFACT_KEY, PlacesModel
from training.pyfunc import FramePyfunc


class PlacesModelPyfunc(FramePyfunc[PlacesModel]):
    """MLflow wrapper: the saved `PlacesModel` is the artifact ``places_model`` (a folder of
    plain files). Output: a frame with ``expected_count``."""

    artifact_key = ARTIFACT_KEY

    def load_model(self, path: Path) -> PlacesModel:
        return PlacesModel.load(path)

    def output(self, model: PlacesModel, frame: pl.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"expected_count": model.predict(frame)})
