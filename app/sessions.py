"""Login sessions: start, rotate, revoke and prune. Every login is a row in login_sessions and
every token carries its id (`sid`), so revoking the row revokes every token of that login at once,
on every worker.

The transaction rule, here and in accounts.py: a public function that changes something either
commits its whole change before it returns, or says "the caller commits" and is only called
inside a function that does. Times come from clock.now().
"""

import uuid
from datetime import timedelta

from sqlalchemy import delete, select, update

from . import clock, throttle, tokens
from .config import settings
from .errors import Unauthorized
from .extensions import db
from .logs import audit
from .models import LoginSession

# Each login keeps at most SESSIONS_PER_USER live sessions; the oldest are revoked with this reason.
LIMIT_REASON = "session_limit"


class RefreshReuse(Unauthorized):
    """A refresh token that was already rotated was presented again: the login is revoked."""


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
    refresh_jti = uuid.uuid4().hex
    session = LoginSession(
        id=uuid.uuid4(),
        user_id=user_id,
        refresh_jti=refresh_jti,
        created_at=now,
        expires_at=now + timedelta(seconds=settings().refresh_token_seconds),
    )
    db.session.add(session)
    return tokens.issue_pair(user_id, session.id, refresh_jti)


def rotate(claims: tokens.Claims, username: str) -> dict:
    """Exchange a refresh token for a new pair; the presented one stops working. Commits.

    Presenting a refresh token that was already exchanged means two parties hold it, so the
    whole login is revoked and RefreshReuse is raised.
    """
    session = db.session.execute(
        select(LoginSession).where(LoginSession.id == claims.session_id).with_for_update()
    ).scalar_one_or_none()
    if session is None or session.revoked_at is not None:
        db.session.rollback()
        raise tokens.InvalidToken("Token has been revoked")
    if session.refresh_jti != claims.jti:
        session.revoked_at = clock.now()
        session.revoked_reason = "refresh_reuse"
        db.session.commit()
        audit("refresh_reuse_detected", username=username, user_id=session.user_id)
        raise RefreshReuse("Refresh token was already used; this login has been revoked")
    session.refresh_jti = uuid.uuid4().hex
    session.expires_at = clock.now() + timedelta(seconds=settings().refresh_token_seconds)
    pair = tokens.issue_pair(session.user_id, session.id, session.refresh_jti)
    db.session.commit()
    return pair


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
