"""Revocation holds on every worker from the moment logout returns, and across restarts."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import LoginSession, LoginThrottle
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _walk_to_logout(url: str) -> dict:
    requests.post(
        url + "/auth/register", json={"username": "testuser", "password": "testpass"}, timeout=10
    )
    pair = requests.post(
        url + "/auth/login", json={"username": "testuser", "password": "testpass"}, timeout=10
    ).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    # Used on the workers first, so they hold it in their verified-token caches when it is revoked.
    assert _statuses(url, pair["access_token"]) == [200] * 12
    logout = requests.post(url + "/auth/logout", headers=headers, timeout=10)
    assert logout.json() == {"msg": "Successfully logged out"}
    return pair


def _statuses(url: str, token: str, count: int = 12) -> list[int]:
    headers = {"Authorization": f"Bearer {token}"}
    # A new connection per request, so that gunicorn spreads them over its workers.
    return [
        requests.get(url + "/protected/dashboard", headers=headers, timeout=10).status_code
        for _ in range(count)
    ]


def test_a_logged_out_token_is_refused_by_every_worker(gunicorn):
    with gunicorn(workers=4) as server:
        pair = _walk_to_logout(server.url)
        assert _statuses(server.url, pair["access_token"]) == [401] * 12


def test_a_logout_is_seen_by_a_second_app_process(gunicorn):
    with gunicorn(workers=2) as first, gunicorn(workers=2) as second:
        pair = _walk_to_logout(first.url)
        assert _statuses(second.url, pair["access_token"]) == [401] * 12
        refresh = requests.post(
            second.url + "/auth/refresh",
            headers={"Authorization": f"Bearer {pair['refresh_token']}"},
            timeout=10,
        )
        assert refresh.status_code == 401


def test_a_logged_out_token_stays_refused_after_a_restart(gunicorn):
    with gunicorn(workers=4) as server:
        pair = _walk_to_logout(server.url)
        server.stop()
        server.start()
        assert _statuses(server.url, pair["access_token"]) == [401] * 12
        relogin = requests.post(
            server.url + "/auth/login",
            json={"username": "testuser", "password": "testpass"},
            timeout=10,
        )
        assert relogin.status_code == 200


def test_refresh_reuse_is_detected_across_processes(gunicorn):
    strict = {"JWT_REFRESH_REUSE_GRACE": "0"}
    with gunicorn(workers=2, **strict) as first, gunicorn(workers=2, **strict) as second:
        requests.post(
            first.url + "/auth/register",
            json={"username": "testuser", "password": "testpass"},
            timeout=10,
        )
        pair = requests.post(
            first.url + "/auth/login",
            json={"username": "testuser", "password": "testpass"},
            timeout=10,
        ).json()
        stolen = {"Authorization": f"Bearer {pair['refresh_token']}"}
        fresh = requests.post(first.url + "/auth/refresh", headers=stolen, timeout=10).json()
        assert (
            requests.post(second.url + "/auth/refresh", headers=stolen, timeout=10).status_code
            == 401
        )
        assert _statuses(first.url, fresh["access_token"], 4) == [401] * 4


def _prune(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "prune-tokens"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_prune_tokens_deletes_only_expired_logins_and_stale_counters(app, client, base_env, tokens):
    client.post("/auth/login", json={"username": "testuser", "password": "testpass"})
    long_ago = datetime.now(UTC) - timedelta(days=60)
    with app.app_context():
        first = db.session.execute(select(LoginSession.id).limit(1)).scalar_one()
        db.session.execute(
            update(LoginSession).where(LoginSession.id == first).values(expires_at=long_ago)
        )
        db.session.add(LoginThrottle(key="account:old", failures=3, last_failure_at=long_ago))
        db.session.add(
            LoginThrottle(key="account:new", failures=3, last_failure_at=datetime.now(UTC))
        )
        db.session.commit()
    result = _prune(base_env)
    assert result.returncode == 0, result.stderr
    assert "pruned 1 expired logins and 1 throttle counters" in result.stdout
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(LoginSession)).scalar_one() == 1
        keys = set(db.session.execute(select(LoginThrottle.key)).scalars())
        # The recent counters stay, the login's own among them (its pair is now a known one).
        assert "account:old" not in keys
        assert {"account:new", "pair:testuser|127.0.0.1", "account:testuser"} <= keys


def test_a_token_of_a_pruned_login_is_still_refused(app, client, base_env, tokens):
    client.post("/auth/logout", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    with app.app_context():
        db.session.execute(update(LoginSession).values(expires_at=datetime.now(UTC)))
        db.session.commit()
    assert _prune(base_env).returncode == 0
    response = client.get(
        "/protected/dashboard", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 401
