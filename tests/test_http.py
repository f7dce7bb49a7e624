"""HTTP answers that follow the RFCs: token answers are never cached (RFC 6749 5.1), every 401 is a
Bearer challenge (RFC 6750 3), any token that cannot be used is a 401 (never a 500), the body limit
holds for every framing, OPTIONS answers without a page, and no answer is built from the Host
header."""

import http.client
import time
import uuid

import jwt as pyjwt
import pytest
import requests

from app.config import key_id
from tests.conftest import TEST_KEY, bearer, claims_of, login, register, sign

OTHER_KEY = "another-signing-key-fedcba9876543210-fedcba9876543210"
INVALID_TOKEN = 'Bearer error="invalid_token"'
FORGED_HOST = "evil.example"


def _assert_json_401(response, challenge=INVALID_TOKEN):
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert isinstance(response.get_json()["msg"], str)
    assert response.headers["WWW-Authenticate"] == challenge


def _claims(**changes) -> dict:
    """The claims of a live-looking access token, with `changes` (None removes a claim)."""
    now = int(time.time())
    claims = {
        "sub": "1",
        "sid": str(uuid.uuid4()),
        "type": "access",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


# RFC 6749 5.1: answers that carry tokens are never stored.


def test_a_login_answer_must_not_be_cached(client):
    register(client)
    response = client.post("/auth/login", json={"username": "testuser", "password": "testpass"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_a_refresh_answer_must_not_be_cached(client, tokens):
    response = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


# RFC 6750 3: every 401 is a Bearer challenge; `error="invalid_token"` only when a token was sent.


def test_a_request_without_a_token_gets_a_bare_bearer_challenge(client):
    _assert_json_401(client.get("/protected/dashboard"), challenge="Bearer")


def test_a_failed_login_gets_a_bare_bearer_challenge(client):
    register(client)
    response = client.post("/auth/login", json={"username": "testuser", "password": "wrong"})
    _assert_json_401(response, challenge="Bearer")


def test_a_login_for_an_unknown_user_gets_a_bare_bearer_challenge(client):
    response = client.post("/auth/login", json={"username": "nobody", "password": "testpass"})
    _assert_json_401(response, challenge="Bearer")


def test_a_token_with_a_bad_signature_is_an_invalid_token(client, tokens):
    header, payload, signature = tokens["access_token"].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    _assert_json_401(client.get("/protected/dashboard", headers=bearer(forged)))


def test_a_token_signed_with_an_unknown_key_is_an_invalid_token(client, tokens):
    token = sign(claims_of(tokens["access_token"]), key=OTHER_KEY)
    _assert_json_401(client.get("/protected/dashboard", headers=bearer(token)))


def test_an_expired_token_is_an_invalid_token(client, tokens):
    claims = {**claims_of(tokens["access_token"]), "exp": int(time.time()) - 1}
    _assert_json_401(client.get("/protected/dashboard", headers=bearer(sign(claims))))


def test_a_revoked_token_is_an_invalid_token(client, tokens):
    assert client.post("/auth/logout", headers=bearer(tokens["access_token"])).status_code == 200
    _assert_json_401(client.get("/protected/dashboard", headers=bearer(tokens["access_token"])))


def test_a_refresh_token_used_as_an_access_token_is_an_invalid_token(client, tokens):
    response = client.get("/protected/dashboard", headers=bearer(tokens["refresh_token"]))
    _assert_json_401(response)


def test_an_access_token_used_to_refresh_is_an_invalid_token(client, tokens):
    _assert_json_401(client.post("/auth/refresh", headers=bearer(tokens["access_token"])))


def test_a_reused_refresh_token_is_an_invalid_token(make_app):
    client = make_app(JWT_REFRESH_REUSE_GRACE="0").test_client()
    register(client)
    tokens = login(client)
    assert client.post("/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 200
    _assert_json_401(client.post("/auth/refresh", headers=bearer(tokens["refresh_token"])))


# A malformed token is a 401 JSON answer.


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-jwt",
        "Bearer aGVsbG8.d29ybGQ",  # two segments
        "Bearer !!!.@@@.###",  # not base64
        "Bearer eyJhbGciOiJIUzI1NiJ9.%%%%.c2ln",  # a good header, then garbage
        "Bearer e30.e30.",  # empty objects, no signature
        "Bearer ",
        "Bearer a b",
    ],
    ids=["not-a-jwt", "two-segments", "garbage-base64", "garbage-payload", "empty-parts",
         "empty-token", "two-tokens"],
)  # fmt: skip
def test_a_malformed_token_is_an_invalid_token(client, authorization):
    _assert_json_401(client.get("/protected/dashboard", headers={"Authorization": authorization}))


@pytest.mark.parametrize("scheme", ["Basic", "Token", "JWT", "Digest"])
def test_a_token_under_another_scheme_gets_401_json_and_a_bare_challenge(client, tokens, scheme):
    # RFC 6750 3.1: a request made with an unsupported method carries no Bearer token to judge.
    headers = {"Authorization": f"{scheme} {tokens['access_token']}"}
    _assert_json_401(client.get("/protected/dashboard", headers=headers), challenge="Bearer")


# A validly signed token whose claims have the wrong types is a 401, never a 500.


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "tomorrow"},
        {"exp": True},
        {"exp": [1]},
        {"sub": 1},
        {"sub": "9" * 30},
        {"sub": "9" * 5000},  # past the 4300 digits Python turns into an int
        {"sub": "-1"},
        {"sub": "\u0661"},  # an Arabic-Indic digit: a digit to str.isdigit(), not ASCII
        {"sub": None},
        {"sid": ["not", "a", "string"]},
        {"sid": "not-a-uuid"},
        {"sid": None},
        {"type": {"kind": "access"}},
        {"type": "admin"},
        {"jti": 7},
        {"iat": "now"},
        {"nbf": "now"},
    ],
    ids=["string-exp", "boolean-exp", "list-exp", "numeric-sub", "huge-sub", "huger-sub",
         "negative-sub", "non-ascii-sub", "missing-sub", "list-sid", "non-uuid-sid",
         "missing-sid", "dict-type", "unknown-type", "numeric-jti", "string-iat", "string-nbf"],
)  # fmt: skip
def test_a_signed_token_with_claims_of_the_wrong_type_is_an_invalid_token(client, changes):
    response = client.get("/protected/dashboard", headers=bearer(sign(_claims(**changes))))
    _assert_json_401(response)
    # Refused for its claims, before any database look-up.
    assert response.get_json()["msg"] in ("Token claims are invalid", "Token has expired")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_token_signed_with_hs512_is_an_invalid_token(client, tokens):
    token = sign(claims_of(tokens["access_token"]), algorithm="HS512")
    _assert_json_401(client.get("/protected/dashboard", headers=bearer(token)))


def test_an_unsigned_token_is_an_invalid_token(client, tokens):
    claims = claims_of(tokens["access_token"])
    token = pyjwt.encode(claims, None, algorithm="none", headers={"kid": key_id(TEST_KEY)})
    _assert_json_401(client.get("/protected/dashboard", headers=bearer(token)))


# The request body limit holds whatever the framing (real gunicorn, which de-chunks the body).


def _chunks(body: bytes, size: int = 1024):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _register_chunked(server, body: bytes, size: int = 1024):
    """POST /auth/register with `body` sent chunked (a generator body has no Content-Length)."""
    return requests.post(
        server.url + "/auth/register",
        data=_chunks(body, size),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def _register_body(password: str) -> bytes:
    return b'{"username": "testuser", "password": "' + password.encode() + b'"}'


@pytest.mark.slow
def test_a_chunked_body_over_the_limit_is_refused_with_413_json(gunicorn):
    body = _register_body("x" * 20_000)
    with gunicorn(workers=1) as server:
        response = _register_chunked(server, body)
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"msg": "Request body too large"}


@pytest.mark.slow
def test_a_chunked_body_over_the_limit_is_not_cut_to_a_parsable_prefix(gunicorn):
    # Its first 16 KiB are a valid registration: only the whole body may be judged.
    body = _register_body("testpass") + b" " * 20_000
    with gunicorn(workers=1) as server:
        response = _register_chunked(server, body)
        assert response.status_code == 413, response.text
        login = requests.post(
            server.url + "/auth/login",
            json={"username": "testuser", "password": "testpass"},
            timeout=10,
        )
    assert login.status_code == 401  # nothing was registered


@pytest.mark.slow
def test_a_chunked_body_of_exactly_the_limit_is_accepted(gunicorn):
    body = _register_body("testpass")
    body += b" " * (16 * 1024 - len(body))
    with gunicorn(workers=1) as server:
        response = _register_chunked(server, body)
    assert response.status_code == 201, response.text


@pytest.mark.slow
def test_a_small_chunked_body_is_read_whole(gunicorn):
    with gunicorn(workers=1) as server:
        response = _register_chunked(server, _register_body("testpass"), size=7)
        assert response.request.headers["Transfer-Encoding"] == "chunked"
        assert response.status_code == 201, response.text
        pair = requests.post(
            server.url + "/auth/login",
            json={"username": "testuser", "password": "testpass"},
            timeout=10,
        )
    assert pair.status_code == 200


@pytest.mark.slow
def test_a_body_over_the_limit_with_a_content_length_is_refused_with_413_json(gunicorn):
    with gunicorn(workers=1) as server:
        response = requests.post(
            server.url + "/auth/register",
            data=_register_body("x" * 20_000),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
    assert response.request.headers["Content-Length"] == str(len(_register_body("x" * 20_000)))
    assert response.status_code == 413
    assert response.json() == {"msg": "Request body too large"}


# OPTIONS answers 204 with `Allow` on every route, and a JSON 404 elsewhere.


def test_options_on_every_route_answers_204_with_allow_and_no_body(app):
    client = app.test_client()
    routes = [rule for rule in app.url_map.iter_rules() if not rule.arguments]
    paths = {rule.rule for rule in routes}
    assert {"/", "/auth/login", "/auth/register", "/protected/dashboard"} <= paths
    for rule in routes:
        response = client.options(rule.rule)
        assert response.status_code == 204, rule.rule
        assert set(response.headers["Allow"].split(", ")) == rule.methods, rule.rule
        assert response.get_data() == b"", rule.rule
        assert "Content-Type" not in response.headers, rule.rule


def test_options_on_an_unknown_path_is_a_json_404(client):
    response = client.options("/no/such/path")
    assert response.status_code == 404
    assert response.get_json() == {"msg": "Not found"}


# A path that is not exactly a route's is a JSON 404: never a redirect, never the Host header.

NEAR_MISSES = ["//auth/login", "/auth//login", "/auth/login/", "//healthz", "/healthz/",
               "/protected//dashboard", "/protected/dashboard/"]  # fmt: skip


def _assert_json_404_without_the_host(status, headers, body: bytes):
    assert status == 404, body
    assert headers.get("Content-Type") == "application/json"
    assert "Location" not in headers
    assert FORGED_HOST not in str(dict(headers))
    assert FORGED_HOST.encode() not in body


@pytest.mark.parametrize("path", NEAR_MISSES)
@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
def test_a_path_with_doubled_or_trailing_slashes_is_a_json_404(client, method, path):
    # PATH_INFO is set as a server would pass it: the test client would read `//auth` as a host.
    response = client.open(
        "/",
        method=method,
        json={"username": "testuser", "password": "testpass"} if method == "POST" else None,
        environ_overrides={"PATH_INFO": path, "HTTP_HOST": FORGED_HOST},
    )
    _assert_json_404_without_the_host(response.status_code, response.headers, response.data)


@pytest.mark.slow
def test_under_gunicorn_no_near_miss_path_redirects_to_the_forged_host(gunicorn):
    with gunicorn(workers=1) as server:
        for path in NEAR_MISSES:
            for method in ("GET", "POST"):
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                try:
                    connection.request(
                        method,
                        path,
                        body=b'{"username": "testuser", "password": "testpass"}',
                        headers={"Host": FORGED_HOST, "Content-Type": "application/json"},
                    )
                    response = connection.getresponse()
                    body = response.read()
                    _assert_json_404_without_the_host(
                        response.status, dict(response.getheaders()), body
                    )
                finally:
                    connection.close()


def test_the_exact_paths_still_answer(client):
    register(client)
    assert login(client)["token_type"] == "Bearer"
    assert client.get("/", headers={"Host": FORGED_HOST}).get_json() == {"msg": "API is working"}
