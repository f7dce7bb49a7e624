"""The OpenAPI document, and fuzzing against it: no input ever gets a 5xx or a non-JSON answer."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from app import tokens
from app.extensions import db
from app.models import User
from tests.conftest import register

QUIET = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}


def test_openapi_json_documents_every_endpoint(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/", "/healthz", "/readyz", "/auth/register", "/auth/login", "/auth/refresh",
        "/auth/logout", "/auth/logout-all", "/auth/me", "/auth/password", "/protected/dashboard",
    }  # fmt: skip
    register_schema = document["components"]["schemas"]["Register"]
    assert sorted(register_schema["required"]) == ["password", "username"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/protected/dashboard"]["get"]["security"] == [{"bearerAuth": []}]


OPERATIONS = [
    ("GET", "/"), ("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/auth/register"),
    ("POST", "/auth/login"), ("POST", "/auth/refresh"), ("POST", "/auth/logout"),
    ("POST", "/auth/logout-all"), ("GET", "/auth/me"), ("POST", "/auth/password"),
    ("GET", "/protected/dashboard"),
]  # fmt: skip


WITH_BODIES = [("POST", "/auth/register"), ("POST", "/auth/login"), ("POST", "/auth/password")]
# Negative cases (data that breaks the schema) exist only where there is input to break.
CASES = [(*operation, GenerationMode.POSITIVE) for operation in OPERATIONS] + [
    (*operation, GenerationMode.NEGATIVE) for operation in WITH_BODIES
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_generated_request_gets_a_server_error(app, client, method, path, mode):
    """Schema-driven fuzzing of each operation, each case with a valid token of its own login."""
    register(client)
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method]

    @settings(max_examples=40, **QUIET)
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        with app.app_context():
            user = db.session.execute(db.select(User)).scalars().first()
            pair = tokens.start_session(user)
            db.session.commit()
        token = pair["refresh_token"] if path == "/auth/refresh" else pair["access_token"]
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        case.validate_response(response, checks=[not_a_server_error])
        assert response.headers["content-type"] == ["application/json"]

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
