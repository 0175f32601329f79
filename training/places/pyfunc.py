"""The MLflow ``pyfunc`` wrapper of `training.places.model.PlacesModel` (only logging or loading
through MLflow imports MLflow; `training.places.model` does not import this)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
from mlflow.pyfunc.model import PythonModel

from training.places.model import ARTIFACT_KEY, PlacesModel


class PlacesModelPyfunc(PythonModel):
    """MLflow wrapper: the saved `PlacesModel` is the artifact ``places_model`` (a folder of
    plain files). Input: the model's inputs (pandas at this boundary only); output: a frame
    with ``expected_count``."""

    def __init__(self) -> None:
        self.model: PlacesModel | None = None

    def load_context(self, context: Any) -> None:
        self.model = PlacesModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        frame = (
            model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        )
        return pd.DataFrame({"expected_count": self.model.predict(frame)})
