"""Prometheus metrics, one `CollectorRegistry` per app (two apps in a process never collide).

Request counts and latency by route *template* (``/v1/fairness-reports/{version}``, never the
raw path, so the label set stays small), scores served, the model being served, and every
figure of the newest monitoring check (`MonitoringCollector`): ``riskcast_monitoring_<figure>``
gauges read from the monitoring store when ``/metrics`` is scraped (thresholds and what each
alert means: ``configs/monitoring.yaml``; ``riskcast_monitoring_breaches{kind}`` > 0 and
``riskcast_monitoring_reaudit`` = 1 are the ones to alert on).

The places champion's check adds (`fairness.monitoring.places.places_figures`, labels model
``street-crime``; thresholds in the ``places:`` block of ``configs/monitoring.yaml``):

- realised performance: ``riskcast_monitoring_places_count_ratio{group_column, group, bound}``
  (observed / forecast incidents over the realised weeks, ``bound`` value/lower/upper; alert
  when the interval leaves ``places.ratio_low``..``ratio_high``),
  ``riskcast_monitoring_places_pai{share, bound}`` with ``riskcast_monitoring_places_pai_audited
  {share}`` (alert when the upper bound falls below ``places.pai_fraction`` x audited),
  ``riskcast_monitoring_places_deviance{bound}``, ``riskcast_monitoring_places_expected`` /
  ``_observed{week="newest"}`` (the newest realised week's totals), and the exposure
  ``riskcast_monitoring_places_flagged_area_share`` / ``_incident_share{region, district}``
  (reported, not alerted);
- input drift of the cell features: ``riskcast_monitoring_places_input_rate_ratio{input,
  group_column, group}`` (the mean per cell-week over the drift window / the same weeks a year
  before; alert rule ``places.drift``), and each group's evidence,
  ``riskcast_monitoring_places_effective_count`` / ``_detectable_ratio{group_column, group,
  input}`` (a detectable ratio beyond ``places.drift.ratio_high``: a change at the band's edge
  is within the noise there);
- score drift: ``riskcast_monitoring_places_score_ratio{group_column, group, bound}`` (the mean
  forecast over the drift window / the champion's forecast of the same weeks a year before;
  band ``drift.score_mean_ratio_alert``). No ``input_psi`` for places: the forecast is not
  compared with the audited test weeks (another season);
- ``riskcast_monitoring_breaches{kind}`` with the places kinds ``input_drift``,
  ``score_drift``, ``count_ratio`` and ``pai``.

A check without the reference weeks' history (a store shorter than a year plus the longest
feature window) exports no drift ratios; its report and page say "insufficient history".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
MONITORING_PREFIX = "riskcast_monitoring_"
log = logging.getLogger("riskcast.serving")


class MonitoringCollector(Collector):
    """The figures of each model's newest monitoring check as gauges, read at scrape time.

    One gauge family per figure name (`fairness.monitoring.check.figures`), labelled with the
    model, its version and the figure's own labels (group column and group, input, tier,
    threshold, bound ...; a label a figure lacks is empty). The store is the deployment's
    (``RISKCAST_DATABASE_URL``, else SQLite under the home); a store that cannot be read gives
    no monitoring gauges rather than a failed scrape."""

    def __init__(self) -> None:
        self._store: Any = None
        self._url: str | None = None

    def _open(self) -> Any:
        from fairness.monitoring.store import MonitoringStore
        from riskcast.settings import get_settings

        url = get_settings().effective_database_url
        if self._store is None or self._url != url:
            if self._store is not None:
                self._store.dispose()
            self._store, self._url = MonitoringStore(url), url
        return self._store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            rows = self._open().latest_figures()
        except Exception as exc:  # a scrape never fails on the monitoring store
            log.warning("monitoring gauges unavailable: %s", exc)
            return
        by_name: dict[str, list[tuple[str, str, dict[str, str], float]]] = {}
        for model, version, figure in rows:
            by_name.setdefault(figure.name, []).append(
                (model, version, figure.labels, figure.value)
            )
        for name, points in sorted(by_name.items()):
            keys = sorted({k for _, _, labels, _ in points for k in labels})
            family = GaugeMetricFamily(
                MONITORING_PREFIX + name,
                f"monitoring figure {name} of the newest check (configs/monitoring.yaml)",
                labels=["model", "version", *keys],
            )
            for model, version, labels, value in points:
                family.add_metric([model, version, *(labels.get(k, "") for k in keys)], value)
            yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # figures are known only at scrape time


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
        self.registry.register(MonitoringCollector())

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
