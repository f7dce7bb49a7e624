"""flask-jwt-api: JWT authentication on PostgreSQL. Served as `gunicorn 'app:create_app()'`."""

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import auth, cli, errors, health, logs, protected, tokens, verify_cache
from .api import Api
from .config import Settings
from .extensions import db, jwt, migrate
from .passwords import Passwords

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(env=None) -> Flask:
    """Build the app from the environment (or `env`); raises ConfigError on a bad setting.

    Nothing here touches the database: connections are opened by the first request.
    """
    settings = Settings.from_env(env)
    app = Flask(__name__)
    app.config.update(settings.flask_config())
    app.extensions["settings"] = settings
    app.extensions["passwords"] = Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    if settings.proxy_fix_x_for:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_fix_x_for)

    logs.init_app(app, settings.log_level)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    jwt.init_app(app)
    verify_cache.init_app(app, settings.jwt_decode_cache_size)
    tokens.init_app(app)
    errors.init_app(app)
    api = Api(app)
    for blueprint in (health.blp, auth.blp, protected.blp):
        api.register_blueprint(blueprint)
    cli.init_app(app)
    return app
