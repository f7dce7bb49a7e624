"""A database that does not answer: every route answers JSON 503 with Retry-After within a few
seconds instead of hanging until gunicorn kills the worker, and the log line says that the database
did not answer in time (DB_CONNECT_TIMEOUT, DB_STATEMENT_TIMEOUT)."""

import json
import threading
import time
import uuid
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest
import requests
from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app, tokens
from app.config import Settings
from app.extensions import db
from tests.conftest import TEST_KEY, SilentDatabase, bearer, login, register

DATABASE = "flask_jwt_api_test"
BODY = {"username": "testuser", "password": "testpass"}
# Generous: the timeouts below are 1 and 2 s; before them these requests hung for 130 s (psycopg's
# own connect limit) or for as long as the lock was held, and gunicorn killed the worker at 30 s.
BOUND_SECONDS = 10
CANCELLED = "canceling statement due to statement timeout"


def _errors(output: str) -> list[str]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line["message"] for line in lines if line["level"] == "ERROR"]


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _assert_unavailable(response, elapsed: float):
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json() == {"msg": "Service temporarily unavailable"}
    assert int(response.headers["Retry-After"]) >= 1
    print(f"503 after {elapsed:.2f} s")
    assert elapsed < BOUND_SECONDS


# Settings.


def test_the_timeouts_default_to_a_few_seconds_and_reach_the_driver():
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://u:p@127.0.0.1/db", "JWT_SECRET_KEY": TEST_KEY}
    )
    assert (settings.db_connect_timeout, settings.db_statement_timeout) == (3, 5)
    assert settings.flask_config()["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {
        "connect_timeout": 3,
        "tcp_user_timeout": 3000,
        "options": "-c statement_timeout=5000",
    }


def _with_options(url: str, options: str) -> str:
    return url + ("&" if "?" in url else "?") + "options=" + quote(options)


@pytest.mark.parametrize("over", ["tcp", "unix socket"])
def test_the_statement_timeout_reaches_the_server_alongside_the_urls_own_options(
    pg, make_app, over
):
    url = pg.url(DATABASE) if over == "tcp" else pg.socket_url(DATABASE)
    app = make_app(DATABASE_URL=_with_options(url, "-c work_mem=5MB"), DB_STATEMENT_TIMEOUT="7")
    with app.app_context():
        shown = db.session.execute(text("SHOW statement_timeout")).scalar()
        assert shown == "7s"
        # The URL's own server options are kept, not replaced by the app's.
        assert db.session.execute(text("SHOW work_mem")).scalar() == "5MB"
        db.session.rollback()


# The connect timeout: a host that accepts connections and never answers.


def _requests(client, access: str):
    return {
        "login": lambda: client.post("/auth/login", json=BODY),
        "register": lambda: client.post("/auth/register", json=BODY),
        "protected": lambda: client.get("/protected/dashboard", headers=bearer(access)),
        "logout": lambda: client.post("/auth/logout", headers=bearer(access)),
    }


@pytest.mark.parametrize("route", ["login", "register", "protected", "logout"])
def test_a_database_that_never_answers_gets_a_503_within_the_connect_timeout(
    make_app, capsys, route
):
    with SilentDatabase() as silent:
        app = make_app(DATABASE_URL=silent.url, DB_CONNECT_TIMEOUT="2")
        with app.app_context():  # a well-formed token: the login lookup is what waits
            access = tokens.codec().encode(1, uuid.uuid4(), tokens.ACCESS, "jti", 900)
        capsys.readouterr()
        response, elapsed = _timed(_requests(app.test_client(), access)[route])
        _assert_unavailable(response, elapsed)
        # One attempt: the login lookup does not retry a timeout, which would double the wait.
        assert silent.accepted == 1
    assert _errors(capsys.readouterr().out) == [
        "database did not answer in time: no connection within DB_CONNECT_TIMEOUT (2 s): "
        "ConnectionTimeout"
    ]


# The statement timeout: a statement waiting behind a lock.


@contextmanager
def _users_locked(pg):
    """Another connection holds an exclusive lock on `users` until the block ends."""
    locker = psycopg.connect(pg.url(DATABASE), connect_timeout=5, options="-c lock_timeout=5000")
    try:
        locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        locker.rollback()
        locker.close()


def _server_log(pg) -> str:
    return (pg.root / "log").read_text()


def test_registering_behind_a_lock_answers_503_after_the_statement_timeout(pg, make_app, capsys):
    client = make_app(DB_STATEMENT_TIMEOUT="1").test_client()
    capsys.readouterr()
    with _users_locked(pg):
        response, elapsed = _timed(lambda: client.post("/auth/register", json=BODY))
    _assert_unavailable(response, elapsed)
    assert _errors(capsys.readouterr().out) == [
        "database did not answer in time: statement cancelled after DB_STATEMENT_TIMEOUT (1 s): "
        "QueryCanceled (SQLSTATE 57014)"
    ]
    # Once the lock is released the app answers normally, on the same pool.
    register(client)
    login(client)


def test_a_protected_request_behind_a_lock_answers_503_without_a_second_wait(pg, make_app, capsys):
    client = make_app(DB_STATEMENT_TIMEOUT="1").test_client()
    register(client)
    access = login(client)["access_token"]
    assert client.get("/protected/dashboard", headers=bearer(access)).status_code == 200
    logged_before = len(_server_log(pg))
    capsys.readouterr()
    with _users_locked(pg):
        response, elapsed = _timed(
            lambda: client.get("/protected/dashboard", headers=bearer(access))
        )
    _assert_unavailable(response, elapsed)
    # The login lookup ran once: a cancelled statement is not retried.
    assert _server_log(pg)[logged_before:].count(CANCELLED) == 1
    assert _errors(capsys.readouterr().out) == [
        "database did not answer in time: statement cancelled after DB_STATEMENT_TIMEOUT (1 s): "
        "QueryCanceled (SQLSTATE 57014)"
    ]
    # The lookup's connection was kept and answers again once the lock is released.
    assert client.get("/protected/dashboard", headers=bearer(access)).status_code == 200


# Migrations are not limited by the statement timeout.


def test_a_migration_waiting_longer_than_the_statement_timeout_still_completes(pg, base_env):
    name = "flask_jwt_api_slow_migration"
    pg.psql(f"DROP DATABASE IF EXISTS {name}")
    pg.psql(f"CREATE DATABASE {name}")
    app = create_app({**base_env, "DATABASE_URL": pg.url(name), "DB_STATEMENT_TIMEOUT": "1"})
    try:
        with app.app_context():
            upgrade(revision="0001")
            db.engine.dispose()
            locker = psycopg.connect(pg.url(name), connect_timeout=5)
            locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            release = threading.Timer(2.5, locker.rollback)  # the next migration alters users
            release.start()
            try:
                started = time.monotonic()
                upgrade()
                waited = time.monotonic() - started
            finally:
                release.join(timeout=10)
                locker.close()
            assert db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
            db.session.rollback()
    finally:
        with app.app_context():
            db.engine.dispose()
        pg.psql(f"DROP DATABASE IF EXISTS {name}")
    print(f"the migration waited {waited:.1f} s behind the lock")
    assert waited >= 1  # longer than DB_STATEMENT_TIMEOUT, and it was not cancelled


# Under gunicorn, as reported: a JSON 503 from the app, not gunicorn's HTML 500 after 30 s.


@pytest.mark.slow
def test_gunicorn_answers_a_json_503_when_the_database_never_answers(gunicorn):
    with SilentDatabase() as silent, gunicorn(workers=1, DATABASE_URL=silent.url) as server:
        started = time.monotonic()
        response = requests.post(server.url + "/auth/login", json=BODY, timeout=30)
        elapsed = time.monotonic() - started
        log = server.log_path.read_text()
    print(f"{response.status_code} after {elapsed:.2f} s")
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"msg": "Service temporarily unavailable"}
    assert int(response.headers["Retry-After"]) >= 1
    assert elapsed < BOUND_SECONDS
    assert "WORKER TIMEOUT" not in log
    assert "no connection within DB_CONNECT_TIMEOUT (3 s): ConnectionTimeout" in log
