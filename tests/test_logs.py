"""Logs: one JSON line per request, audit events, and never a password or a token."""

import json

from tests.conftest import bearer, login, register


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_each_request_writes_one_json_line_with_its_request_id(make_app, capsys):
    client = make_app().test_client()
    capsys.readouterr()
    response = client.get("/healthz")
    lines = [line for line in _lines(capsys) if line.get("event") == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["request_id"] == response.headers["X-Request-ID"]


def test_a_plain_incoming_request_id_is_kept_and_a_strange_one_replaced(make_app):
    client = make_app().test_client()
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/healthz", headers={"X-Request-ID": 'evil" "injected'})
    assert replaced.headers["X-Request-ID"] != 'evil" "injected'
    assert len(replaced.headers["X-Request-ID"]) == 32


def test_security_events_are_audited_without_secrets(make_app, capsys):
    client = make_app(JWT_REFRESH_REUSE_GRACE="0").test_client()
    register(client)
    tokens = login(client)
    client.post("/auth/login", json={"username": "testuser", "password": "wrong-password"})
    fresh = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"])).get_json()
    client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    client.post("/auth/logout", headers=bearer(fresh["access_token"]))
    for _ in range(5):
        client.post("/auth/login", json={"username": "testuser", "password": "wrong-password"})
    output = capsys.readouterr().out
    events = [json.loads(line) for line in output.splitlines()]
    audited = {line["event"] for line in events if line["logger"] == "flask_jwt_api.audit"}
    assert {
        "register", "login_success", "login_failure", "refresh_reuse_detected", "throttled"
    } <= audited  # fmt: skip
    for secret in ("testpass", "wrong-password", tokens["access_token"], tokens["refresh_token"],
                   fresh["access_token"]):  # fmt: skip
        assert secret not in output


def test_logout_is_audited(make_app, capsys):
    client = make_app().test_client()
    register(client)
    client.post("/auth/logout", headers=bearer(login(client)["access_token"]))
    events = [line["event"] for line in _lines(capsys)]
    assert "logout" in events


def test_an_unexpected_error_is_logged_with_its_trace(make_app, capsys):
    app = make_app()
    app.config["TESTING"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    app.test_client().get("/boom")
    errors = [line for line in _lines(capsys) if line["level"] == "ERROR"]
    assert errors and "RuntimeError: kaboom" in errors[0]["exception"]
