"""The seed contract: the original demo's walkthrough answers exactly as it did."""

import time

from tests.conftest import bearer, claims_of, register, sign


def test_index_says_the_api_is_working(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.get_json() == {"msg": "API is working"}


def test_register_creates_the_demo_user(client):
    response = client.post("/auth/register", json={"username": "testuser", "password": "testpass"})
    assert response.status_code == 201
    assert response.get_json() == {"msg": "User registered successfully"}


def test_register_without_a_password_is_refused(client):
    response = client.post("/auth/register", json={"username": "testuser"})
    assert response.status_code == 400
    assert response.get_json() == {"msg": "Missing username or password"}


def test_register_without_a_username_is_refused(client):
    response = client.post("/auth/register", json={"password": "testpass"})
    assert response.status_code == 400
    assert response.get_json() == {"msg": "Missing username or password"}


def test_register_with_empty_or_null_fields_counts_as_missing(client):
    for body in (
        {"username": "", "password": "testpass"},
        {"username": "testuser", "password": None},
    ):
        response = client.post("/auth/register", json=body)
        assert response.status_code == 400
        assert response.get_json() == {"msg": "Missing username or password"}


def test_register_with_a_taken_name_conflicts(client):
    register(client)
    response = client.post(
        "/auth/register", json={"username": "testuser", "password": "other-pass"}
    )
    assert response.status_code == 409
    assert response.get_json() == {"msg": "User already exists"}


def test_login_returns_an_access_token(client):
    register(client)
    response = client.post("/auth/login", json={"username": "testuser", "password": "testpass"})
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2


def test_login_with_a_wrong_password_is_refused(client):
    register(client)
    response = client.post("/auth/login", json={"username": "testuser", "password": "wrongpass"})
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Invalid username or password"}


def test_login_for_an_unknown_user_is_refused_alike(client):
    response = client.post("/auth/login", json={"username": "nobody", "password": "testpass"})
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Invalid username or password"}


def test_login_without_a_field_is_refused(client):
    response = client.post("/auth/login", json={"username": "testuser"})
    assert response.status_code == 400
    assert response.get_json() == {"msg": "Missing username or password"}


def test_dashboard_welcomes_the_token_holder(client, tokens):
    response = client.get("/protected/dashboard", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.get_json() == {"message": "Welcome testuser, this is your dashboard"}


def test_logout_answers_success(client, tokens):
    response = client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.get_json() == {"msg": "Successfully logged out"}


def test_dashboard_without_a_token_is_unauthorized(client):
    response = client.get("/protected/dashboard")
    assert response.status_code == 401
    assert response.is_json and "msg" in response.get_json()


def test_dashboard_with_a_malformed_token_is_unauthorized(client):
    # The demo answered 422 here; the contract allows 401, one status for every unusable token.
    response = client.get("/protected/dashboard", headers=bearer("not-a-jwt"))
    assert response.status_code == 401
    assert response.is_json and "msg" in response.get_json()


def test_dashboard_with_a_logged_out_token_is_unauthorized(client, tokens):
    client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    for _ in range(3):
        response = client.get("/protected/dashboard", headers=bearer(tokens["access_token"]))
        assert response.status_code == 401
        assert response.get_json() == {"msg": "Token has been revoked"}


def test_dashboard_with_an_expired_token_is_unauthorized(client, tokens):
    expired = sign({**claims_of(tokens["access_token"]), "exp": int(time.time()) - 1})
    response = client.get("/protected/dashboard", headers=bearer(expired))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Token has expired"}
