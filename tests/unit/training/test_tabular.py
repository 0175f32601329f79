"""`riskcast train-table` on small messy tables: handling, refusals, metrics JSON, MLflow."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from riskcast.errors import InputError
from riskcast.settings import get_settings
from serving.cli import build_app
from training.tabular import TableOptions, outer_splits, train_table
from training.tabular_data import parse_monotone, prepare_table, read_table

HEADER = ["id", "age", "priors", "sex", "race", "screened", "const", "priors", "outcome"]
FAST = ["--folds", "2", "--inner-folds", "2", "--trials", "2", "--seed", "3"]


def messy_rows(n: int = 240, seed: int = 1) -> list[list[object]]:
    """id, duplicated identical priors, text dates, a constant, blanks, yes/no target, holes."""
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for i in range(n):
        age, priors = int(rng.integers(18, 70)), int(rng.poisson(2))
        sex = str(rng.choice(["M", "F"]))
        z = -0.8 + 0.9 * np.log1p(priors) - 0.05 * (age - 35)
        outcome = "yes" if rng.uniform() < 1 / (1 + np.exp(-z)) else "no"
        outcome = "" if i % 40 == 7 else outcome  # target missing: row dropped
        seen: object = "NA" if i % 13 == 0 else priors
        day = f"2013-{1 + i % 12:02d}-{1 + i % 28:02d}"
        rows.append([i + 1, age, seen, sex, str(rng.choice(["a", "b"])), day, "x", seen, outcome])
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RISKCAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def _invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["train-table", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())  # undo the console's wrapping


def test_messy_table_trains_and_writes_metrics_json(tmp_path: Path, home: Path) -> None:
    data = write_csv(tmp_path / "messy.csv", HEADER, messy_rows())
    out = tmp_path / "m" / "metrics.json"
    code, output = _invoke(
        [
            "--data",
            str(data),
            "--target",
            "outcome",
            "--protected",
            "race",
            "--monotone",
            "priors=+1,age=-1",
            "--metrics-json",
            str(out),
            *FAST,
        ]
    )
    assert code == 0, output
    doc = json.loads(out.read_text())
    for key in ("auc", "auc_sd", "brier", "accuracy"):
        assert isinstance(doc[key], float)
    assert 0.5 < doc["auc"] <= 1 and 0 <= doc["accuracy"] <= 1
    assert set(doc["baselines"]) == {"logistic", "points_scale"}
    assert all("auc" in b for b in doc["baselines"].values())
    groups = {row["group"] for row in doc["calibration_by_group"]["race"]}
    assert groups == {"a", "b"}
    for said in (
        "identical content",
        "without a target",
        "(date): screened",
        "(constant): const",
        "(id-like): id",
        "MLflow run",
    ):
        assert said in output, said
    assert (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("header", "rows", "args", "message"),
    [
        (
            ["a", "a", "y"],
            [[1, 2, 0], [2, 3, 1]],
            ["--target", "y"],
            "'a' appears 2 times (columns 1, 2) with different content",
        ),
        (["a", "y"], [[1, 0], [2, 2], [3, 1]], ["--target", "y"], "must be binary"),
        (["a", "y"], [[1, "x"], [2, "z"]], ["--target", "y"], "must be binary"),
        (["a", "y"], [[1, 1], [2, 1]], ["--target", "y"], "only one class"),
        (["a", "yy"], [[1, 1], [2, 0]], ["--target", "y"], "did you mean yy"),
        (
            ["a", "y"],
            [[1, 1], [2, 0]],
            ["--target", "y", "--protected", "race"],
            "protected column 'race' is not in the table",
        ),
        (
            ["a", "y"],
            [[1, 1], [2, 0]],
            ["--target", "y", "--monotone", "a=up"],
            "--monotone expects",
        ),
        (["a", "y"], [[1, 1], [2, 0], [3, 0]], ["--target", "y"], "--folds 5 needs at least"),
    ],
)
def test_refusals_are_one_clear_line(
    tmp_path: Path,
    home: Path,
    header: list[str],
    rows: list[list[object]],
    args: list[str],
    message: str,
) -> None:
    data = write_csv(tmp_path / "t.csv", header, rows)
    code, output = _invoke(["--data", str(data), "--no-mlflow", *args])
    assert code == 2
    assert message in output
    assert "Traceback" not in output


def test_unreadable_files(tmp_path: Path, home: Path) -> None:
    code, output = _invoke(["--data", str(tmp_path / "nope.csv"), "--target", "y"])
    assert code == 2 and "no such file" in output
    (tmp_path / "empty.csv").write_text("")
    code, output = _invoke(["--data", str(tmp_path / "empty.csv"), "--target", "y"])
    assert code == 2 and "empty" in output


def test_duplicates_dropped_by_name_go_entirely(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "a", "b"], [[1, 2, 3]])
    assert read_table(path, [], drop=["a"]).columns == ["a", "b"]


def test_protected_dates_ids_and_drops_are_not_inputs() -> None:
    rows = messy_rows(120)
    frame = pl.DataFrame({h: [str(r[i]) for r in rows] for i, h in enumerate(HEADER) if i != 7})
    table = prepare_table(
        frame, "outcome", protected=["race"], drop=["sex"], monotone={"priors": 1}
    )
    assert table.features == ["age", "priors"]
    assert table.monotone == {"priors": 1}
    assert table.count_features == ["priors"]
    assert set(table.groups["race"]) == {"a", "b"}
    assert table.y.size == 120 - 3
    with pytest.raises(InputError, match="not a numeric input"):
        prepare_table(frame, "outcome", monotone={"sex": 1})
    with pytest.raises(InputError, match="not inputs: race"):
        prepare_table(frame, "outcome", protected=["race"], monotone={"race": 1})


def test_text_typing_and_target_forms() -> None:
    frame = pl.DataFrame(
        {
            "n": [" 1", "2", "N/A", "4"],
            "f": ["true", "FALSE", None, "true"],
            "d": ["01/02/2013", "03/04/2014", "", "05/06/2015"],
            "t": ["Y", "n", "y", "N"],
            "c": ["u", "v", "u", "w"],
        }
    )
    table = prepare_table(frame, "t")
    assert table.y.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert table.frame["n"].to_list()[:3] == [1.0, 2.0, None]
    assert table.frame["f"].to_list() == [1.0, 0.0, None, 1.0]
    assert "d" not in table.features and any("(date): d" in n for n in table.notes)
    assert parse_monotone("a=+1, b=-1,") == {"a": 1, "b": -1}


def test_nested_cv_is_deterministic_and_uses_same_outer_folds() -> None:
    rows = messy_rows(200, seed=4)
    frame = pl.DataFrame({h: [str(r[i]) for r in rows] for i, h in enumerate(HEADER) if i != 7})
    table = prepare_table(frame, "outcome", protected=["race"])
    options = TableOptions(folds=2, inner_folds=2, trials=2, seed=5)
    first = train_table(table, options)
    second = train_table(table, options)
    assert first.metrics_json()["auc"] == second.metrics_json()["auc"]
    assert not np.isnan(first.oof["riskcast"]).any()
    splits = outer_splits(table.y, 2, 5)
    assert [f.n_test for f in first.folds] == [te.size for _, te in splits]


class _Failing:
    def fit(self, X: pl.DataFrame, y: np.ndarray) -> None:  # noqa: N803
        raise InputError("cannot fit")

    def predict_proba(self, X: pl.DataFrame) -> np.ndarray:  # noqa: N803
        raise AssertionError("not reached")


def test_parquet_nan_target_inf_values_and_failing_baseline(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 160
    x = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * x))).astype(float)
    y[:4] = np.nan
    x[10] = np.inf
    frame = pl.DataFrame({"x": x, "z": rng.normal(size=n), "y": y})
    table = prepare_table(frame, "y")
    assert table.y.size == n - 4
    assert table.frame["x"].null_count() == 1
    assert any("infinite or NaN" in note for note in table.notes)
    result = train_table(
        table,
        TableOptions(folds=2, inner_folds=2, trials=1),
        baselines={"broken": lambda t: _Failing()},
    )
    assert "broken" not in result.model_names
    assert any("'broken' left out" in note for note in result.notes)
    assert set(result.metrics_json()["baselines"]) == {"logistic", "points_scale"}
