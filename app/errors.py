"""Errors: every failure answers JSON `{"msg": ...}`, and a 500 never shows a stack trace.

The account, session and token rules raise ApiError subclasses; they become answers here, so the
views need no try/except.
"""

import psycopg
from flask import Flask, jsonify
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import InternalServerError

from .config import settings
from .extensions import db
from .logs import describe_database_error

# Fields whose required/null/empty error carries this text make the request "missing" data, which
# the demo answered with 400 and a fixed sentence (the schema's `missing_message`).
MISSING = "missing"

# Werkzeug's descriptions are written for HTML pages; these are short sentences for API clients.
MESSAGES = {
    400: "Bad request",
    401: "Authentication required",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Content-Type must be application/json",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service temporarily unavailable",
}


class ApiError(Exception):
    """A refusal with its status, its message and the headers that go with it."""

    status = 400

    def __init__(self, msg: str, headers: dict | None = None):
        super().__init__(msg)
        self.msg = msg
        self.headers = headers or {}


class Unauthorized(ApiError):
    """401. RFC 6750: `error="invalid_token"` when a token was presented, else a bare challenge."""

    status = 401

    def __init__(self, msg: str, *, token_presented: bool = True):
        challenge = 'Bearer error="invalid_token"' if token_presented else "Bearer"
        super().__init__(msg, {"WWW-Authenticate": challenge})


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class TooManyRequests(ApiError):
    status = 429

    def __init__(self, retry_after: int):
        super().__init__(
            f"Too many attempts; try again in {retry_after} seconds",
            {"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


def json_error(status: int, msg: str, headers: dict | None = None, **extra):
    response = jsonify(msg=msg, **extra)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    if status == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def unavailable():
    return json_error(503, MESSAGES[503], {"Retry-After": "1"})


def database_failure(error) -> str:
    """What the log says about a database that failed a request: whether it did not answer in
    time, and the error's type and SQLSTATE, never its text (which can quote the statement)."""
    original = error.orig if isinstance(error, DBAPIError) else error
    described = describe_database_error(error)
    if isinstance(original, psycopg.errors.ConnectionTimeout):
        return (
            "database did not answer in time: no connection within DB_CONNECT_TIMEOUT "
            f"({settings().db_connect_timeout} s): {described}"
        )
    if isinstance(original, psycopg.errors.QueryCanceled):
        return (
            "database did not answer in time: statement cancelled after DB_STATEMENT_TIMEOUT "
            f"({settings().db_statement_timeout} s): {described}"
        )
    if getattr(original, "sqlstate", None) is None and "timed out" in str(original):
        # libpq's own text (the kernel's ETIMEDOUT), never the server's: tcp_user_timeout closed an
        # open connection whose host acknowledged nothing. Only its type is logged.
        return (
            "database did not answer in time: an open connection timed out after "
            f"DB_CONNECT_TIMEOUT ({settings().db_connect_timeout} s): {described}"
        )
    return f"database unavailable: connection failed or lost: {described}"


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _refused(error: ApiError):
        db.session.rollback()
        return json_error(error.status, error.msg, error.headers)

    @app.errorhandler(OperationalError)
    @app.errorhandler(psycopg.OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(error):
        # The database is restarting (the pool replaces the dead connections), unreachable, or did
        # not answer within DB_CONNECT_TIMEOUT or DB_STATEMENT_TIMEOUT. The driver's text is left
        # out: it can quote the statement's values.
        app.logger.error("%s", database_failure(error))
        db.session.rollback()
        return unavailable()

    @app.errorhandler(PoolTimeoutError)
    def _pool_exhausted(_error):
        app.logger.error("database pool exhausted: no connection free within DB_POOL_TIMEOUT")
        db.session.rollback()
        return unavailable()

    @app.errorhandler(InternalServerError)
    def _internal_error(_error):
        return json_error(500, MESSAGES[500])
