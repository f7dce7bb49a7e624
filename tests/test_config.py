"""Configuration: read from the environment once, and refused loudly when unsafe."""

import os
import subprocess
import sys

import pytest

from app import create_app
from app.config import ConfigError, Settings, key_id
from tests.conftest import ROOT, TEST_KEY, login, register

URL = "postgresql://user:pass@127.0.0.1:5432/flask_jwt_db"


def _settings(**env):
    return Settings.from_env({"DATABASE_URL": URL, "JWT_SECRET_KEY": TEST_KEY, **env})


def test_the_demos_plain_postgresql_url_works_with_the_pinned_driver():
    app = create_app({"DATABASE_URL": URL, "JWT_SECRET_KEY": TEST_KEY})
    with app.app_context():
        from app.extensions import db

        assert db.engine.dialect.driver == "psycopg"


def test_a_unix_socket_url_works_as_the_single_server_deployment_uses_it(pg, make_app):
    client = make_app(DATABASE_URL=pg.socket_url("flask_jwt_api_test")).test_client()
    register(client)
    access = login(client)["access_token"]
    response = client.get("/protected/dashboard", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 200
    assert client.get("/readyz").status_code == 200


def test_defaults_are_safe():
    settings = _settings()
    assert settings.access_token_seconds == 15 * 60
    assert settings.refresh_token_seconds == 30 * 24 * 3600
    assert settings.max_request_bytes == 16 * 1024
    assert settings.throttle_pair_failures == 5
    assert settings.throttle_account_failures == 100
    assert settings.register_address_limit == 20
    assert settings.sessions_per_user == 100
    assert settings.refresh_reuse_grace == 30
    assert settings.session_max_age == 90 * 24 * 3600


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY is not set"),
        ({"JWT_SECRET_KEY": "supersecretkey"}, "too short"),
        ({"JWT_SECRET_KEY": "x" * 31}, "too short"),
        ({"JWT_SECRET_KEY": "supersecretkey" * 3}, "well-known default 'supersecretkey'"),
        ({"JWT_SECRET_KEY": "changeme-" + "0123456789abcdef" * 2}, "well-known default"),
        ({"JWT_SECRET_KEY": "ab" * 20}, "too repetitive"),
        (
            {"JWT_SECRET_KEY": "", "JWT_SECRET_KEYS": f"{TEST_KEY},short"},
            "JWT_SECRET_KEYS entry 2 is too short",
        ),
        ({"JWT_SECRET_KEY": "", "JWT_SECRET_KEYS": f"{TEST_KEY},{TEST_KEY}"}, "same key twice"),
        ({"JWT_SECRET_KEYS": TEST_KEY.upper()}, "Both JWT_SECRET_KEY and JWT_SECRET_KEYS"),
        ({"DATABASE_URL": ""}, "DATABASE_URL is not set"),
        ({"DATABASE_URL": "sqlite:///x.db"}, "must name a PostgreSQL database"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL is not a valid URL"),
        ({"JWT_ACCESS_TOKEN_EXPIRES": "soon"}, "JWT_ACCESS_TOKEN_EXPIRES must be a whole number"),
        ({"JWT_REFRESH_TOKEN_EXPIRES": "600", "JWT_ACCESS_TOKEN_EXPIRES": "900"}, "longer than"),
        ({"ARGON2_MEMORY_KIB": "1024"}, "ARGON2_MEMORY_KIB must be between 19456"),
        ({"ARGON2_TIME_COST": "1"}, "ARGON2_TIME_COST must be between 2"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
        ({"JWT_DECODE_CACHE_SIZE": "-1"}, "JWT_DECODE_CACHE_SIZE must be between 0"),
        # Every number has an upper bound the code can handle.
        ({"JWT_DECODE_CACHE_SIZE": "1000000"}, "JWT_DECODE_CACHE_SIZE must be between 0 and 65536"),
        ({"LOGIN_THROTTLE_MAX_DELAY": "10000000000000"}, "LOGIN_THROTTLE_MAX_DELAY must be"),
        ({"LOGIN_THROTTLE_BASE_DELAY": "99999999"}, "LOGIN_THROTTLE_BASE_DELAY must be between"),
        ({"LOGIN_THROTTLE_WINDOW": "99999999999"}, "LOGIN_THROTTLE_WINDOW must be between"),
        ({"JWT_ACCESS_TOKEN_EXPIRES": "99999999999"}, "JWT_ACCESS_TOKEN_EXPIRES must be between"),
        ({"LOGIN_THROTTLE_IP_FAILURES": "10" + "0" * 20}, "LOGIN_THROTTLE_IP_FAILURES must be"),
        ({"DB_POOL_TIMEOUT": "0"}, "DB_POOL_TIMEOUT must be between 1"),
        ({"JWT_REFRESH_REUSE_GRACE": "-1"}, "JWT_REFRESH_REUSE_GRACE must be between 0 and 300"),
        ({"JWT_REFRESH_REUSE_GRACE": "soon"}, "JWT_REFRESH_REUSE_GRACE must be a whole number"),
        ({"JWT_SESSION_MAX_AGE": "60"}, "JWT_SESSION_MAX_AGE must be between 3600"),
        (
            {"JWT_SESSION_MAX_AGE": "3600", "JWT_ACCESS_TOKEN_EXPIRES": "3600"},
            "JWT_SESSION_MAX_AGE .3600 s. must be longer than JWT_ACCESS_TOKEN_EXPIRES",
        ),
        # Settings that only make sense together are checked together.
        ({"LOGIN_THROTTLE_BASE_DELAY": "60", "LOGIN_THROTTLE_MAX_DELAY": "30"}, "at least"),
        (
            {"LOGIN_THROTTLE_PAIR_FAILURES": "10", "LOGIN_THROTTLE_ACCOUNT_FAILURES": "10"},
            "must be higher than LOGIN_THROTTLE_PAIR_FAILURES",
        ),
        # The driver must be the pinned one, and installed.
        ({"DATABASE_URL": "postgresql+psycopg2://u:p@h/db"}, "the driver 'postgresql\\+psycopg2'"),
        ({"DATABASE_URL": "postgresql+asyncpg://u:p@h/db"}, "which this app does not use"),
        ({"DB_CONNECT_TIMEOUT": "1"}, "DB_CONNECT_TIMEOUT must be between 2 and 60, not 1"),
        ({"DB_CONNECT_TIMEOUT": "61"}, "DB_CONNECT_TIMEOUT must be between 2 and 60, not 61"),
        ({"DB_CONNECT_TIMEOUT": "3s"}, "DB_CONNECT_TIMEOUT must be a whole number"),
        ({"DB_STATEMENT_TIMEOUT": "0"}, "DB_STATEMENT_TIMEOUT must be between 1 and 300, not 0"),
        ({"DB_STATEMENT_TIMEOUT": "301"}, "DB_STATEMENT_TIMEOUT must be between 1 and 300"),
        ({"DB_STATEMENT_TIMEOUT": "5000ms"}, "DB_STATEMENT_TIMEOUT must be a whole number"),
        (
            {"DATABASE_URL": URL + "?connect_timeout=10"},
            "DATABASE_URL sets connect_timeout, which the app sets from DB_CONNECT_TIMEOUT",
        ),
        ({"DATABASE_URL": URL + "?tcp_user_timeout=9000"}, "DATABASE_URL sets tcp_user_timeout"),
        (
            {"DATABASE_URL": URL + "?options=-c%20statement_timeout%3D0"},
            "DATABASE_URL's options parameter sets statement_timeout, which the app sets from "
            "DB_STATEMENT_TIMEOUT",
        ),
        ({"PGOPTIONS": "--statement-timeout=0"}, "PGOPTIONS sets statement_timeout"),
    ],
)
def test_unsafe_settings_are_refused_with_a_sentence_saying_what_to_set(env, sentence):
    with pytest.raises(ConfigError, match=sentence):
        _settings(**env)


def test_a_keyring_signs_with_the_first_key_and_verifies_with_all():
    other = "another-signing-key-fedcba9876543210-fedcba9876543210"
    settings = _settings(JWT_SECRET_KEY="", JWT_SECRET_KEYS=f" {other} , {TEST_KEY} ")
    assert [key.kid for key in settings.signing_keys] == [key_id(other), key_id(TEST_KEY)]


def test_the_key_id_does_not_reveal_the_key():
    assert TEST_KEY not in key_id(TEST_KEY)
    assert len(key_id(TEST_KEY)) == 16


@pytest.mark.slow
@pytest.mark.parametrize("weak", ["supersecretkey", ""])
def test_gunicorn_refuses_to_start_with_a_weak_or_missing_key(weak):
    env = {**os.environ, "DATABASE_URL": URL, "JWT_SECRET_KEY": weak}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-b", "127.0.0.1:0", "app:create_app()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "JWT_SECRET_KEY is" in result.stderr + result.stdout


def test_the_flask_cli_refuses_to_start_with_a_weak_key():
    env = {**os.environ, "DATABASE_URL": URL, "JWT_SECRET_KEY": "supersecretkey"}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "prune-tokens"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "JWT_SECRET_KEY is too short" in result.stderr
