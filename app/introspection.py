"""Token introspection (RFC 7662): a resource server, authenticated as a client of the
configuration (JWT_INTROSPECTION_CLIENTS, HTTP Basic), asks whether a token is live.

The answer reads the token's login and user in PostgreSQL, so a logout, a revocation or a
deactivation shows at once. Every reason a token cannot be used gives the same `{"active": false}`,
which tells the caller nothing about why.
"""

import base64
import binascii
import functools
import hmac
from urllib.parse import unquote_plus

from flask import request
from sqlalchemy import select

from . import tokens
from .config import settings
from .errors import ApiError
from .extensions import db
from .models import LoginSession, User

CHALLENGE = 'Basic realm="flask-jwt-api introspection", charset="UTF-8"'
CHALLENGE_HEADERS = {
    "WWW-Authenticate": {
        "description": "RFC 7617: the Basic challenge of the introspection clients",
        "required": True,
        "schema": {"type": "string", "enum": [CHALLENGE]},
    }
}
INACTIVE = {"active": False}


class ClientUnauthorized(ApiError):
    """401 with a Basic challenge (RFC 7662 2.1, RFC 7617): the client is not one we know."""

    status = 401

    def __init__(self, msg: str):
        super().__init__(msg, {"WWW-Authenticate": CHALLENGE})


def authenticate_client() -> str:
    """The id of the configured client the request's Basic credentials belong to, or a 401."""
    clients = settings().introspection_clients
    if not clients:
        raise ClientUnauthorized("Token introspection is off: JWT_INTROSPECTION_CLIENTS is not set")
    given = _basic_credentials()
    if given is None:
        raise ClientUnauthorized("Client authentication required (HTTP Basic)")
    client_id = _matching_client(*given, clients)
    if client_id is None:
        raise ClientUnauthorized("Invalid client credentials")
    return client_id


def client_required(view):
    """Authenticate the client before the view, and before its body is read."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        authenticate_client()
        return view(*args, **kwargs)

    return wrapper


def _basic_credentials() -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None
    # RFC 6749 2.3.1: the id and the secret are each form-urlencoded before they are joined.
    return unquote_plus(client_id), unquote_plus(secret)


def _matching_client(client_id: str, secret: str, clients) -> str | None:
    """Every client's id and secret are compared in full and in constant time, so the time taken
    says neither which client was meant nor how much of a secret was right."""
    found = None
    for known_id, known_secret in clients:
        same_id = hmac.compare_digest(known_id.encode(), client_id.encode())
        same_secret = hmac.compare_digest(known_secret.encode(), secret.encode())
        if same_id and same_secret:
            found = known_id
    return found


def introspect(token: str) -> dict:
    """RFC 7662 2.2: the token's claims while it can be used, else `{"active": false}`.

    Usable means: it verifies with this deployment's keyring and algorithm, has not expired, its
    login is not revoked (nor pruned), its user exists and is active, and a refresh token is the
    login's current one (not one already exchanged).
    """
    try:
        claims = tokens.codec().decode(token, None)
    except tokens.InvalidToken:
        return INACTIVE
    row = db.session.execute(
        select(User.username, User.is_active, LoginSession.refresh_jti)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(
            LoginSession.id == claims.session_id,
            LoginSession.user_id == claims.user_id,
            LoginSession.revoked_at.is_(None),
        )
    ).first()
    if row is None or not row.is_active:
        return INACTIVE
    if claims.kind == tokens.REFRESH and row.refresh_jti != claims.jti:
        return INACTIVE
    return {
        "active": True,
        "sub": str(claims.user_id),
        "username": row.username,
        "sid": str(claims.session_id),
        "jti": claims.jti,
        "token_type": claims.kind,
        "exp": int(claims.expires_at),
        "iat": claims.issued_at,
    }
