"""Operator commands: `flask --app app prune-tokens | deactivate-user NAME | activate-user NAME |
wrap-legacy-hashes`."""

import click
from flask import Flask
from flask.cli import with_appcontext

from . import accounts, sessions


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
    for command in (prune_tokens, deactivate_user, activate_user, wrap_legacy_hashes):
        app.cli.add_command(command)
