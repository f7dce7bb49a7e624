"""Input rules: every bad input gets a clear JSON 4xx, never a 5xx, and nothing half-written."""

import threading

import pytest
import requests

from tests.conftest import login, register

LONG = "a" * 65


def _post(client, body=None, **kwargs):
    return client.post("/auth/register", json=body, **kwargs)


def _assert_json_error(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert isinstance(response.get_json()["msg"], str)


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("username=a&password=b", "application/x-www-form-urlencoded", 415),
        ("hello", "text/plain", 415),
        ("", "application/json", 400),
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('"a string"', "application/json", 400),
        ("null", "application/json", 400),
        ("[" * 100000, "application/json", 413),
        ("[" * 10000, "application/json", 400),
        (b"\xff\xfe\xfd", "application/json", 400),
        ('{"username": ' + "1" * 5000 + "}", "application/json", 400),
    ],
)
def test_the_body_must_be_a_json_object(client, data, content_type, status):
    _assert_json_error(client.post("/auth/register", data=data, content_type=content_type), status)


def test_a_body_without_a_content_type_is_unsupported(client):
    _assert_json_error(client.post("/auth/login", data=b'{"username": "a"}'), 415)


def test_request_bodies_are_capped_at_16_kib(client):
    body = {"username": "testuser", "password": "x" * 17000}
    _assert_json_error(_post(client, body), 413)


@pytest.mark.parametrize(
    "username",
    ["ab", LONG, "with space", "semi;colon", "émile", "tab\tname", "nul\x00name", "new\nline"],
)
def test_usernames_outside_the_documented_rule_are_refused(client, username):
    response = _post(client, {"username": username, "password": "testpass"})
    _assert_json_error(response, 422)
    assert "username" in response.get_json()["errors"]


@pytest.mark.parametrize("username", ["abc", "a" * 64, "John.Doe-2_x", "123"])
def test_usernames_inside_the_rule_are_accepted(client, username):
    assert _post(client, {"username": username, "password": "testpass"}).status_code == 201


def test_usernames_are_case_insensitive(client):
    register(client, "Alice", "password1")
    response = _post(client, {"username": "alice", "password": "password2"})
    assert response.status_code == 409
    tokens = login(client, "ALICE", "password1")
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.get_json()["username"] == "Alice"


@pytest.mark.parametrize(
    "password", ["short", "x" * 7, "y" * 129, "nul\x00password", "\ud800abcdefgh"]
)
def test_passwords_outside_the_rule_are_refused(client, password):
    response = _post(client, {"username": "testuser", "password": password})
    _assert_json_error(response, 422)
    assert "password" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "password", ["12345678", "z" * 128, "all lowercase words", "пароль-пароль"]
)
def test_passwords_have_no_composition_rules(client, password):
    assert _post(client, {"username": "testuser", "password": password}).status_code == 201
    login(client, password=password)


@pytest.mark.parametrize(
    "body",
    [
        {"username": 123, "password": "testpass"},
        {"username": "testuser", "password": 12345678},
        {"username": ["testuser"], "password": "testpass"},
        {"username": {"$ne": None}, "password": "testpass"},
        {"username": "testuser", "password": True},
    ],
)
def test_wrong_types_are_refused(client, body):
    _assert_json_error(_post(client, body), 422)
    _assert_json_error(client.post("/auth/login", json=body), 422)


def test_unknown_fields_are_ignored(client):
    assert (
        _post(client, {"username": "testuser", "password": "testpass", "x": 1}).status_code == 201
    )


def test_a_refused_registration_writes_nothing(client):
    _post(client, {"username": "testuser", "password": "short"})
    response = client.post("/auth/login", json={"username": "testuser", "password": "short"})
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/no/such/page", 404),
    ("delete", "/auth/login", 405),
    ("get", "/auth/register", 405),
    ("put", "/protected/dashboard", 405),
])  # fmt: skip
def test_routing_errors_answer_json(client, method, path, status):
    _assert_json_error(getattr(client, method)(path), status)


def test_a_method_not_allowed_names_the_allowed_methods(client):
    assert "POST" in client.get("/auth/login").headers["Allow"]


def test_an_unexpected_error_answers_json_500_without_a_trace(make_app):
    app = make_app()
    app.config["TESTING"] = False  # let the error handler answer, as in production

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    _assert_json_error(response, 500)
    assert response.get_json() == {"msg": "Internal server error"}
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.slow
def test_simultaneous_registrations_of_one_name_give_one_201_and_one_409(gunicorn):
    with gunicorn(workers=4) as server:
        for round_number in range(8):
            barrier = threading.Barrier(2)
            statuses = []

            def attempt(name=f"racer{round_number}", barrier=barrier, statuses=statuses):
                barrier.wait()
                response = requests.post(
                    server.url + "/auth/register",
                    json={"username": name, "password": "testpass"},
                    timeout=30,
                )
                statuses.append(response.status_code)

            threads = [threading.Thread(target=attempt) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(statuses) == [201, 409]


def test_a_forged_forwarded_address_cannot_break_throttling(make_app):
    client = make_app(PROXY_FIX_X_FOR="1").test_client()
    response = client.post(
        "/auth/login",
        json={"username": "testuser", "password": "wrongpass"},
        headers={"X-Forwarded-For": "x" * 500},
    )
    assert response.status_code == 401


# One Unicode rule: lengths after normalisation, and one canonical form of a username.

THREE_AFTER_NFKC = "\u1100\u1161\u11a8" * 3  # 9 Hangul jamo that compose into 3 syllables
LONG_AFTER_NFKC = "\ufb03" * 50  # 50 ligatures that become 150 letters


@pytest.mark.parametrize("password", [THREE_AFTER_NFKC, "e\u0301" * 4, LONG_AFTER_NFKC])
def test_a_passwords_length_is_counted_after_normalisation_at_registration(client, password):
    response = _post(client, {"username": "testuser", "password": password})
    _assert_json_error(response, 422)
    assert "password" in response.get_json()["errors"]


@pytest.mark.parametrize("password", [THREE_AFTER_NFKC, LONG_AFTER_NFKC])
def test_a_passwords_length_is_counted_after_normalisation_at_password_change(client, password):
    register(client)
    access = login(client)["access_token"]
    response = client.post(
        "/auth/password",
        headers={"Authorization": f"Bearer {access}"},
        json={"current_password": "testpass", "new_password": password},
    )
    _assert_json_error(response, 422)
    assert "new_password" in response.get_json()["errors"]


# Characters that Python's (or a database's) case mapping turns into ASCII letters.
LOOKALIKES = [
    ("kate", "\u212aate"),  # KELVIN SIGN lowers to k
    ("sam", "\u017fam"),  # LATIN SMALL LETTER LONG S uppers to S
    ("tim", "t\u0131m"),  # LATIN SMALL LETTER DOTLESS I uppers to I
    ("ivan", "\u0130van"),  # LATIN CAPITAL LETTER I WITH DOT lowers to i + combining dot
    ("test", "\uff54\uff45\uff53\uff54"),  # full-width letters
    ("office", "o\ufb03ce"),  # the ffi ligature
]


@pytest.mark.parametrize(("name", "spelling"), LOOKALIKES)
def test_no_character_outside_the_rule_can_log_in_as_an_account(client, name, spelling):
    register(client, name, "testpass")
    response = client.post("/auth/login", json={"username": spelling, "password": "testpass"})
    _assert_json_error(response, 422)
    assert "username" in response.get_json()["errors"]
    assert _post(client, {"username": spelling, "password": "testpass"}).status_code == 422


@pytest.mark.parametrize(("name", "spelling"), LOOKALIKES)
def test_operator_commands_take_only_canonical_names(app, client, name, spelling):
    register(client, name, "testpass")
    result = app.test_cli_runner().invoke(args=["deactivate-user", spelling])
    assert result.exit_code != 0
    assert "no user named" in result.output
    login(client, name, "testpass")


def test_login_accepts_every_case_of_a_registered_name_and_nothing_else(client):
    register(client, "Alice.Smith-1", "password1")
    for spelling in ("alice.smith-1", "ALICE.SMITH-1", "aLiCe.SmItH-1"):
        login(client, spelling, "password1")
    assert (
        client.post(
            "/auth/login", json={"username": "alice.smith-1 ", "password": "password1"}
        ).status_code
        == 422
    )


def test_canonical_usernames_are_ascii_lower_case_or_none():
    from app.accounts import canonical_username

    assert canonical_username("John.Doe-2_x") == "john.doe-2_x"
    for _name, spelling in LOOKALIKES:
        assert canonical_username(spelling) is None
    assert canonical_username("ab") is None
    assert canonical_username("abc\n") is None
