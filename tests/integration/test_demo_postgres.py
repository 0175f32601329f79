"""The production path of the demo: with ``RISKCAST_DATABASE_URL`` and ``MLFLOW_TRACKING_URI``
on PostgreSQL, `experiments/demo.py --no-serve` (small sizes) runs every step (simulate,
ingest, features, materialize, train, users, audit, promote or an auditor's override, the
same for places and their materialized forecast, ledger verify) against that database, and no
store or registry is written to SQLite in the home.

The only SQLite file the home may hold is Optuna's study (``optuna.db``, the tuning's resume
file; README, "Settings"). A fresh database is created and dropped at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.integration

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parents[2]
STUDY = "optuna.db"
SMALL = ("--no-serve", "--persons", "20000", "--trials", "1", "--seed", "7")


@pytest.fixture
def demo_db() -> Iterator[str]:
    name = f"riskcast_demo_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sqlite_files(home: Path) -> list[str]:
    """Every SQLite database under ``home`` (by its header, whatever its name)."""
    found = []
    for path in home.rglob("*"):
        if path.is_file() and path.stat().st_size >= 16:
            with path.open("rb") as f:
                if f.read(16) == b"SQLite format 3\x00":
                    found.append(str(path.relative_to(home)))
    return sorted(found)


def test_demo_runs_on_postgres_and_writes_no_sqlite(demo_db: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RISKCAST_HOME": str(tmp_path),
        "RISKCAST_DATABASE_URL": demo_db,
        "MLFLOW_TRACKING_URI": demo_db,
        "COLUMNS": "200",
    }
    env.pop("RISKCAST_MODE", None)
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "demo.py"), *SMALL],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,  # both models, on a machine other jobs share
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    home = tmp_path / "demo"
    assert [f for f in _sqlite_files(home) if Path(f).name != STUDY] == [], output[-3000:]
    assert not (home / "riskcast.sqlite").exists() and not (home / "mlflow.db").exists()
    assert f"--backend-store-uri {demo_db}" in output  # the MLflow UI line names PostgreSQL

    engine = sa.create_engine(demo_db)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        assert {"service_users", "feature_materializations", "ledger_entries"} <= tables
        assert {"hotspot_materializations", "hotspot_forecasts"} <= tables
        assert {"registered_models", "model_versions"} <= tables  # MLflow's registry
        with engine.connect() as conn:
            users = conn.execute(sa.text("SELECT count(*) FROM service_users")).scalar_one()
            aliases = conn.execute(
                sa.text("SELECT name, alias FROM registered_model_aliases ORDER BY name, alias")
            ).all()
            forecast = conn.execute(sa.text("SELECT count(*) FROM hotspot_forecasts")).scalar_one()
            assert users == 5
            assert [tuple(a) for a in aliases] == [
                ("recidivism-risk", "challenger"),
                ("recidivism-risk", "champion"),
                ("street-crime", "challenger"),
                ("street-crime", "champion"),
            ]
            assert forecast > 0  # the places champion's forecast, materialized
    finally:
        engine.dispose()
