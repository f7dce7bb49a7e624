"""The benchmark's HTTP(S) client for its checks (wrk makes the load): one request on a fresh
connection to loopback, JSON in and out."""

import http.client
import json
import ssl
from typing import NamedTuple


class Response(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    payload: object


def request(
    port: int,
    method: str,
    path: str,
    body=None,
    token=None,
    headers=None,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> Response:
    """Over HTTPS when a context is given (the name checked is 127.0.0.1)."""
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    headers = dict(headers or {})
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
    return Response(response.status, response.headers, payload)
