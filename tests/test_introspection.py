"""POST /auth/introspect (RFC 7662): a configured client asks whether a token is live; the answer
reads PostgreSQL, so a logout shows at once, and every unusable token is `{"active": false}`."""

import base64
import time

import pytest

from app.config import ConfigError, Settings
from tests.conftest import (
    INTROSPECTION_CLIENT,
    basic,
    bearer,
    claims_of,
    login,
    register,
    sign,
)

INACTIVE = {"active": False}
CHALLENGE = 'Basic realm="flask-jwt-api introspection", charset="UTF-8"'


def introspect(client, token, headers=None, as_json=False, **fields):
    """Ask as the configured client, with a form body unless `as_json`."""
    headers = basic(*INTROSPECTION_CLIENT) if headers is None else headers
    body = {"token": token, **fields}
    if as_json:
        return client.post("/auth/introspect", json=body, headers=headers)
    return client.post("/auth/introspect", data=body, headers=headers)


def test_a_live_access_token_is_active_with_its_claims(client, tokens):
    response = introspect(client, tokens["access_token"])
    assert response.status_code == 200
    claims = claims_of(tokens["access_token"])
    assert response.get_json() == {
        "active": True,
        "sub": "1",
        "username": "testuser",
        "sid": claims["sid"],
        "jti": claims["jti"],
        "token_type": "access",
        "exp": claims["exp"],
        "iat": claims["iat"],
    }


def test_a_live_refresh_token_is_active(client, tokens):
    body = introspect(client, tokens["refresh_token"]).get_json()
    assert body["active"] is True
    assert body["token_type"] == "refresh"
    assert body["jti"] == claims_of(tokens["refresh_token"])["jti"]


def test_the_answer_is_never_cached(client, tokens):
    for token in (tokens["access_token"], "garbage"):
        response = introspect(client, token)
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"


def test_a_logged_out_login_is_inactive_at_once(client, tokens):
    assert introspect(client, tokens["access_token"]).get_json()["active"] is True
    client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    assert introspect(client, tokens["access_token"]).get_json() == INACTIVE
    assert introspect(client, tokens["refresh_token"]).get_json() == INACTIVE


def test_a_login_whose_row_is_gone_is_inactive(client, tokens, database):
    database.psql("DELETE FROM login_sessions", "flask_jwt_api_test")
    assert introspect(client, tokens["access_token"]).get_json() == INACTIVE


def test_a_deactivated_users_tokens_are_inactive(client, tokens, database):
    database.psql("UPDATE users SET is_active = false", "flask_jwt_api_test")
    assert introspect(client, tokens["access_token"]).get_json() == INACTIVE
    assert introspect(client, tokens["refresh_token"]).get_json() == INACTIVE


def test_a_refresh_token_already_exchanged_is_inactive(client, tokens):
    fresh = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"])).get_json()
    assert introspect(client, tokens["refresh_token"]).get_json() == INACTIVE
    assert introspect(client, fresh["refresh_token"]).get_json()["active"] is True


def test_an_expired_token_is_inactive(client, tokens):
    now = int(time.time())
    claims = {**claims_of(tokens["access_token"]), "iat": now - 120, "nbf": now - 120}
    assert introspect(client, sign({**claims, "exp": now + 60})).get_json()["active"] is True
    assert introspect(client, sign({**claims, "exp": now - 1})).get_json() == INACTIVE


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        "x" * 4000,
        "\u00e9t\u00e9",
    ],
)
def test_unknown_and_malformed_tokens_are_inactive(client, tokens, token):
    response = introspect(client, token)
    assert response.status_code == 200
    assert response.get_json() == INACTIVE


def test_forged_tokens_are_inactive(client, tokens):
    claims = claims_of(tokens["access_token"])
    other_key = "another-signing-key-fedcba9876543210-fedcba9876543210"
    assert introspect(client, sign(claims, other_key)).get_json() == INACTIVE
    unknown_login = {**claims, "sid": "00000000-0000-4000-8000-000000000000"}
    assert introspect(client, sign(unknown_login)).get_json() == INACTIVE
    another_user = {**claims, "sub": "2"}
    assert introspect(client, sign(another_user)).get_json() == INACTIVE


def test_form_and_json_bodies_get_the_same_answer(client, tokens):
    form = introspect(client, tokens["access_token"])
    as_json = introspect(client, tokens["access_token"], as_json=True)
    assert form.status_code == as_json.status_code == 200
    assert form.get_json() == as_json.get_json()
    assert form.get_json()["active"] is True


def test_the_token_type_hint_is_accepted_and_ignored(client, tokens):
    body = introspect(client, tokens["access_token"], token_type_hint="refresh_token").get_json()
    assert body["active"] is True
    assert body["token_type"] == "access"


@pytest.mark.parametrize("as_json", [False, True])
def test_a_missing_token_is_a_bad_request(client, as_json):
    for body in ({}, {"token": ""}):
        if as_json:
            response = client.post(
                "/auth/introspect", json=body, headers=basic(*INTROSPECTION_CLIENT)
            )
        else:
            response = client.post(
                "/auth/introspect",
                data=body,
                content_type="application/x-www-form-urlencoded",
                headers=basic(*INTROSPECTION_CLIENT),
            )
        assert response.status_code == 400
        assert response.get_json() == {"msg": "Missing token"}


def test_other_content_types_are_refused(client):
    response = client.post(
        "/auth/introspect",
        data="token=abc",
        content_type="text/plain",
        headers=basic(*INTROSPECTION_CLIENT),
    )
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.get_json()["msg"]


def _raw_basic(text: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


CLIENT_ID, SECRET = INTROSPECTION_CLIENT
BAD_CREDENTIALS = {
    "none": {},
    "a bearer token": bearer("some.bearer.token"),
    "wrong secret": basic(CLIENT_ID, SECRET[:-1] + "X"),
    "secret prefix": basic(CLIENT_ID, SECRET[:-1]),
    "unknown client": basic("someone-else", SECRET),
    "empty": basic("", ""),
    "not base64": {"Authorization": "Basic !!!not-base64!!!"},
    "no colon": _raw_basic(CLIENT_ID + SECRET),
    "empty scheme value": {"Authorization": "Basic"},
}


@pytest.mark.parametrize("case", list(BAD_CREDENTIALS))
def test_bad_client_credentials_are_refused_with_a_basic_challenge(client, tokens, case):
    response = introspect(client, tokens["access_token"], headers=BAD_CREDENTIALS[case])
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert response.headers["Cache-Control"] == "no-store"
    assert set(response.get_json()) == {"msg"}


def test_credentials_are_checked_before_the_body(client):
    response = client.post("/auth/introspect", data="{{{", content_type="text/plain")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE


def test_url_encoded_client_credentials_are_decoded(make_app):
    """RFC 6749 2.3.1: a secret with reserved characters arrives form-urlencoded."""
    secret = "p@ss:w%rd+with/reserved=chars&more-0123456789"
    client = make_app(JWT_INTROSPECTION_CLIENTS=f"rs.two:{secret}").test_client()
    register(client)
    token = login(client)["access_token"]
    assert introspect(client, token, headers=basic("rs.two", secret)).get_json()["active"] is True
    raw = _raw_basic(f"rs.two:{secret}")  # '%rd' and '+' would decode to something else
    assert introspect(client, token, headers=raw).status_code == 401


def test_each_configured_client_is_accepted(make_app):
    clients = "first:first-secret-0123456789abcdefghij,second:second-secret-0123456789abcdefgh"
    client = make_app(JWT_INTROSPECTION_CLIENTS=clients).test_client()
    for client_id, secret in (pair.split(":") for pair in clients.split(",")):
        assert introspect(client, "x", headers=basic(client_id, secret)).get_json() == INACTIVE
    crossed = basic("first", "second-secret-0123456789abcdefgh")
    assert introspect(client, "x", headers=crossed).status_code == 401


def test_without_configured_clients_introspection_is_refused(make_app):
    client = make_app(JWT_INTROSPECTION_CLIENTS="").test_client()
    response = introspect(client, "x")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert "JWT_INTROSPECTION_CLIENTS" in response.get_json()["msg"]


def test_eddsa_tokens_are_introspected_and_logout_shows_at_once(eddsa_client):
    register(eddsa_client)
    pair = login(eddsa_client)
    assert introspect(eddsa_client, pair["access_token"]).get_json()["active"] is True
    eddsa_client.post("/auth/logout", headers=bearer(pair["access_token"]))
    assert introspect(eddsa_client, pair["access_token"]).get_json() == INACTIVE


def test_the_document_describes_introspection_and_its_client_authentication(client):
    document = client.get("/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["introspectionClient"] == {
        "type": "http",
        "scheme": "basic",
    }
    operation = document["paths"]["/auth/introspect"]["post"]
    assert operation["security"] == [{"introspectionClient": []}]
    assert set(operation["requestBody"]["content"]) == {
        "application/x-www-form-urlencoded",
        "application/json",
    }
    assert set(operation["responses"]) >= {"200", "400", "401", "415", "503"}
    jwks = document["paths"]["/.well-known/jwks.json"]["get"]
    assert jwks["responses"]["200"]["headers"]["Cache-Control"]["required"]


@pytest.mark.parametrize(
    ("clients", "sentence"),
    [
        ("no-colon-here", "JWT_INTROSPECTION_CLIENTS entry 1 must be CLIENT_ID:SECRET"),
        ("bad id!:" + "s" * 8 + "0123456789abcdefghijklmnop", "must be CLIENT_ID:SECRET"),
        ("rs:short", "entry 1's secret is too short"),
        ("rs:changeme-0123456789abcdefghijklmnopq", "contains the well-known default"),
        ("rs:" + "ab" * 20, "too repetitive"),
        (
            "rs:first-secret-0123456789abcdefghij,rs:second-secret-0123456789abcdefgh",
            "names a client twice",
        ),
    ],
)
def test_bad_introspection_clients_are_refused_with_a_sentence(clients, sentence):
    env = {
        "DATABASE_URL": "postgresql://u:p@localhost/db",
        "JWT_SECRET_KEY": "test-signing-key-0123456789abcdef-0123456789abcdef",
        "JWT_INTROSPECTION_CLIENTS": clients,
    }
    with pytest.raises(ConfigError, match=sentence):
        Settings.from_env(env)
