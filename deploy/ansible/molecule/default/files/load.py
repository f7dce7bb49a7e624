#!/usr/bin/env python3
"""A bounded load client for the deploy checks: THREADS threads call the API on loopback for
SECONDS seconds, each request on a new connection (so a refused or reset connection shows), and
write the counts as JSON. A failure is a connection error, a timeout, a 5xx or an unexpected status.

Usage: load.py URL SECONDS OUTPUT [THREADS]
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

url, seconds, output = sys.argv[1], float(sys.argv[2]), sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 8


def call(method, path, body=None, token=None):
    request = urllib.request.Request(url + path, method=method)  # noqa: S310 - http on loopback
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


user = {"username": f"load{int(time.time() * 1000)}", "password": "load-test-password"}
call("POST", "/auth/register", user)
status, pair = call("POST", "/auth/login", user)
assert status == 200, status
token = pair["access_token"]
counts, failures, lock = Counter(), Counter(), threading.Lock()
deadline = time.monotonic() + seconds


def run():
    while time.monotonic() < deadline:
        try:
            status, _ = call("GET", "/protected/dashboard", token=token)
            outcome = "ok" if status == 200 else f"status {status}"
        except Exception as error:  # refused, reset, timed out: each one a failed request
            outcome = type(error).__name__
        with lock:
            counts[outcome] += 1
            if outcome != "ok":
                failures[outcome] += 1


workers = [threading.Thread(target=run) for _ in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
with open(output, "w") as out:
    json.dump(
        {
            "requests": sum(counts.values()),
            "failed": sum(failures.values()),
            "failures": dict(failures),
        },
        out,
    )
