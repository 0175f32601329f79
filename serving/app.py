"""The FastAPI app factory (`create_app`); no app is created at import time.

`uvicorn --factory serving.app:create_app` or `riskcast serve`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, Response

from features.errors import RiskcastError
from serving.auth import State
from serving.db import stop_reason
from serving.metrics import AppMetrics, MetricsMiddleware
from serving.schemas import ServiceStatus
from serving.settings import ServingSettings, load_serving_settings
from serving.state import open_state

log = logging.getLogger("riskcast.serving")


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """A new app; its lifespan loads the champion and opens the stores."""
    settings = settings or load_serving_settings()
    metrics = AppMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = open_state(settings)
        state.metrics = metrics
        loaded = state.model
        metrics.set_model(
            loaded.name if loaded else None,
            loaded.version if loaded else None,
            loaded.alias if loaded else None,
        )
        app.state.riskcast = state
        try:
            yield
        finally:
            state.close()
            app.state.riskcast = None

    app = FastAPI(
        title="riskcast",
        version="1",
        description="Explained recidivism risk scores and risk lists for prevention officers, "
        "under human oversight: every read of a person's score is in the access log.",
        lifespan=lifespan,
    )
    app.state.riskcast = None
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(RiskcastError)
    async def _riskcast_error(request: Request, exc: RiskcastError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        return JSONResponse(
            status_code=exc.http_status, content={"detail": str(exc), "error": type(exc).__name__}
        )

    @app.get("/healthz", response_model=ServiceStatus, tags=["health"])
    def healthz() -> ServiceStatus:
        """The process is up."""
        return ServiceStatus(status="ok")

    @app.get(
        "/readyz",
        response_model=ServiceStatus,
        tags=["health"],
        responses={503: {"model": ServiceStatus}},
    )
    def readyz(state: State) -> ServiceStatus | JSONResponse:
        """Model and stores loaded, and the stop switch off."""
        problems = [p for p in (state.model_error, state.store_error) if p]
        reason = stop_reason(state.engine)
        if reason:
            problems.append(f"scoring is stopped: {reason}")
        version = state.model.version if state.model else None
        if problems:
            body = ServiceStatus(
                status="unavailable", model_version=version, message="; ".join(problems)
            )
            return JSONResponse(
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content=body.model_dump()
            )
        return ServiceStatus(status="ready", model_version=version)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    def prometheus_metrics() -> Response:
        """Prometheus metrics: requests and latency by route, scores served, model version."""
        return Response(metrics.render(), media_type=metrics.content_type)

    from serving.routes_audit import router as audit
    from serving.routes_oversight import router as oversight
    from serving.routes_scores import router as scores
    from serving.ui import install_ui

    app.include_router(scores)
    app.include_router(oversight)
    app.include_router(audit)
    install_ui(app, settings)
    return app
