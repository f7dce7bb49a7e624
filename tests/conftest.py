"""Fixtures: one real PostgreSQL server per test session, a clean database for every test, the app,
its test client, and real gunicorn servers for the tests that need several processes."""

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote_plus

import jwt as pyjwt
import pytest
import requests
from flask_migrate import upgrade

from app import create_app
from app.config import key_id
from app.extensions import db
from tests.pgserver import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "test-signing-key-0123456789abcdef-0123456789abcdef"
# RFC 8032's first Ed25519 test vector, whose JWK thumbprint RFC 8037 A.3 gives.
ED25519_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
ED25519_KEY = f"ed25519:{ED25519_SEED}"
# The introspection client every test app knows (JWT_INTROSPECTION_CLIENTS).
INTROSPECTION_CLIENT = ("resource-server", "introspection-secret-0123456789abcdef")
TABLES = "users, login_sessions, login_throttle"


@pytest.fixture(scope="session")
def pg():
    server = PostgresServer().start()
    server.psql("CREATE DATABASE flask_jwt_api_test")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_env(pg):
    env = {
        "DATABASE_URL": pg.url("flask_jwt_api_test"),
        "JWT_SECRET_KEY": TEST_KEY,
        "JWT_INTROSPECTION_CLIENTS": ":".join(INTROSPECTION_CLIENT),
        "LOG_LEVEL": "INFO",
    }
    app = create_app(env)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return env


@pytest.fixture
def database(pg, base_env):
    """Every test that uses the database starts from empty tables at the migration head."""
    pg.psql(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE", "flask_jwt_api_test")
    return pg


@pytest.fixture
def make_app(database, base_env):
    """Build an app with settings overridden, e.g. make_app(LOGIN_THROTTLE_ACCOUNT_FAILURES="2")."""
    apps = []

    def make(**overrides):
        app = create_app({**base_env, **overrides})
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["session_lookup"].close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def eddsa_client(make_app):
    """A client of an app whose keyring is one Ed25519 key (EdDSA tokens)."""
    return make_app(JWT_SECRET_KEY=ED25519_KEY).test_client()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def basic(client_id: str, secret: str) -> dict:
    """HTTP Basic credentials as RFC 6749 2.3.1 sends a client's: each part form-urlencoded."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def claims_of(token: str) -> dict:
    """A token's claims, read without checking it (for building variants of a real token)."""
    return pyjwt.decode(token, options={"verify_signature": False})


def sign(claims: dict, key: str = TEST_KEY, algorithm: str = "HS256", **headers) -> str:
    """A token signed with `key` (the test key by default), carrying that key's `kid`."""
    return pyjwt.encode(claims, key, algorithm=algorithm, headers={"kid": key_id(key), **headers})


def register(client, username="testuser", password="testpass"):
    response = client.post("/auth/register", json={"username": username, "password": password})
    assert response.status_code == 201, response.get_json()
    return response


def login(client, username="testuser", password="testpass") -> dict:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def tokens(client):
    """A registered testuser and the token pair of one login."""
    register(client)
    return login(client)


def simultaneously(calls) -> list:
    """Run each call on its own thread, released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index):
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SilentDatabase:
    """A loopback TCP listener that accepts connections and never answers, as a hung database host
    does: `with SilentDatabase() as silent: ... silent.url ... silent.accepted`. Its thread accepts
    for `seconds` at most; every connection and the listener are closed on leaving."""

    def __init__(self, seconds: float = 60):
        self.seconds = seconds
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self.url = f"postgresql://nobody:nothing@127.0.0.1:{self._server.getsockname()[1]}/nowhere"

    @property
    def accepted(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self._held.append(self._server.accept()[0])
            except TimeoutError:
                continue

    def __enter__(self) -> "SilentDatabase":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()
        self._server.close()


class Gunicorn:
    """A real gunicorn serving the app on loopback, in its own process group."""

    def __init__(self, env: dict, log_path: Path, workers: int = 4):
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> "Gunicorn":
        self.log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(self.workers),
             "-b", f"127.0.0.1:{self.port}", "app:create_app()"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"gunicorn exited during start-up; see {self.log_path}")
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()  # never leave a server behind
        raise AssertionError("gunicorn did not answer within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def gunicorn(database, base_env, tmp_path):
    """Start gunicorn servers on the test database: `with gunicorn(workers=4) as server:`."""

    @contextmanager
    def run(workers: int = 4, **overrides):
        server = Gunicorn({**base_env, **overrides}, tmp_path / "gunicorn.log", workers).start()
        try:
            yield server
        finally:
            server.stop()

    return run
