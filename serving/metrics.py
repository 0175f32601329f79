"""Prometheus metrics, one `CollectorRegistry` per app (two apps in a process never collide).

Request counts and latency by route *template* (``/v1/fairness-reports/{version}``, never the
raw path, so the label set stays small), scores served, and the model being served.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"


class AppMetrics:
    """The metrics of one app, in their own registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "riskcast_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "riskcast_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.scores = Counter(
            "riskcast_scores_served",
            "Explained person scores served (API and pages)",
            ["channel"],
            registry=self.registry,
        )
        self.model = Gauge(
            "riskcast_model_info",
            "The model version being served (value 1); absent when none is loaded",
            ["name", "version", "alias"],
            registry=self.registry,
        )

    def set_model(self, name: str | None, version: str | None, alias: str | None) -> None:
        self.model.clear()
        if name and version:
            self.model.labels(name=name, version=version, alias=alias or "").set(1)

    def scores_served(self, n: int, channel: str = "scores") -> None:
        if n > 0:
            self.scores.labels(channel=channel).inc(n)

    def render(self) -> bytes:
        return _generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_template(scope)
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=route).observe(
                time.perf_counter() - start
            )
