"""The MLflow ``pyfunc`` wrappers of `training.model.RiskModel` and (through `FramePyfunc`)
`training.places.model.PlacesModel`, in their own modules so that only logging or loading
through MLflow imports MLflow (the models' modules do not import these)."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd
import polars as pl
from mlflow.pyfunc.model import PythonModel

from training.model import ARTIFACT_KEY, RiskModel

M = TypeVar("M")


class FramePyfunc(PythonModel, Generic[M]):
    """MLflow wrapper of a model saved as the artifact ``artifact_key`` (a folder), loaded on
    first use. Input: a pandas frame of the model's inputs (pandas only at this library
    boundary; a Polars frame is taken as it is); output: `output` of the Polars frame, as
    pandas. Subclasses say how to load the model and what its output is."""

    artifact_key: str

    def __init__(self) -> None:
        self.model: M | None = None

    @abstractmethod
    def load_model(self, path: Path) -> M:
        """The model saved in the folder ``path``."""

    @abstractmethod
    def output(self, model: M, frame: pl.DataFrame) -> pd.DataFrame:
        """What `predict` returns for the inputs ``frame``."""

    def load_context(self, context: Any) -> None:
        self.model = self.load_model(Path(context.artifacts[self.artifact_key]))

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
        return self.output(self.model, frame)


class RiskModelPyfunc(FramePyfunc[RiskModel]):
    """MLflow wrapper: the saved `RiskModel` is the artifact ``risk_model`` (a directory);
    output: the `RiskModel.predict` frame."""

    artifact_key = ARTIFACT_KEY

    def load_model(self, path: Path) -> RiskModel:
        return RiskModel.load(path)

    def output(self, model: RiskModel, frame: pl.DataFrame) -> pd.DataFrame:
        return model.predict(frame).to_pandas()
