"""The MLflow ``pyfunc`` wrapper of `training.model.RiskModel` (imported only when logging or
loading through MLflow; ``training.model.RiskModelPyfunc`` resolves to it)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import polars as pl
from mlflow.pyfunc.model import PythonModel

from training.model import ARTIFACT_KEY, RiskModel

with warnings.catch_warnings():  # MLflow 3 nags about type hints when the class is defined
    warnings.simplefilter("ignore", UserWarning)

    class RiskModelPyfunc(PythonModel):
        """MLflow wrapper: the saved `RiskModel` is the artifact ``risk_model`` (a directory).

        Input: a pandas frame of features (pandas only at this library boundary); output: the
        `RiskModel.predict` frame as pandas.
        """

        def __init__(self) -> None:
            self.model: RiskModel | None = None

        def load_context(self, context: Any) -> None:
            self.model = RiskModel.load(Path(context.artifacts[ARTIFACT_KEY]))

        # No type hints here: MLflow 3 reads them as an input schema (the signature is logged).
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            if self.model is None:
                self.load_context(context)
            assert self.model is not None
            frame = (
                pl.from_pandas(model_input)
                if not isinstance(model_input, pl.DataFrame)
                else (model_input)
            )
            return self.model.predict(frame).to_pandas()
