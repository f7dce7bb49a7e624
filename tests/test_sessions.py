"""Logins as the user sees them: the refresh grace window (a client whose answer was lost may retry
with the token it sent), "where am I logged in" (GET and DELETE /auth/sessions) and the absolute
lifetime of a login (JWT_SESSION_MAX_AGE)."""

import json
import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.models import LoginSession
from tests.conftest import bearer, claims_of, login, register, simultaneously

CONCURRENT = 20


@pytest.fixture
def later(monkeypatch):
    """Move the app's clock forward: later(seconds). Tokens issued before stay valid for PyJWT,
    whose own checks read the real time."""
    real_now = clock.now

    def move(seconds: float) -> None:
        monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(seconds=seconds))

    return move


def _refresh(client, token: str):
    return client.post("/auth/refresh", headers=bearer(token))


def _jti(pair: dict) -> str:
    return claims_of(pair["refresh_token"])["jti"]


def _session(app, session_id: str) -> LoginSession:
    with app.app_context():
        row = db.session.execute(
            select(LoginSession).where(LoginSession.id == uuid.UUID(session_id))
        ).scalar_one()
        db.session.expunge(row)
        return row


def _events(capsys) -> list[str]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line["event"] for line in lines if line["logger"] == "flask_jwt_api.audit"]


# The grace window


def test_a_retry_within_the_window_gets_the_same_successor(client, tokens, capsys):
    lost = _refresh(client, tokens["refresh_token"]).get_json()
    retried = _refresh(client, tokens["refresh_token"])
    assert retried.status_code == 200
    again = retried.get_json()
    assert _jti(again) == _jti(lost)
    assert claims_of(again["refresh_token"])["sid"] == claims_of(lost["refresh_token"])["sid"]
    assert client.get("/auth/me", headers=bearer(again["access_token"])).status_code == 200
    assert "refresh_retry" in _events(capsys)


def test_both_copies_of_the_successor_work(client, tokens):
    lost = _refresh(client, tokens["refresh_token"]).get_json()
    again = _refresh(client, tokens["refresh_token"]).get_json()
    # The client uses the copy it received; the lost answer's copy then is the one just rotated.
    newer = _refresh(client, again["refresh_token"])
    assert newer.status_code == 200
    assert _refresh(client, lost["refresh_token"]).status_code == 200
    assert _refresh(client, newer.get_json()["refresh_token"]).status_code == 200


def test_a_retry_does_not_rotate(app, client, tokens):
    _refresh(client, tokens["refresh_token"])
    for _ in range(3):
        assert _refresh(client, tokens["refresh_token"]).status_code == 200
    assert _session(app, claims_of(tokens["refresh_token"])["sid"]).generation == 1


def test_after_the_window_the_rotated_token_is_reuse(client, tokens, later):
    fresh = _refresh(client, tokens["refresh_token"]).get_json()
    later(31)
    reused = _refresh(client, tokens["refresh_token"])
    assert reused.status_code == 401
    assert "already used" in reused.get_json()["msg"]
    assert _refresh(client, fresh["refresh_token"]).get_json() == {"msg": "Token has been revoked"}


def test_the_window_follows_the_setting(make_app, later):
    client = make_app(JWT_REFRESH_REUSE_GRACE="120").test_client()
    register(client)
    tokens = login(client)
    _refresh(client, tokens["refresh_token"])
    later(100)
    assert _refresh(client, tokens["refresh_token"]).status_code == 200


def test_a_token_older_than_the_last_rotation_is_reuse_even_within_the_window(client, tokens):
    first = _refresh(client, tokens["refresh_token"]).get_json()
    _refresh(client, first["refresh_token"])
    assert "already used" in _refresh(client, tokens["refresh_token"]).get_json()["msg"]
    assert _refresh(client, first["refresh_token"]).status_code == 401


@pytest.mark.parametrize("ending", ["/auth/logout", "/auth/logout-all"])
def test_logging_out_ends_the_window(client, tokens, ending):
    fresh = _refresh(client, tokens["refresh_token"]).get_json()
    assert client.post(ending, headers=bearer(fresh["access_token"])).status_code == 200
    retried = _refresh(client, tokens["refresh_token"])
    assert retried.get_json() == {"msg": "Token has been revoked"}


def test_a_password_change_ends_the_window(client, tokens):
    fresh = _refresh(client, tokens["refresh_token"]).get_json()
    changed = client.post(
        "/auth/password",
        headers=bearer(fresh["access_token"]),
        json={"current_password": "testpass", "new_password": "another-pass"},
    )
    assert changed.status_code == 200
    # The login that changed the password is kept, but its rotated token is now plain reuse.
    assert "already used" in _refresh(client, tokens["refresh_token"]).get_json()["msg"]


def test_deactivation_ends_the_window(app, client, tokens):
    _refresh(client, tokens["refresh_token"])
    runner = app.test_cli_runner()
    assert runner.invoke(args=["deactivate-user", "testuser"]).exit_code == 0
    assert _session(app, claims_of(tokens["refresh_token"])["sid"]).previous_refresh_jti is None
    assert runner.invoke(args=["activate-user", "testuser"]).exit_code == 0
    assert "already used" in _refresh(client, tokens["refresh_token"]).get_json()["msg"]


def _concurrent_refreshes(server, token: str) -> list:
    headers = bearer(token)
    return simultaneously(
        [
            lambda: requests.post(server.url + "/auth/refresh", headers=headers, timeout=30)
            for _ in range(CONCURRENT)
        ]
    )


def _login_over_http(server) -> dict:
    body = {"username": "testuser", "password": "testpass"}
    requests.post(server.url + "/auth/register", json=body, timeout=30)
    return requests.post(server.url + "/auth/login", json=body, timeout=30).json()


def test_concurrent_refreshes_of_one_token_rotate_it_once(app, gunicorn):
    with gunicorn(workers=4) as server:
        tokens = _login_over_http(server)
        answers = _concurrent_refreshes(server, tokens["refresh_token"])
        assert [answer.status_code for answer in answers] == [200] * CONCURRENT
        assert len({_jti(answer.json()) for answer in answers}) == 1
        session = _session(app, claims_of(tokens["refresh_token"])["sid"])
        assert (session.generation, session.revoked_at) == (1, None)
        assert session.refresh_jti == _jti(answers[0].json())


def test_concurrent_retries_within_the_window_all_get_the_same_successor(app, gunicorn):
    with gunicorn(workers=4) as server:
        tokens = _login_over_http(server)
        successor = _jti(
            requests.post(
                server.url + "/auth/refresh", headers=bearer(tokens["refresh_token"]), timeout=30
            ).json()
        )
        answers = _concurrent_refreshes(server, tokens["refresh_token"])
        assert [answer.status_code for answer in answers] == [200] * CONCURRENT
        assert {_jti(answer.json()) for answer in answers} == {successor}
        session = _session(app, claims_of(tokens["refresh_token"])["sid"])
        assert (session.generation, session.revoked_at) == (1, None)
        dashboard = requests.get(
            server.url + "/protected/dashboard",
            headers=bearer(answers[-1].json()["access_token"]),
            timeout=30,
        )
        assert dashboard.status_code == 200


# Where am I logged in


def _sessions(client, access: str) -> list[dict]:
    response = client.get("/auth/sessions", headers=bearer(access))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["sessions"]


def _login_as(client, agent: str, address: str = "127.0.0.1") -> dict:
    response = client.post(
        "/auth/login",
        json={"username": "testuser", "password": "testpass"},
        headers={"User-Agent": agent},
        environ_base={"REMOTE_ADDR": address},
    )
    assert response.status_code == 200
    return response.get_json()


def test_the_user_sees_each_live_login_with_its_client(client):
    register(client)
    phone = _login_as(client, "Phone/1.0", "192.0.2.10")
    laptop = _login_as(client, "Laptop/2.0", "192.0.2.20")
    listed = _sessions(client, laptop["access_token"])
    assert [entry["user_agent"] for entry in listed] == ["Laptop/2.0", "Phone/1.0"]
    assert [entry["client_address"] for entry in listed] == ["192.0.2.20", "192.0.2.10"]
    assert [entry["current"] for entry in listed] == [True, False]
    assert listed[1]["id"] == claims_of(phone["access_token"])["sid"]
    assert all(entry["last_refreshed_at"] is None for entry in listed)
    assert set(listed[0]) == {
        "id", "created_at", "last_refreshed_at", "expires_at", "client_address", "user_agent",
        "current",
    }  # fmt: skip


def test_a_refresh_records_its_time_and_client(client):
    register(client)
    phone = _login_as(client, "Phone/1.0", "192.0.2.10")
    refreshed = client.post(
        "/auth/refresh",
        headers={**bearer(phone["refresh_token"]), "User-Agent": "Phone/1.1"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    ).get_json()
    (entry,) = _sessions(client, refreshed["access_token"])
    assert entry["last_refreshed_at"] is not None
    assert (entry["user_agent"], entry["client_address"]) == ("Phone/1.1", "198.51.100.7")


def test_a_long_or_unprintable_user_agent_is_cut_and_cleaned(client):
    register(client)
    tokens = _login_as(client, "A\tB\x7fC" + "x" * 1000)
    (entry,) = _sessions(client, tokens["access_token"])
    assert entry["user_agent"] == ("ABC" + "x" * 1000)[:256]


def test_ended_logins_are_not_listed(client):
    register(client)
    first, second = login(client), login(client)
    client.post("/auth/logout", headers=bearer(first["access_token"]))
    listed = _sessions(client, second["access_token"])
    assert [entry["id"] for entry in listed] == [claims_of(second["access_token"])["sid"]]


def test_another_users_logins_are_never_listed(client):
    register(client)
    register(client, "otheruser")
    login(client, "otheruser")
    mine = login(client)
    assert len(_sessions(client, mine["access_token"])) == 1


def test_revoking_one_login_ends_its_tokens_only(client):
    register(client)
    phone, laptop = login(client), login(client)
    phone_id = claims_of(phone["access_token"])["sid"]
    response = client.delete(f"/auth/sessions/{phone_id}", headers=bearer(laptop["access_token"]))
    assert (response.status_code, response.get_json()) == (200, {"msg": "Session revoked"})
    assert client.get("/auth/me", headers=bearer(phone["access_token"])).status_code == 401
    assert _refresh(client, phone["refresh_token"]).status_code == 401
    assert client.get("/auth/me", headers=bearer(laptop["access_token"])).status_code == 200


def test_revoking_the_current_login_logs_it_out(client, tokens):
    own = claims_of(tokens["access_token"])["sid"]
    assert (
        client.delete(f"/auth/sessions/{own}", headers=bearer(tokens["access_token"])).status_code
        == 200
    )
    assert client.get("/auth/me", headers=bearer(tokens["access_token"])).status_code == 401


def test_another_users_login_is_not_found_and_keeps_working(client):
    register(client)
    register(client, "otheruser")
    theirs = login(client, "otheruser")
    mine = login(client)
    their_id = claims_of(theirs["access_token"])["sid"]
    response = client.delete(f"/auth/sessions/{their_id}", headers=bearer(mine["access_token"]))
    unknown = client.delete(f"/auth/sessions/{uuid.uuid4()}", headers=bearer(mine["access_token"]))
    # The same answer as for an id that does not exist: nothing tells the two apart.
    assert (response.status_code, response.get_json()) == (404, {"msg": "Session not found"})
    assert (unknown.status_code, unknown.get_json()) == (404, {"msg": "Session not found"})
    assert client.get("/auth/me", headers=bearer(theirs["access_token"])).status_code == 200


def test_an_ended_or_malformed_session_id_is_not_found(client):
    register(client)
    first, second = login(client), login(client)
    first_id = claims_of(first["access_token"])["sid"]
    client.post("/auth/logout", headers=bearer(first["access_token"]))
    for session_id in (first_id, "not-a-uuid"):
        response = client.delete(
            f"/auth/sessions/{session_id}", headers=bearer(second["access_token"])
        )
        assert response.status_code == 404
        assert response.mimetype == "application/json"


def test_the_sessions_endpoints_need_an_access_token(client, tokens):
    assert client.get("/auth/sessions").status_code == 401
    assert client.get("/auth/sessions", headers=bearer(tokens["refresh_token"])).status_code == 401


# The absolute lifetime


def test_a_refresh_token_never_outlives_the_login(make_app, later):
    client = make_app(JWT_SESSION_MAX_AGE="7200", JWT_REFRESH_TOKEN_EXPIRES="7000").test_client()
    register(client)
    tokens = login(client)
    assert tokens["refresh_expires_in"] == 7000
    later(6000)
    capped = _refresh(client, tokens["refresh_token"]).get_json()
    # 7200 - 6000 s remain of the login: the refresh token (and the access token) end with it.
    assert 1190 <= capped["refresh_expires_in"] <= 1200
    claims = claims_of(capped["refresh_token"])
    assert claims["exp"] - claims["iat"] == capped["refresh_expires_in"]


def test_a_maximum_age_shorter_than_the_refresh_lifetime_caps_the_first_pair(make_app):
    client = make_app(JWT_SESSION_MAX_AGE="3600").test_client()
    register(client)
    tokens = login(client)
    assert tokens["refresh_expires_in"] == 3600
    assert tokens["expires_in"] == 15 * 60


def test_a_login_past_its_maximum_age_must_log_in_again(client, tokens, make_app, later):
    # Issued under the 90-day default; the operator lowers the maximum to an hour.
    strict = make_app(JWT_SESSION_MAX_AGE="3600").test_client()
    later(3601)
    response = _refresh(strict, tokens["refresh_token"])
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Login has reached its maximum age; log in again"}


def test_each_refresh_still_extends_a_young_login(client, tokens, later):
    later(24 * 3600)
    fresh = _refresh(client, tokens["refresh_token"]).get_json()
    assert fresh["refresh_expires_in"] == 30 * 24 * 3600
