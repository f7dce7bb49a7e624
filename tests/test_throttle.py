"""Login throttling: kept in PostgreSQL, shared by every app instance, reset by a success."""

from sqlalchemy import update

from app.extensions import db
from app.models import LoginThrottle
from tests.conftest import login, register


def _fail(client, username="testuser"):
    return client.post("/auth/login", json={"username": username, "password": "wrongpass"})


def test_five_failures_for_an_account_then_429_with_retry_after(client):
    register(client)
    for _ in range(5):
        assert _fail(client).status_code == 401
    response = _fail(client)
    assert response.status_code == 429
    assert response.mimetype == "application/json"
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    # The right password is refused too while the account is blocked.
    right = client.post("/auth/login", json={"username": "testuser", "password": "testpass"})
    assert right.status_code == 429


def test_the_block_lasts_longer_with_each_further_failure(app, client):
    register(client)
    for _ in range(5):
        _fail(client)
    first = int(_fail(client).headers["Retry-After"])
    with app.app_context():  # let the block lapse, as if its time had passed
        db.session.execute(update(LoginThrottle).values(blocked_until=None))
        db.session.commit()
    assert _fail(client).status_code == 401
    second = int(_fail(client).headers["Retry-After"])
    assert second > first


def test_a_success_resets_the_accounts_counter(client):
    register(client)
    for _ in range(4):
        _fail(client)
    login(client)
    for _ in range(4):
        assert _fail(client).status_code == 401
    login(client)


def test_unknown_accounts_are_throttled_like_known_ones(client):
    for _ in range(5):
        assert _fail(client, "ghost").status_code == 401
    assert _fail(client, "ghost").status_code == 429


def test_throttling_an_account_ignores_the_names_case(client):
    register(client)
    for name in ("testuser", "TestUser", "TESTUSER", "testUSER", "Testuser"):
        _fail(client, name)
    assert _fail(client).status_code == 429


def test_one_client_address_is_throttled_across_accounts(make_app):
    client = make_app(LOGIN_THROTTLE_IP_FAILURES="6").test_client()
    for number in range(6):
        assert _fail(client, f"user{number}").status_code == 401
    response = _fail(client, "someone-else")
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_throttling_holds_across_two_app_instances(make_app):
    first = make_app().test_client()
    second = make_app().test_client()
    register(first)
    for client in (first, second, first, second, first):
        assert _fail(client).status_code == 401
    assert _fail(second).status_code == 429
    assert _fail(first).status_code == 429


def test_throttling_survives_a_restart(make_app):
    before = make_app().test_client()
    register(before)
    for _ in range(5):
        _fail(before)
    after = make_app().test_client()  # a fresh process has no memory but the database's
    assert _fail(after).status_code == 429


def test_thresholds_are_configurable(make_app):
    client = make_app(
        LOGIN_THROTTLE_ACCOUNT_FAILURES="2", LOGIN_THROTTLE_BASE_DELAY="7"
    ).test_client()
    register(client)
    _fail(client)
    _fail(client)
    response = _fail(client)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 7


def test_registration_is_not_throttled_by_default(client):
    for number in range(30):
        response = client.post(
            "/auth/register", json={"username": f"user{number}", "password": "testpass"}
        )
        assert response.status_code == 201


def test_registration_can_be_throttled_per_address(make_app):
    client = make_app(REGISTER_THROTTLE_ADDRESS_LIMIT="3").test_client()
    for number in range(3):
        register(client, f"user{number}")
    response = client.post("/auth/register", json={"username": "user9", "password": "testpass"})
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_a_wrong_current_password_counts_towards_the_accounts_throttle(client):
    register(client)
    access = login(client)["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    body = {"current_password": "wrongpass", "new_password": "brand-new-pass"}
    for _ in range(5):
        assert client.post("/auth/password", headers=headers, json=body).status_code == 403
    assert client.post("/auth/password", headers=headers, json=body).status_code == 429
    assert _fail(client).status_code == 429
