"""The database path under change and load: a migration under running workers, an exhausted pool,
database errors that must not reach the log with their values, an audit trail that does not depend
on LOG_LEVEL, and a database driver the app cannot use."""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests
from sqlalchemy import text

from app import create_app
from app.config import ConfigError
from app.extensions import db
from tests.conftest import ROOT, TEST_KEY, bearer, login, register

DATABASE = "flask_jwt_api_test"
USERNAME = "leaky-username-7f3a"
PASSWORD = "leaky-password-9b1c"
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
INSERT_USER = text("INSERT INTO users (username, password_hash) VALUES (:u, :h)")


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


# A migration under running workers.


@contextmanager
def _username_widened(pg):
    """A real migration that changes a column's type under every prepared statement reading it."""
    try:
        pg.psql("ALTER TABLE users ALTER COLUMN username TYPE varchar(80)", DATABASE)
        yield
    finally:  # the schema is shared by the whole session
        pg.psql("ALTER TABLE users ALTER COLUMN username TYPE varchar(64)", DATABASE)


def _statuses(url: str, path: str, token: str, count: int = 30) -> list[int]:
    """`count` GETs from two clients at once, a new connection each, so both workers serve (and
    prepare) the statements."""

    def status(_):
        return requests.get(url + path, headers=bearer(token), timeout=10).status_code

    with ThreadPoolExecutor(max_workers=2) as clients:
        return list(clients.map(status, range(count)))


def _log_in(url: str) -> str:
    body = {"username": "testuser", "password": "testpass"}
    assert requests.post(url + "/auth/register", json=body, timeout=10).status_code == 201
    response = requests.post(url + "/auth/login", json=body, timeout=10)
    assert response.status_code == 200
    return response.json()["access_token"]


def _server_log(pg) -> str:
    return (pg.root / "log").read_text()


@pytest.mark.slow
def test_a_migration_under_running_workers_never_breaks_the_protected_route(pg, gunicorn):
    logged_before = len(_server_log(pg))
    with gunicorn(workers=2) as server:
        token = _log_in(server.url)
        # psycopg prepares a statement on the server after 5 uses on a connection.
        assert _statuses(server.url, "/protected/dashboard", token) == [200] * 30
        with _username_widened(pg):
            assert _statuses(server.url, "/protected/dashboard", token) == [200] * 30
    # The migration did break the prepared lookup (once per worker that had prepared it): the
    # lookup retried on a fresh connection, and no client saw it.
    broken = _server_log(pg)[logged_before:].count("cached plan must not change result type")
    print(f"{broken} worker(s) retried the lookup after the migration")
    assert broken >= 1


@pytest.mark.slow
def test_a_migration_under_running_workers_never_breaks_the_account_route(pg, gunicorn):
    with gunicorn(workers=2) as server:
        token = _log_in(server.url)
        # /auth/me also reads the user through the ORM's pooled connections.
        assert _statuses(server.url, "/auth/me", token) == [200] * 30
        with _username_widened(pg):
            assert _statuses(server.url, "/auth/me", token) == [200] * 30


@pytest.mark.slow
def test_a_migration_under_running_workers_never_breaks_logging_in(pg, gunicorn):
    body = {"username": "testuser", "password": "testpass"}
    with gunicorn(workers=2) as server:
        _log_in(server.url)

        def statuses():
            return [
                requests.post(server.url + "/auth/login", json=body, timeout=10).status_code
                for _ in range(12)
            ]

        assert statuses() == [200] * 12
        with _username_widened(pg):
            assert statuses() == [200] * 12


# An exhausted pool answers 503 at once, not after a hang.


@contextmanager
def _pool_held(app):
    """Hold the pool's only connection, as a long request on another thread would."""
    with app.app_context():
        held = db.engine.connect()
    try:
        yield
    finally:
        held.close()


def _tiny_pool_app(make_app):
    return make_app(DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="1")


def _assert_503_retry_after(response, elapsed: float, output: str):
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json() == {"msg": "Service temporarily unavailable"}
    assert int(response.headers["Retry-After"]) >= 1
    assert "database pool exhausted" in output
    print(f"503 after {elapsed:.2f} s")
    assert elapsed < 10  # DB_POOL_TIMEOUT is 1 s; the old default hung for 30 s


def test_registering_while_the_pool_is_exhausted_answers_503_with_retry_after(make_app, capsys):
    app = _tiny_pool_app(make_app)
    client = app.test_client()
    with _pool_held(app):
        started = time.monotonic()
        response = client.post(
            "/auth/register", json={"username": "testuser", "password": "testpass"}
        )
        _assert_503_retry_after(response, time.monotonic() - started, capsys.readouterr().out)


def test_a_protected_request_while_the_pool_is_exhausted_answers_503_with_retry_after(
    make_app, capsys
):
    app = _tiny_pool_app(make_app)
    client = app.test_client()
    register(client)
    access = login(client)["access_token"]
    app.extensions["session_lookup"].close()  # give back the connection the lookup holds
    with _pool_held(app):
        started = time.monotonic()
        response = client.get("/auth/me", headers=bearer(access))
        _assert_503_retry_after(response, time.monotonic() - started, capsys.readouterr().out)


def test_the_app_answers_again_once_the_pool_has_a_connection_free(make_app):
    app = _tiny_pool_app(make_app)
    client = app.test_client()
    with _pool_held(app):
        body = {"username": "testuser", "password": "testpass"}
        assert client.post("/auth/register", json=body).status_code == 503
    register(client)


# Database errors reach the log by type and SQLSTATE, never with the statement's values.


def _failing_app(make_app):
    app = make_app()
    app.config["TESTING"] = False  # errors are handled (and logged) as in production

    @app.get("/too-long")
    def too_long():
        params = {"u": USERNAME * 10, "h": HASH}
        db.session.execute(INSERT_USER, params)

    @app.get("/duplicate")
    def duplicate():
        params = {"u": USERNAME, "h": HASH}
        db.session.execute(INSERT_USER, params)
        db.session.execute(INSERT_USER, params)

    return app


@pytest.mark.parametrize(
    ("path", "error", "sqlstate"),
    [
        ("/too-long", "StringDataRightTruncation", "22001"),
        # PostgreSQL's text for this one quotes the duplicate value: "Key (...)=(...) exists".
        ("/duplicate", "UniqueViolation", "23505"),
    ],
)
def test_a_failed_statement_is_logged_without_its_values(make_app, capsys, path, error, sqlstate):
    client = _failing_app(make_app).test_client()
    capsys.readouterr()
    response = client.get(path)
    assert response.status_code == 500
    assert response.get_json() == {"msg": "Internal server error"}
    output = capsys.readouterr().out
    for secret in (USERNAME.lower(), "$argon2id$", HASH):
        assert secret not in output.lower()
    errors = [line for line in _lines(output) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert f"{error} (SQLSTATE {sqlstate})" in errors[0]["exception"]


QUOTING_TRIGGER = """
CREATE FUNCTION refuse_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused %', NEW.username USING DETAIL = NEW.password_hash;
END $$;
CREATE TRIGGER refuse_user BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse_user();
"""


def test_a_database_error_quoting_the_values_is_logged_without_them(pg, make_app, capsys):
    app = make_app()
    app.config["TESTING"] = False
    client = app.test_client()
    try:  # registration's INSERT fails, with the username and the hash in the server's text
        pg.psql(QUOTING_TRIGGER, DATABASE)
        capsys.readouterr()
        response = client.post("/auth/register", json={"username": USERNAME, "password": PASSWORD})
    finally:
        pg.psql("DROP FUNCTION IF EXISTS refuse_user() CASCADE", DATABASE)
    assert response.status_code == 500
    assert response.get_json() == {"msg": "Internal server error"}
    output = capsys.readouterr().out
    for secret in (USERNAME, PASSWORD, "$argon2id$"):
        assert secret not in output
    errors = [line for line in _lines(output) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert "RaiseException (SQLSTATE P0001)" in errors[0]["exception"]


# The audit trail does not depend on LOG_LEVEL.


def test_audit_lines_are_written_at_log_level_warning_and_request_lines_are_not(make_app, capsys):
    client = make_app(LOG_LEVEL="WARNING").test_client()
    capsys.readouterr()
    register(client)
    response = client.post("/auth/login", json={"username": "testuser", "password": "wrong"})
    assert response.status_code == 401
    lines = _lines(capsys.readouterr().out)
    audited = {line["event"] for line in lines if line["logger"] == "flask_jwt_api.audit"}
    assert {"register", "login_failure"} <= audited
    assert not [line for line in lines if line["logger"] == "flask_jwt_api.request"]


# A database driver the app does not use is refused at start-up.

PSYCOPG2_URL = "postgresql+psycopg2://user:pass@127.0.0.1:5432/flask_jwt_db"


def test_create_app_refuses_a_driver_that_is_not_installed():
    with pytest.raises(ConfigError, match=r"names the driver 'postgresql\+psycopg2'") as refused:
        create_app({"DATABASE_URL": PSYCOPG2_URL, "JWT_SECRET_KEY": TEST_KEY})
    assert "write postgresql://" in str(refused.value)


@pytest.mark.slow
def test_gunicorn_refuses_to_start_with_a_driver_that_is_not_installed():
    env = {**os.environ, "DATABASE_URL": PSYCOPG2_URL, "JWT_SECRET_KEY": TEST_KEY}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-b", "127.0.0.1:0", "app:create_app()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "names the driver 'postgresql+psycopg2'" in result.stderr + result.stdout
