"""A per-worker cache of verified tokens: a token seen before skips PyJWT's decoding, not checks.

Decoding a token (signature, header, claims) gives the same answer every time for the same token
text and the same keyring, and the keyring is fixed for the life of the process. PyJWT does that
work four times per request, so a client that sends its access token many times over its 15
minutes pays for it once per worker. What still runs on every request, cached or not:
- expiry: a cached token at or past its `exp` goes back to the library, which refuses it;
- the token type check (access versus refresh), done by Flask-JWT-Extended on the claims;
- the revocation and user check against PostgreSQL (tokens.SessionLookup).
Only tokens that verified are cached, keyed by their whole text, so a forged or altered token is
always decoded in full. JWT_DECODE_CACHE_SIZE=0 turns the cache off.
"""

import functools
import time

from flask import Flask, current_app
from flask_jwt_extended import JWTManager

EXTENSION = "verified_tokens"


class CachingJWTManager(JWTManager):
    """Flask-JWT-Extended's manager, with its decode step answered from the app's cache."""

    def _decode_jwt_from_config(self, encoded_token, csrf_value=None, allow_expired=False):
        cached_decode = current_app.extensions.get(EXTENSION)
        if cached_decode is None or csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        claims = cached_decode(encoded_token)
        exp = claims.get("exp")
        if exp is not None and time.time() >= exp:
            # Expired since it was cached: the library decides, with its leeway and its error.
            return super()._decode_jwt_from_config(encoded_token)
        # A copy, so nothing that edits the request's claims can change the cached ones.
        return dict(claims)


def init_app(app: Flask, size: int) -> None:
    """Give `app` a cache of `size` verified tokens per worker process (none when 0)."""
    if size:
        manager = app.extensions["flask-jwt-extended"]
        decode = functools.partial(JWTManager._decode_jwt_from_config, manager)
        # lru_cache keeps only results, never exceptions: a token that fails is never cached.
        app.extensions[EXTENSION] = functools.lru_cache(maxsize=size)(decode)
