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


def _revisions() -> tuple[set[str], set[str]]:
    """This release's migration heads, and every revision it knows."""
    known = current_app.extensions.get("migration_revisions")
    if known is None:
        scripts = ScriptDirectory(current_app.extensions["migrate"].directory)
        known = current_app.extensions["migration_revisions"] = (
            set(scripts.get_heads()),
            {script.revision for script in scripts.walk_revisions()},
        )
    return known


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
    heads, known = _revisions()
    # Behind this release's head: migrations are pending. A revision this release does not know
    # is a newer schema (a rollback after an expand migration), which it works with by design.
    if current != heads and current <= known:
        abort(503, message="Database schema is not at the migration head: run the migrations")
    return {"status": "ready"}
