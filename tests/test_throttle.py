"""Throttling: per (account, address) pair first, per account only for distributed guessing, per
address for spraying; reserved before the password is checked; kept in PostgreSQL."""

import functools
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, text, update

from app.extensions import db
from app.models import LoginThrottle
from tests.conftest import bearer, login, register, simultaneously


def _attempt(client, username="testuser", password="wrongpass", address=None):
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post(
        "/auth/login", json={"username": username, "password": password}, headers=headers
    )


def _shift_back(app, seconds: int) -> None:
    """Move every counter into the past, as if `seconds` had gone by."""
    with app.app_context():
        db.session.execute(
            update(LoginThrottle).values(
                last_failure_at=LoginThrottle.last_failure_at - timedelta(seconds=seconds),
                blocked_until=LoginThrottle.blocked_until - timedelta(seconds=seconds),
            )
        )
        db.session.commit()


@pytest.fixture
def proxied(make_app):
    """An app behind one proxy, so each test can speak from several client addresses."""
    app = make_app(PROXY_FIX_X_FOR="1")
    return app, app.test_client()


def test_five_failures_from_one_address_block_that_pair_with_retry_after(client):
    register(client)
    for _ in range(5):
        assert _attempt(client).status_code == 401
    response = _attempt(client)
    assert response.status_code == 429
    assert response.mimetype == "application/json"
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    # The right password is refused too while the pair is blocked.
    assert _attempt(client, password="testpass").status_code == 429


def test_an_attacker_cannot_lock_the_owner_out_from_another_address(proxied):
    _app, client = proxied
    register(client)
    for _ in range(20):
        _attempt(client, address="203.0.113.66")
    assert _attempt(client, address="203.0.113.66").status_code == 429
    owner = _attempt(client, password="testpass", address="198.51.100.7")
    assert owner.status_code == 200


def test_guessing_from_many_addresses_hits_the_much_higher_account_limit(make_app):
    client = make_app(
        PROXY_FIX_X_FOR="1", LOGIN_THROTTLE_PAIR_FAILURES="3", LOGIN_THROTTLE_ACCOUNT_FAILURES="12"
    ).test_client()
    register(client)
    for number in range(12):
        assert _attempt(client, address=f"203.0.113.{number}").status_code == 401
    assert _attempt(client, address="203.0.113.200").status_code == 429


def test_one_address_spraying_many_accounts_is_blocked(make_app):
    client = make_app(PROXY_FIX_X_FOR="1", LOGIN_THROTTLE_IP_FAILURES="6").test_client()
    for number in range(6):
        assert _attempt(client, f"user{number}", address="203.0.113.9").status_code == 401
    response = _attempt(client, "someone-else", address="203.0.113.9")
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    assert _attempt(client, "someone-else", address="203.0.113.10").status_code == 401


def test_a_user_who_logged_in_from_an_address_before_is_not_blocked_by_spraying_from_it(
    make_app,
):
    client = make_app(PROXY_FIX_X_FOR="1", LOGIN_THROTTLE_IP_FAILURES="6").test_client()
    register(client)
    assert _attempt(client, password="testpass", address="192.0.2.1").status_code == 200
    for number in range(10):
        _attempt(client, f"user{number}", address="192.0.2.1")
    assert _attempt(client, "newcomer", address="192.0.2.1").status_code == 429
    assert _attempt(client, password="testpass", address="192.0.2.1").status_code == 200


def test_the_throttle_key_is_the_forwarded_client_address_behind_a_proxy(make_app):
    app = make_app(PROXY_FIX_X_FOR="1")
    client = app.test_client()
    _attempt(client, address="203.0.113.5")
    with app.app_context():
        keys = set(db.session.execute(select(LoginThrottle.key)).scalars())
    assert "address:203.0.113.5" in keys
    assert "pair:testuser|203.0.113.5" in keys
    assert not any("127.0.0.1" in key for key in keys)


def test_the_block_lasts_longer_with_each_further_failure(app, client):
    register(client)
    for _ in range(5):
        _attempt(client)
    first = int(_attempt(client).headers["Retry-After"])
    _shift_back(app, first)  # the block lapses
    assert _attempt(client).status_code == 401
    second = int(_attempt(client).headers["Retry-After"])
    assert second > first


def test_escalation_never_resets_while_the_attacker_keeps_going(make_app):
    # The longest block equals the window: once it ends, the next guess must not start over.
    app = make_app(
        LOGIN_THROTTLE_BASE_DELAY="60", LOGIN_THROTTLE_MAX_DELAY="60", LOGIN_THROTTLE_WINDOW="60"
    )
    client = app.test_client()
    register(client)
    for _ in range(5):
        assert _attempt(client).status_code == 401
    for _ in range(3):
        _shift_back(app, 61)  # the block is over, and the last failure is older than the window
        assert _attempt(client).status_code == 401  # one guess per block ...
        assert _attempt(client).status_code == 429  # ... and the next is blocked again


def test_a_whole_quiet_window_after_the_block_forgets_the_counter(make_app):
    app = make_app(LOGIN_THROTTLE_WINDOW="60")
    client = app.test_client()
    register(client)
    for _ in range(5):
        _attempt(client)
    _shift_back(app, 30 + 61)  # the 30 s block, then a whole window without attempts
    for _ in range(5):
        assert _attempt(client).status_code == 401


def test_a_success_gives_the_pairs_attempts_back(client):
    register(client)
    for _ in range(4):
        _attempt(client)
    login(client)
    for _ in range(4):
        assert _attempt(client).status_code == 401
    login(client)


def test_unknown_accounts_are_throttled_like_known_ones(client):
    for _ in range(5):
        assert _attempt(client, "ghost").status_code == 401
    assert _attempt(client, "ghost").status_code == 429


def test_throttling_an_account_ignores_the_names_case(client):
    register(client)
    for name in ("testuser", "TestUser", "TESTUSER", "testUSER", "Testuser"):
        _attempt(client, name)
    assert _attempt(client).status_code == 429


def test_throttling_holds_across_two_app_instances(make_app):
    first = make_app().test_client()
    second = make_app().test_client()
    register(first)
    for client in (first, second, first, second, first):
        assert _attempt(client).status_code == 401
    assert _attempt(second).status_code == 429
    assert _attempt(first).status_code == 429


def test_throttling_survives_a_restart(make_app):
    before = make_app().test_client()
    register(before)
    for _ in range(5):
        _attempt(before)
    after = make_app().test_client()  # a fresh process has no memory but the database's
    assert _attempt(after).status_code == 429


def test_thresholds_are_configurable(make_app):
    client = make_app(LOGIN_THROTTLE_PAIR_FAILURES="2", LOGIN_THROTTLE_BASE_DELAY="7").test_client()
    register(client)
    _attempt(client)
    _attempt(client)
    response = _attempt(client)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 7


def test_a_wrong_current_password_counts_towards_the_throttle(client):
    register(client)
    access = login(client)["access_token"]
    body = {"current_password": "wrongpass", "new_password": "brand-new-pass"}
    for _ in range(5):
        assert client.post("/auth/password", headers=bearer(access), json=body).status_code == 403
    assert client.post("/auth/password", headers=bearer(access), json=body).status_code == 429
    assert _attempt(client).status_code == 429


def test_registration_is_throttled_per_address_by_default(make_app):
    client = make_app(PROXY_FIX_X_FOR="1").test_client()
    for number in range(20):
        response = client.post(
            "/auth/register",
            json={"username": f"user{number}", "password": "testpass"},
            headers={"X-Forwarded-For": "198.51.100.20"},
        )
        assert response.status_code == 201
    refused = client.post(
        "/auth/register",
        json={"username": "user99", "password": "testpass"},
        headers={"X-Forwarded-For": "198.51.100.20"},
    )
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    other = client.post(
        "/auth/register",
        json={"username": "user99", "password": "testpass"},
        headers={"X-Forwarded-For": "198.51.100.21"},
    )
    assert other.status_code == 201


def test_registration_throttling_can_be_turned_off(make_app):
    client = make_app(REGISTER_THROTTLE_ADDRESS_LIMIT="0").test_client()
    for number in range(25):
        register(client, f"user{number}")


def test_live_sessions_per_user_are_capped_oldest_revoked_first(make_app):
    client = make_app(SESSIONS_PER_USER="3").test_client()
    register(client)
    pairs = [login(client) for _ in range(4)]
    me = [client.get("/auth/me", headers=bearer(p["access_token"])).status_code for p in pairs]
    assert me == [401, 200, 200, 200]
    refresh = client.post("/auth/refresh", headers=bearer(pairs[0]["refresh_token"]))
    assert refresh.status_code == 401


@pytest.mark.slow
def test_forty_simultaneous_wrong_passwords_check_at_most_the_threshold(gunicorn):
    with gunicorn(workers=4) as server:
        requests.post(
            server.url + "/auth/register",
            json={"username": "testuser", "password": "testpass"},
            timeout=30,
        )

        def guess(_number):
            return requests.post(
                server.url + "/auth/login",
                json={"username": "testuser", "password": "wrongpass"},
                timeout=60,
            ).status_code

        statuses = simultaneously([functools.partial(guess, number) for number in range(40)])
    assert sorted(set(statuses)) == [401, 429]
    assert statuses.count(401) <= 5


@pytest.mark.slow
def test_simultaneous_guesses_from_many_addresses_stop_at_the_account_limit(gunicorn):
    overrides = {
        "PROXY_FIX_X_FOR": "1",
        "LOGIN_THROTTLE_PAIR_FAILURES": "5",
        "LOGIN_THROTTLE_ACCOUNT_FAILURES": "10",
    }
    with gunicorn(workers=4, **overrides) as server:
        requests.post(
            server.url + "/auth/register",
            json={"username": "testuser", "password": "testpass"},
            timeout=30,
        )

        def guess(number):
            return requests.post(
                server.url + "/auth/login",
                json={"username": "testuser", "password": "wrongpass"},
                headers={"X-Forwarded-For": f"203.0.113.{number}"},
                timeout=60,
            ).status_code

        statuses = simultaneously([functools.partial(guess, number) for number in range(40)])
    assert statuses.count(401) <= 10
    assert statuses.count(429) >= 30


def test_counters_use_one_row_per_key(app, client):
    register(client)
    _attempt(client)
    with app.app_context():
        rows = db.session.execute(text("SELECT key, failures FROM login_throttle")).all()
    assert dict(rows) == {
        "register:127.0.0.1": 1,
        "pair:testuser|127.0.0.1": 1,
        "account:testuser": 1,
        "address:127.0.0.1": 1,
    }
