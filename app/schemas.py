"""Request and response schemas: they validate input and generate /openapi.json alike, so every
rule a request must follow is in the document."""

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from .accounts import USERNAME_REGEX, USERNAME_RULE, canonical_username
from .errors import MISSING
from .passwords import normalize

PASSWORD_MIN, PASSWORD_MAX = 8, 128
# Logins accept longer passwords than registration does, so an account created before the
# length rule (by the original demo) can still log in and be re-hashed.
LOGIN_PASSWORD_MAX = 1024
# No NUL (PostgreSQL cannot store it) and no lone surrogate (not encodable as UTF-8).
PLAIN_TEXT_REGEX = "^[^\\u0000\\ud800-\\udfff]*$"
PLAIN_TEXT_RULE = "no NUL characters or unpaired surrogates"
# JSON Schema's minLength/maxLength count code points before normalisation, so a length counted
# after it is stated in the field's description only.
LENGTH_RULE = "counted after Unicode NFKC normalisation"
MISSING_RULE = "absent, null or empty counts as missing (400)"


def _plain_text(value: str) -> None:
    if "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value):
        raise ValidationError(f"Must contain {PLAIN_TEXT_RULE}.")


def _username(value: str) -> None:
    if canonical_username(value) is None:
        raise ValidationError(f"Usernames are {USERNAME_RULE}.")


def _normalized_length(minimum: int, maximum: int):
    def check(value: str) -> None:
        length = len(normalize(value))
        if not minimum <= length <= maximum:
            raise ValidationError(
                f"Length must be between {minimum} and {maximum} characters ({LENGTH_RULE})."
            )

    return check


def _required_text(*validators, description: str, **metadata) -> fields.String:
    """A required string whose absence, null or emptiness counts as "missing"."""
    return fields.String(
        required=True,
        validate=[validate.Length(min=1, error=MISSING), _plain_text, *validators],
        error_messages={"required": MISSING, "null": MISSING},
        metadata={
            "pattern": PLAIN_TEXT_REGEX,
            "description": f"{description}; {MISSING_RULE}",
            **metadata,
        },
    )


def _username_field() -> fields.String:
    return _required_text(
        _username,
        description=f"{USERNAME_RULE}; compared case-insensitively (ASCII letters only)",
        pattern=USERNAME_REGEX,
        minLength=3,
        maxLength=64,
        example="testuser",
    )


def _new_password_field() -> fields.String:
    return _required_text(
        _normalized_length(PASSWORD_MIN, PASSWORD_MAX),
        description=(
            f"{PASSWORD_MIN} to {PASSWORD_MAX} characters {LENGTH_RULE}, {PLAIN_TEXT_RULE}, "
            "no composition rules"
        ),
        example="testpass",
    )


def _current_password_field() -> fields.String:
    return _required_text(
        _normalized_length(1, LOGIN_PASSWORD_MAX),
        description=f"at most {LOGIN_PASSWORD_MAX} characters {LENGTH_RULE}, {PLAIN_TEXT_RULE}",
        example="testpass",
    )


class RequestSchema(Schema):
    class Meta:
        # The demo's clients may send extra fields; they are ignored, not refused.
        unknown = EXCLUDE


class RegisterSchema(RequestSchema):
    missing_message = "Missing username or password"
    username = _username_field()
    password = _new_password_field()


class LoginSchema(RequestSchema):
    missing_message = "Missing username or password"
    username = _username_field()
    password = _current_password_field()


class PasswordChangeSchema(RequestSchema):
    missing_message = "Missing current_password or new_password"
    current_password = _current_password_field()
    new_password = _new_password_field()


class ErrorSchema(Schema):
    """Every error but a validation error: one sentence."""

    msg = fields.String(required=True)


class ValidationErrorSchema(ErrorSchema):
    """A validation error (422): the sentence, and the messages of each field that broke a rule."""

    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        required=True,
        metadata={"description": "The messages of each field that broke its rule"},
    )


class MessageSchema(Schema):
    msg = fields.String(required=True)


class DashboardSchema(Schema):
    message = fields.String(required=True)


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Seconds until the access token expires"}
    )
    refresh_expires_in = fields.Integer(
        required=True, metadata={"description": "Seconds until the refresh token expires"}
    )


class SessionSchema(Schema):
    id = fields.UUID(required=True, metadata={"description": "The login's id (the tokens' `sid`)"})
    created_at = fields.DateTime(required=True, metadata={"description": "When the user logged in"})
    last_refreshed_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "The last refresh of its tokens; null if never refreshed"},
    )
    expires_at = fields.DateTime(
        required=True,
        metadata={
            "description": "When its refresh token expires unless refreshed (never later than "
            "JWT_SESSION_MAX_AGE after the login)"
        },
    )
    client_address = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The client's address at the latest login or refresh"},
    )
    user_agent = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The client's User-Agent then, at most 256 characters"},
    )
    current = fields.Boolean(
        required=True, metadata={"description": "Whether the presented access token belongs to it"}
    )


class SessionListSchema(Schema):
    sessions = fields.List(fields.Nested(SessionSchema), required=True)


class MeSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class RevokedCountSchema(MessageSchema):
    revoked = fields.Integer(required=True, metadata={"description": "Logins revoked"})


class StatusSchema(Schema):
    status = fields.String(required=True)


class IntrospectionRequestSchema(RequestSchema):
    """RFC 7662 2.1, as a form (or a JSON object)."""

    missing_message = "Missing token"
    token = fields.String(
        required=True,
        validate=validate.Length(min=1, error=MISSING),
        error_messages={"required": MISSING, "null": MISSING},
        metadata={"description": f"An access or a refresh token; {MISSING_RULE}"},
    )
    token_type_hint = fields.String(
        metadata={
            "description": "`access_token` or `refresh_token`; optional and ignored, since every "
            "token carries its kind",
            "example": "access_token",
        }
    )


class IntrospectionSchema(Schema):
    """RFC 7662 2.2: `active` alone when the token cannot be used, else its claims."""

    active = fields.Boolean(required=True)
    sub = fields.String(metadata={"description": "The user's id", "example": "1"})
    username = fields.String()
    sid = fields.String(metadata={"description": "The login's id (a UUID)"})
    jti = fields.String()
    token_type = fields.String(
        metadata={"description": "The token's kind", "enum": ["access", "refresh"]}
    )
    exp = fields.Integer(metadata={"description": "Expiry, seconds since the epoch"})
    iat = fields.Integer(metadata={"description": "Issue time, seconds since the epoch"})


class JwkSchema(Schema):
    """An Ed25519 public key (RFC 8037)."""

    kty = fields.String(required=True, metadata={"enum": ["OKP"]})
    crv = fields.String(required=True, metadata={"enum": ["Ed25519"]})
    x = fields.String(required=True, metadata={"description": "The public key, base64url"})
    kid = fields.String(
        required=True, metadata={"description": "Its RFC 7638 thumbprint, the tokens' `kid`"}
    )
    alg = fields.String(required=True, metadata={"enum": ["EdDSA"]})
    use = fields.String(required=True, metadata={"enum": ["sig"]})


class JwksSchema(Schema):
    keys = fields.List(
        fields.Nested(JwkSchema),
        required=True,
        metadata={"description": "The signing key first, then the older ones; empty with HS256"},
    )
