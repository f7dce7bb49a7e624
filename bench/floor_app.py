"""The benchmark's floor: a bare Flask app answering the dashboard's JSON with no auth at all.

What the WSGI stack (gunicorn + Flask + JSON) costs by itself, so the other servers can be read
against it. Served as `gunicorn bench.floor_app:app`.
"""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/protected/dashboard")
def dashboard():
    return jsonify(message="Welcome benchuser, this is your dashboard")
