"""Tokens: issuing, checking on every request, refresh rotation with reuse detection, revocation.

Every login is a row in login_sessions and every token carries its id (`sid`). A protected request
costs one indexed query that reads the session and its user together, so revocation, deactivation
and deletion take effect on every worker as soon as they are committed.
"""

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from flask import Flask, current_app, g, jsonify
from flask_jwt_extended import create_access_token, create_refresh_token
from flask_jwt_extended.exceptions import WrongTokenError
from jwt import InvalidSignatureError
from sqlalchemy import delete, or_, select, update

from .config import settings
from .extensions import db, jwt
from .models import LoginSession, LoginThrottle, User


class RefreshReuseError(Exception):
    """A refresh token that was already rotated was presented again."""


class SessionRevokedError(Exception):
    """The login this token belongs to has been revoked or no longer exists."""


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    session_id: uuid.UUID


def _now() -> datetime:
    return datetime.now(UTC)


def _new_jti() -> str:
    return uuid.uuid4().hex


def _token_pair(user_id: int, session_id: uuid.UUID, refresh_jti: str) -> dict:
    config = settings()
    identity = str(user_id)
    claims = {"sid": str(session_id)}
    return {
        "access_token": create_access_token(identity, additional_claims=claims),
        "refresh_token": create_refresh_token(
            identity, additional_claims={**claims, "jti": refresh_jti}
        ),
        "token_type": "Bearer",
        "expires_in": config.access_token_seconds,
        "refresh_expires_in": config.refresh_token_seconds,
    }


def start_session(user: User) -> dict:
    """Record a new login for `user` and return its token pair. The caller commits."""
    refresh_jti = _new_jti()
    session = LoginSession(
        id=uuid.uuid4(),
        user_id=user.id,
        refresh_jti=refresh_jti,
        expires_at=_now() + timedelta(seconds=settings().refresh_token_seconds),
    )
    db.session.add(session)
    return _token_pair(user.id, session.id, refresh_jti)


def rotate_refresh(claims: dict) -> dict:
    """Exchange a refresh token for a new pair; the presented one stops working.

    Presenting a refresh token that was already exchanged means two parties hold it, so the
    whole login is revoked and RefreshReuseError is raised. Commits either way.
    """
    session = db.session.execute(
        select(LoginSession).where(LoginSession.id == uuid.UUID(claims["sid"])).with_for_update()
    ).scalar_one_or_none()
    if session is None or session.revoked_at is not None:
        db.session.rollback()
        raise SessionRevokedError
    if session.refresh_jti != claims["jti"]:
        session.revoked_at = _now()
        session.revoked_reason = "refresh_reuse"
        db.session.commit()
        raise RefreshReuseError
    session.refresh_jti = _new_jti()
    session.expires_at = _now() + timedelta(seconds=settings().refresh_token_seconds)
    pair = _token_pair(session.user_id, session.id, session.refresh_jti)
    db.session.commit()
    return pair


def revoke_session(session_id: uuid.UUID, reason: str) -> None:
    """Revoke one login (its access and refresh tokens). The caller commits."""
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.id == session_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=_now(), revoked_reason=reason)
    )


def revoke_user_sessions(user_id: int, reason: str, keep: uuid.UUID | None = None) -> int:
    """Revoke every login of a user, except `keep`; returns how many. The caller commits."""
    query = update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    return db.session.execute(query.values(revoked_at=_now(), revoked_reason=reason)).rowcount


def prune_expired() -> tuple[int, int]:
    """Delete logins whose refresh token has expired and stale throttle counters.

    A token whose login row is missing is refused, so pruning can never revive a token.
    """
    now = _now()
    sessions = db.session.execute(
        delete(LoginSession).where(LoginSession.expires_at < now)
    ).rowcount
    stale = now - timedelta(seconds=settings().throttle_window)
    counters = db.session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < stale,
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now),
        )
    ).rowcount
    db.session.commit()
    return sessions, counters


class SessionLookup:
    """The one query of a protected request: is the token's login live, and who is its user.

    It is the hot path, so it skips the ORM session: each thread keeps one connection taken from
    the engine's pool (pre-pinged when taken), in autocommit so there is no BEGIN or ROLLBACK, and
    psycopg prepares the statement on the server after its first uses. A connection the server
    dropped (a restart) is replaced and the read retried once; if that fails too, the error
    reaches the 503 handler.
    """

    SQL = (
        "SELECT u.username, u.is_active"
        " FROM login_sessions AS s JOIN users AS u ON u.id = s.user_id"
        " WHERE s.id = %s AND s.user_id = %s AND s.revoked_at IS NULL"
    )

    def __init__(self, engine):
        self._engine = engine
        self._local = threading.local()

    def fetch(self, session_id: uuid.UUID, user_id: int) -> tuple[str, bool] | None:
        """(username, is_active) while the login is live; None once revoked, pruned or deleted."""
        try:
            return self._execute(session_id, user_id)
        except psycopg.OperationalError:
            self.close()
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


def _live_login(jwt_payload: dict) -> tuple[CurrentUser, bool] | None:
    """The token's user and whether they are active, or None when its login is not live."""
    try:
        session_id = uuid.UUID(str(jwt_payload["sid"]))
        user_id = int(jwt_payload["sub"])
    except (KeyError, ValueError, TypeError):
        return None
    row = current_app.extensions["session_lookup"].fetch(session_id, user_id)
    if row is None:
        return None
    username, is_active = row
    return CurrentUser(id=user_id, username=username, session_id=session_id), is_active


# Flask-JWT-Extended's callbacks read the keyring from the current app, so several apps (as in the
# tests) can share the one JWTManager.


@jwt.encode_key_loader
def _encode_key(_identity):
    return settings().signing_keys[0].secret


@jwt.additional_headers_loader
def _headers(_identity):
    return {"kid": settings().signing_keys[0].kid}


@jwt.decode_key_loader
def _decode_key(jwt_header, _payload):
    kid = jwt_header.get("kid")
    for key in settings().signing_keys:
        if key.kid == kid:
            return key.secret
    raise InvalidSignatureError("Signature verification failed")


@jwt.token_in_blocklist_loader
def _is_revoked(_header, jwt_payload):
    g.live_login = _live_login(jwt_payload)
    return g.live_login is None


@jwt.user_lookup_loader
def _load_user(_header, _payload):
    user, is_active = g.live_login
    return user if is_active else None


@jwt.user_lookup_error_loader
def _user_gone(_header, _payload):
    return jsonify(msg="User not found or deactivated"), 401


@jwt.invalid_token_loader
def _malformed(reason):
    return jsonify(msg=reason), 422


def init_app(app: Flask) -> None:
    with app.app_context():
        app.extensions["session_lookup"] = SessionLookup(db.engine)

    # A bad signature or the wrong kind of token is an authentication failure, not a malformed
    # request, so these answer 401 rather than the library's 422.
    @app.errorhandler(InvalidSignatureError)
    def _bad_signature(_error):
        return jsonify(msg="Signature verification failed"), 401

    @app.errorhandler(WrongTokenError)
    def _wrong_type(error):
        return jsonify(msg=str(error)), 401
