#!/usr/bin/env python3
"""A bounded write load for the HA checks: THREADS users each log in, call the dashboard, now and
then log in a second time and change the password, and log out, over and over, until a stop file
appears (plus a short tail) or a time limit passes. Each request is a new connection with a timeout.

It keeps every write the API acknowledged (a 200):
- a logout: that login's access and refresh tokens must be refused from then on;
- a password change: the user's other login (made just before) must be refused, the password of
  the user's last acknowledged change must log in and the one it replaced must not.
When the load ends it checks every one of them through the API and writes, as JSON, the counts of
requests, failures, writes checked and writes lost (a revoked token or an old password that works
again), and when a fault file names the moment of a fault (epoch seconds), how long after it the API
first acknowledged a login and a logout again.

A write that got no answer (a timeout, a reset, a 5xx) may or may not have happened; it is not
counted as acknowledged, and a thread whose password change got no answer tries both passwords next.

Usage: churn.py URL OUTPUT --ready-file F --stop-file F [--fault-file F] [--threads N] [--prefix P]
"""

import argparse
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("output")
parser.add_argument("--ready-file", required=True)
parser.add_argument("--stop-file", required=True)
parser.add_argument("--fault-file", help="the fault's moment (epoch seconds), once it happened")
parser.add_argument("--tail", type=float, default=3.0)
parser.add_argument("--max-seconds", type=float, default=600.0)
parser.add_argument("--threads", type=int, default=6)
parser.add_argument("--prefix", default="churn")
args = parser.parse_args()
tls = ssl.create_default_context()


def call(method, path, body=None, token=None):
    """(status, JSON body); status 0 when no HTTP answer came (refused, reset, timed out)."""
    request = urllib.request.Request(args.url + path, method=method)  # noqa: S310 - test hosts only
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15, context=tls) as response:  # noqa: S310 - test hosts only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except (OSError, ValueError):
        return 0, None


lock = threading.Lock()
events = []  # (time, kind, status): 0 when no answer came
revoked_logins = []  # (user, access, refresh): acknowledged as ended
replaced = {}  # user: the passwords acknowledged as replaced, oldest first
current = {}  # user: the passwords one of which is the user's now
stop_at = [None]


def note(kind, status):
    with lock:
        events.append((time.time(), kind, status))


def failed(event):
    """No answer, or the server's error: what a fault causes (a 401 for a wrong password is not)."""
    return event[2] == 0 or event[2] >= 500


def stopping():
    if stop_at[0] is None and os.path.exists(args.stop_file):
        stop_at[0] = time.monotonic() + args.tail
    return stop_at[0] is not None and time.monotonic() >= stop_at[0]


def log_in(user, passwords):
    """Tokens and the password that worked, or (None, passwords) when none did."""
    for password in list(passwords):
        status, body = call("POST", "/auth/login", {"username": user, "password": password})
        note("login", status)
        if status == 200:
            return body, [password]
    return None, passwords


def worker(index, ready):
    user = f"{args.prefix}-{index}"
    passwords = [f"{user}-pass-0"]
    status, _ = call("POST", "/auth/register", {"username": user, "password": passwords[0]})
    if status not in (201, 409):
        raise SystemExit(f"could not register {user}: {status}")
    ready.wait()
    round_number = 0
    started = time.monotonic()
    while not stopping() and time.monotonic() - started < args.max_seconds:
        round_number += 1
        tokens, passwords = log_in(user, passwords)
        if tokens is None:
            time.sleep(0.2)
            continue
        status, _ = call("GET", "/protected/dashboard", token=tokens["access_token"])
        note("dashboard", status)
        if round_number % 4 == 0:
            other, passwords = log_in(user, passwords)
            new = f"{user}-pass-{round_number}"
            status, _ = call(
                "POST",
                "/auth/password",
                {"current_password": passwords[0], "new_password": new},
                tokens["access_token"],
            )
            note("password", status)
            if status == 200:
                with lock:
                    replaced.setdefault(user, []).append(passwords[0])
                    if other is not None:
                        revoked_logins.append((user, other["access_token"], other["refresh_token"]))
                passwords = [new]
            elif status == 0 or status >= 500:
                passwords = [new, *passwords]  # it may have happened
            current[user] = passwords
        status, _ = call("POST", "/auth/logout", token=tokens["access_token"])
        note("logout", status)
        if status == 200:
            with lock:
                revoked_logins.append((user, tokens["access_token"], tokens["refresh_token"]))


def check():
    """Every acknowledged write, asked again: counts of checked and lost, and the lost ones."""
    checked = lost = unanswered = 0
    lost_writes = []
    for user, access, refresh in revoked_logins:
        for method, path, token in (
            ("GET", "/protected/dashboard", access),
            ("POST", "/auth/refresh", refresh),
        ):
            status, _ = call(method, path, token=token)
            checked += 1
            if status == 200:
                lost += 1
                lost_writes.append(f"{user}: {path} accepted a token revoked before")
            elif status != 401:
                unanswered += 1
    # Per user: the password of the last acknowledged change (or the one a later unanswered change
    # set) logs in, and the one it replaced does not. Only those two: more failed logins from one
    # address would be throttled (429) and tell nothing.
    for user, old in replaced.items():
        checked += 2
        if not any(
            call("POST", "/auth/login", {"username": user, "password": password})[0] == 200
            for password in current[user]
        ):
            lost += 1
            lost_writes.append(f"{user}: the password of an acknowledged change does not log in")
        status, _ = call("POST", "/auth/login", {"username": user, "password": old[-1]})
        if status == 200:
            lost += 1
            lost_writes.append(f"{user}: a replaced password logged in")
        elif status != 401:
            unanswered += 1
    return checked, lost, unanswered, lost_writes


def recovery(fault):
    """Seconds from the fault to the first acknowledged login and logout after the last failure
    that followed it (None when there was no failure), the count of those failures, and when the
    first and the last of them came."""
    after = [event for event in events if event[0] >= fault]
    failures = [event[0] for event in after if failed(event)]
    if not failures:
        return None, 0, None, None
    last_failure = max(failures)
    firsts = {}
    for moment, kind, status in sorted(after):
        if status == 200 and moment > last_failure and kind in ("login", "logout"):
            firsts.setdefault(kind, moment)
    back = max(firsts.values()) - fault if len(firsts) == 2 else None
    back = round(back, 2) if back is not None else None
    return back, len(failures), round(min(failures) - fault, 2), round(last_failure - fault, 2)


ready = threading.Barrier(args.threads + 1)
threads = [threading.Thread(target=worker, args=(n, ready)) for n in range(args.threads)]
for thread in threads:
    thread.start()
ready.wait()
with open(args.ready_file, "w") as marker:
    marker.write("ready\n")
for thread in threads:
    thread.join()

checked, lost, unanswered, lost_writes = check()
report = {
    "requests": len(events),
    "failed": sum(1 for event in events if failed(event)),
    "by_kind": {
        kind: {
            "ok": sum(1 for event in events if event[1] == kind and event[2] == 200),
            "failed": sum(1 for event in events if event[1] == kind and failed(event)),
        }
        for kind in ("login", "dashboard", "password", "logout")
    },
    "acknowledged_logouts": len(revoked_logins),
    "acknowledged_password_changes": sum(len(passwords) for passwords in replaced.values()),
    "writes_checked": checked,
    "writes_lost": lost,
    "checks_unanswered": unanswered,
    "lost": lost_writes[:20],
}
if args.fault_file and os.path.exists(args.fault_file):
    with open(args.fault_file) as marker:
        fault = float(marker.read().strip())
    (
        report["recovered_after_s"],
        report["failed_after_fault"],
        report["first_failure_after_s"],
        report["last_failure_after_s"],
    ) = recovery(fault)
with open(args.output, "w") as output:
    json.dump(report, output)
