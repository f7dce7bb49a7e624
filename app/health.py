"""Service status: `/` (the demo's greeting), `/healthz` (liveness), `/readyz` (readiness)."""

from alembic.script import ScriptDirectory
from flask import current_app
from flask_smorest import abort
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from .api import Blueprint
from .extensions import db
from .schemas import ErrorSchema, MessageSchema, StatusSchema

blp = Blueprint("health", __name__, description="Service status")


def _migration_heads() -> set[str]:
    heads = current_app.extensions.get("migration_heads")
    if heads is None:
        directory = current_app.extensions["migrate"].directory
        heads = current_app.extensions["migration_heads"] = set(
            ScriptDirectory(directory).get_heads()
        )
    return heads


@blp.route("/", methods=["GET"])
@blp.response(200, MessageSchema)
def index():
    """The demo's greeting."""
    return {"msg": "API is working"}


@blp.route("/healthz", methods=["GET"])
@blp.response(200, StatusSchema)
def healthz():
    """Liveness: the process answers. Makes no database call."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, StatusSchema)
@blp.alt_response(503, schema=ErrorSchema, description="Database down or schema not at head")
def readyz():
    """Readiness: the database answers and its schema is at the migration head."""
    try:
        current = set(db.session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except (OperationalError, PoolTimeoutError):  # down, or no pooled connection free
        db.session.rollback()
        abort(503, message="Database unavailable")
    except SQLAlchemyError:
        db.session.rollback()
        abort(503, message="Database schema is not migrated: run `flask --app app db upgrade`")
    if current != _migration_heads():
        abort(503, message="Database schema is not at the migration head: run the migrations")
    return {"status": "ready"}
