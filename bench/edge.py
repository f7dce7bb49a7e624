"""The edge under test in scripts/bench-api --edge: a throwaway CA and server certificate,
bench/haproxy.cfg rendered for one variant of HAProxy's settings, its runtime API, and the checks
that it behaves as the edge role promises (TLS, headers, the /auth/ rate limit)."""

import csv
import json
import re
import socket
import ssl
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench.client import request

CONFIG = Path(__file__).resolve().with_name("haproxy.cfg")
PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")
# The HAProxy settings compared, by name: lines added to bench/haproxy.cfg's global, frontend or
# backend section, or the server's maxconn instead of the worker count. "template" is the role's
# template as it is; names joined with "+" combine changes (nbthread-2+no-log).
VARIANTS = {
    "template": {},
    # One thread per core, HAProxy's own default and the role's on an edge host of its own.
    "nbthread-2": {"threads": 2},
    "server-close": {"backend": ["option http-server-close"]},
    "reuse-always": {"backend": ["http-reuse always"]},
    "no-log": {"frontend": ["no log"]},
    "dontlog-normal": {"frontend": ["option dontlog-normal"]},
    # Not for production: with no limit nothing waits in HAProxy's queue, which is the point of it.
    "no-maxconn": {"server_maxconn": 0},
}
# What --edge compares unless told otherwise: the template, and the change that matters on 2 cores.
DEFAULT_VARIANTS = ["template", "nbthread-2"]
# As in bench/haproxy.cfg (the role's edge_auth_rate_limit_requests and _period).
AUTH_LIMIT = 30
AUTH_PERIOD = 10
HSTS = "max-age=63072000"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
FORGED = {"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "chosen-by-the-client"}


class EdgeError(RuntimeError):
    """The edge did not behave as the role promises; the message says how."""


def make_certificates(workdir: Path) -> tuple[Path, Path]:
    """A CA, and a certificate it signs for localhost and 127.0.0.1, valid for a day. Returns the
    CA's PEM and the served chain's; the key sits beside the chain as <chain>.key (as the role
    installs it, where HAProxy looks for it)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flask-jwt-api bench CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = workdir / "edge-ca.pem"
    chain_path = workdir / "edge.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path = workdir / "edge.pem.key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, chain_path


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def variant_settings(variant: str) -> dict:
    """The changes of each part of the variant's name, together; KeyError for an unknown part."""
    settings = {}
    for part in variant.split("+"):
        for key, value in VARIANTS[part].items():
            settings[key] = settings.get(key, []) + value if isinstance(value, list) else value
    return settings


def render_config(variant: str, workers: int, values: dict[str, str]) -> str:
    """bench/haproxy.cfg with the run's values and the variant's lines in place."""
    settings = variant_settings(variant)
    filled = {
        **values,
        "server_maxconn": str(settings.get("server_maxconn", workers)),
        "threads": str(settings.get("threads", 1)),
        **{
            f"{section}_tuning": "\n    ".join(settings.get(section, []))
            for section in ("global", "frontend", "backend")
        },
    }
    text = CONFIG.read_text()
    missing = sorted(set(PLACEHOLDER.findall(text)) - filled.keys())
    if missing:
        raise EdgeError(f"bench/haproxy.cfg: no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: filled[match.group(1)], text)


def client_context(ca: Path) -> ssl.SSLContext:
    """What a client that trusts the edge's CA uses: the certificate and its name are verified."""
    return ssl.create_default_context(cafile=str(ca))


def admin(admin_socket: Path, command: str) -> str:
    """One command on HAProxy's runtime API; its whole answer."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(admin_socket))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def counters(admin_socket: Path) -> dict[str, int]:
    """Since HAProxy started: client connections and requests; connections opened to the app, the
    requests sent over a reused one, and the longest the queue got."""
    lines = admin(admin_socket, "show stat").splitlines()
    fields = lines[0].lstrip("# ").split(",")
    rows = {(row["pxname"], row["svname"]): row for row in csv.DictReader(lines[1:], fields)}
    frontend, server = rows[("https", "FRONTEND")], rows[("app", "app")]
    return {
        "client_connections": int(frontend["conn_tot"]),
        "requests": int(frontend["req_tot"]),
        "server_connections": int(server["connect"]),
        "reused": int(server["reuse"]),
        # Requests wait in the backend's queue (a server's own holds only those bound to it).
        "queue_max": int(rows[("app", "BACKEND")]["qmax"]),
    }


def check_tls(port: int, ca: Path) -> str:
    """TLS 1.3 by default and 1.2 still, each verified against the CA and offering h2 by ALPN;
    TLS 1.1 refused. Returns what was negotiated."""
    seen = []
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        context = client_context(ca)
        context.maximum_version = version
        context.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            got = (tls.version(), tls.selected_alpn_protocol())
            if got != (version.name.replace("_", "."), "h2"):
                raise EdgeError(f"expected {version.name} with ALPN h2, got {got}")
            seen.append(f"{tls.version()} {tls.cipher()[0]}")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            old.wrap_socket(raw) as tls,
        ):
            raise EdgeError(f"TLS 1.1 was accepted ({tls.cipher()[0]})")
    except ssl.SSLError:
        pass
    return ", ".join(seen) + "; h2 offered; TLSv1.1 refused"


def request_log_line(app_log: Path, request_id: str) -> dict:
    """The app's JSON request line with this request id (the app runs with PYTHONUNBUFFERED=1)."""
    for line in reversed(app_log.read_text().splitlines()):
        if f'"request_id": "{request_id}"' in line:
            return json.loads(line)
    raise EdgeError(f"no request line with request_id {request_id} in {app_log.name}")


def check_proxy_fix(app_port: int, token: str, app_log: Path) -> None:
    """The app behind the edge trusts one proxy: a forged X-Forwarded-For sent to it directly is
    believed, so the check through HAProxy (check_headers) shows that HAProxy replaced it."""
    response = request(app_port, "GET", "/protected/dashboard", token=token, headers=FORGED)
    line = request_log_line(app_log, FORGED["X-Request-ID"])
    if response.status != 200 or line["remote_addr"] != FORGED["X-Forwarded-For"]:
        raise EdgeError(
            f"the app should believe X-Forwarded-For (PROXY_FIX_X_FOR=1): got {response.status}, "
            f"remote_addr {line['remote_addr']}"
        )


def check_headers(port: int, context: ssl.SSLContext, token: str, app_log: Path) -> None:
    """Through the edge, with X-Forwarded-For and X-Request-ID forged: HSTS on the answer, HAProxy's
    own request id returned, and the app saw the client's real address and that id."""
    response = request(port, "GET", "/protected/dashboard", token=token, headers=FORGED,
                       context=context)  # fmt: skip
    hsts = response.headers.get("Strict-Transport-Security")
    request_id = response.headers.get("X-Request-ID", "")
    if response.status != 200 or hsts != HSTS or not UUID.match(request_id):
        raise EdgeError(
            f"expected 200 with HSTS {HSTS!r} and a uuid X-Request-ID, got {response.status}, "
            f"HSTS {hsts!r}, X-Request-ID {request_id!r}"
        )
    remote_addr = request_log_line(app_log, request_id)["remote_addr"]
    if remote_addr != "127.0.0.1":
        raise EdgeError(f"the app saw remote_addr {remote_addr!r} through the edge, not 127.0.0.1")


def check_auth_limit(port: int, context: ssl.SSLContext, admin_socket: Path, token: str) -> None:
    """After the load: the stick table is empty (the dashboard is never tracked); then /auth/ gets
    AUTH_LIMIT requests through and a 429 with Retry-After, while the dashboard still answers."""
    table = admin(admin_socket, "show table https")
    used = re.search(r"used:(\d+)", table)
    if not used or used.group(1) != "0":
        raise EdgeError(f"the /auth/ stick table is not empty after the dashboard load:\n{table}")
    for i in range(1, AUTH_LIMIT + 2):
        response = request(port, "GET", "/auth/login", context=context)
        if (response.status == 429) != (i > AUTH_LIMIT):
            raise EdgeError(f"/auth/login request {i}: got {response.status} {response.payload}")
    if response.headers.get("Retry-After") != str(AUTH_PERIOD):
        raise EdgeError(f"429 without Retry-After {AUTH_PERIOD}: {dict(response.headers)}")
    response = request(port, "GET", "/protected/dashboard", token=token, context=context)
    if response.status != 200:
        raise EdgeError(f"the dashboard after the /auth/ limit: got {response.status}")
