"""The verified-token cache: a token seen before skips PyJWT's decoding, never a check."""

import dataclasses
import time

import pytest

from app.tokens import EXTENSION
from tests.conftest import bearer, claims_of, login, register, sign


def _cache_info(app):
    return app.extensions[EXTENSION].verify.cache_info()


def test_a_token_seen_before_is_answered_from_the_cache(app, client, tokens):
    for _ in range(3):
        response = client.get("/protected/dashboard", headers=bearer(tokens["access_token"]))
        assert response.status_code == 200
    info = _cache_info(app)
    assert (info.misses, info.hits) == (1, 2)


def test_a_cached_token_is_refused_once_revoked(app, client, tokens):
    headers = bearer(tokens["access_token"])
    assert client.get("/protected/dashboard", headers=headers).status_code == 200
    assert client.post("/auth/logout", headers=headers).status_code == 200
    hits = _cache_info(app).hits
    response = client.get("/protected/dashboard", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Token has been revoked"}
    assert _cache_info(app).hits > hits  # decoded from the cache, refused by the database check


def test_a_cached_token_is_refused_once_it_expires(app, client, tokens):
    expires_at = int(time.time()) + 2
    short = sign({**claims_of(tokens["access_token"]), "exp": expires_at})
    # Cached while valid, then refused once expired.
    assert client.get("/protected/dashboard", headers=bearer(short)).status_code == 200
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)
    response = client.get("/protected/dashboard", headers=bearer(short))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Token has expired"}
    assert _cache_info(app).hits == 1


def test_an_altered_token_is_decoded_in_full_and_refused(app, client, tokens):
    token = tokens["access_token"]
    assert client.get("/protected/dashboard", headers=bearer(token)).status_code == 200
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    response = client.get("/protected/dashboard", headers=bearer(f"{head}.{payload}.{flipped}"))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Signature verification failed"}
    assert _cache_info(app).currsize == 1  # a failure is never cached


def test_a_cached_refresh_token_is_still_refused_where_an_access_token_is_required(
    app, client, tokens
):
    refresh = bearer(tokens["refresh_token"])
    for _ in range(2):
        response = client.get("/protected/dashboard", headers=refresh)
        assert response.status_code == 401
        assert response.get_json() == {"msg": "Only non-refresh tokens are allowed"}
    assert _cache_info(app).hits == 1


def test_a_cached_access_token_is_still_refused_for_refresh(app, client, tokens):
    access = bearer(tokens["access_token"])
    assert client.get("/protected/dashboard", headers=access).status_code == 200
    response = client.post("/auth/refresh", headers=access)
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Only refresh tokens are allowed"}


def test_cached_claims_cannot_be_edited(app, client, tokens):
    claims = app.extensions[EXTENSION].verify(tokens["access_token"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        claims.kind = "refresh"
    assert app.extensions[EXTENSION].verify(tokens["access_token"]).kind == "access"


def test_the_cache_is_bounded_by_its_setting(make_app):
    app = make_app(JWT_DECODE_CACHE_SIZE="2")
    client = app.test_client()
    register(client)
    for _ in range(3):
        token = login(client)["access_token"]
        assert client.get("/protected/dashboard", headers=bearer(token)).status_code == 200
    assert _cache_info(app).maxsize == 2
    assert _cache_info(app).currsize == 2


def test_size_zero_turns_the_cache_off(make_app):
    app = make_app(JWT_DECODE_CACHE_SIZE="0")
    client = app.test_client()
    assert not hasattr(app.extensions[EXTENSION].verify, "cache_info")
    register(client)
    token = login(client)["access_token"]
    for _ in range(2):
        assert client.get("/protected/dashboard", headers=bearer(token)).status_code == 200
    assert client.post("/auth/logout", headers=bearer(token)).status_code == 200
    assert client.get("/protected/dashboard", headers=bearer(token)).status_code == 401
