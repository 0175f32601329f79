"""`/readyz` on an online store with nothing materialized: 503 naming it (an empty store's
lists would read as "nobody at risk"), while `/healthz` says the process is up."""

from __future__ import annotations

from pathlib import Path

from serving.api.deps import get_access_log
from serving.app import NOTHING_MATERIALIZED, create_app
from serving.settings import ServingSettings
from tests.service_helpers import RecordingLog, ServiceEnv, serve


def test_readyz_names_an_empty_online_store(service_env: ServiceEnv, tmp_path: Path) -> None:
    """The champion and the offline store are there; the service's database (and so its
    online store) is a new one with nothing materialized."""
    settings = ServingSettings(
        home=service_env.home,
        database_url=f"sqlite:///{tmp_path / 'empty.sqlite'}",
        mlflow_tracking_uri=None,
    )
    app = create_app(settings)
    app.dependency_overrides[get_access_log] = lambda: RecordingLog()
    with serve(app) as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable"
        assert body["message"] == NOTHING_MATERIALIZED  # the only problem
        assert body["model_version"] == service_env.model_version
        assert "riskcast features materialize" in body["message"]
