#!/usr/bin/env python3
"""Acknowledged writes for the data-loss check: logs one user in every INTERVAL seconds (each
login is a new row in login_sessions, committed before the answer; the user is registered first if
it does not exist) until a stop file appears or a time limit passes, and writes one JSON line per
acknowledged login: the wall-clock time of the answer and the login's session id (the token's
`sid`). Requests that fail (the database is gone) are counted, not recorded.

Usage: writer.py URL USERNAME PASSWORD OUTPUT --stop-file F [--interval S] [--max-seconds S]
"""

import argparse
import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("username")
parser.add_argument("password")
parser.add_argument("output")
parser.add_argument("--stop-file", required=True)
parser.add_argument("--interval", type=float, default=0.5)
parser.add_argument("--max-seconds", type=float, default=300.0)
args = parser.parse_args()
tls = ssl.create_default_context()
body = json.dumps({"username": args.username, "password": args.password}).encode()


def post(path):
    request = urllib.request.Request(args.url + path, data=body, method="POST")  # noqa: S310 - test hosts only
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5, context=tls) as response:  # noqa: S310 - test hosts only
        return json.loads(response.read())


def session_id(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


try:
    post("/auth/login")
except urllib.error.HTTPError as error:
    if error.code != 401:
        raise
    post("/auth/register")
deadline = time.monotonic() + args.max_seconds
failed = 0
with open(args.output, "w") as out:
    while time.monotonic() < deadline and not os.path.exists(args.stop_file):
        try:
            token = post("/auth/login")["access_token"]
            out.write(json.dumps({"acked": time.time(), "sid": session_id(token)}) + "\n")
            out.flush()
        except (urllib.error.URLError, OSError, ValueError):
            failed += 1
        time.sleep(args.interval)
    out.write(json.dumps({"failed": failed}) + "\n")
