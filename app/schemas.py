"""Request and response schemas: they validate input and generate /openapi.json alike."""

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from .errors import MISSING

USERNAME_RULE = "3 to 64 characters: ASCII letters, digits, '.', '_' or '-'"
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{3,64}\Z")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
# Logins accept longer passwords than registration does, so an account created before the
# length rule (by the original demo) can still log in and be re-hashed.
LOGIN_PASSWORD_MAX = 1024
_UNSAFE_TEXT = re.compile(r"[\x00\ud800-\udfff]")


def _plain_text(value: str) -> None:
    # NUL cannot be stored by PostgreSQL, and a lone surrogate cannot be encoded as UTF-8.
    if _UNSAFE_TEXT.search(value):
        raise ValidationError("Must not contain NUL characters or unpaired surrogates.")


def _required_text(*validators, **metadata) -> fields.String:
    """A required string whose absence, null or emptiness counts as "missing"."""
    return fields.String(
        required=True,
        validate=[validate.Length(min=1, error=MISSING), _plain_text, *validators],
        error_messages={"required": MISSING, "null": MISSING},
        metadata=metadata,
    )


class RequestSchema(Schema):
    class Meta:
        # The demo's clients may send extra fields; they are ignored, not refused.
        unknown = EXCLUDE


class RegisterSchema(RequestSchema):
    missing_message = "Missing username or password"
    username = _required_text(
        validate.Regexp(USERNAME_PATTERN, error=f"Usernames are {USERNAME_RULE}."),
        description=f"{USERNAME_RULE}; compared case-insensitively",
        example="testuser",
    )
    password = _required_text(
        validate.Length(max=PASSWORD_MAX, min=PASSWORD_MIN),
        description=f"{PASSWORD_MIN} to {PASSWORD_MAX} characters, no composition rules",
        example="testpass",
    )


class LoginSchema(RequestSchema):
    missing_message = "Missing username or password"
    username = _required_text(validate.Length(max=64), example="testuser")
    password = _required_text(validate.Length(max=LOGIN_PASSWORD_MAX), example="testpass")


class PasswordChangeSchema(RequestSchema):
    missing_message = "Missing current_password or new_password"
    current_password = _required_text(validate.Length(max=LOGIN_PASSWORD_MAX))
    new_password = _required_text(
        validate.Length(max=PASSWORD_MAX, min=PASSWORD_MIN),
        description=f"{PASSWORD_MIN} to {PASSWORD_MAX} characters, no composition rules",
    )


class MessageSchema(Schema):
    msg = fields.String(required=True)


class ValidationErrorSchema(MessageSchema):
    errors = fields.Dict(metadata={"description": "Messages per field"})


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


class MeSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class RevokedCountSchema(MessageSchema):
    revoked = fields.Integer(required=True, metadata={"description": "Logins revoked"})


class StatusSchema(Schema):
    status = fields.String(required=True)
