"""/auth: registration, login, refresh, logout and the account's own endpoints."""

from datetime import UTC, datetime

from flask import current_app, request
from flask_jwt_extended import current_user, get_jwt, jwt_required
from flask_smorest import abort
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import throttle, tokens
from .api import Blueprint
from .config import settings
from .extensions import db
from .logs import audit
from .models import User
from .schemas import (
    LoginSchema,
    MeSchema,
    MessageSchema,
    PasswordChangeSchema,
    RegisterSchema,
    RevokedCountSchema,
    TokenPairSchema,
    ValidationErrorSchema,
)

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts and tokens")

BEARER = [{"bearerAuth": []}]
INVALID_CREDENTIALS = "Invalid username or password"


def _passwords():
    return current_app.extensions["passwords"]


def _find_user(username: str) -> User | None:
    return db.session.execute(select(User).where(User.named(username))).scalar_one_or_none()


def _refuse_if_throttled(keys: list[str], username: str | None) -> None:
    wait = throttle.retry_after(keys)
    if wait is not None:
        audit("throttled", username=username, path=request.path, retry_after=wait)
        abort(
            429,
            message=f"Too many attempts; try again in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )


@blp.route("/register", methods=["POST"])
@blp.arguments(RegisterSchema)
@blp.response(201, MessageSchema)
@blp.alt_response(400, schema=MessageSchema, description="Missing username or password")
@blp.alt_response(409, schema=MessageSchema, description="User already exists")
@blp.alt_response(422, schema=ValidationErrorSchema, description="Invalid username or password")
@blp.alt_response(429, schema=MessageSchema, description="Too many registrations (if enabled)")
def register(body):
    """Create an account."""
    limit = settings().register_address_limit
    if limit:
        key = throttle.register_key(request.remote_addr)
        _refuse_if_throttled([key], None)
        throttle.record(key, limit)
        db.session.commit()
    username = body["username"]
    if _find_user(username) is None:
        db.session.add(User(username=username, password_hash=_passwords().hash(body["password"])))
        try:
            db.session.commit()
        except IntegrityError:  # the same name registered concurrently
            db.session.rollback()
        else:
            audit("register", username=username)
            return {"msg": "User registered successfully"}
    abort(409, message="User already exists")


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
@blp.alt_response(400, schema=MessageSchema, description="Missing username or password")
@blp.alt_response(401, schema=MessageSchema, description="Invalid username or password")
@blp.alt_response(429, schema=MessageSchema, description="Too many failed logins")
def login(body):
    """Exchange a username and password for an access token and a refresh token."""
    config = settings()
    username, password = body["username"], body["password"]
    account = throttle.account_key(username)
    address = throttle.address_key(request.remote_addr)
    _refuse_if_throttled([account, address], username)

    user = _find_user(username)
    # verify() spends the same time when there is no such user.
    valid = _passwords().verify(user.password_hash if user else None, password)
    if not (valid and user.is_active):
        throttle.record(account, config.throttle_account_failures)
        throttle.record(address, config.throttle_ip_failures)
        db.session.commit()
        reason = "unknown_user" if user is None else "bad_password" if not valid else "inactive"
        audit("login_failure", username=username, reason=reason)
        abort(401, message=INVALID_CREDENTIALS)

    if _passwords().needs_rehash(user.password_hash):
        user.password_hash = _passwords().hash(password)
    throttle.clear(account)
    pair = tokens.start_session(user)
    db.session.commit()
    audit("login_success", username=user.username, user_id=user.id)
    return pair


@blp.route("/refresh", methods=["POST"])
@blp.doc(security=BEARER, description="Send the refresh token as the bearer token.")
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, schema=MessageSchema, description="Refresh token invalid, reused or revoked")
@jwt_required(refresh=True)
def refresh():
    """Rotate the refresh token: returns a new pair, and the presented token stops working."""
    try:
        return tokens.rotate_refresh(get_jwt())
    except tokens.RefreshReuseError:
        audit("refresh_reuse_detected", username=current_user.username, user_id=current_user.id)
        abort(401, message="Refresh token was already used; this login has been revoked")
    except tokens.SessionRevokedError:
        abort(401, message="Token has been revoked")


@blp.route("/logout", methods=["POST"])
@blp.doc(security=BEARER)
@blp.response(200, MessageSchema)
@jwt_required()
def logout():
    """Revoke this login: the presented access token and its refresh token."""
    tokens.revoke_session(current_user.session_id, "logout")
    db.session.commit()
    audit("logout", username=current_user.username, user_id=current_user.id)
    return {"msg": "Successfully logged out"}


@blp.route("/logout-all", methods=["POST"])
@blp.doc(security=BEARER)
@blp.response(200, RevokedCountSchema)
@jwt_required()
def logout_all():
    """Revoke every login of this user, on every device."""
    revoked = tokens.revoke_user_sessions(current_user.id, "logout_all")
    db.session.commit()
    audit("logout_all", username=current_user.username, user_id=current_user.id, revoked=revoked)
    return {"msg": "Logged out of all sessions", "revoked": revoked}


@blp.route("/me", methods=["GET"])
@blp.doc(security=BEARER)
@blp.response(200, MeSchema)
@jwt_required()
def me():
    """The account behind the access token."""
    return db.session.get(User, current_user.id)


@blp.route("/password", methods=["POST"])
@blp.doc(security=BEARER)
@blp.response(200, RevokedCountSchema)
@blp.alt_response(400, schema=MessageSchema, description="Missing current_password or new_password")
@blp.alt_response(403, schema=MessageSchema, description="Current password is incorrect")
@blp.alt_response(429, schema=MessageSchema, description="Too many failed attempts")
@jwt_required()
@blp.arguments(PasswordChangeSchema)
def change_password(body):
    """Change the password; every other login of this user is revoked, this one is kept."""
    config = settings()
    account = throttle.account_key(current_user.username)
    _refuse_if_throttled([account], current_user.username)
    user = db.session.get(User, current_user.id)
    if not _passwords().verify(user.password_hash, body["current_password"]):
        throttle.record(account, config.throttle_account_failures)
        db.session.commit()
        audit("password_change_failure", username=user.username, user_id=user.id)
        abort(403, message="Current password is incorrect")
    user.password_hash = _passwords().hash(body["new_password"])
    user.password_changed_at = datetime.now(UTC)
    revoked = tokens.revoke_user_sessions(user.id, "password_change", keep=current_user.session_id)
    throttle.clear(account)
    db.session.commit()
    audit("password_changed", username=user.username, user_id=user.id, revoked=revoked)
    return {"msg": "Password changed", "revoked": revoked}
