"""Accounts: the username rule, registration, logging in, changing the password, (de)activation
and wrapping the demo's legacy hashes. Follows the transaction rule of sessions.py.

A user's row is locked (SELECT ... FOR UPDATE) whenever a password is checked for a change or a
login writes, so a password change and a login, or two changes, never interleave: a change is
checked against the hash it replaces, a login made with the old password is refused once the new
one is in, and a rehash never overwrites a hash other than the one it verified.
"""

import re

from flask import current_app, request
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from . import clock, sessions, throttle
from .config import settings
from .errors import Conflict, Forbidden, TooManyRequests, Unauthorized
from .extensions import db
from .logs import audit
from .models import User
from .passwords import LEGACY_PREFIXES, Passwords, same_hash

USERNAME_RULE = "3 to 64 characters: ASCII letters, digits, '.', '_' or '-'"
USERNAME_REGEX = r"^[A-Za-z0-9._-]{3,64}$"
_USERNAME = re.compile(r"[A-Za-z0-9._-]{3,64}")
INVALID_CREDENTIALS = "Invalid username or password"


def canonical_username(name: str) -> str | None:
    """The one canonical form of a username (ASCII lower case), or None when `name` breaks the rule.

    Register, login, throttle keys and the operator commands all go through this, so no spelling
    outside the rule (a Kelvin sign, a dotless i, full-width letters) can ever reach an account.
    """
    if not isinstance(name, str) or not _USERNAME.fullmatch(name):
        return None
    return name.lower()  # ASCII only, so lower() is exactly A-Z -> a-z


def passwords() -> Passwords:
    return current_app.extensions["passwords"]


def _find(canonical: str) -> User | None:
    return db.session.execute(select(User).where(User.named(canonical))).scalar_one_or_none()


def get(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def _locked(user_id: int) -> User | None:
    return db.session.execute(
        select(User).where(User.id == user_id).with_for_update()
    ).scalar_one_or_none()


def register(username: str, password: str) -> None:
    """Create an account (Conflict when the name is taken). Commits."""
    canonical = canonical_username(username)
    if settings().register_address_limit:
        throttle.reserve(throttle.register_keys(request.remote_addr))
    if canonical is not None and _find(canonical) is None:
        db.session.add(User(username=username, password_hash=passwords().hash(password)))
        try:
            db.session.commit()
        except IntegrityError:  # the same name registered concurrently
            db.session.rollback()
        else:
            audit("register", username=username)
            return
    raise Conflict("User already exists")


def _refuse_login(username: str, reason: str):
    audit("login_failure", username=username, reason=reason)
    return Unauthorized(INVALID_CREDENTIALS, token_presented=False)


def login(username: str, password: str) -> dict:
    """Check the password and start a login; returns its token pair. Commits.

    The attempt is reserved in the throttle before the password is checked and given back on
    success. The user's row is locked only after the check, for the writes.
    """
    canonical = canonical_username(username)
    if canonical is None:  # the schema refuses these first; kept so no path can skip the rule
        raise _refuse_login(username, "unknown_user")
    keys = throttle.login_keys(canonical, request.remote_addr)
    _reserve_or_audit(keys, username)
    user = _find(canonical)
    verified_hash = user.password_hash if user else None
    db.session.rollback()  # no transaction stays open over the check
    # verify() spends the same time when there is no such user.
    if not passwords().verify(verified_hash, password):
        raise _refuse_login(username, "unknown_user" if user is None else "bad_password")
    user = _locked(user.id)
    if user is None or not same_hash(user.password_hash, verified_hash):
        # Deleted, or its password changed while this login was checking the old one.
        db.session.rollback()
        raise _refuse_login(username, "password_changed")
    if not user.is_active:
        db.session.rollback()
        raise _refuse_login(username, "inactive")
    if passwords().needs_rehash(user.password_hash):
        user.password_hash = passwords().hash(password)
    throttle.succeeded(keys)
    pair = sessions.start(user.id)
    db.session.commit()
    audit("login_success", username=user.username, user_id=user.id)
    return pair


def _reserve_or_audit(keys, username: str) -> None:
    try:
        throttle.reserve(keys)
    except TooManyRequests as refused:
        audit("throttled", username=username, path=request.path, retry_after=refused.retry_after)
        raise


def change_password(principal, current_password: str, new_password: str) -> int:
    """Replace the password when `current_password` is right; every other login of the user is
    revoked, the principal's own is kept. Returns how many were revoked. Commits."""
    canonical = canonical_username(principal.username) or principal.username.lower()
    keys = throttle.login_keys(canonical, request.remote_addr)
    _reserve_or_audit(keys, principal.username)
    user = _locked(principal.user_id)
    if user is None:
        db.session.rollback()
        raise Unauthorized("Token has been revoked")
    # Checked under the lock: a concurrent change is either already in (this one is checked
    # against the new hash) or waits for this one.
    if not passwords().verify(user.password_hash, current_password):
        db.session.commit()
        audit("password_change_failure", username=user.username, user_id=user.id)
        raise Forbidden("Current password is incorrect")
    if not sessions.is_live(principal.session_id):  # revoked while this request was in flight
        db.session.rollback()
        raise Unauthorized("Token has been revoked")
    user.password_hash = passwords().hash(new_password)
    user.password_changed_at = clock.now()
    revoked = sessions.revoke_all(user.id, "password_change", keep=principal.session_id)
    sessions.end_grace(user.id)
    throttle.succeeded(keys)
    db.session.commit()
    audit("password_changed", username=user.username, user_id=user.id, revoked=revoked)
    return revoked


def set_active(username: str, active: bool) -> bool:
    """Allow or refuse a user (and every token already issued to them); False if no such user.
    Commits."""
    canonical = canonical_username(username)
    if canonical is None:
        return False
    user_id = db.session.execute(
        update(User).where(User.named(canonical)).values(is_active=active).returning(User.id)
    ).scalar_one_or_none()
    if user_id is not None and not active:
        sessions.end_grace(user_id)
    db.session.commit()
    return user_id is not None


def wrap_legacy_hashes(batch: int = 100) -> int:
    """Wrap every demo-era Werkzeug hash in argon2id, in place; returns how many. Commits each
    batch; a row is rewritten only if it still holds the hash that was wrapped. A corrupt legacy
    hash can never verify and is left as it is."""
    wrapped, after = 0, 0
    legacy = User.password_hash.startswith(LEGACY_PREFIXES[0]) | User.password_hash.startswith(
        LEGACY_PREFIXES[1]
    )
    while True:
        rows = db.session.execute(
            select(User.id, User.password_hash)
            .where(legacy, User.id > after)
            .order_by(User.id)
            .limit(batch)
        ).all()
        db.session.rollback()
        if not rows:
            return wrapped
        for user_id, old_hash in rows:
            try:
                new_hash = passwords().wrap(old_hash)
            except ValueError:
                continue
            wrapped += db.session.execute(
                update(User)
                .where(User.id == user_id, User.password_hash == old_hash)
                .values(password_hash=new_hash)
            ).rowcount
        db.session.commit()
        after = rows[-1][0]
