"""/auth: registration, login, refresh, logout and the account's own endpoints.

Each view is the endpoint's contract: its schemas, its documented answers, and one call into the
account and session rules (accounts.py, sessions.py), which commit and raise the refusals.
"""

from flask import request

from . import accounts, introspection, sessions, tokens
from .api import FORM_OR_JSON, Blueprint
from .authentication import current_claims, current_principal
from .schemas import (
    ErrorSchema,
    IntrospectionRequestSchema,
    IntrospectionSchema,
    LoginSchema,
    MeSchema,
    MessageSchema,
    PasswordChangeSchema,
    RegisterSchema,
    RevokedCountSchema,
    SessionListSchema,
    TokenPairSchema,
)

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts and tokens")

# RFC 6749 5.1: an answer that carries tokens must not be stored by any cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NO_STORE_HEADERS = {
    name: {
        "description": "RFC 6749 5.1: the answer carries tokens and must not be cached",
        "required": True,
        "schema": {"type": "string", "enum": [value]},
    }
    for name, value in NO_STORE.items()
}


@blp.after_request
def _no_store(response):
    if request.endpoint in ("auth.login", "auth.refresh", "auth.introspect"):
        response.headers.update(NO_STORE)
    return response


@blp.route("/register", methods=["POST"])
@blp.arguments(RegisterSchema)
@blp.response(201, MessageSchema)
@blp.errors(400, 409, 413, 415, 422, 429, 503)
def register(body):
    """Create an account. Registrations are throttled per client address."""
    accounts.register(body["username"], body["password"])
    return {"msg": "User registered successfully"}


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema, headers=NO_STORE_HEADERS)
@blp.errors(400, 401, 413, 415, 422, 429, 503)
def login(body):
    """Exchange a username and password for an access token and a refresh token."""
    return accounts.login(body["username"], body["password"])


@blp.route("/refresh", methods=["POST"])
@blp.doc(description="Send the refresh token as the bearer token.")
@blp.response(200, TokenPairSchema, headers=NO_STORE_HEADERS)
@blp.errors(503)
@blp.token_required(tokens.REFRESH)
def refresh():
    """Rotate the refresh token: returns a new pair, and the presented token stops working.

    Presented again within JWT_REFRESH_REUSE_GRACE seconds (a lost answer), it gets a pair for the
    same successor; later, or any older token, revokes the whole login."""
    return sessions.rotate(current_claims(), current_principal().username)


@blp.route("/introspect", methods=["POST"])
@blp.doc(
    security=[{"introspectionClient": []}],
    requestBody={"content": {"application/json": {"schema": IntrospectionRequestSchema}}},
)
@blp.response(200, IntrospectionSchema, headers=NO_STORE_HEADERS)
@blp.alt_response(
    401,
    schema=ErrorSchema,
    description="No client credentials, wrong ones, or no client configured",
    headers=introspection.CHALLENGE_HEADERS,
)
@blp.errors(400, 413, 415, 422, 503)
@introspection.client_required
@blp.arguments(IntrospectionRequestSchema, location=FORM_OR_JSON)
def introspect(body):
    """RFC 7662: whether a token is live, for a client of JWT_INTROSPECTION_CLIENTS (HTTP Basic).
    Reads PostgreSQL, so a logout shows at once; an unusable token answers `{"active": false}`."""
    return introspection.introspect(body["token"])


@blp.route("/logout", methods=["POST"])
@blp.response(200, MessageSchema)
@blp.errors(503)
@blp.token_required()
def logout():
    """Revoke this login: the presented access token and its refresh token."""
    sessions.logout(current_principal())
    return {"msg": "Successfully logged out"}


@blp.route("/logout-all", methods=["POST"])
@blp.response(200, RevokedCountSchema)
@blp.errors(503)
@blp.token_required()
def logout_all():
    """Revoke every login of this user, on every device."""
    revoked = sessions.logout_all(current_principal())
    return {"msg": "Logged out of all sessions", "revoked": revoked}


@blp.route("/me", methods=["GET"])
@blp.response(200, MeSchema)
@blp.errors(503)
@blp.token_required()
def me():
    """The account behind the access token."""
    return accounts.get(current_principal().user_id)


@blp.route("/password", methods=["POST"])
@blp.response(200, RevokedCountSchema)
@blp.errors(400, 403, 413, 415, 422, 429, 503)
@blp.token_required()
@blp.arguments(PasswordChangeSchema)
def change_password(body):
    """Change the password; every other login of this user is revoked, this one is kept."""
    revoked = accounts.change_password(
        current_principal(), body["current_password"], body["new_password"]
    )
    return {"msg": "Password changed", "revoked": revoked}


@blp.route("/sessions", methods=["GET"])
@blp.response(200, SessionListSchema)
@blp.errors(503)
@blp.token_required()
def list_sessions():
    """Where this user is logged in: every live login, the most recently used first."""
    return {"sessions": sessions.live(current_principal())}


@blp.route("/sessions/<uuid:session_id>", methods=["DELETE"])
@blp.response(200, MessageSchema)
@blp.errors(404, 503)
@blp.token_required()
def revoke_session(session_id):
    """Log one of this user's logins out (its access and refresh tokens). Another user's login, an
    unknown one and one already ended all answer 404."""
    sessions.revoke_one(current_principal(), session_id)
    return {"msg": "Session revoked"}
