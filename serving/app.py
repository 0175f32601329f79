"""The FastAPI app factory (`create_app`); no app is created at import time.

`uvicorn --factory serving.app:create_app` or `riskcast serve`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import sqlalchemy as sa
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import HTTPExceptionHandler

from features.errors import RiskcastError
from serving.db import stop_reason
from serving.metrics import AppMetrics, MetricsMiddleware
from serving.schemas import ErrorResponse, ServiceStatus, error_responses
from serving.settings import ServingSettings, load_serving_settings
from serving.state import ServiceState, open_state

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

    @app.exception_handler(sa.exc.OperationalError)
    async def _database_down(request: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        log.error("database unavailable on %s: %s", request.url.path, exc)
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": "the service database is unavailable", "error": "StoreError"},
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
    def readyz(request: Request) -> ServiceStatus | JSONResponse:
        """Model and stores loaded, and the stop switch off."""
        state: ServiceState | None = request.app.state.riskcast
        if state is None:
            problems = ["the service is starting"]
        else:
            problems = [p for p in (state.model_error, state.store_error) if p]
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
        if problems:
            body = ServiceStatus(
                status="unavailable",
                model_version=version,
                message="; ".join(problems),
                score_book=book,
            )
            return JSONResponse(
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content=body.model_dump()
            )
        return ServiceStatus(status="ready", model_version=version, score_book=book)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    def prometheus_metrics() -> Response:
        """Prometheus metrics: requests and latency by route, scores served, model version."""
        return Response(metrics.render(), media_type=metrics.content_type)

    from serving.routes_admin import router as admin
    from serving.routes_audit import router as audit
    from serving.routes_oversight import router as oversight
    from serving.routes_scores import router as scores
    from serving.ui import install_ui

    # routes_scores documents 403/413/503 itself; 401 and 503 hold for all its routes
    app.include_router(scores, responses=error_responses(401, 503))
    app.include_router(oversight)
    app.include_router(audit)
    app.include_router(admin)
    install_ui(app, settings)
    fallback = cast(HTTPExceptionHandler, app.exception_handlers[StarletteHTTPException])
    app.add_exception_handler(StarletteHTTPException, _undecodable_body_is_422(fallback))
    app.openapi = _complete_openapi(app, settings.purposes)  # type: ignore[method-assign]
    return app


def _undecodable_body_is_422(fallback: HTTPExceptionHandler) -> HTTPExceptionHandler:
    """FastAPI answers 400 when a JSON body cannot even be decoded (not UTF-8, nested too
    deep); it is a malformed body like any other, so it is a 422 naming the body."""

    async def handler(request: Request, exc: Exception) -> Response:
        if (
            isinstance(exc, StarletteHTTPException)
            and exc.status_code == status.HTTP_400_BAD_REQUEST
            and isinstance(exc.__cause__, (ValueError, RecursionError))
        ):
            problem = "not UTF-8" if isinstance(exc.__cause__, UnicodeDecodeError) else "too deep"
            return JSONResponse(
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                content={
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": f"malformed JSON ({problem})",
                            "type": "json_invalid",
                        }
                    ]
                },
            )
        reply = fallback(request, exc)
        return await reply if not isinstance(reply, Response) else reply

    return handler


def _complete_openapi(app: FastAPI, purposes: list[str]) -> Callable[[], dict[str, Any]]:
    """``app.openapi``, completed where the routes cannot say it themselves:

    - every error answer (4xx but 422, 5xx) has its body, `ErrorResponse`, where a route named
      the status code only;
    - every ``purpose`` a request states (query parameter or body field) lists the purposes this
      deployment allows (``RISKCAST_PURPOSES``), which is what the service checks (else 422).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = FastAPI.openapi(app)
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "ErrorResponse",
            ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}"),
        )
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    if code[0] in "45" and code != "422" and not response.get("content"):
                        response["content"] = dict(body)
                for parameter in operation.get("parameters", []):
                    if parameter.get("name") == "purpose":
                        _allow_only(parameter.get("schema", {}), purposes)
                request = operation.get("requestBody", {}).get("content", {})
                ref = request.get("application/json", {}).get("schema", {}).get("$ref", "")
                fields = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
                if "purpose" in fields:
                    _allow_only(fields["purpose"], purposes)
        app.openapi_schema = spec
        return spec

    return openapi


def _allow_only(schema: dict[str, Any], values: list[str]) -> None:
    """Narrow a string schema (or an ``anyOf`` holding one) to ``values``."""
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("type") == "string":
            option["enum"] = list(values)
