"""Errors: every failure answers JSON `{"msg": ...}`, and a 500 never shows a stack trace."""

import psycopg
from flask import Flask, jsonify
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import InternalServerError

from .extensions import db

# Fields whose required/null/empty error carries this text make the request "missing" data, which
# the demo answered with 400 and a fixed sentence (the schema's `missing_message`).
MISSING = "missing"

# Werkzeug's descriptions are written for HTML pages; these are short sentences for API clients.
MESSAGES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Content-Type must be application/json",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
}


def json_error(status: int, msg: str, headers: dict | None = None, **extra):
    response = jsonify(msg=msg, **extra)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(OperationalError)
    @app.errorhandler(psycopg.OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(error):
        # Most often the database is restarting; the pool replaces the dead connections.
        app.logger.error("database error: %s", type(error).__name__, exc_info=error)
        db.session.rollback()
        return json_error(503, "Service temporarily unavailable", {"Retry-After": "1"})

    @app.errorhandler(InternalServerError)
    def _internal_error(_error):
        return json_error(500, MESSAGES[500])
