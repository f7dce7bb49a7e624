"""`flask --app app check-config`: before a switch, the new release checked against the new
environment, as the operator runs it (a subprocess from the repository root)."""

import os
import subprocess
import sys
import time

import psycopg
import pytest
from alembic.script import ScriptDirectory

from app import MIGRATIONS_DIR
from tests.conftest import ROOT, SilentDatabase, free_port

DATABASE = "flask_jwt_api_test"
ROLE = "check_config_role"
PASSWORD = "right-password-3f9a7c"
WRONG_PASSWORD = "wrong-password-5e2d81"
HEAD = ", ".join(sorted(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()))


def _check_config(env: dict, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "check-config"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return result, time.monotonic() - started


@pytest.fixture(scope="module")
def password_role(pg, base_env):
    """A role that logs in over TCP with a password (scram-sha-256); the test server trusts every
    other login. The rule and the role are removed afterwards."""
    hba = pg.data / "pg_hba.conf"
    original = hba.read_text()
    pg.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
    pg.psql(f"GRANT SELECT ON alembic_version TO {ROLE}", DATABASE)
    try:
        hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n{original}")
        pg.psql("SELECT pg_reload_conf()")
        _wait_until_password_is_required(pg)
        yield lambda password: f"postgresql://{ROLE}:{password}@127.0.0.1:{pg.port}/{DATABASE}"
    finally:
        hba.write_text(original)
        pg.psql("SELECT pg_reload_conf()")
        pg.psql(f"REVOKE ALL ON alembic_version FROM {ROLE}", DATABASE)
        pg.psql(f"DROP ROLE {ROLE}")


def _wait_until_password_is_required(pg):
    """The postmaster reloads pg_hba.conf on its own time: wait until a wrong password fails."""
    deadline = time.monotonic() + 10
    url = f"postgresql://{ROLE}:{WRONG_PASSWORD}@127.0.0.1:{pg.port}/{DATABASE}"
    while time.monotonic() < deadline:
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError:
            return
        time.sleep(0.1)
    raise AssertionError("pg_hba.conf was not reloaded within 10 s")


def _output(result) -> str:
    return result.stdout + result.stderr


def test_a_good_configuration_passes_and_names_the_schema_revision(base_env, password_role):
    result, elapsed = _check_config({**base_env, "DATABASE_URL": password_role(PASSWORD)})
    print(f"check-config took {elapsed:.2f} s")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"configuration OK; database answers; schema at revision {HEAD} (head: {HEAD})\n"
    )
    assert PASSWORD not in _output(result)


def test_a_weak_key_fails_with_the_sentence_and_without_the_key(base_env):
    weak = "short-k3y-x9"
    result, _ = _check_config({**base_env, "JWT_SECRET_KEY": weak})
    assert result.returncode != 0
    assert "Error: JWT_SECRET_KEY is too short: use at least 32 random bytes" in result.stderr
    assert "Traceback" not in result.stderr  # one sentence for the operator
    assert weak not in _output(result)


def test_a_bad_setting_fails_with_its_sentence(base_env):
    result, _ = _check_config({**base_env, "DB_STATEMENT_TIMEOUT": "0"})
    assert result.returncode != 0
    assert "Error: DB_STATEMENT_TIMEOUT must be between 1 and 300, not 0." in result.stderr


def test_a_wrong_database_password_fails_saying_so_without_printing_it(base_env, password_role):
    result, _ = _check_config({**base_env, "DATABASE_URL": password_role(WRONG_PASSWORD)})
    assert result.returncode != 0
    assert "authentication failed: check the user and password in DATABASE_URL" in result.stderr
    assert f"postgresql://{ROLE}:***@127.0.0.1" in result.stderr
    for password in (WRONG_PASSWORD, PASSWORD):
        assert password not in _output(result)


def test_an_unreachable_database_fails_within_the_connect_timeout(base_env):
    with SilentDatabase() as silent:
        result, elapsed = _check_config(
            {**base_env, "DATABASE_URL": silent.url, "DB_CONNECT_TIMEOUT": "2"}
        )
    print(f"check-config gave up after {elapsed:.2f} s (interpreter start-up included)")
    assert result.returncode != 0
    assert "the database did not answer within DB_CONNECT_TIMEOUT (2 s)" in result.stderr
    assert "nothing" not in _output(result)  # the URL's password
    assert elapsed < 2 + 8  # the connect timeout, and the interpreter's start-up


def test_a_refused_connection_fails_as_unreachable(base_env):
    closed = f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere"
    result, _ = _check_config({**base_env, "DATABASE_URL": closed})
    assert result.returncode != 0
    assert "the database is unreachable" in result.stderr


def _database_at(pg, revision: str | None) -> str:
    """A database whose schema is at `revision` (None: never migrated)."""
    name = "flask_jwt_api_check_config"
    pg.psql(f"DROP DATABASE IF EXISTS {name}")
    pg.psql(f"CREATE DATABASE {name}")
    if revision:
        pg.psql("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)", name)
        pg.psql(f"INSERT INTO alembic_version VALUES ('{revision}')", name)  # noqa: S608
    return pg.url(name)


@pytest.mark.parametrize(
    ("revision", "schema"),
    [
        # Before the switch the new release's migrations are pending: reported, not refused.
        (None, f"schema not migrated (head: {HEAD}): run `flask --app app db upgrade`"),
        ("0001", f"schema at revision 0001 (head: {HEAD}): run `flask --app app db upgrade`"),
        # After a rollback the previous release runs on the newer schema.
        ("9999_newer", f"schema at revision 9999_newer (head: {HEAD}), newer than this release"),
    ],
    ids=["not migrated", "behind the head", "newer than the head"],
)
def test_a_schema_not_at_this_releases_head_is_reported(pg, base_env, revision, schema):
    result, _ = _check_config({**base_env, "DATABASE_URL": _database_at(pg, revision)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"configuration OK; database answers; {schema}\n"
