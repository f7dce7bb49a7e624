"""The benchmark's reference: built like the original public demo (Flask + Flask-JWT-Extended,
revocation in a Python set in process memory, no database on the protected route).

It reads its signing key from BENCH_DEMO_SECRET; the driver mints tokens with `create_demo_app()`.
"""

import os

from flask import Flask, jsonify
from flask_jwt_extended import JWTManager, get_jwt_identity, jwt_required

# The demo's revocation list: per process, lost on restart, not shared between workers.
blocklist: set[str] = set()


def create_demo_app(secret: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["JWT_SECRET_KEY"] = secret or os.environ["BENCH_DEMO_SECRET"]
    jwt = JWTManager(app)

    @jwt.token_in_blocklist_loader
    def _is_revoked(_header, payload):
        return payload["jti"] in blocklist

    @app.get("/protected/dashboard")
    @jwt_required()
    def dashboard():
        return jsonify(message=f"Welcome {get_jwt_identity()}, this is your dashboard"), 200

    return app
