#!/usr/bin/env python3
"""What a client on the network meets at the edge, tried from the control machine (the edge's
ports are published on its loopback): the http redirect, HSTS, TLS versions, HAProxy's own answers
to framing errors, a slow-client attack while a normal client is served, and the rate limit on
/auth/. Prints one JSON document; the Molecule verify asserts on it. Bounded: about 80
connections for at most ATTACK_SECONDS seconds.

Usage: edge_probe.py HTTPS_PORT HTTP_PORT CA_FILE SERVER_NAME
"""

import http.client
import json
import socket
import ssl
import sys
import threading
import time

https_port, http_port, ca_file, server_name = (
    int(sys.argv[1]),
    int(sys.argv[2]),
    sys.argv[3],
    sys.argv[4],
)
HOST = "127.0.0.1"
ATTACK_SECONDS = 25
SLOW_HEADER_CLIENTS = 60
SLOW_BODY_CLIENTS = 20

context = ssl.create_default_context(cafile=ca_file)
context.check_hostname = (
    False  # the certificate names 127.0.0.1 too; checked by name with curl in verify
)


def tls_socket(timeout=10):
    raw = socket.create_connection((HOST, https_port), timeout=timeout)
    return context.wrap_socket(raw, server_hostname=server_name)


def raw_request(data: bytes) -> dict:
    """Send bytes as they are (HTTP/1.1 over TLS), read the answer whole."""
    with tls_socket() as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                head, _, body = answer.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(body) >= length[0]:
                    break
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return {
        "status": int(lines[0].split()[1]),
        "content_type": headers.get("content-type"),
        "json": parsed,
        "retry_after": headers.get("retry-after"),
    }


def request(method, path, port=None, scheme="https", headers=None):
    if scheme == "https":
        conn = http.client.HTTPSConnection(HOST, port or https_port, context=context, timeout=10)
    else:
        conn = http.client.HTTPConnection(HOST, port or http_port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


results = {}


def handshake(version):
    """The protocol and ALPN the edge agrees to when the client offers exactly one TLS version."""
    probe = ssl.create_default_context(cafile=ca_file)
    probe.check_hostname = False
    probe.set_ciphers(
        "DEFAULT:@SECLEVEL=0"
    )  # so that a refusal of TLS 1.1 is the server's, not ours
    probe.minimum_version = probe.maximum_version = version
    probe.set_alpn_protocols(["h2", "http/1.1"])
    try:
        with (
            socket.create_connection((HOST, https_port), timeout=10) as raw,
            probe.wrap_socket(raw) as conn,
        ):
            return {"version": conn.version(), "alpn": conn.selected_alpn_protocol()}
    except (ssl.SSLError, OSError) as error:
        return {"refused": type(error).__name__}


results["tls"] = {
    name: handshake(getattr(ssl.TLSVersion, name)) for name in ("TLSv1_1", "TLSv1_2", "TLSv1_3")
}

status, headers, _ = request("GET", "/auth/login?next=1", scheme="http")
results["redirect"] = {"status": status, "location": headers.get("location")}
# A client that claims another address in X-Forwarded-For: the app must log the address HAProxy saw.
status, headers, body = request(
    "GET", "/readyz", headers={"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "mine"}
)
results["https"] = {
    "status": status,
    "hsts": headers.get("strict-transport-security"),
    "request_id": headers.get("x-request-id"),
    "server": headers.get("server"),
}

start = f"GET /healthz HTTP/1.1\r\nHost: {server_name}\r\n".encode()
results["framing"] = {
    "header_10k": raw_request(start + b"X-Big: " + b"b" * 10240 + b"\r\n\r\n"),
    "url_5k": raw_request(f"GET /{'u' * 5120} HTTP/1.1\r\nHost: {server_name}\r\n\r\n".encode()),
    "nul_in_header": raw_request(start + b"X-Nul: a\x00b\r\n\r\n"),
    "body_too_large": raw_request(
        f"POST /auth/login HTTP/1.1\r\nHost: {server_name}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 20000\r\n\r\n".encode()
        + b" " * 20000
    ),
}

# The slow-client attack: connections that send their headers or their body a byte a second. Behind
# the edge they hold a connection in HAProxy only, and get a 408 after timeout http-request.
deadline = time.monotonic() + ATTACK_SECONDS
# Per kind: how each attacking connection ended.
OUTCOMES = ("got_408_json", "got_408_other", "held_then_closed", "still_open", "errors")
slow = {kind: dict.fromkeys(OUTCOMES, 0) for kind in ("headers", "body")}
slow_lock = threading.Lock()


def slow_client(body: bool):
    outcome = "errors"
    try:
        with tls_socket(timeout=ATTACK_SECONDS + 5) as conn:
            if body:
                conn.sendall(
                    f"POST /auth/login HTTP/1.1\r\nHost: {server_name}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
                )
            else:
                conn.sendall(b"GET /readyz HTTP/1.1\r\n")
            conn.settimeout(1)
            outcome = "still_open"
            while time.monotonic() < deadline:
                try:
                    answer = conn.recv(4096)
                except TimeoutError:
                    conn.sendall(b"x" if body else b"X-Slow: y\r\n")
                    continue
                if answer.startswith(b"HTTP/1.1 408"):
                    outcome = (
                        "got_408_json" if b"application/json" in answer.lower() else "got_408_other"
                    )
                else:
                    outcome = "held_then_closed"
                break
    except OSError:
        pass
    with slow_lock:
        slow["body" if body else "headers"][outcome] += 1


normal = {"ok": 0, "failed": 0, "slowest_s": 0.0}


def normal_client():
    while time.monotonic() < deadline:
        began = time.monotonic()
        try:
            status, _, _ = request("GET", "/readyz")
            normal["ok" if status == 200 else "failed"] += 1
        except OSError:
            normal["failed"] += 1
        normal["slowest_s"] = round(max(normal["slowest_s"], time.monotonic() - began), 3)
        time.sleep(0.2)


attackers = [
    threading.Thread(target=slow_client, args=(i >= SLOW_HEADER_CLIENTS,))
    for i in range(SLOW_HEADER_CLIENTS + SLOW_BODY_CLIENTS)
]
for thread in attackers:
    thread.start()
time.sleep(2)  # every attacker is connected and holding before the normal client starts
normal_thread = threading.Thread(target=normal_client)
normal_thread.start()
for thread in [*attackers, normal_thread]:
    thread.join()
results["slow_clients"] = {
    "attackers": len(attackers),
    "seconds": ATTACK_SECONDS,
    **slow,
    "normal": normal,
}

# The rate limit on /auth/: refresh without a token is cheap (the app answers 401) until the edge
# says 429.
statuses = []
for _ in range(60):
    status, headers, body = request("POST", "/auth/refresh")
    statuses.append(status)
    if status == 429:
        results["rate_limit"] = {
            "answers_before_429": len(statuses) - 1,
            "status": status,
            "retry_after": headers.get("retry-after"),
            "content_type": headers.get("content-type"),
            "json": json.loads(body),
        }
        break
else:
    results["rate_limit"] = {"statuses": statuses}

print(json.dumps(results))
