"""Passwords: argon2id at OWASP's parameters, rehashing, the demo's hashes upgraded in place."""

import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import User
from app.passwords import Passwords
from tests.conftest import login, register


def _stored_hash(app, username="testuser") -> str:
    with app.app_context():
        return db.session.execute(
            select(User.password_hash).where(User.username == username)
        ).scalar_one()


def test_passwords_are_hashed_with_argon2id_at_owasp_parameters(app, client):
    register(client)
    params = extract_parameters(_stored_hash(app))
    assert params.type is Type.ID
    assert params.memory_cost >= 19 * 1024
    assert params.time_cost >= 2
    assert params.parallelism == 1


def test_a_login_rehashes_when_the_parameters_change(app, client, make_app):
    register(client)
    stronger = make_app(ARGON2_TIME_COST="3")
    login(stronger.test_client())
    assert extract_parameters(_stored_hash(app)).time_cost == 3
    login(client)  # the old parameters still verify the new hash, and rehash back
    assert extract_parameters(_stored_hash(app)).time_cost == 2


def _insert_demo_user(app, password_hash: str) -> None:
    with app.app_context():
        db.session.add(User(username="testuser", password_hash=password_hash))
        db.session.commit()


def test_a_demo_scrypt_hash_still_verifies_and_is_upgraded_to_argon2id(app, client):
    _insert_demo_user(app, generate_password_hash("testpass", method="scrypt"))
    login(client)
    assert _stored_hash(app).startswith("$argon2id$")
    login(client)


def test_a_demo_pbkdf2_hash_still_verifies_and_is_upgraded_to_argon2id(app, client):
    _insert_demo_user(app, generate_password_hash("testpass", method="pbkdf2:sha256"))
    login(client)
    assert _stored_hash(app).startswith("$argon2id$")


def test_a_wrong_password_against_a_demo_hash_is_refused_and_not_upgraded(app, client):
    legacy = generate_password_hash("testpass", method="scrypt")
    _insert_demo_user(app, legacy)
    response = client.post("/auth/login", json={"username": "testuser", "password": "wrongpass"})
    assert response.status_code == 401
    assert _stored_hash(app) == legacy


def test_a_corrupt_stored_hash_refuses_the_login_without_an_error(app, client):
    _insert_demo_user(app, "pbkdf2:nonsense$$")
    response = client.post("/auth/login", json={"username": "testuser", "password": "testpass"})
    assert response.status_code == 401


def test_an_unknown_user_costs_one_argon2_verification_at_the_same_parameters(monkeypatch):
    passwords = Passwords(time_cost=2, memory_kib=19 * 1024, parallelism=1)
    real_hash = passwords.hash("testpass")
    calls = []
    original = PasswordHasher.verify

    def counting_verify(self, stored, password):
        calls.append(extract_parameters(stored))
        return original(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    assert passwords.verify(real_hash, "wrongpass") is False
    assert passwords.verify(None, "wrongpass") is False
    assert len(calls) == 2
    assert calls[0] == calls[1]


def test_unicode_passwords_are_normalized(app, client):
    register(client, password="pa\u0073\u0307sword-\u00e9")  # s + combining dot, precomposed é
    login(client, password="pa\u1e61sword-e\u0301")  # precomposed ṡ, e + combining accent


def _wrap(app):
    result = app.test_cli_runner().invoke(args=["wrap-legacy-hashes"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "method", ["scrypt", "pbkdf2:sha256", "pbkdf2:sha256:1000", "scrypt:16384:8:1"]
)
def test_demo_hashes_are_wrapped_in_argon2id_at_rest_and_still_verify(app, client, method):
    legacy = generate_password_hash("testpass", method=method)
    _insert_demo_user(app, legacy)
    assert "wrapped 1 legacy password hashes" in _wrap(app)
    stored = _stored_hash(app)
    assert stored.startswith("wrapped:")
    assert legacy.split("$")[2] not in stored  # nothing of the weak digest is kept
    assert "$argon2id$" in stored
    wrong = client.post("/auth/login", json={"username": "testuser", "password": "wrongpass"})
    assert wrong.status_code == 401
    assert _stored_hash(app) == stored
    login(client)  # the next login replaces it with a plain argon2id hash
    assert _stored_hash(app).startswith("$argon2id$")
    login(client)


def test_wrapping_again_changes_nothing(app):
    _insert_demo_user(app, generate_password_hash("testpass", method="pbkdf2:sha256:1000"))
    _wrap(app)
    stored = _stored_hash(app)
    assert "wrapped 0 legacy password hashes" in _wrap(app)
    assert _stored_hash(app) == stored


def test_wrapping_leaves_argon2id_and_corrupt_hashes_alone(app, client):
    register(client)
    _insert_demo_user_named(app, "broken", "pbkdf2:nonsense")
    before = _stored_hash(app)
    assert "wrapped 0 legacy password hashes" in _wrap(app)
    assert _stored_hash(app) == before
    assert _stored_hash(app, "broken") == "pbkdf2:nonsense"


def _insert_demo_user_named(app, username: str, password_hash: str) -> None:
    with app.app_context():
        db.session.add(User(username=username, password_hash=password_hash))
        db.session.commit()
