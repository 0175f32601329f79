"""The MLflow ``pyfunc`` wrapper of `training.model.RiskModel`, in its own module so that only
logging or loading through MLflow imports MLflow (`training.model` does not import this)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
from mlflow.pyfunc.model import PythonModel

from training.model import ARTIFACT_KEY, RiskModel


class RiskModelPyfunc(PythonModel):
    """MLflow wrapper: the saved `RiskModel` is the artifact ``risk_model`` (a directory).

    Input: a pandas frame of features (pandas only at this library boundary); output: the
    `RiskModel.predict` frame as pandas.
    """

    def __init__(self) -> None:
        self.model: RiskModel | None = None

    def load_context(self, context: Any) -> None:
        self.model = RiskModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    # ``pd.DataFrame`` is the one hint MLflow 3 takes without inferring a schema from it (the
    # signature is logged from the input example); without a hint it prints a colour-coded
    # warning when the class is defined, under its own warning filter.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        frame = (
            model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        )
        return self.model.predict(frame).to_pandas()
