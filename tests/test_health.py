"""Health: liveness without the database, readiness only with the database at the migration head."""

from tests.conftest import free_port


def test_healthz_answers_while_the_process_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_makes_no_database_call(make_app):
    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere"
    client = make_app(DATABASE_URL=unreachable).test_client()
    assert client.get("/healthz").status_code == 200


def test_readyz_answers_200_at_the_migration_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_readyz_answers_503_when_the_database_is_down(make_app):
    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere"
    response = make_app(DATABASE_URL=unreachable).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"msg": "Database unavailable"}


def test_readyz_answers_503_when_the_schema_is_not_migrated(pg, make_app):
    pg.psql("DROP DATABASE IF EXISTS flask_jwt_api_empty")
    pg.psql("CREATE DATABASE flask_jwt_api_empty")
    client = make_app(DATABASE_URL=pg.url("flask_jwt_api_empty")).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "not migrated" in response.get_json()["msg"]


def _database_at_revision(pg, revision: str) -> str:
    pg.psql("DROP DATABASE IF EXISTS flask_jwt_api_revision")
    pg.psql("CREATE DATABASE flask_jwt_api_revision")
    pg.psql(
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
        "flask_jwt_api_revision",
    )
    pg.psql(f"INSERT INTO alembic_version VALUES ('{revision}')", "flask_jwt_api_revision")  # noqa: S608
    return pg.url("flask_jwt_api_revision")


def test_readyz_answers_503_when_the_schema_is_behind_the_head(pg, make_app):
    client = make_app(DATABASE_URL=_database_at_revision(pg, "0001")).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "not at the migration head" in response.get_json()["msg"]


def test_readyz_is_ready_on_a_newer_schema_as_after_a_rollback(pg, make_app):
    # Migrations only expand, so the previous release runs on the schema of the next one.
    client = make_app(
        DATABASE_URL=_database_at_revision(pg, "9999_from_a_newer_release")
    ).test_client()
    assert client.get("/readyz").status_code == 200


def test_a_protected_request_while_the_database_is_down_answers_503_json(make_app):
    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere"
    client = make_app(DATABASE_URL=unreachable).test_client()
    response = client.post("/auth/login", json={"username": "testuser", "password": "testpass"})
    assert response.status_code == 503
    assert response.get_json() == {"msg": "Service temporarily unavailable"}


def test_requests_recover_by_themselves_after_a_database_restart(pg, client, tokens):
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/protected/dashboard", headers=headers).status_code == 200
    pg.restart()
    pg.wait_until_ready()
    # The connections the restart broke are replaced without an error reaching the client.
    assert client.get("/protected/dashboard", headers=headers).status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/auth/me", headers=headers).status_code == 200
