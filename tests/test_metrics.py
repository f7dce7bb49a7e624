"""Metrics: /metrics in Prometheus' text format, with requests by URL rule and status, their latency
and every audit event, shown to loopback and the allowed addresses only, and added up across
gunicorn's workers."""

import json
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jinja2
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from app.config import ConfigError, Settings
from app.logs import audit
from app.metrics import LATENCY_BUCKETS
from tests.conftest import ROOT, TEST_KEY, bearer, login, register, simultaneously
from tests.test_deploy_values import _render

NOT_FOUND = {"msg": "Not found"}
# Settings that need no database server (nothing connects before a request).
ENV = {"DATABASE_URL": "postgresql://user:pass@127.0.0.1/flask_jwt_db", "JWT_SECRET_KEY": TEST_KEY}
REQUESTS = "flask_jwt_api_requests_total"
LATENCY = "flask_jwt_api_request_duration_seconds"
AUDIT = "flask_jwt_api_audit_events_total"


def _samples(text: str) -> dict:
    """{(sample name, sorted labels): value} of a whole exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    return _samples(response.get_data(as_text=True))


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0)


# The format


def test_metrics_are_in_prometheus_text_format(client):
    client.get("/")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert families["flask_jwt_api_requests"].type == "counter"
    assert families[LATENCY].type == "histogram"
    # No `_created` series: one series per label set, in one process as under gunicorn.
    assert not [name for name, _labels in _samples(response.get_data(as_text=True))
                if name.endswith("_created")]  # fmt: skip


def test_metrics_stay_out_of_the_openapi_document(app, client):
    """An operator endpoint, left out on purpose: the document is the clients' contract."""
    assert "/metrics" in {rule.rule for rule in app.url_map.iter_rules()}
    assert "/metrics" not in client.get("/openapi.json").get_json()["paths"]


# Requests and latency


def test_requests_are_counted_by_url_rule_and_status(client):
    for _ in range(3):
        client.get("/")
    client.get("/protected/dashboard", headers=bearer("not-a-token"))
    client.get("/no/such/path/12345")
    client.get("/another/unknown/path")
    client.delete("/healthz")
    samples = _scrape(client)
    assert _value(samples, REQUESTS, route="/", status="200") == 3
    assert _value(samples, REQUESTS, route="/protected/dashboard", status="401") == 1
    # Unknown paths share one label, whatever the path: no client can create series.
    assert _value(samples, REQUESTS, route="unmatched", status="404") == 2
    assert _value(samples, REQUESTS, route="unmatched", status="405") == 1
    routes = {dict(labels)["route"] for name, labels in samples if name == REQUESTS}
    assert not [route for route in routes if "12345" in route or "unknown" in route]


def test_the_latency_histogram_counts_every_request_in_its_buckets(client):
    for _ in range(5):
        client.get("/healthz")
    samples = _scrape(client)
    buckets = [_value(samples, f"{LATENCY}_bucket", route="/healthz", le=str(float(bound)))
               for bound in LATENCY_BUCKETS]  # fmt: skip
    assert buckets == sorted(buckets)  # cumulative
    assert _value(samples, f"{LATENCY}_bucket", route="/healthz", le="+Inf") == 5
    assert _value(samples, f"{LATENCY}_count", route="/healthz") == 5
    assert 0 < _value(samples, f"{LATENCY}_sum", route="/healthz") < 5 * 30


# Audit events


def test_every_audit_event_is_counted_by_name(make_app, capsys):
    client = make_app().test_client()
    register(client)
    tokens = login(client)
    client.post("/auth/login", json={"username": "testuser", "password": "wrong-password"})
    fresh = client.post("/auth/refresh", headers=bearer(tokens["refresh_token"])).get_json()
    assert client.post("/auth/refresh", headers=bearer(fresh["refresh_token"])).status_code == 200
    # Two rotations old: reused, whatever grace a retry of the last one gets.
    assert client.post("/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401
    again = login(client)
    client.post("/auth/logout", headers=bearer(again["access_token"]))
    for _ in range(6):
        client.post("/auth/login", json={"username": "testuser", "password": "wrong-password"})
    audited = [
        line["event"]
        for line in map(json.loads, capsys.readouterr().out.splitlines())
        if line["logger"] == "flask_jwt_api.audit"
    ]
    samples = _scrape(client)
    expected = ("login_success", "login_failure", "throttled", "refresh_reuse_detected", "logout")
    assert set(expected) <= set(audited)
    # Exactly as many as the audit log has lines, event by event.
    for event in set(audited):
        assert _value(samples, AUDIT, event=event) == audited.count(event), event
    assert _value(samples, AUDIT, event="login_success") == 2
    assert _value(samples, AUDIT, event="logout") == 1


def test_a_new_audit_event_is_counted_without_more_code(app, client):
    with app.test_request_context("/auth/refresh", method="POST"):
        audit("refresh_retry", username="testuser")
        audit("refresh_retry", username="testuser")
    assert _value(_scrape(client), AUDIT, event="refresh_retry") == 2


# Who may read them


def test_an_address_not_allowed_gets_the_404_of_an_unknown_route(client):
    elsewhere = {"REMOTE_ADDR": "192.0.2.7"}
    for method in ("GET", "HEAD", "POST", "OPTIONS", "DELETE", "PURGE"):
        response = client.open("/metrics", method=method, environ_base=elsewhere)
        unknown = client.open("/no-such-route", method=method, environ_base=elsewhere)
        assert response.status_code == unknown.status_code == 404, method
        assert response.content_type == unknown.content_type == "application/json"
        assert "Allow" not in response.headers
        if method != "HEAD":
            assert response.get_json() == unknown.get_json() == NOT_FOUND


def test_the_scraper_may_only_read(client):
    assert client.head("/metrics").status_code == 200
    assert client.options("/metrics").status_code == 204
    refused = client.post("/metrics")
    assert refused.status_code == 405
    assert set(refused.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_a_proxied_request_is_refused_even_from_loopback(make_app):
    """HAProxy on the app host connects from loopback: what it forwards is not local."""
    for proxy_hops in ("0", "1"):
        client = make_app(PROXY_FIX_X_FOR=proxy_hops).test_client()
        for headers in ({"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"}):
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 404, (proxy_hops, headers)
            assert response.get_json() == NOT_FOUND
        assert client.get("/metrics").status_code == 200


def test_loopback_may_read_them_in_every_spelling(client):
    for address in ("127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"):
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code == 200


def test_an_address_in_an_allowed_network_may_read_them(make_app):
    client = make_app(METRICS_ALLOWED_ADDRESSES="192.0.2.0/24, 2001:db8::10").test_client()
    for address, status in [("192.0.2.7", 200), ("192.0.2.255", 200), ("2001:db8::10", 200),
                            ("::ffff:192.0.2.7", 200), ("198.51.100.7", 404),
                            ("2001:db8::11", 404)]:  # fmt: skip
        response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
        assert response.status_code == status, address
    listed, proxied = {"REMOTE_ADDR": "192.0.2.7"}, {"X-Forwarded-For": "192.0.2.7"}
    assert client.get("/metrics", environ_base=listed, headers=proxied).status_code == 404


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ("prometheus.example.com", "'prometheus.example.com', which is not an IP address or CIDR"),
        ("192.0.2.1, 300.1.1.1", "'300.1.1.1', which is not an IP address or CIDR"),
        ("10.0.0.0/33", "'10.0.0.0/33', which is not an IP address or CIDR"),
        ("10.0.0.5/24", "which has host bits set: write 10.0.0.0/24 for the network, or 10.0.0.5 "),
    ],
)
def test_a_bad_allowed_address_is_a_config_error(value, sentence):
    refused = rf"METRICS_ALLOWED_ADDRESSES lists .*{re.escape(sentence)}"
    with pytest.raises(ConfigError, match=refused):
        Settings.from_env({**ENV, "METRICS_ALLOWED_ADDRESSES": value})


def test_addresses_and_networks_of_both_families_are_accepted():
    settings = Settings.from_env({**ENV, "METRICS_ALLOWED_ADDRESSES": " 10.0.0.0/8,,2001:db8::1 "})
    assert [str(network) for network in settings.metrics_allowed_networks] == [
        "10.0.0.0/8", "2001:db8::1/128"
    ]  # fmt: skip
    assert Settings.from_env(ENV).metrics_allowed_networks == ()


def test_a_multiprocess_directory_that_is_missing_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"PROMETHEUS_MULTIPROC_DIR is .* not a writable dir"):
        create_app(ENV)


# Under gunicorn's workers


def _gunicorn_conf(tmp_path: Path) -> Path:
    """The role's gunicorn.conf.py (with its child_exit hook), rendered with test values."""
    template = ROOT / "deploy/ansible/roles/flask_jwt_api/templates/gunicorn.conf.py.j2"
    conf = tmp_path / "gunicorn.conf.py"
    values = {"ansible_managed": "test", "flask_jwt_api_bind": "127.0.0.1:0",
              "flask_jwt_api_backlog": 64, "flask_jwt_api_workers": 4, "flask_jwt_api_timeout": 30,
              "flask_jwt_api_graceful_timeout": 5, "flask_jwt_api_keepalive": 5,
              "flask_jwt_api_log_level": "info"}  # fmt: skip
    conf.write_text(jinja2.Template(template.read_text()).render(values))
    return conf


def _worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def _get_many(url: str, count: int) -> None:
    """`count` GETs from 12 threads, each on a new connection (the sync workers take turns)."""
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda _: requests.get(url, timeout=10).status_code, range(count)))
    assert statuses == [200] * count


def _failed_login(url: str, username: str):
    body = {"username": username, "password": "wrong-password"}
    return lambda: requests.post(url + "/auth/login", json=body, timeout=10).status_code


def test_under_gunicorn_every_workers_requests_add_up_exactly(gunicorn, tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    settings = {"PROMETHEUS_MULTIPROC_DIR": str(directory),
                "GUNICORN_CMD_ARGS": f"--config {_gunicorn_conf(tmp_path)}"}  # fmt: skip
    with gunicorn(workers=4, **settings) as server:
        _get_many(server.url + "/", 60)
        # Logins that each hold a worker for an argon2 check: several workers answer at once.
        failed = simultaneously([_failed_login(server.url, f"nobody{i}") for i in range(8)])
        assert failed == [401] * 8
        first = _samples(requests.get(server.url + "/metrics", timeout=5).text)
        assert _value(first, REQUESTS, route="/", status="200") == 60
        assert _value(first, f"{LATENCY}_count", route="/") == 60
        assert _value(first, REQUESTS, route="/auth/login", status="401") == 8
        assert _value(first, AUDIT, event="login_failure") == 8

        # A worker that counted requests dies and is replaced: its counts stay in the totals, the
        # requests after it are counted by other workers in files of their own, and the role's
        # child_exit hook removes its live gauges (a stand-in file here: the app keeps none).
        # Which workers answered the first requests is the kernel's choice (one may have answered
        # all of them while the others were still starting), so the one stopped is one that did.
        workers = _worker_pids(server.process.pid)
        stopped = next(pid for pid in sorted(_counting_workers(directory)) if pid in workers)
        live_gauge = directory / f"gauge_livesum_{stopped}.db"
        live_gauge.touch()
        os.kill(stopped, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            current = _worker_pids(server.process.pid)
            if stopped not in current and len(current) == 4:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("gunicorn did not replace the stopped worker")
        assert not live_gauge.exists()
        _get_many(server.url + "/", 40)
        second = _samples(requests.get(server.url + "/metrics", timeout=5).text)
        assert _value(second, REQUESTS, route="/", status="200") == 100
        assert _value(second, f"{LATENCY}_count", route="/") == 100
        assert _value(second, REQUESTS, route="/metrics", status="200") == 1
        # The stopped worker's file and at least one other's were added up.
        counting = _counting_workers(directory)
        assert stopped in counting
        assert len(counting) >= 2


def _counting_workers(directory) -> set[int]:
    """The pids of the workers that wrote counters (prometheus_client's counter_<pid>.db files)."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in directory.glob("counter_*.db")}


# The deployment's values


SPLIT = {"db": ["db1"], "app": ["app1", "app2"], "edge": ["edge1"]}
SINGLE = {"db": ["app1"], "app": ["app1"], "edge": ["app1"]}


def test_the_role_writes_the_allowed_addresses_and_admits_them_to_the_app():
    allowed = ["192.0.2.50", "198.51.100.0/24"]
    environment = _render("{{ flask_jwt_api_environment }}", groups=SPLIT,
                          flask_jwt_api_metrics_allowed=allowed)  # fmt: skip
    # This host's own address first: a scraper on the host connects from it.
    assert environment["METRICS_ALLOWED_ADDRESSES"] == "192.0.2.11,192.0.2.50,198.51.100.0/24"
    settings = Settings.from_env({**environment, "JWT_SECRET_KEY": TEST_KEY})
    networks = [str(network) for network in settings.metrics_allowed_networks]
    assert networks == ["192.0.2.11/32", "192.0.2.50/32", "198.51.100.0/24"]
    address_allow = _render("{{ flask_jwt_api_ip_address_allow }}", groups=SPLIT,
                            flask_jwt_api_metrics_allowed=allowed)  # fmt: skip
    assert set(allowed) <= set(address_allow)


def test_by_default_only_the_app_host_itself_may_scrape():
    split = _render("{{ flask_jwt_api_environment }}", groups=SPLIT)
    assert split["METRICS_ALLOWED_ADDRESSES"] == "192.0.2.11"
    # The single server listens on loopback: nothing to write, nobody else admitted.
    single = _render("{{ flask_jwt_api_environment }}", groups=SINGLE)
    assert "METRICS_ALLOWED_ADDRESSES" not in single
    assert _render("{{ flask_jwt_api_ip_address_allow }}", groups=SINGLE) == ["localhost"]
