"""The FastAPI app factory (`create_app`); no app is created at import time.

`uvicorn --factory serving.app:create_app` or `riskcast serve`. The app is assembled here from
its parts: the API's routers (`serving.api.routes`), the pages (`serving.ui`), the one error
mapping (`serving.api.errors`), the completed OpenAPI document (`serving.api.openapi`) and
the health routes below.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, Response

from serving.api.errors import finish_error_handlers, install_error_handlers
from serving.api.openapi import complete_openapi
from serving.api.routes import admin, audit, evidence, oversight, scores
from serving.db import stop_reason
from serving.limits import BodyLimitMiddleware
from serving.metrics import AppMetrics, MetricsMiddleware
from serving.places.page import router as map_page
from serving.places.routes import router as hotspots
from serving.schemas import ServiceStatus, error_responses
from serving.settings import ServingSettings, load_serving_settings
from serving.state import ServiceState, open_state
from serving.ui.app import install_ui

log = logging.getLogger("riskcast.serving")

NOTHING_MATERIALIZED = (
    "the online store holds no materialized feature vectors: nobody can be scored or listed "
    "until `riskcast features materialize --as-of DATE` has run on this database"
)


def store_problem(state: ServiceState) -> str | None:
    """Why the online store cannot serve (opened but empty), or None. An empty store is not
    ready: its lists would be empty, which reads as "nobody at risk"."""
    if state.store is None or state.store_error:
        return None  # already reported as the store's error
    return NOTHING_MATERIALIZED if state.store.current() is None else None


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
    # the body limit runs before routing, authentication and parsing; metrics count its 413s
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    install_error_handlers(app)

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
    def readyz(request: Request) -> ServiceStatus | JSONResponse:
        """Model and stores loaded, feature vectors materialized, and the stop switch off
        (otherwise 503 naming each problem in ``message``)."""
        state: ServiceState | None = request.app.state.riskcast
        if state is None:
            problems = ["the service is starting"]
        else:
            problems = [p for p in (state.model_error, state.store_error) if p]
            try:
                empty = store_problem(state)
            except sa.exc.SQLAlchemyError as exc:
                empty = f"the online store is unavailable: {type(exc).__name__}"
            if empty:
                problems.append(empty)
            try:
                reason = stop_reason(state.engine)
            except sa.exc.SQLAlchemyError as exc:
                problems.append(f"the service database is unavailable: {type(exc).__name__}")
            else:
                if reason:
                    problems.append(f"scoring is stopped: {reason}")
        version = state.model.version if state and state.model else None
        keeper = state.book_keeper if state else None
        book = "off" if keeper is None else keeper.status
        ready = state.book() if state else None
        scope = {
            "population": state.model.scope.describe() if state and state.model else None,
            "in_population": ready.size if ready else None,
            "outside_population": ready.outside if ready else None,
        }
        if problems:
            body = ServiceStatus(
                status="unavailable",
                model_version=version,
                message="; ".join(problems),
                score_book=book,
                **scope,
            )
            return JSONResponse(
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content=body.model_dump()
            )
        return ServiceStatus(status="ready", model_version=version, score_book=book, **scope)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    def prometheus_metrics() -> Response:
        """Prometheus metrics: requests and latency by route, scores served, model version."""
        return Response(metrics.render(), media_type=metrics.content_type)

    # the scores' routes document 403/413/503 themselves; 401 and 503 hold for all of them
    app.include_router(scores.router, responses=error_responses(401, 503))
    app.include_router(oversight.router)
    app.include_router(audit.router)
    app.include_router(admin.router)
    app.include_router(evidence.router)  # evidence packs (issue 13, section 4)
    app.include_router(hotspots)  # places (issue 12): documents its own 401/403/503
    install_ui(app, settings)
    app.include_router(map_page)
    finish_error_handlers(app)
    app.openapi = complete_openapi(  # type: ignore[method-assign]
        app, settings.purposes, settings.max_body_bytes
    )
    return app
