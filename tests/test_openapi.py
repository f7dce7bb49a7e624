"""The OpenAPI document tells the truth: every answer a generated request gets is documented (its
status, content type, body schema and headers), none is a 5xx, and no input gets a non-JSON answer.

Schemathesis' pytest plugin is not used: its strategies are driven directly with Hypothesis.
"""

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import sessions
from app.accounts import USERNAME_REGEX
from app.extensions import db
from app.models import User
from app.passwords import normalize
from app.schemas import LOGIN_PASSWORD_MAX, PLAIN_TEXT_REGEX, LoginSchema
from tests.conftest import INTROSPECTION_CLIENT, basic, register

QUIET = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}

OPERATIONS = [
    ("GET", "/"), ("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/auth/register"),
    ("POST", "/auth/login"), ("POST", "/auth/refresh"), ("POST", "/auth/logout"),
    ("POST", "/auth/logout-all"), ("GET", "/auth/me"), ("POST", "/auth/password"),
    ("GET", "/auth/sessions"), ("DELETE", "/auth/sessions/{session_id}"),
    ("GET", "/protected/dashboard"), ("POST", "/auth/introspect"),
    ("GET", "/.well-known/jwks.json"),
]  # fmt: skip
WITH_BODIES = [
    ("POST", "/auth/register"), ("POST", "/auth/login"), ("POST", "/auth/password"),
    ("POST", "/auth/introspect"),
]  # fmt: skip
SECURED = [
    ("POST", "/auth/refresh"), ("POST", "/auth/logout"), ("POST", "/auth/logout-all"),
    ("GET", "/auth/me"), ("POST", "/auth/password"), ("GET", "/auth/sessions"),
    ("DELETE", "/auth/sessions/{session_id}"), ("GET", "/protected/dashboard"),
]  # fmt: skip


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, method, _operation in _each_operation(document)}


def _each_operation(document: dict):
    """(path, method, operation) for every operation; a path item's other keys (its shared
    `parameters`) are not operations."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _document(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_openapi_json_documents_every_endpoint(client):
    document = _document(client)
    assert document["openapi"].startswith("3.")
    assert _operations(document) == set(OPERATIONS)
    register_schema = document["components"]["schemas"]["Register"]
    assert sorted(register_schema["required"]) == ["password", "username"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, method, operation in _each_operation(document):
        secured = (method.upper(), path) in SECURED
        assert (operation.get("security") == [{"bearerAuth": []}]) is secured, (method, path)
        assert ("requestBody" in operation) is ((method.upper(), path) in WITH_BODIES)
        # Every answer is listed: a catch-all would make any status "documented".
        assert "default" not in operation["responses"], (method, path)


def test_errors_document_their_body_and_headers(client):
    """Each error names the body sent (`{"msg"}`, plus `errors` on a 422) and its headers."""
    for path, method, operation in _each_operation(_document(client)):
        for status, answer in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = "ValidationError" if status == "422" else "Error"
            content = answer["content"]["application/json"]["schema"]
            assert content == {"$ref": f"#/components/schemas/{schema}"}, (method, path)
            headers = answer.get("headers", {})
            if status == "401":
                assert headers["WWW-Authenticate"]["required"], (method, path)
            if status == "429" or (status == "503" and path != "/readyz"):
                assert headers["Retry-After"]["required"], (method, path, status)


def test_every_request_rule_is_in_the_schemas(client):
    schemas = _document(client)["components"]["schemas"]
    for name in ("Register", "Login"):
        username = schemas[name]["properties"]["username"]
        assert username["pattern"] == USERNAME_REGEX
        assert (username["minLength"], username["maxLength"]) == (3, 64)
    passwords = [
        ("Register", "password", "8 to 128 characters"),
        ("Login", "password", "at most 1024 characters"),
        ("PasswordChange", "current_password", "at most 1024 characters"),
        ("PasswordChange", "new_password", "8 to 128 characters"),
    ]
    for name, field, length in passwords:
        password = schemas[name]["properties"][field]
        assert password["pattern"] == PLAIN_TEXT_REGEX
        assert f"{length} counted after Unicode NFKC normalisation" in password["description"]
        # JSON Schema counts code points before normalisation: a maxLength would not be the rule.
        assert "maxLength" not in password


# Text that hits each rule's edges: NUL, surrogates, a newline, non-ASCII look-alikes.
EDGY_TEXT = st.text(
    st.sampled_from(
        ["\x00", "\ud800", "\udfff", "\n", "a", "Z", "0", ".", "_", "-", "\u212a", "\u0131"]
    )
    | st.characters(),
    max_size=70,
)


def test_the_documented_patterns_are_the_servers_rules(client):
    """A value matches a field's documented pattern exactly when the server's schema accepts it."""
    schemas = _document(client)["components"]["schemas"]
    username = re.compile(schemas["Login"]["properties"]["username"]["pattern"])
    password = re.compile(schemas["Login"]["properties"]["password"]["pattern"])

    @settings(max_examples=300, **QUIET)
    @given(value=EDGY_TEXT)
    def check(value):
        # fullmatch, as ECMA-262's `$` (the document's dialect) never matches before a final "\n".
        errors = LoginSchema().validate({"username": value, "password": value})
        assert ("username" not in errors) is bool(username.fullmatch(value)), errors
        # At most 70 characters are at most 1260 after NFKC; the login bound is 1024 after it.
        fits = len(normalize(value)) <= LOGIN_PASSWORD_MAX
        assert ("password" not in errors) is bool(value and fits and password.fullmatch(value))

    check()


# Every check of an answer against the document, and no 5xx.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
VALID_TOKEN, NO_TOKEN, GENERATED_TOKEN = "valid token", "no token", "generated token"
# Negative cases (data that breaks the schema) exist only where there is input to break. Every
# operation runs with a valid token of a fresh login and with no Authorization header at all; the
# secured ones also with the made-up bearer tokens schemathesis generates for them.
CASES = [
    pytest.param(method, path, mode, auth, id=f"{method} {path} {mode.value} {auth}")
    for method, path in OPERATIONS
    for mode in (
        [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        if (method, path) in WITH_BODIES
        else [GenerationMode.POSITIVE]
    )
    for auth in (
        [VALID_TOKEN, NO_TOKEN, GENERATED_TOKEN]
        if (method, path) in SECURED
        else [VALID_TOKEN, NO_TOKEN]
    )
]


@pytest.mark.parametrize(("method", "path", "mode", "auth"), CASES)
def test_every_generated_request_gets_a_documented_answer(app, client, method, path, mode, auth):
    """Schema-driven fuzzing of each operation, checking each answer against the document."""
    register(client)
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method]

    # A fixed Authorization header is never mutated (nor left out) by negative generation, so the
    # valid token that replaces it below is the one sent.
    fixed = {"Authorization": "Bearer placeholder"} if auth == VALID_TOKEN else None

    @settings(max_examples=50, **QUIET)
    @given(case=operation.as_strategy(generation_mode=mode, headers=fixed))
    def check(case):
        headers = None
        if auth == VALID_TOKEN:
            with app.app_context():
                user = db.session.execute(db.select(User)).scalars().first()
                pair = sessions.start(user.id)
                db.session.commit()
            token = pair["refresh_token"] if path == "/auth/refresh" else pair["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            if path == "/auth/introspect":
                # Its valid credential is the configured client's, over whatever token is asked.
                headers = basic(*INTROSPECTION_CLIENT)
        elif auth == NO_TOKEN and case.headers:
            case.headers.pop("Authorization", None)
        response = case.call(headers=headers)
        sent = response.request.headers.get("Authorization")
        if auth == VALID_TOKEN:
            assert sent == headers["Authorization"]
        elif auth == NO_TOKEN:
            assert sent is None
        case.validate_response(response, checks=CHECKS)

    check()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
BODIES = st.fixed_dictionaries(
    {}, optional={"username": JSON_VALUES, "password": JSON_VALUES}
) | st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4)


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login"])
@settings(max_examples=150, **QUIET)
@given(body=BODIES)
def test_no_json_object_gets_a_server_error(client, path, body):
    response = client.post(path, json=body)
    assert response.status_code < 500, (body, response.get_json())
    assert response.mimetype == "application/json"
    assert "msg" in response.get_json() or response.status_code in (200, 201)


@settings(max_examples=150, **QUIET)
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_no_raw_body_gets_a_server_error(client, raw):
    response = client.post("/auth/login", data=raw, content_type="application/json")
    assert response.status_code < 500
    assert response.mimetype == "application/json"
