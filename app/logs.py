"""Structured logs: one JSON line per request and per audit event, on stdout for the journal.

Only fields named here are written, so a password or a token can never reach the log by accident:
request bodies, headers and query strings are never logged.
"""

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, request

REQUEST_ID_HEADER = "X-Request-ID"
# A client-supplied request id is kept only when it is short and plain, so it cannot forge lines.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

request_log = logging.getLogger("flask_jwt_api.request")
audit_log = logging.getLogger("flask_jwt_api.audit")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            # Tracebacks go to the log only, never into a response.
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    for name in ("flask_jwt_api", "flask.app"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def audit(event: str, **fields) -> None:
    """Record a security-relevant event (never pass a password or a token here)."""
    audit_log.info(
        event,
        extra={
            "fields": {
                "event": event,
                "request_id": g.get("request_id"),
                "remote_addr": request.remote_addr,
                **fields,
            }
        },
    )


def init_app(app: Flask, level: str) -> None:
    _configure_logging(level)
    app.logger.handlers[:] = logging.getLogger("flask.app").handlers

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("started")
        duration = (time.perf_counter() - started) * 1000 if started else 0.0
        request_log.info(
            "request",
            extra={
                "fields": {
                    "event": "request",
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(duration, 2),
                    "request_id": request_id,
                    "remote_addr": request.remote_addr,
                }
            },
        )
        return response
