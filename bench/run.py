"""The benchmark driver behind scripts/bench-api: GET /protected/dashboard under wrk on the real
app, a bare-Flask floor and a demo-style reference, all under identical gunicorn settings, plus
the real app's login latency. Prints one line per step; exits non-zero when a step fails.

The load is many users, not one: each server gets `--sessions` tokens (one login per user on the
app) and wrk sends them in turn. The app runs twice: as shipped, and with its verified-token cache
off (JWT_DECODE_CACHE_SIZE=0), so the cost of the database check with PyJWT's full decode on every
request is measured too.

With --edge it measures the edge instead: the app through HAProxy with TLS (bench/haproxy.cfg, one
instance per variant of its settings) against the app directly on gunicorn, in alternating rounds.
"""

import argparse
import atexit
import contextlib
import math
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import edge  # noqa: E402
from bench.client import request  # noqa: E402
from bench.demo_app import create_demo_app  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

VENV_BIN = REPO / ".venv" / "bin"
USERNAME = "benchuser"  # the first user; the others are benchuser-1, benchuser-2, ...
PATH = "/protected/dashboard"
TARGET = 1.0
# Users registered and logged in through the API; more are made by the app's code (mint_users).
HTTP_USERS = 64
EDGE_TARGET = 0.90
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
# The same gunicorn settings for every server; only the app differs.
WORKERS = 4
GUNICORN_OPTS = ["-w", str(WORKERS), "-k", "sync", "--no-control-socket"]
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


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def http_call(port: int, method: str, path: str, body=None, token=None, timeout=10.0, context=None):
    response = request(port, method, path, body, token, context=context, timeout=timeout)
    return response.status, response.payload


class Server:
    """A server the driver starts in its own session, so a Ctrl-C reaches the driver only and
    cleanup stays in order; its pid goes to the workdir's pids file for the shell's trap."""

    kind = "server"
    context: ssl.SSLContext | None = None  # speaks HTTPS to clients with this context

    def __init__(self, name: str, workdir: Path):
        self.name = name
        self.port = free_port()
        self.workdir = workdir
        self.log = workdir / f"{self.kind}-{name}.log"

    @property
    def scheme(self) -> str:
        return "https" if self.context else "http"

    def start(self, command: list[str], env: dict | None = None, output: Path | None = None):
        with open(output, "wb") if output else contextlib.nullcontext(subprocess.DEVNULL) as out:
            self.proc = subprocess.Popen(  # noqa: S603 (a fixed command)
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        with open(self.workdir / "pids", "a") as pids:
            pids.write(f"{self.proc.pid}\n")

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the app answers through it (any status): sockets listen before workers boot."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name}: {self.kind} exited:\n{self.log.read_text()}")
            try:
                http_call(self.port, "GET", PATH, timeout=max(1.0, deadline - time.monotonic()),
                          context=self.context)  # fmt: skip
                return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{self.name}: {self.kind} did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Gunicorn(Server):
    kind = "gunicorn"

    def __init__(self, name: str, target: str, env: dict, workdir: Path, keep_requests=False):
        super().__init__(name, workdir)
        # The app's request lines (its stdout): to a file when asked, else to /dev/null.
        self.requests_log = workdir / f"requests-{name}.log" if keep_requests else None
        command = [
            str(VENV_BIN / "gunicorn"), *GUNICORN_OPTS,
            "-b", f"127.0.0.1:{self.port}", "--error-logfile", str(self.log), target,
        ]  # fmt: skip
        self.start(command, env, output=self.requests_log)


class HAProxy(Server):
    """Debian's HAProxy in front of one gunicorn, configured by bench/haproxy.cfg for one variant;
    in the foreground (-db) as the driver's child, never as the system's service."""

    kind = "haproxy"

    def __init__(self, variant: str, app: Gunicorn, certificate: Path, context, workdir: Path):
        super().__init__(variant, workdir)
        self.context = context
        self.admin_socket = workdir / f"haproxy-{variant}.sock"
        config = workdir / f"haproxy-{variant}.cfg"
        values = {
            "admin_socket": str(self.admin_socket),
            "https_port": str(self.port),
            "certificate": str(certificate),
            "app_address": f"127.0.0.1:{app.port}",
        }
        config.write_text(edge.render_config(variant, WORKERS, values))
        check = ["haproxy", "-c", "-f", str(config)]
        subprocess.run(check, check=True, capture_output=True)  # noqa: S603 (a fixed command)
        self.start(["haproxy", "-db", "-f", str(config)], output=self.log)

    def cpu_seconds(self) -> float:
        """User and system CPU time it has used so far, all threads."""
        return cpu_seconds(proc_stat(self.proc.pid))


def proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command's name: [1] is the parent, [3] the session."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(stat: list[str]) -> float:
    return (int(stat[11]) + int(stat[12])) / CLOCK_TICKS


class CpuMeter:
    """CPU time used so far by every process of the run: the servers' sessions (gunicorn's workers,
    HAProxy's threads), PostgreSQL's server and backends, and the driver's finished children (wrk).
    Per request it is steadier than requests/s on a machine shared with other work."""

    def __init__(self, servers: list[Server], pg: PostgresServer):
        self.sessions = {server.proc.pid for server in servers}
        self.postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])

    def read(self) -> float:
        total = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = proc_stat(int(entry.name))
            except OSError:
                continue  # it has just exited
            pid, parent, session = int(entry.name), int(stat[1]), int(stat[3])
            if session in self.sessions or self.postmaster in (pid, parent):
                total += cpu_seconds(stat)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return total + children.ru_utime + children.ru_stime


def wrk(
    port: int, script: Path, seconds: int, connections: int, threads: int, scheme: str = "http"
) -> float:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script)]
    command.append(f"{scheme}://127.0.0.1:{port}{PATH}")
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


def verify(name: str, port: int, tokens: list[str], usernames: list[str], auth: bool, context=None):
    """Each token gets its own user's dashboard; without a token, 401 (except on the floor)."""
    for token, username in zip(tokens, usernames, strict=True):
        status, body = http_call(port, "GET", PATH, token=token, context=context)
        expected = dashboard(username if auth else USERNAME)
        if status != 200 or body != expected:
            raise BenchError(f"{name}: expected 200 {expected}, got {status} {body}")
    if auth:
        # The token must be what lets the request in, or the round would not measure auth.
        status, body = http_call(port, "GET", PATH, context=context)
        if status != 401:
            raise BenchError(f"{name}: expected 401 without a token, got {status} {body}")


def start_database(workdir: Path, pg_holder: list) -> PostgresServer:
    t = time.monotonic()
    pg = PostgresServer()
    pg_holder.append(pg)
    (workdir / "pgroot").write_text(str(pg.root))
    pg.start()
    pg.wait_until_ready()
    pg.psql("CREATE DATABASE bench")
    step_line("Started PostgreSQL, created database bench", t)
    return pg


def base_environment() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE_"))}


def app_environment(base_env: dict, pg: PostgresServer, secret: str) -> dict:
    return {
        **base_env,
        # As deployed in the single-server layout: over PostgreSQL's Unix socket.
        "DATABASE_URL": pg.socket_url("bench"),
        "JWT_SECRET_KEY": secret,
        # Long enough for the whole run, so the token minted at the start still works at the end.
        "JWT_ACCESS_TOKEN_EXPIRES": "3600",
        "LOG_LEVEL": "INFO",
        # Every benchmark user registers from loopback.
        "REGISTER_THROTTLE_ADDRESS_LIMIT": "0",
    }


def migrate(app_env: dict) -> None:
    t = time.monotonic()
    subprocess.run(  # noqa: S603 (a fixed command)
        [str(VENV_BIN / "flask"), "--app", "app", "db", "upgrade"],
        cwd=REPO, env=app_env, check=True, capture_output=True,
    )  # fmt: skip
    step_line("Ran migrations", t)


def register_users(port: int, sessions: int, app_env: dict) -> tuple[list[str], str, list[str]]:
    """benchuser, benchuser-1, ...: registered and logged in once each; their names, their
    (shared) password and one access token each. The first HTTP_USERS go through the API; the
    others are made by the app's own code (see mint_users)."""
    password = secrets.token_urlsafe(18)
    usernames = [USERNAME] + [f"{USERNAME}-{i}" for i in range(1, sessions)]
    tokens = []
    for username in usernames[:HTTP_USERS]:
        credentials = {"username": username, "password": password}
        status, body = http_call(port, "POST", "/auth/register", credentials)
        if status != 201:
            raise BenchError(f"register: expected 201, got {status} {body}")
        status, body = http_call(port, "POST", "/auth/login", credentials)
        if status != 200 or "access_token" not in (body or {}):
            raise BenchError(f"login: expected 200 with an access_token, got {status} {body}")
        tokens.append(body["access_token"])
    tokens += mint_users(app_env, usernames[HTTP_USERS:])
    return usernames, password, tokens


def mint_users(app_env: dict, usernames: list[str]) -> list[str]:
    """Users beyond the first HTTP_USERS, each with one login, made in this process by the app's
    own code (the first user's password hash, sessions.start): real rows and real tokens, without
    two argon2 hashes per user over HTTP (about 60 ms each, five minutes for 5,000 users)."""
    if not usernames:
        return []
    from sqlalchemy import select

    from app import create_app, sessions
    from app.extensions import db
    from app.models import User

    app = create_app(app_env)
    with app.app_context():
        password_hash = db.session.execute(
            select(User.password_hash).where(User.username == USERNAME)
        ).scalar_one()
        users = [User(username=name, password_hash=password_hash) for name in usernames]
        db.session.add_all(users)
        db.session.flush()
        tokens = [sessions.start(user.id)["access_token"] for user in users]
        db.session.commit()
        db.engine.dispose()
    return tokens


def metrics_dir(workdir: Path, name: str) -> str:
    """An empty PROMETHEUS_MULTIPROC_DIR per server, as systemd's RuntimeDirectory= gives the
    service: the app runs with its metrics as deployed. Like /run, it is in memory (/dev/shm):
    the workers write their values to memory-mapped files, which on a disk the kernel would keep
    writing back. Removed when the driver exits; the workdir keeps a link to it."""
    shared = Path("/dev/shm")  # noqa: S108 (mkdtemp makes a private, unpredictable directory)
    if shared.is_dir() and os.access(shared, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix=f"flask-jwt-api-bench-metrics-{name}-", dir=shared))
        (workdir / f"metrics-{name}").symlink_to(path)
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        return str(path)
    path = workdir / f"metrics-{name}"
    path.mkdir()
    return str(path)


def write_wrk_script(path: Path, tokens: list[str]) -> Path:
    path.write_text(WRK_SCRIPT % ", ".join(f'"{tok}"' for tok in tokens))
    return path


def run(args, workdir: Path, started_servers: list[Server], pg_holder: list) -> None:
    pg = start_database(workdir, pg_holder)
    app_secret = secrets.token_hex(32)
    demo_secret = secrets.token_hex(32)
    base_env = base_environment()
    app_env = app_environment(base_env, pg, app_secret)
    migrate(app_env)

    t = time.monotonic()
    envs = {
        "floor": base_env,
        "reference": {**base_env, "BENCH_DEMO_SECRET": demo_secret},
        "app": {**app_env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir(workdir, "app")},
        "app-nocache": {
            **app_env,
            "JWT_DECODE_CACHE_SIZE": "0",
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir(workdir, "app-nocache"),
        },
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
    usernames, password, app_tokens = register_users(app_port, args.sessions, app_env)
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
        scripts[name] = write_wrk_script(workdir / f"wrk-{name}.lua", server_tokens)
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


def run_edge(args, workdir: Path, started_servers: list[Server], pg_holder: list) -> None:
    """The app directly and through each HAProxy variant, the same load in alternating rounds."""
    pg = start_database(workdir, pg_holder)
    # Unbuffered as the service runs, so the request lines the checks read are there at once.
    app_env = {
        **app_environment(base_environment(), pg, secrets.token_hex(32)),
        "PYTHONUNBUFFERED": "1",
    }
    migrate(app_env)

    t = time.monotonic()
    # Exposed directly, the app trusts no proxy; behind the edge, exactly one (as the role sets).
    # Both keep their request lines (checks read the edge's), so both pay the same to write them.
    direct_env = {**app_env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir(workdir, "direct")}
    direct = Gunicorn("direct", SERVERS["app"], direct_env, workdir, keep_requests=True)
    started_servers.append(direct)
    backend_env = {
        **app_env,
        "PROXY_FIX_X_FOR": "1",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir(workdir, "edge-app"),
    }
    backend = Gunicorn("edge-app", SERVERS["app"], backend_env, workdir, keep_requests=True)
    started_servers.append(backend)
    direct.wait_ready()
    backend.wait_ready()
    step_line(
        f"Started gunicorn x2 ({WORKERS} sync workers each: direct :{direct.port}, "
        f"edge-app :{backend.port})",
        t,
    )

    t = time.monotonic()
    usernames, _, tokens = register_users(direct.port, args.sessions, app_env)
    script = write_wrk_script(workdir / "wrk-app.lua", tokens)
    step_line(f"Registered {args.sessions} users, logged each in", t)

    t = time.monotonic()
    ca, chain = edge.make_certificates(workdir)
    context = edge.client_context(ca)
    proxies = []
    for variant in args.edge_variants:
        proxies.append(HAProxy(variant, backend, chain, context, workdir))
        started_servers.append(proxies[-1])
    for proxy in proxies:
        proxy.wait_ready()
    ports = ", ".join(f"{proxy.name} :{proxy.port}" for proxy in proxies)
    step_line(f"Made a CA and a certificate; started HAProxy x{len(proxies)} ({ports})", t)

    t = time.monotonic()
    verify("direct", direct.port, tokens, usernames, auth=True)
    for proxy in proxies:
        verify(proxy.name, proxy.port, tokens, usernames, auth=True, context=context)
    step_line("Directly and through each HAProxy, each token gets its dashboard", t)
    t = time.monotonic()
    negotiated = edge.check_tls(proxies[0].port, ca)
    edge.check_proxy_fix(backend.port, tokens[0], backend.requests_log)
    for proxy in proxies:
        edge.check_headers(proxy.port, context, tokens[0], backend.requests_log)
    step_line(f"TLS: {negotiated}", t)
    step_line("HSTS, HAProxy's X-Request-ID, X-Forwarded-For replaced (app: 1 proxy)", t)

    targets: list[Server] = [direct, *proxies]
    load = {"connections": args.connections, "threads": args.threads}
    announce(f"Warm-up, {args.warmup}s per target", f"about {args.warmup * len(targets)} s")
    t = time.monotonic()
    for target in targets:
        wrk(target.port, script, args.warmup, scheme=target.scheme, **load)
    step_line("Warmed up", t)

    announce(
        f"{args.rounds} rounds of wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        "direct and each HAProxy alternating",
        f"about {args.rounds * len(targets) * args.duration} s",
    )
    meter = CpuMeter(started_servers, pg)

    def haproxy_seconds(target: Server) -> float:
        return target.cpu_seconds() if isinstance(target, HAProxy) else 0.0

    rates: dict[str, list[float]] = {target.name: [] for target in targets}
    # Per request: in ms, all the run's processes; in us, HAProxy's share.
    cpu: dict[str, list[float]] = {target.name: [] for target in targets}
    haproxy_cpu: dict[str, list[float]] = {target.name: [] for target in targets}
    for i in range(1, args.rounds + 1):
        t = time.monotonic()
        for target in targets:
            began, began_haproxy = meter.read(), haproxy_seconds(target)
            rate = wrk(target.port, script, args.duration, scheme=target.scheme, **load)
            requests = rate * args.duration
            rates[target.name].append(rate)
            cpu[target.name].append((meter.read() - began) / requests * 1e3)
            haproxy_cpu[target.name].append(
                (haproxy_seconds(target) - began_haproxy) / requests * 1e6
            )
        summary = "  ".join(f"{n} {r[-1]:.0f}" for n, r in rates.items())
        step_line(f"Round {i}/{args.rounds} req/s: {summary}", t)

    t = time.monotonic()
    seen = {}
    for proxy in proxies:
        seen[proxy.name] = edge.counters(proxy.admin_socket)
        edge.check_auth_limit(proxy.port, context, proxy.admin_socket, tokens[0])
    step_line(f"/auth/ limit: untouched by the load, 429 after {edge.AUTH_LIMIT} requests", t)

    medians = {name: statistics.median(r) for name, r in rates.items()}
    cpu_medians = {name: statistics.median(c) for name, c in cpu.items()}
    width = max(len(target.name) for target in targets)
    print()
    print(
        f"GET {PATH} with {args.sessions} users' tokens in turn, wrk keep-alive, "
        f"median of {args.rounds} rounds (min..max): requests/s; edge/direct, the ratio of the "
        "medians (per-round ratios); CPU ms per request, all the run's processes (HAProxy's "
        "share in us); edge/direct by CPU (direct's CPU per request over the edge's):"
    )
    r = rates["direct"]
    print(
        f"  {'direct':<{width}} {medians['direct']:7.1f} ({min(r):.0f}..{max(r):.0f})"
        f"{'':31}cpu {cpu_medians['direct']:.2f} ms"
    )
    for proxy in proxies:
        r = rates[proxy.name]
        ratio = medians[proxy.name] / medians["direct"]
        rounds = [e / d for e, d in zip(r, rates["direct"], strict=True)]
        verdict = "PASS" if ratio >= EDGE_TARGET else "BELOW"
        share = statistics.median(haproxy_cpu[proxy.name])
        print(
            f"  {proxy.name:<{width}} {medians[proxy.name]:7.1f} ({min(r):.0f}..{max(r):.0f})"
            f"  edge/direct {ratio:.2f} ({min(rounds):.2f}..{max(rounds):.2f}) {verdict:<5}"
            f"  cpu {cpu_medians[proxy.name]:.2f} ms ({share:.0f} us)"
            f"  by CPU {cpu_medians['direct'] / cpu_medians[proxy.name]:.2f}"
        )
    print(f"  target: edge/direct >= {EDGE_TARGET:.2f}")
    print(
        "HAProxy over the whole run: client connections / requests; connections to gunicorn "
        "(requests over a reused one); longest queue:"
    )
    for name, c in seen.items():
        print(
            f"  {name:<{width}} {c['client_connections']} / {c['requests']}; "
            f"{c['server_connections']} ({c['reused']} reused); queue max {c['queue_max']}"
        )


def variant_list(text: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    unknown = [part for name in names for part in name.split("+") if part not in edge.VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"not a variant: {', '.join(unknown) or text!r}; "
            f"combine with + from {', '.join(edge.VARIANTS)}"
        )
    return names


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
    parser.add_argument(
        "--edge", action="store_true",
        help="the app through HAProxy with TLS against the app directly on gunicorn (no logins)",
    )  # fmt: skip
    parser.add_argument(
        "--edge-variants", type=variant_list, default=edge.DEFAULT_VARIANTS, metavar="A,B+C,...",
        help=f"with --edge: HAProxy settings to compare, each a change or changes joined by + "
        f"(from {', '.join(edge.VARIANTS)}; default: {','.join(edge.DEFAULT_VARIANTS)})",
    )  # fmt: skip
    args = parser.parse_args()
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")

    # SIGTERM takes the same way out as Ctrl-C, so the servers are always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    servers: list[Server] = []
    pg_holder: list[PostgresServer] = []
    code = 0
    try:
        (run_edge if args.edge else run)(args, args.workdir, servers, pg_holder)
    except (BenchError, edge.EdgeError, subprocess.CalledProcessError, OSError) as error:
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
        stopped = "HAProxy, the gunicorn servers" if args.edge else "the gunicorn servers"
        step_line(f"Stopped {stopped} and PostgreSQL", t)
    return code


if __name__ == "__main__":
    sys.exit(main())
