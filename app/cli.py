"""Operator commands: `flask --app app prune-tokens | deactivate-user NAME | activate-user NAME`."""

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import update

from . import tokens
from .extensions import db
from .models import User


@click.command("prune-tokens")
@with_appcontext
def prune_tokens():
    """Delete expired logins and stale login-throttling counters."""
    sessions, counters = tokens.prune_expired()
    click.echo(f"pruned {sessions} expired logins and {counters} throttle counters")


def _set_active(username: str, active: bool) -> None:
    changed = db.session.execute(
        update(User).where(User.named(username)).values(is_active=active)
    ).rowcount
    db.session.commit()
    if not changed:
        raise click.ClickException(f"no user named {username!r}")


@click.command("deactivate-user")
@click.argument("username")
@with_appcontext
def deactivate_user(username):
    """Refuse the user's logins and every token already issued to them."""
    _set_active(username, False)
    click.echo(f"deactivated {username}")


@click.command("activate-user")
@click.argument("username")
@with_appcontext
def activate_user(username):
    """Allow a deactivated user again."""
    _set_active(username, True)
    click.echo(f"activated {username}")


def init_app(app: Flask) -> None:
    for command in (prune_tokens, deactivate_user, activate_user):
        app.cli.add_command(command)
