"""Structured logs: one JSON line per request and per audit event, on stdout for the journal.

Only fields named here are written, so a password or a token can never reach the log by accident:
request bodies, headers and query strings are never logged. A database error is logged by its
type and SQLSTATE only, never its text, which can quote the values of the failed statement.
Audit lines are written at every LOG_LEVEL; request lines at INFO and below.
"""

import json
import logging
import os
import re
import sys
import time
import traceback
from datetime import UTC, datetime

import psycopg
from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.exc import DBAPIError, StatementError

from .metrics import count_audit_event

REQUEST_ID_HEADER = "X-Request-ID"
# A client-supplied request id is kept only when it is short and plain, so it cannot forge lines.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}\Z")


class JsonFormatter(logging.Formatter):
    """Errors (and Flask's own messages) as JSON lines like the request and audit lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        line["message"] = record.getMessage()
        if record.exc_info:
            # Tracebacks go to the log only, never into a response.
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)

    def formatException(self, exc_info) -> str:
        _type, error, trace = exc_info
        if not _is_database_error(error):
            return super().formatException(exc_info)
        # The frames, and the error's type and SQLSTATE, but none of its text.
        frames = "".join(traceback.format_tb(trace))
        return f"Traceback (most recent call last):\n{frames}{describe_database_error(error)}"


def _is_database_error(error) -> bool:
    return isinstance(error, StatementError | psycopg.Error)


def describe_database_error(error) -> str:
    """`IntegrityError (SQLSTATE 23505)`: what failed, without the statement's values."""
    original = error.orig if isinstance(error, DBAPIError) else error
    sqlstate = getattr(original, "sqlstate", None)
    name = type(original).__name__
    return f"{name} (SQLSTATE {sqlstate})" if sqlstate else name


def _write(logger: str, fields: dict) -> None:
    # The request line is written on every request, so it skips the logging machinery (record
    # objects, caller lookup, handler locks): one json.dumps and one write of a whole line,
    # which the journal (or a pipe) receives whole.
    line = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "INFO",
        "logger": logger,
        **fields,
    }
    sys.stdout.write(json.dumps(line, default=str) + "\n")


def audit(event: str, **fields) -> None:
    """Record a security-relevant event (never pass a password or a token here), whatever the
    LOG_LEVEL: the audit trail is not a debugging aid. Every event is counted in /metrics too."""
    context = (
        {"request_id": g.get("request_id"), "remote_addr": request.remote_addr}
        if has_request_context()
        else {"request_id": None, "remote_addr": None}
    )
    _write("flask_jwt_api.audit", {"event": event, **context, **fields})
    count_audit_event(event)


def init_app(app: Flask, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(level)
    app.logger.propagate = False
    app.extensions["log_requests"] = logging.getLevelName(level) <= logging.INFO

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else os.urandom(16).hex()

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id") or os.urandom(16).hex()
        response.headers[REQUEST_ID_HEADER] = request_id
        if not current_app.extensions["log_requests"]:
            return response
        started = g.get("started")
        _write(
            "flask_jwt_api.request",
            {
                "event": "request",
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else 0.0,
                "request_id": request_id,
                "remote_addr": request.remote_addr,
            },
        )
        return response
