"""Tokens: the only module that touches PyJWT. It signs with the keyring's newest key, verifies
by `kid`, checks every claim's type, and keeps a per-worker cache of verified tokens.

A deployment uses one algorithm, the keyring's family (config.py): HS256 with shared secrets, or
EdDSA with Ed25519 keys, whose public halves `jwks()` publishes. A token whose header names another
algorithm is refused before any key is looked at, so a public key can never serve as an HMAC
secret, and PyJWT is only ever given that one algorithm.

Every reason a token cannot be used (bad signature, expired, malformed, wrong claim types, a
disallowed algorithm, the wrong kind of token) raises InvalidToken, a 401.

The cache: decoding gives the same answer every time for the same token text and the same keyring,
and the keyring is fixed for the life of the process, so a token seen before skips PyJWT. Expiry
and the token's kind are still checked on every use, and revocation is checked by the caller
against PostgreSQL. Only tokens that verified are cached, keyed by their whole text.
"""

import functools
import uuid
from dataclasses import dataclass

import jwt as pyjwt
from flask import Flask, current_app

from . import clock
from .config import SigningKey, ed25519_jwk, settings
from .errors import Unauthorized

ACCESS, REFRESH = "access", "refresh"
EXTENSION = "tokens"
# users.id is a BIGINT.
MAX_USER_ID = 2**63 - 1

WRONG_KIND = {
    ACCESS: "Only non-refresh tokens are allowed",
    REFRESH: "Only refresh tokens are allowed",
}


class InvalidToken(Unauthorized):
    """The presented token cannot be used; the message says why."""


@dataclass(frozen=True)
class Claims:
    user_id: int
    session_id: uuid.UUID
    kind: str
    jti: str
    expires_at: float
    issued_at: int


class Codec:
    """PyJWT with this app's keyring, algorithm and claim rules; one per app."""

    def __init__(self, keys: tuple[SigningKey, ...], cache_size: int):
        self._signing = keys[0]
        self.algorithm = keys[0].algorithm
        self._keys = keys
        self._by_kid = {key.kid: key.verifying_key for key in keys}
        # lru_cache keeps only results, never exceptions: a token that fails is never cached.
        self.verify = (
            functools.lru_cache(maxsize=cache_size)(self._verify) if cache_size else self._verify
        )

    def encode(
        self, user_id: int, session_id: uuid.UUID, kind: str, jti: str, lifetime: int
    ) -> str:
        issued = int(clock.timestamp())
        claims = {
            "sub": str(user_id),
            "sid": str(session_id),
            "type": kind,
            "jti": jti,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
        }
        return pyjwt.encode(
            claims,
            self._signing.secret,
            algorithm=self.algorithm,
            headers={"kid": self._signing.kid},
        )

    def decode(self, token: str, kind: str | None) -> Claims:
        """The claims of a token of `kind` (None: of either kind), or InvalidToken."""
        claims = self.verify(token)
        if clock.timestamp() >= claims.expires_at:
            raise InvalidToken("Token has expired")
        if kind is not None and claims.kind != kind:
            raise InvalidToken(WRONG_KIND[kind])
        return claims

    def jwks(self) -> dict:
        """The public keys as a JWK Set (RFC 7517), newest first; none in HS256 mode."""
        keys = [
            {**ed25519_jwk(key.public), "kid": key.kid, "alg": key.algorithm, "use": "sig"}
            for key in self._keys
            if key.public is not None
        ]
        return {"keys": keys}

    def _verify(self, token: str) -> Claims:
        try:
            header = pyjwt.get_unverified_header(token)
        except pyjwt.PyJWTError:
            raise InvalidToken("Token is malformed") from None
        if header.get("alg") != self.algorithm:
            raise InvalidToken("Token algorithm is not allowed")
        key = self._by_kid.get(header.get("kid")) if isinstance(header.get("kid"), str) else None
        if key is None:
            raise InvalidToken("Signature verification failed")
        try:
            payload = pyjwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                options={"require": ["exp", "iat", "sub", "sid", "type", "jti"]},
            )
        except pyjwt.ExpiredSignatureError:
            raise InvalidToken("Token has expired") from None
        except pyjwt.InvalidSignatureError:
            raise InvalidToken("Signature verification failed") from None
        except pyjwt.PyJWTError:
            raise InvalidToken("Token claims are invalid") from None
        return _claims(payload)


def _claims(payload: dict) -> Claims:
    """Typed claims; a validly signed token with claims of the wrong type is still refused."""
    sub, sid, kind, jti, exp, iat = (
        payload.get(name) for name in ("sub", "sid", "type", "jti", "exp", "iat")
    )
    if not (
        isinstance(sub, str)
        and sub.isascii()
        and sub.isdigit()
        and len(sub) <= len(str(MAX_USER_ID))  # int() refuses strings past 4300 digits
        and int(sub) <= MAX_USER_ID
        and isinstance(sid, str)
        and isinstance(jti, str)
        and kind in (ACCESS, REFRESH)
        and isinstance(exp, int | float)
        and not isinstance(exp, bool)
    ):
        raise InvalidToken("Token claims are invalid")
    try:
        session_id = uuid.UUID(sid)
    except ValueError:
        raise InvalidToken("Token claims are invalid") from None
    return Claims(
        user_id=int(sub),
        session_id=session_id,
        kind=kind,
        jti=jti,
        expires_at=exp,
        issued_at=int(iat),  # PyJWT checked that int() takes it
    )


def codec() -> Codec:
    return current_app.extensions[EXTENSION]


def issue_pair(user_id: int, session_id: uuid.UUID, refresh_jti: str, ends_at: float) -> dict:
    """The answer to a login or a refresh: an access token and a refresh token of one login.

    The refresh token expires at `ends_at` (a timestamp: the login's sliding end, capped by its
    absolute end), and the access token never outlives it.
    """
    config = settings()
    refresh_lifetime = max(1, round(ends_at - clock.timestamp()))
    access_lifetime = min(config.access_token_seconds, refresh_lifetime)
    return {
        "access_token": codec().encode(
            user_id, session_id, ACCESS, uuid.uuid4().hex, access_lifetime
        ),
        "refresh_token": codec().encode(
            user_id, session_id, REFRESH, refresh_jti, refresh_lifetime
        ),
        "token_type": "Bearer",
        "expires_in": access_lifetime,
        "refresh_expires_in": refresh_lifetime,
    }


def init_app(app: Flask) -> None:
    config = app.extensions["settings"]
    app.extensions[EXTENSION] = Codec(config.signing_keys, config.jwt_decode_cache_size)
