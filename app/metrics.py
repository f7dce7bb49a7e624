"""Prometheus metrics: requests by route and status, their latency, and the audit events, served at
/metrics to the operator's scraper only (this host's loopback or METRICS_ALLOWED_ADDRESSES).

Under gunicorn (PROMETHEUS_MULTIPROC_DIR set) each worker writes its values to its own files in that
directory and /metrics adds up every worker's; without it, the values live in this process.
"""

import ipaddress
import os
import time

from flask import Flask, Response, current_app, g, has_app_context, request
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import NotFound

from .config import ConfigError, settings

PATH = "/metrics"
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The route label of a request no URL rule matched: the raw path would let any client create series.
UNMATCHED = "unmatched"
# From a token check answered from the cache (about a millisecond) through an argon2 login (tens of
# milliseconds) to a database that stalls until DB_STATEMENT_TIMEOUT and gunicorn's 30 s timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A request that passed a proxy: HAProxy on this host connects from loopback too, and sets one.
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded")


class Metrics:
    """The app's metrics, and the registry /metrics reads them from."""

    def __init__(self, multiprocess_dir: str | None):
        # Each counter would add a `_created` series per label set (and only in one process).
        disable_created_metrics()
        # In multiprocess mode the values go to files, never to a registry of this process.
        own = None if multiprocess_dir else CollectorRegistry()
        self.requests = Counter(
            "flask_jwt_api_requests",
            "HTTP requests answered, by URL rule and status",
            ["route", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "flask_jwt_api_request_duration_seconds",
            "Seconds from the request's start to its answer, by URL rule",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.audit_events = Counter(
            "flask_jwt_api_audit_events",
            "Audit events (logins, throttling, refresh reuse, logouts...), by event name",
            ["event"],
            registry=own,
        )
        if multiprocess_dir:
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, path=multiprocess_dir)
        else:
            self.registry = own
        # Each request's series, found by one dict lookup instead of labels()' checks and lock.
        self._series: dict[tuple[str, int], tuple] = {}

    def record(self, route: str, status: int, seconds: float | None) -> None:
        series = self._series.get((route, status))
        if series is None:
            series = self._series[route, status] = (
                self.requests.labels(route, str(status)),
                self.latency.labels(route),
            )
        series[0].inc()
        if seconds is not None:
            series[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def count_audit_event(event: str) -> None:
    """Called by logs.audit() for every audit event, so a new event is counted without more code."""
    metrics = current_app.extensions.get("metrics") if has_app_context() else None
    if metrics is not None:
        metrics.audit_events.labels(event).inc()


def _multiprocess_dir() -> str | None:
    """prometheus_client reads the variable from the process's own environment, so this does too."""
    directory = os.environ.get(MULTIPROC_DIR)
    if directory is None:
        return None
    if not (os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)):
        raise ConfigError(
            f"{MULTIPROC_DIR} is {directory!r}, which is not a writable directory: point it at an "
            "empty directory made for this server's start (the unit's RuntimeDirectory= is one), "
            "or unset it to keep the metrics in a single process."
        )
    return directory


def from_the_scraper() -> bool:
    """The TCP peer (before ProxyFix rewrote it) is loopback or an allowed address, and no proxy
    forwarded the request."""
    if any(header in request.headers for header in FORWARDING_HEADERS):
        return False
    environ = request.environ
    peer = environ.get("werkzeug.proxy_fix.orig", environ).get("REMOTE_ADDR")
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:  # None, or a Unix socket's empty address
        return False
    address = getattr(address, "ipv4_mapped", None) or address
    return address.is_loopback or any(
        address in network for network in settings().metrics_allowed_networks
    )


def _exposition():
    if not from_the_scraper():
        raise NotFound()
    if request.method == "OPTIONS":
        return current_app.make_default_options_response()
    return Response(
        current_app.extensions["metrics"].render(),
        content_type=CONTENT_TYPE_PLAIN_0_0_4,
        headers={"Cache-Control": "no-store"},
    )


def init_app(app: Flask) -> None:
    metrics = app.extensions["metrics"] = Metrics(_multiprocess_dir())
    # The view answers everyone else the 404 of an unknown route, OPTIONS included; another method
    # gets it from App.raise_routing_exception instead of a 405. Other requests pay nothing for it.
    app.add_url_rule(
        PATH, "metrics", _exposition, methods=["GET", "OPTIONS"], provide_automatic_options=False
    )

    @app.after_request
    def _count(response):
        rule = request.url_rule
        started = g.get("started")  # logs.py's, set when the request began
        metrics.record(
            rule.rule if rule is not None else UNMATCHED,
            response.status_code,
            time.perf_counter() - started if started is not None else None,
        )
        return response
