#!/usr/bin/env python3
"""A bounded load client for the deploy checks: it calls the API until a stop file appears (plus a
short tail) or a time limit passes, each request on a new connection (so a refused or reset
connection shows), and writes the counts as JSON. A failure is a connection error, a timeout, a 5xx
or any status other than the expected one.

Two kinds of load:
- default: THREADS threads call the protected dashboard of one user;
- --mix: THREADS threads, each with a user of its own, call the dashboard seven times, refresh
  twice and log in once, in turn (as clients do: mostly the API, a refresh when the access token
  expires, a login now and then; the refresh token is rotated each time, so each thread keeps the
  newest).
Both are paced to RATE requests per second in all (--mix: 50 unless given); without a rate the
threads call as fast as they can.

Usage: load.py URL OUTPUT --ready-file F --stop-file F [--mix] [--rate R] [--threads N]
"""

import argparse
import contextlib
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("output")
parser.add_argument("--ready-file", required=True, help="written once the users are logged in")
parser.add_argument("--stop-file", required=True, help="the load ends TAIL s after it appears")
parser.add_argument("--tail", type=float, default=3.0)
parser.add_argument("--max-seconds", type=float, default=900.0)
parser.add_argument("--threads", type=int, default=8)
parser.add_argument("--mix", action="store_true")
parser.add_argument("--rate", type=float, help="requests per second in all (--mix: 50 by default)")
parser.add_argument("--user-prefix", default="load", help="--mix: the same users in every run")
args = parser.parse_args()
# One TLS context for every request: each request still makes its own connection and handshake, but
# the trust store (SSL_CERT_FILE, or the system's) is read once, not once a request (that alone took
# more CPU than the server it loads).
tls = ssl.create_default_context()


def call(method, path, body=None, token=None):
    request = urllib.request.Request(args.url + path, method=method)  # noqa: S310 - test hosts only
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30, context=tls) as response:  # noqa: S310 - test hosts only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


class User:
    """One account; its token pair is replaced by every login and refresh."""

    def __init__(self, name):
        self.credentials = {"username": name, "password": "load-test-password"}
        # Registered once (registrations are limited per client address), by the first run.
        if self.login() == 401:
            status, _ = call("POST", "/auth/register", self.credentials)
            assert status == 201, f"register {name}: {status}"
            assert self.login() == 200, f"login {name}"

    def login(self):
        status, pair = call("POST", "/auth/login", self.credentials)
        if status == 200:
            self.access, self.refresh = pair["access_token"], pair["refresh_token"]
        return status

    def step(self, turn):
        if not args.mix or turn % 10 < 7:
            return "dashboard", call("GET", "/protected/dashboard", token=self.access)[0]
        if turn % 10 == 9:
            return "login", self.login()
        status, pair = call("POST", "/auth/refresh", token=self.refresh)
        if status == 200:
            self.access, self.refresh = pair["access_token"], pair["refresh_token"]
        return "refresh", status


# One user shared by every thread, or one each; made in order before the load starts.
shared = None if args.mix else User(f"{args.user_prefix}-{os.getpid()}")
users = [shared or User(f"{args.user_prefix}-{n}") for n in range(args.threads)]
counts, failures, lock = Counter(), Counter(), threading.Lock()
started = time.monotonic()
stopping_at = started + args.max_seconds
rate = args.rate or (50.0 if args.mix else None)
interval = args.threads / rate if rate else 0.0


def run(user):
    turn, due = 0, time.monotonic()
    while time.monotonic() < stopping_at:
        try:
            route, status = user.step(turn)
            outcome = f"{route} ok" if status == 200 else f"{route} status {status}"
        except Exception as error:  # refused, reset, timed out: each one a failed request
            route, outcome = "request", f"{type(error).__name__}"
        with lock:
            counts[outcome] += 1
            if not outcome.endswith(" ok"):
                failures[outcome] += 1
        if not outcome.endswith(" ok") and args.mix:
            # A lost refresh leaves the thread's token pair behind: start again (a failure here
            # shows at the next request).
            with contextlib.suppress(Exception):
                user.login()
        turn += 1
        due += interval
        time.sleep(max(0.0, due - time.monotonic()))


workers = [threading.Thread(target=run, args=(user,)) for user in users]
for worker in workers:
    worker.start()
with open(args.ready_file, "w") as ready:
    ready.write("ready\n")
while time.monotonic() < stopping_at:
    if os.path.exists(args.stop_file):
        stopping_at = min(stopping_at, time.monotonic() + args.tail)
        break
    time.sleep(0.2)
for worker in workers:
    worker.join()
elapsed = time.monotonic() - started
with open(args.output, "w") as out:
    json.dump(
        {
            "requests": sum(counts.values()),
            "failed": sum(failures.values()),
            "seconds": round(elapsed, 1),
            "per_second": round(sum(counts.values()) / elapsed, 1),
            "outcomes": dict(counts),
            "failures": dict(failures),
        },
        out,
    )
