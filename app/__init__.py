"""flask-jwt-api: JWT authentication on PostgreSQL. Served as `gunicorn 'app:create_app()'`."""

from pathlib import Path

from flask import Flask, request
from werkzeug.exceptions import NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import RequestRedirect

from . import auth, authentication, cli, errors, health, logs, metrics, protected, tokens, wellknown
from .api import Api
from .config import Settings
from .extensions import db, migrate
from .passwords import Passwords

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class App(Flask):
    def make_default_options_response(self):
        """OPTIONS on any route: 204 with `Allow` and no body (never an HTML page)."""
        response = super().make_default_options_response()
        response.status_code = 204
        response.set_data(b"")
        response.headers.pop("Content-Type", None)
        return response

    def raise_routing_exception(self, request):
        """A redirect would build its URL from the Host header: answer 404 instead. (Flask never
        passes a routing redirect to an error handler.) A 405 on /metrics would show the route to
        those who may not read it: they get the 404 of an unknown route."""
        if isinstance(request.routing_exception, RequestRedirect):
            raise NotFound()
        if request.path == metrics.PATH and not metrics.from_the_scraper():
            raise NotFound()
        super().raise_routing_exception(request)


def create_app(env=None) -> Flask:
    """Build the app from the environment (or `env`); raises ConfigError on a bad setting.

    Nothing here touches the database: connections are opened by the first request.
    """
    settings = Settings.from_env(env)
    app = App(__name__)
    app.config.update(settings.flask_config())
    # `//auth/login` or `/auth/login/` is a 404, not a redirect: a redirect would build its URL
    # from the Host header.
    app.url_map.merge_slashes = False
    app.extensions["settings"] = settings
    app.extensions["passwords"] = Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    if settings.proxy_fix_x_for:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_fix_x_for)

    logs.init_app(app, settings.log_level)
    metrics.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    tokens.init_app(app)
    authentication.init_app(app)
    errors.init_app(app)
    api = Api(app)
    for blueprint in (health.blp, auth.blp, protected.blp, wellknown.blp):
        api.register_blueprint(blueprint)

    @app.before_request
    def _exact_paths_only():
        # Werkzeug's router strips a path's leading slashes and, with strict_slashes off, matches a
        # trailing one: `//auth/login` and `/auth/login/` would reach the login view.
        path = request.environ.get("PATH_INFO", "")
        if "//" in path or (path.endswith("/") and path != "/"):
            raise NotFound()

    cli.init_app(app)
    return app
