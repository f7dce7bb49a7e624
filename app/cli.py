"""Operator commands: `flask --app app check-config | prune-tokens | deactivate-user NAME |
activate-user NAME | wrap-legacy-hashes`."""

import click
import psycopg
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from . import accounts, sessions
from .config import settings
from .extensions import db
from .logs import describe_database_error

UPGRADE = "run `flask --app app db upgrade`"


@click.command("check-config")
@with_appcontext
def check_config():
    """Check this release against the environment before switching to it: the settings (a bad one
    stops every command with its sentence), then that the database answers with them, and at which
    schema revision (pending migrations are reported, not refused). Exits non-zero, with the
    reason, if the database does not answer."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = _schema_revisions(connection)
    except (DBAPIError, PoolTimeoutError) as error:
        raise click.ClickException(_database_failure(error)) from None
    script = ScriptDirectory(current_app.extensions["migrate"].directory)
    heads = set(script.get_heads())
    head = ", ".join(sorted(heads))
    if not current:
        schema = f"schema not migrated (head: {head}): {UPGRADE}"
    else:
        schema = f"schema at revision {', '.join(sorted(current))} (head: {head})"
        if not current <= {revision.revision for revision in script.walk_revisions()}:
            # Migrations only expand, so a release runs on a newer schema (after a rollback).
            schema += ", newer than this release"
        elif current != heads:
            schema += f": {UPGRADE}"
    click.echo(f"configuration OK; database answers; {schema}")


def _schema_revisions(connection) -> set[str]:
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _database_failure(error) -> str:
    """Why the database check failed, naming the database without its password."""
    current = settings()
    url = make_url(current.database_url)
    # Only where the database is: the query string may carry a password.
    where = url.set(query={k: v for k, v in url.query.items() if k in ("host", "port")})
    where = where.render_as_string(hide_password=True)
    original = error.orig if isinstance(error, DBAPIError) else error
    detail = " ".join(str(original).split())
    for secret in (url.password, url.query.get("password")):
        if secret and isinstance(secret, str):
            detail = detail.replace(secret, "***")
    if isinstance(original, psycopg.errors.ConnectionTimeout):
        reason = (
            "the database did not answer within DB_CONNECT_TIMEOUT "
            f"({current.db_connect_timeout} s)"
        )
    elif isinstance(original, psycopg.errors.QueryCanceled):
        reason = (
            "the database did not answer within DB_STATEMENT_TIMEOUT "
            f"({current.db_statement_timeout} s)"
        )
    elif isinstance(error, PoolTimeoutError):
        reason = "no pooled connection was free within DB_POOL_TIMEOUT"
    elif "authentication failed" in detail:
        reason = "authentication failed: check the user and password in DATABASE_URL"
    elif "does not exist" in detail:
        reason = "the role or the database in DATABASE_URL does not exist"
    elif "pg_hba.conf" in detail:
        reason = "the server does not accept this client (pg_hba.conf)"
    elif any(cause in detail for cause in ("refused", "No such file", "translate host", "route")):
        reason = "the database is unreachable"
    else:
        reason = "the database did not accept the connection or the query"
    described = describe_database_error(error)
    return f"database check failed for {where}: {reason} ({described}: {detail})"


@click.command("prune-tokens")
@with_appcontext
def prune_tokens():
    """Delete expired logins and forgotten login-throttling counters."""
    expired, counters = sessions.prune()
    click.echo(f"pruned {expired} expired logins and {counters} throttle counters")


@click.command("deactivate-user")
@click.argument("username")
@with_appcontext
def deactivate_user(username):
    """Refuse the user's logins and every token already issued to them."""
    if not accounts.set_active(username, False):
        raise click.ClickException(f"no user named {username!r}")
    click.echo(f"deactivated {username}")


@click.command("activate-user")
@click.argument("username")
@with_appcontext
def activate_user(username):
    """Allow a deactivated user again."""
    if not accounts.set_active(username, True):
        raise click.ClickException(f"no user named {username!r}")
    click.echo(f"activated {username}")


@click.command("wrap-legacy-hashes")
@with_appcontext
def wrap_legacy_hashes():
    """Wrap the demo's Werkzeug password hashes in argon2id, in place (safe to run again)."""
    click.echo(f"wrapped {accounts.wrap_legacy_hashes()} legacy password hashes")


def init_app(app: Flask) -> None:
    commands = (check_config, prune_tokens, deactivate_user, activate_user, wrap_legacy_hashes)
    for command in commands:
        app.cli.add_command(command)
