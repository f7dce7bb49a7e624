"""Refresh rotation, reuse detection, revocation, account endpoints and the signing keyring."""

import jwt as pyjwt
import pytest
from sqlalchemy import delete, event

from app.authentication import SessionLookup
from app.config import key_id
from app.extensions import db
from app.models import User
from tests.conftest import TEST_KEY, bearer, claims_of, login, register, sign

OTHER_KEY = "another-signing-key-fedcba9876543210-fedcba9876543210"


def test_login_returns_a_token_pair_with_lifetimes(client):
    register(client)
    body = login(client)
    assert set(body) == {
        "access_token", "refresh_token", "token_type", "expires_in", "refresh_expires_in"
    }  # fmt: skip
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    assert body["refresh_expires_in"] == 30 * 24 * 3600


def test_tokens_carry_the_signing_key_id(client, tokens):
    header = pyjwt.get_unverified_header(tokens["access_token"])
    assert header["kid"] == key_id(TEST_KEY)
    assert pyjwt.get_unverified_header(tokens["refresh_token"])["kid"] == key_id(TEST_KEY)


def test_refresh_returns_a_new_pair(client, tokens):
    response = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200
    fresh = response.get_json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    dashboard = client.get("/protected/dashboard", headers=bearer(fresh["access_token"]))
    assert dashboard.status_code == 200


@pytest.fixture
def strict(make_app):
    """A client of an app without the refresh grace window (JWT_REFRESH_REUSE_GRACE=0), and the
    token pair of one login of a registered testuser."""
    client = make_app(JWT_REFRESH_REUSE_GRACE="0").test_client()
    register(client)
    return client, login(client)


def test_without_a_grace_window_a_rotated_refresh_token_stops_working(strict):
    client, tokens = strict
    client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    response = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 401


def test_reusing_an_older_refresh_token_revokes_the_whole_login(client, tokens):
    first = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"])).get_json()
    second = client.post("/auth/refresh", headers=bearer(first["refresh_token"])).get_json()
    # Two generations back: outside any grace window, so two parties hold the family.
    stolen = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert stolen.status_code == 401
    assert "already used" in stolen.get_json()["msg"]
    # The legitimate holder's newer tokens die with the family.
    assert client.post("/auth/refresh", headers=bearer(second["refresh_token"])).status_code == 401
    dashboard = client.get("/protected/dashboard", headers=bearer(second["access_token"]))
    assert dashboard.status_code == 401


def test_reuse_detection_leaves_other_logins_alone(strict):
    client, tokens = strict
    other = login(client)
    client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    reused = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert "already used" in reused.get_json()["msg"]
    response = client.get("/protected/dashboard", headers=bearer(other["access_token"]))
    assert response.status_code == 200


def test_logout_also_revokes_the_refresh_token_of_that_login(client, tokens):
    client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    response = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Token has been revoked"}


def test_logout_leaves_the_users_other_logins_working(client, tokens):
    other = login(client)
    client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    response = client.get("/protected/dashboard", headers=bearer(other["access_token"]))
    assert response.status_code == 200


def test_a_refresh_token_is_not_accepted_as_an_access_token(client, tokens):
    for method, path in (("get", "/protected/dashboard"), ("get", "/auth/me"),
                         ("post", "/auth/logout"), ("post", "/auth/logout-all")):  # fmt: skip
        response = getattr(client, method)(path, headers=bearer(tokens["refresh_token"]))
        assert response.status_code == 401, path
        assert response.get_json() == {"msg": "Only non-refresh tokens are allowed"}


def test_an_access_token_is_not_accepted_for_refresh(client, tokens):
    response = client.post("/auth/refresh", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Only refresh tokens are allowed"}


def test_me_describes_the_account(client, tokens):
    response = client.get("/auth/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "testuser"
    assert body["id"] == 1
    assert "created_at" in body
    assert "password_hash" not in body


def test_logout_all_revokes_every_login_of_the_user(client, tokens):
    second = login(client)
    register(client, "someone", "password1")
    bystander = login(client, "someone", "password1")
    response = client.post("/auth/logout-all", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.get_json() == {"msg": "Logged out of all sessions", "revoked": 2}
    for pair in (tokens, second):
        assert client.get("/auth/me", headers=bearer(pair["access_token"])).status_code == 401
        assert (
            client.post("/auth/refresh", headers=bearer(pair["refresh_token"])).status_code == 401
        )
    assert client.get("/auth/me", headers=bearer(bystander["access_token"])).status_code == 200


def test_password_change_keeps_this_login_and_revokes_the_others(client, tokens):
    other = login(client)
    response = client.post(
        "/auth/password",
        headers=bearer(tokens["access_token"]),
        json={"current_password": "testpass", "new_password": "brand-new-pass"},
    )
    assert response.status_code == 200
    assert response.get_json() == {"msg": "Password changed", "revoked": 1}
    assert client.get("/auth/me", headers=bearer(tokens["access_token"])).status_code == 200
    assert client.get("/auth/me", headers=bearer(other["access_token"])).status_code == 401
    assert client.post("/auth/refresh", headers=bearer(other["refresh_token"])).status_code == 401
    old = client.post("/auth/login", json={"username": "testuser", "password": "testpass"})
    assert old.status_code == 401
    login(client, password="brand-new-pass")


def test_password_change_with_a_wrong_current_password_is_forbidden(client, tokens):
    response = client.post(
        "/auth/password",
        headers=bearer(tokens["access_token"]),
        json={"current_password": "not-my-pass", "new_password": "brand-new-pass"},
    )
    assert response.status_code == 403
    assert response.get_json() == {"msg": "Current password is incorrect"}
    login(client)


def test_password_change_needs_both_fields(client, tokens):
    response = client.post(
        "/auth/password", headers=bearer(tokens["access_token"]), json={"new_password": "x" * 9}
    )
    assert response.status_code == 400
    assert response.get_json() == {"msg": "Missing current_password or new_password"}


def test_password_change_applies_the_password_rules(client, tokens):
    response = client.post(
        "/auth/password",
        headers=bearer(tokens["access_token"]),
        json={"current_password": "testpass", "new_password": "short"},
    )
    assert response.status_code == 422
    assert "new_password" in response.get_json()["errors"]


def test_password_change_requires_a_token_before_reading_the_body(client):
    response = client.post("/auth/password", json={})
    assert response.status_code == 401


def test_a_token_of_a_deleted_user_is_refused(app, client, tokens):
    with app.app_context():
        db.session.execute(delete(User))
        db.session.commit()
    response = client.get("/protected/dashboard", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401


def test_a_token_of_a_deactivated_user_is_refused(app, client, tokens):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["deactivate-user", "TestUser"])
    assert result.exit_code == 0, result.output
    response = client.get("/protected/dashboard", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "User not found or deactivated"}
    refused = client.post("/auth/login", json={"username": "testuser", "password": "testpass"})
    assert refused.status_code == 401
    assert runner.invoke(args=["activate-user", "testuser"]).exit_code == 0
    assert (
        client.get("/protected/dashboard", headers=bearer(tokens["access_token"])).status_code
        == 200
    )


def test_deactivating_an_unknown_user_fails(app):
    result = app.test_cli_runner().invoke(args=["deactivate-user", "nobody"])
    assert result.exit_code != 0
    assert "no user named" in result.output


def test_a_token_signed_with_an_unknown_key_is_refused(client, tokens, make_app):
    stranger = make_app(JWT_SECRET_KEY=OTHER_KEY).test_client()
    forged = stranger.post(
        "/auth/login", json={"username": "testuser", "password": "testpass"}
    ).get_json()["access_token"]
    response = client.get("/protected/dashboard", headers=bearer(forged))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Signature verification failed"}


def test_a_tampered_token_is_refused(client, tokens):
    header, payload, signature = tokens["access_token"].split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = client.get("/protected/dashboard", headers=bearer(tampered))
    assert response.status_code == 401


def test_a_token_without_a_login_session_is_refused(app, client, tokens):
    claims = claims_of(tokens["access_token"])
    forged = sign({k: v for k, v in claims.items() if k != "sid"})
    response = client.get("/protected/dashboard", headers=bearer(forged))
    assert response.status_code == 401


def test_key_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(client, tokens, make_app):
    rotated = make_app(JWT_SECRET_KEY="", JWT_SECRET_KEYS=f"{OTHER_KEY},{TEST_KEY}").test_client()
    old = rotated.get("/protected/dashboard", headers=bearer(tokens["access_token"]))
    assert old.status_code == 200
    refreshed = rotated.post("/auth/refresh", headers=bearer(tokens["refresh_token"])).get_json()
    assert pyjwt.get_unverified_header(refreshed["access_token"])["kid"] == key_id(OTHER_KEY)
    # Once the old key is retired, tokens signed with it stop working, new ones keep working.
    retired = make_app(JWT_SECRET_KEY=OTHER_KEY).test_client()
    assert retired.get("/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert retired.get("/auth/me", headers=bearer(refreshed["access_token"])).status_code == 200


def test_a_protected_request_costs_one_query_and_no_orm_statement(app, client, tokens, monkeypatch):
    lookups = []
    real_execute = SessionLookup._execute

    def counting_execute(self, *args):
        lookups.append(args)
        return real_execute(self, *args)

    monkeypatch.setattr(SessionLookup, "_execute", counting_execute)
    statements = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    response = client.get("/protected/dashboard", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert len(lookups) == 1
    assert statements == []
