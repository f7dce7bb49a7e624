"""Login sessions: start, rotate, revoke and prune. Every login is a row in login_sessions and
every token carries its id (`sid`), so revoking the row revokes every token of that login at once,
on every worker.

The transaction rule, here and in accounts.py: a public function that changes something either
commits its whole change before it returns, or says "the caller commits" and is only called
inside a function that does. Times come from clock.now().
"""

import uuid
from datetime import datetime, timedelta

from flask import has_request_context, request
from sqlalchemy import delete, func, select, update

from . import clock, throttle, tokens
from .config import settings
from .errors import NotFound, Unauthorized
from .extensions import db
from .logs import audit
from .models import ADDRESS_MAX, USER_AGENT_MAX, LoginSession

# Each login keeps at most SESSIONS_PER_USER live sessions; the oldest are revoked with this reason.
LIMIT_REASON = "session_limit"


class RefreshReuse(Unauthorized):
    """A refresh token that was already rotated was presented again: the login is revoked."""


def _client() -> dict:
    """The client's address and user agent, cut to their columns' lengths and stripped of control
    characters (PostgreSQL cannot store NUL; none belongs in a user agent). None outside a request
    (a login started by a test or an operator command has no client)."""
    if not has_request_context():
        return {"client_address": None, "user_agent": None}
    agent = request.headers.get("User-Agent", "")
    agent = "".join(char for char in agent if char.isprintable())[:USER_AGENT_MAX]
    return {
        "client_address": (request.remote_addr or "")[:ADDRESS_MAX] or None,
        "user_agent": agent or None,
    }


def _ends_at(session: LoginSession, now: datetime) -> datetime:
    """The end of the refresh token issued now: the sliding lifetime, capped by the absolute one."""
    config = settings()
    return min(
        now + timedelta(seconds=config.refresh_token_seconds),
        session.created_at + timedelta(seconds=config.session_max_age),
    )


def _pair(session: LoginSession) -> dict:
    return tokens.issue_pair(
        session.user_id, session.id, session.refresh_jti, session.expires_at.timestamp()
    )


def start(user_id: int) -> dict:
    """Record a new login for `user_id` and return its token pair. The caller commits, holding the
    user's row lock (accounts.py), so that the session limit is counted exactly."""
    now = clock.now()
    limit = settings().sessions_per_user
    oldest_beyond_limit = (
        select(LoginSession.id)
        .where(
            LoginSession.user_id == user_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > now,
        )
        .order_by(LoginSession.created_at.desc(), LoginSession.id)
        .offset(limit - 1)
    )
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.id.in_(oldest_beyond_limit))
        .values(revoked_at=now, revoked_reason=LIMIT_REASON)
    )
    session = LoginSession(
        id=uuid.uuid4(),
        user_id=user_id,
        refresh_jti=uuid.uuid4().hex,
        generation=0,
        created_at=now,
        **_client(),
    )
    session.expires_at = _ends_at(session, now)
    db.session.add(session)
    return _pair(session)


def rotate(claims: tokens.Claims, username: str) -> dict:
    """Exchange a refresh token for a new pair. Commits.

    Under the login's row lock, the presented token is one of three:
    - the current one: it is rotated, once; its successor becomes the current one;
    - the one rotated last, presented again within JWT_REFRESH_REUSE_GRACE seconds of that
      rotation (a client whose answer was lost retries): the same successor is issued again,
      nothing rotates, and `refresh_retry` is audited;
    - anything else (an older one, or the last one after the window): two parties hold the
      family, so the whole login is revoked and RefreshReuse is raised.
    A login past JWT_SESSION_MAX_AGE is refused: the user logs in again.
    """
    session = db.session.execute(
        select(LoginSession).where(LoginSession.id == claims.session_id).with_for_update()
    ).scalar_one_or_none()
    if session is None or session.revoked_at is not None:
        db.session.rollback()
        raise tokens.InvalidToken("Token has been revoked")
    now = clock.now()
    if now >= session.created_at + timedelta(seconds=settings().session_max_age):
        db.session.rollback()
        raise tokens.InvalidToken("Login has reached its maximum age; log in again")
    if claims.jti == session.refresh_jti:
        session.previous_refresh_jti = session.refresh_jti
        session.refresh_jti = uuid.uuid4().hex
        session.generation += 1
        session.refreshed_at = now
        session.expires_at = _ends_at(session, now)
        for name, value in _client().items():
            setattr(session, name, value)
        pair = _pair(session)
        db.session.commit()
        return pair
    if claims.jti == session.previous_refresh_jti and _within_grace(session, now):
        pair = _pair(session)
        generation = session.generation
        db.session.commit()
        audit("refresh_retry", username=username, user_id=claims.user_id, generation=generation)
        return pair
    session.revoked_at = now
    session.revoked_reason = "refresh_reuse"
    db.session.commit()
    audit("refresh_reuse_detected", username=username, user_id=session.user_id)
    raise RefreshReuse("Refresh token was already used; this login has been revoked")


def _within_grace(session: LoginSession, now: datetime) -> bool:
    grace = settings().refresh_reuse_grace
    return (
        grace > 0
        and session.refreshed_at is not None
        and now - session.refreshed_at <= timedelta(seconds=grace)
    )


def logout(principal) -> None:
    """Revoke the principal's login (its access and refresh tokens). Commits."""
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.id == principal.session_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=clock.now(), revoked_reason="logout")
    )
    db.session.commit()
    audit("logout", username=principal.username, user_id=principal.user_id)


def logout_all(principal) -> int:
    """Revoke every login of the principal's user; returns how many. Commits."""
    revoked = revoke_all(principal.user_id, "logout_all")
    db.session.commit()
    audit("logout_all", username=principal.username, user_id=principal.user_id, revoked=revoked)
    return revoked


def revoke_all(user_id: int, reason: str, keep: uuid.UUID | None = None) -> int:
    """Revoke every login of a user, except `keep`; returns how many. The caller commits."""
    query = update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    return db.session.execute(query.values(revoked_at=clock.now(), revoked_reason=reason)).rowcount


def end_grace(user_id: int) -> None:
    """Close every refresh grace window of a user's logins (a password change or deactivation): the
    token rotated last is refused from now on, like any older one. The caller commits."""
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.previous_refresh_jti.is_not(None))
        .values(previous_refresh_jti=None)
    )


def live(principal) -> list[dict]:
    """The principal's user's live logins, the most recently used first, marking the current one."""
    rows = db.session.execute(
        select(LoginSession)
        .where(
            LoginSession.user_id == principal.user_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > clock.now(),
        )
        .order_by(
            func.coalesce(LoginSession.refreshed_at, LoginSession.created_at).desc(),
            LoginSession.id,
        )
    ).scalars()
    listed = [
        {
            "id": row.id,
            "created_at": row.created_at,
            "last_refreshed_at": row.refreshed_at,
            "expires_at": row.expires_at,
            "client_address": row.client_address,
            "user_agent": row.user_agent,
            "current": row.id == principal.session_id,
        }
        for row in rows
    ]
    db.session.rollback()
    return listed


def revoke_one(principal, session_id: uuid.UUID) -> None:
    """Revoke one live login of the principal's own user. Commits. Anyone else's login, an unknown
    one and one already revoked are all NotFound, alike, so no one learns that an id exists."""
    revoked = db.session.execute(
        update(LoginSession)
        .where(
            LoginSession.id == session_id,
            LoginSession.user_id == principal.user_id,
            LoginSession.revoked_at.is_(None),
        )
        .values(revoked_at=clock.now(), revoked_reason="session_revoked")
    ).rowcount
    db.session.commit()
    if not revoked:
        raise NotFound("Session not found")
    audit(
        "session_revoked",
        username=principal.username,
        user_id=principal.user_id,
        current=session_id == principal.session_id,
    )


def is_live(session_id: uuid.UUID) -> bool:
    """Whether the login is still unrevoked (read inside the caller's transaction)."""
    return (
        db.session.execute(
            select(LoginSession.id).where(
                LoginSession.id == session_id, LoginSession.revoked_at.is_(None)
            )
        ).first()
        is not None
    )


def prune() -> tuple[int, int]:
    """Delete logins whose refresh token has expired and forgotten throttle counters. Commits.

    A token whose login row is missing is refused, so pruning can never revive a token.
    """
    expired = db.session.execute(
        delete(LoginSession).where(LoginSession.expires_at < clock.now())
    ).rowcount
    counters = throttle.prune()
    db.session.commit()
    return expired, counters
