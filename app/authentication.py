"""Authentication of a request, as a chain of small steps: the bearer token from the header, its
claims (tokens.py), the live login it belongs to (one query), and the request's principal.

`token_required()` runs the chain before a view; `current_principal()` is what the view sees.
"""

import functools
import threading
import time
import uuid
from dataclasses import dataclass

import psycopg
from flask import Flask, current_app, g, request

from . import tokens
from .errors import Unauthorized
from .extensions import db

SCHEME = "bearer"
BEARER_ONLY = "Authorization header must be 'Bearer <token>'"


@dataclass(frozen=True)
class Principal:
    """Who the request acts for: the user and the login (session) its token belongs to."""

    user_id: int
    username: str
    session_id: uuid.UUID


def bearer_token() -> str:
    """Step 1: the token from `Authorization: Bearer <token>`."""
    header = request.headers.get("Authorization")
    if not header:
        raise Unauthorized("Missing Authorization Header", token_presented=False)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != SCHEME:
        # RFC 6750 3.1: another scheme (Basic, ...) presents no bearer token: a bare challenge.
        raise Unauthorized(BEARER_ONLY, token_presented=False)
    if not token or " " in token:
        raise tokens.InvalidToken(BEARER_ONLY)
    return token


def live_login(claims: tokens.Claims) -> Principal:
    """Step 3: the login the token belongs to, while it is live and its user active."""
    row = current_app.extensions["session_lookup"].fetch(claims.session_id, claims.user_id)
    if row is None:
        raise tokens.InvalidToken("Token has been revoked")
    username, is_active = row
    if not is_active:
        raise tokens.InvalidToken("User not found or deactivated")
    return Principal(user_id=claims.user_id, username=username, session_id=claims.session_id)


def authenticate(kind: str) -> tuple[Principal, tokens.Claims]:
    """The whole chain: header, claims, live login."""
    claims = tokens.codec().decode(bearer_token(), kind)
    return live_login(claims), claims


def token_required(kind: str = tokens.ACCESS):
    """Run the chain before the view; the view reads current_principal() (and current_claims())."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            g.principal, g.claims = authenticate(kind)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def current_principal() -> Principal:
    return g.principal


def current_claims() -> tokens.Claims:
    return g.claims


class SessionLookup:
    """The one query of a protected request: is the token's login live, and who is its user.

    It is the hot path, so it skips the ORM session: each thread keeps one connection taken from
    the engine's pool (pre-pinged when taken), in autocommit so there is no BEGIN or ROLLBACK, and
    psycopg prepares the statement on the server after its first uses. The statement is retried
    once on a fresh connection when the held one is unusable: the server dropped it (a restart), or
    a migration changed a column's type under the prepared plan. A second failure reaches the 503
    handler. A database that did not answer in time is not retried, since a retry would wait as
    long again: a connect timeout, a statement cancelled by the statement timeout, or any failure
    that came after a wait (an open connection whose host stopped answering).
    """

    SQL = (
        "SELECT u.username, u.is_active"
        " FROM login_sessions AS s JOIN users AS u ON u.id = s.user_id"
        " WHERE s.id = %s AND s.user_id = %s AND s.revoked_at IS NULL"
    )
    # A held connection is replaced on these: a dropped connection, and "cached plan must not
    # change result type" (a column's type changed under the prepared statement).
    RETRY_ON = (psycopg.OperationalError, psycopg.errors.FeatureNotSupported)
    # Timeouts; a cancelled statement also leaves the connection usable, so it is kept.
    NOT_RETRIED = (psycopg.errors.ConnectionTimeout, psycopg.errors.QueryCanceled)
    # A dropped connection or a changed plan fails at once; a failure after this long was a wait.
    RETRY_WITHIN_SECONDS = 1.0

    def __init__(self, engine):
        self._engine = engine
        self._local = threading.local()

    def fetch(self, session_id: uuid.UUID, user_id: int) -> tuple[str, bool] | None:
        """(username, is_active) while the login is live; None once revoked, pruned or deleted."""
        started = time.monotonic()
        try:
            return self._execute(session_id, user_id)
        except self.NOT_RETRIED:
            raise
        except self.RETRY_ON:
            self.close()
            if time.monotonic() - started > self.RETRY_WITHIN_SECONDS:
                raise
            return self._execute(session_id, user_id)

    def _execute(self, session_id: uuid.UUID, user_id: int):
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            # Held for good, it still counts against the pool's size. Autocommit never leaks to
            # other users of the pool: the connection is closed, not returned (see close()).
            self._local.pooled = self._engine.raw_connection()
            self._local.pooled.driver_connection.autocommit = True
            cursor = self._local.cursor = self._local.pooled.driver_connection.cursor()
        return cursor.execute(self.SQL, (session_id, user_id)).fetchone()

    def close(self) -> None:
        """Close this thread's connection (the next lookup takes a fresh one from the pool)."""
        pooled = getattr(self._local, "pooled", None)
        self._local.pooled = self._local.cursor = None
        if pooled is not None:
            pooled.invalidate()


def init_app(app: Flask) -> None:
    with app.app_context():
        app.extensions["session_lookup"] = SessionLookup(db.engine)
