"""Account changes under concurrency, with real threads on the real PostgreSQL: a password change
is checked against the hash it replaces, and it ends every login made with the old password,
including logins still in flight; a rehash never overwrites a newer hash."""

import threading

import pytest
import requests
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import User
from app.passwords import Passwords
from tests.conftest import bearer, login, register, simultaneously

NEW = "brand-new-pass"


def _stored_hash(app) -> str:
    with app.app_context():
        return db.session.execute(select(User.password_hash)).scalar_one()


def _change(client, access, current="testpass", new=NEW):
    return client.post(
        "/auth/password",
        headers=bearer(access),
        json={"current_password": current, "new_password": new},
    )


class PausedAfterVerify:
    """Makes the next successful password check of `password` wait until released, so another
    request can run in between, as a slow or unlucky worker would."""

    def __init__(self, monkeypatch, password: str):
        self.checked, self.release = threading.Event(), threading.Event()
        real_verify = Passwords.verify

        def verify(passwords, stored_hash, candidate):
            result = real_verify(passwords, stored_hash, candidate)
            if result and candidate == password and not self.checked.is_set():
                self.checked.set()
                assert self.release.wait(30)
            return result

        monkeypatch.setattr(Passwords, "verify", verify)


def _in_thread(call):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("response", call()))
    thread.start()
    return thread, outcome


def test_a_login_checked_before_a_password_change_gets_no_tokens_after_it(app, client, monkeypatch):
    register(client)
    changer = login(client)["access_token"]
    paused = PausedAfterVerify(monkeypatch, "testpass")
    thread, outcome = _in_thread(
        lambda: app.test_client().post(
            "/auth/login", json={"username": "testuser", "password": "testpass"}
        )
    )
    assert paused.checked.wait(30)  # the login has verified the old password ...
    assert _change(client, changer).status_code == 200  # ... and the change commits meanwhile
    paused.release.set()
    thread.join(30)
    assert outcome["response"].status_code == 401
    assert Passwords(2, 19 * 1024, 1).verify(_stored_hash(app), NEW)


def test_a_login_that_rehashes_never_writes_the_old_password_back(app, client, monkeypatch):
    with app.app_context():  # an account from the demo: its first login rehashes
        hashed = generate_password_hash("testpass", method="pbkdf2:sha256:1000")
        db.session.add(User(username="testuser", password_hash=hashed))
        db.session.commit()
    changer = login(client)["access_token"]  # now argon2id; make it legacy again for the race
    with app.app_context():
        db.session.execute(db.update(User).values(password_hash=hashed))
        db.session.commit()
    paused = PausedAfterVerify(monkeypatch, "testpass")
    thread, outcome = _in_thread(
        lambda: app.test_client().post(
            "/auth/login", json={"username": "testuser", "password": "testpass"}
        )
    )
    assert paused.checked.wait(30)
    assert _change(client, changer).status_code == 200
    paused.release.set()
    thread.join(30)
    assert outcome["response"].status_code == 401
    stored = _stored_hash(app)
    assert Passwords(2, 19 * 1024, 1).verify(stored, NEW)
    assert not Passwords(2, 19 * 1024, 1).verify(stored, "testpass")
    assert (
        client.post("/auth/login", json={"username": "testuser", "password": NEW}).status_code
        == 200
    )


def test_a_password_change_in_flight_waits_for_and_is_checked_against_the_first(
    app, client, monkeypatch
):
    register(client)
    first, second = login(client)["access_token"], login(client)["access_token"]
    paused = PausedAfterVerify(monkeypatch, "testpass")
    thread, outcome = _in_thread(lambda: _change(app.test_client(), first))
    assert paused.checked.wait(30)  # the first change has checked the password, holding the row
    paused.release.set()
    late = _change(client, second, new="another-new-pass")
    thread.join(30)
    assert outcome["response"].status_code == 200
    # The second change waited for the first and was checked against the new password.
    assert late.status_code == 403
    assert late.get_json() == {"msg": "Current password is incorrect"}
    assert Passwords(2, 19 * 1024, 1).verify(_stored_hash(app), NEW)


def test_a_login_finished_before_a_password_change_is_ended_by_it(client):
    register(client)
    changer = login(client)["access_token"]
    earlier = login(client)
    assert _change(client, changer).status_code == 200
    assert client.get("/auth/me", headers=bearer(earlier["access_token"])).status_code == 401
    late = _change(client, earlier["access_token"], new="another-new-pass")
    assert (late.status_code, late.get_json()) == (401, {"msg": "Token has been revoked"})
    assert client.post("/auth/refresh", headers=bearer(earlier["refresh_token"])).status_code == 401


@pytest.mark.slow
def test_two_simultaneous_password_changes_give_one_200_and_one_refusal(gunicorn):
    # The loser is refused either way: 403 when it read its login before the winner committed and
    # then waited for the user row (checked against the new password), 401 when the winner's commit
    # had already ended its login. A slow worker on a loaded machine gives the second.
    refusals = {
        403: {"msg": "Current password is incorrect"},
        401: {"msg": "Token has been revoked"},
    }
    with gunicorn(workers=4) as server:
        for round_number in range(5):
            name = f"racer{round_number}"
            credentials = {"username": name, "password": "testpass"}
            requests.post(server.url + "/auth/register", json=credentials, timeout=30)
            tokens = [
                requests.post(server.url + "/auth/login", json=credentials, timeout=30).json()
                for _ in range(2)
            ]

            def change(access, new):
                return lambda: requests.post(
                    server.url + "/auth/password",
                    headers=bearer(access),
                    json={"current_password": "testpass", "new_password": new},
                    timeout=60,
                )

            responses = simultaneously(
                [change(tokens[0]["access_token"], "first-new-pass"),
                 change(tokens[1]["access_token"], "second-new-pass")]
            )  # fmt: skip
            statuses = [response.status_code for response in responses]
            assert statuses.count(200) == 1, statuses
            refused = responses[statuses.index(200) ^ 1]
            assert refused.status_code in refusals, statuses
            assert refused.json() == refusals[refused.status_code]
            winner = "first-new-pass" if statuses[0] == 200 else "second-new-pass"
            loser = "second-new-pass" if winner == "first-new-pass" else "first-new-pass"
            for password, expected in ((winner, 200), (loser, 401), ("testpass", 401)):
                response = requests.post(
                    server.url + "/auth/login",
                    json={"username": name, "password": password},
                    timeout=30,
                )
                assert response.status_code == expected, (password, response.json())
