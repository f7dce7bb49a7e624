"""The benchmark driver behind scripts/bench-api: GET /protected/dashboard under wrk on the real
app, a bare-Flask floor and a demo-style reference, all under identical gunicorn settings, plus
the real app's login latency. Prints one line per step; exits non-zero when a step fails.

The load is many users, not one: each server gets `--sessions` tokens (one login per user on the
app) and wrk sends them in turn. The app runs twice: as shipped, and with its verified-token cache
off (JWT_DECODE_CACHE_SIZE=0), so the cost of the database check with PyJWT's full decode on every
request is measured too.
"""

import argparse
import http.client
import json
import math
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.demo_app import create_demo_app  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

VENV_BIN = REPO / ".venv" / "bin"
USERNAME = "benchuser"  # the first user; the others are benchuser-1, benchuser-2, ...
PATH = "/protected/dashboard"
TARGET = 0.80
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
# The same gunicorn settings for every server; only the app differs.
GUNICORN_OPTS = ["-w", "4", "-k", "sync", "--no-control-socket"]
SERVERS = {
    "floor": "bench.floor_app:app",
    "reference": "bench.demo_app:create_demo_app()",
    "app": "app:create_app()",
    "app-nocache": "app:create_app()",
}
# wrk sends the tokens in turn, one per request; the floor ignores them but gets the same load.
WRK_SCRIPT = """
local tokens = {%s}
local i = 0
request = function()
  i = i %% #tokens + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[i]})
end
"""


class BenchError(RuntimeError):
    """A step failed; the message says which and why."""


def step_line(what: str, started: float, extra: str = "") -> None:
    print(f"{what:<58} {time.monotonic() - started:5.1f}s{extra}", flush=True)


def announce(what: str, how_long: str) -> None:
    print(f"{what}: this takes {how_long} ...", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_call(port: int, method: str, path: str, body=None, token=None, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    return response.status, payload


class Gunicorn:
    def __init__(self, name: str, target: str, env: dict, workdir: Path):
        self.name = name
        self.port = free_port()
        self.log = workdir / f"gunicorn-{name}.log"
        command = [
            str(VENV_BIN / "gunicorn"), *GUNICORN_OPTS,
            "-b", f"127.0.0.1:{self.port}", "--error-logfile", str(self.log), target,
        ]  # fmt: skip
        # Its own session, so a Ctrl-C reaches the driver only and cleanup stays in order.
        self.proc = subprocess.Popen(  # noqa: S603 (a fixed command)
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        with open(workdir / "pids", "a") as pids:
            pids.write(f"{self.proc.pid}\n")

    def wait_ready(self, timeout: float = 60) -> None:
        """Until a worker answers over HTTP (any status): the socket listens before they boot."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name}: gunicorn exited:\n{self.log.read_text()}")
            try:
                http_call(self.port, "GET", PATH, timeout=max(1.0, deadline - time.monotonic()))
                return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{self.name}: gunicorn did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def wrk(port: int, script: Path, seconds: int, connections: int, threads: int) -> float:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script)]
    command.append(f"http://127.0.0.1:{port}{PATH}")
    out = subprocess.run(  # noqa: S603 (a fixed command)
        command, capture_output=True, text=True, timeout=seconds + 30
    )
    if out.returncode != 0:
        raise BenchError(f"wrk failed (exit {out.returncode}):\n{out.stdout}{out.stderr}")
    text = out.stdout
    # Any non-2xx answer or socket error means the round measured something else: invalid.
    if "Non-2xx or 3xx responses" in text:
        raise BenchError(f"wrk saw non-2xx responses:\n{text}")
    errors = SOCKET_ERRORS.search(text)
    if errors and any(int(n) for n in errors.groups()):
        raise BenchError(f"wrk saw socket errors:\n{text}")
    rate = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if not rate:
        raise BenchError(f"wrk printed no Requests/sec:\n{text}")
    return float(rate.group(1))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def dashboard(username: str) -> dict:
    return {"message": f"Welcome {username}, this is your dashboard"}


def verify(name: str, port: int, tokens: list[str], usernames: list[str], auth: bool) -> None:
    """Each token gets its own user's dashboard; without a token, 401 (except on the floor)."""
    for token, username in zip(tokens, usernames, strict=True):
        status, body = http_call(port, "GET", PATH, token=token)
        expected = dashboard(username if auth else USERNAME)
        if status != 200 or body != expected:
            raise BenchError(f"{name}: expected 200 {expected}, got {status} {body}")
    if auth:
        # The token must be what lets the request in, or the round would not measure auth.
        status, body = http_call(port, "GET", PATH)
        if status != 401:
            raise BenchError(f"{name}: expected 401 without a token, got {status} {body}")


def run(args, workdir: Path, started_servers: list[Gunicorn], pg_holder: list) -> None:
    t = time.monotonic()
    pg = PostgresServer()
    pg_holder.append(pg)
    (workdir / "pgroot").write_text(str(pg.root))
    pg.start()
    pg.wait_until_ready()
    pg.psql("CREATE DATABASE bench")
    step_line("Started PostgreSQL, created database bench", t)

    app_secret = secrets.token_hex(32)
    demo_secret = secrets.token_hex(32)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE_"))}
    app_env = {
        **base_env,
        # As deployed in the single-server layout: over PostgreSQL's Unix socket.
        "DATABASE_URL": pg.socket_url("bench"),
        "JWT_SECRET_KEY": app_secret,
        # Long enough for the whole run, so the token minted at the start still works at the end.
        "JWT_ACCESS_TOKEN_EXPIRES": "3600",
        "LOG_LEVEL": "INFO",
        # Every benchmark user registers from loopback.
        "REGISTER_THROTTLE_ADDRESS_LIMIT": "0",
    }

    t = time.monotonic()
    subprocess.run(  # noqa: S603 (a fixed command)
        [str(VENV_BIN / "flask"), "--app", "app", "db", "upgrade"],
        cwd=REPO, env=app_env, check=True, capture_output=True,
    )  # fmt: skip
    step_line("Ran migrations", t)

    t = time.monotonic()
    envs = {
        "floor": base_env,
        "reference": {**base_env, "BENCH_DEMO_SECRET": demo_secret},
        "app": app_env,
        "app-nocache": {**app_env, "JWT_DECODE_CACHE_SIZE": "0"},
    }
    servers = {}
    for name, target in SERVERS.items():
        servers[name] = Gunicorn(name, target, envs[name], workdir)
        started_servers.append(servers[name])
    for server in servers.values():
        server.wait_ready()
    ports = ", ".join(f"{n} :{s.port}" for n, s in servers.items())
    step_line(f"Started gunicorn x{len(servers)} (4 sync workers each: {ports})", t)

    t = time.monotonic()
    app_port = servers["app"].port
    password = secrets.token_urlsafe(18)
    usernames = [USERNAME] + [f"{USERNAME}-{i}" for i in range(1, args.sessions)]
    app_tokens = []
    for username in usernames:
        credentials = {"username": username, "password": password}
        status, body = http_call(app_port, "POST", "/auth/register", credentials)
        if status != 201:
            raise BenchError(f"register: expected 201, got {status} {body}")
        status, body = http_call(app_port, "POST", "/auth/login", credentials)
        if status != 200 or "access_token" not in (body or {}):
            raise BenchError(f"login: expected 200 with an access_token, got {status} {body}")
        app_tokens.append(body["access_token"])
    with create_demo_app(demo_secret).app_context():
        from flask_jwt_extended import create_access_token

        demo_tokens = [create_access_token(username) for username in usernames]
    tokens = {
        "floor": demo_tokens,
        "reference": demo_tokens,
        "app": app_tokens,
        "app-nocache": app_tokens,
    }
    scripts = {}
    for name, server_tokens in tokens.items():
        scripts[name] = workdir / f"wrk-{name}.lua"
        scripts[name].write_text(WRK_SCRIPT % ", ".join(f'"{tok}"' for tok in server_tokens))
    step_line(f"Registered {args.sessions} users, logged each in, minted the reference's tokens", t)

    t = time.monotonic()
    for name, server in servers.items():
        verify(name, server.port, tokens[name], usernames, auth=name != "floor")
    step_line("Each server answers each token with its dashboard (401 without)", t)

    load = {"connections": args.connections, "threads": args.threads}
    announce(f"Warm-up, {args.warmup}s per server", f"about {args.warmup * len(servers)} s")
    t = time.monotonic()
    for name, server in servers.items():
        wrk(server.port, scripts[name], args.warmup, **load)
    step_line("Warmed up", t)

    total = args.rounds * len(servers) * args.duration
    announce(
        f"{args.rounds} rounds of wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        "servers alternating",
        f"about {total} s",
    )
    rates: dict[str, list[float]] = {name: [] for name in servers}
    for i in range(1, args.rounds + 1):
        t = time.monotonic()
        for name, server in servers.items():
            rates[name].append(wrk(server.port, scripts[name], args.duration, **load))
        summary = "  ".join(f"{n} {r[-1]:8.1f}" for n, r in rates.items())
        step_line(f"Round {i}/{args.rounds} req/s: {summary}", t)

    t = time.monotonic()
    first_user = {"username": USERNAME, "password": password}
    latencies = []
    for _ in range(args.logins):
        began = time.perf_counter()
        status, body = http_call(app_port, "POST", "/auth/login", first_user)
        latencies.append((time.perf_counter() - began) * 1000)
        if status != 200:
            raise BenchError(f"login during latency run: expected 200, got {status} {body}")
    step_line(f"{args.logins} sequential logins on the app", t)

    medians = {name: statistics.median(r) for name, r in rates.items()}
    ratio = medians["app"] / medians["reference"]
    verdict = "PASS" if ratio >= TARGET else "BELOW TARGET"
    print()
    print(
        f"GET {PATH} with {args.sessions} users' tokens in turn, "
        f"requests/s (median of {args.rounds} rounds, min..max):"
    )
    for name, r in rates.items():
        print(f"  {name:<12} {medians[name]:9.1f}   ({min(r):.1f}..{max(r):.1f})")
    print(f"  app/reference          {ratio:.2f}   target >= {TARGET:.2f}  {verdict}")
    print(
        f"  app-nocache/reference  {medians['app-nocache'] / medians['reference']:.2f}"
        "   (JWT_DECODE_CACHE_SIZE=0: PyJWT decodes every request)"
    )
    print(f"  app/floor              {medians['app'] / medians['floor']:.2f}")
    print(f"  reference/floor        {medians['reference'] / medians['floor']:.2f}")
    print(
        f"POST /auth/login on the app ({args.logins} sequential): "
        f"median {statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 95):.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, required=True, help="scratch dir for logs, pids")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--logins", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=64, help="users (and tokens) in the load")
    args = parser.parse_args()
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")

    # SIGTERM takes the same way out as Ctrl-C, so the servers are always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    servers: list[Gunicorn] = []
    pg_holder: list[PostgresServer] = []
    code = 0
    try:
        run(args, args.workdir, servers, pg_holder)
    except (BenchError, subprocess.CalledProcessError, OSError) as error:
        detail = getattr(error, "stderr", None)
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        print(f"FAILED: {error}\n{detail or ''}".rstrip(), file=sys.stderr)
        code = 1
    finally:
        t = time.monotonic()
        for server in servers:
            server.stop()
        for pg in pg_holder:
            pg.stop()
        step_line("Stopped the gunicorn servers and PostgreSQL", t)
    return code


if __name__ == "__main__":
    sys.exit(main())
