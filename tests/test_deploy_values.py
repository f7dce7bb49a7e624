"""The role's values, rendered with Ansible's own templating from the role's files: DATABASE_URL
reaches the app exactly (any password characters, an IPv6 address, a socket directory, TLS that
verifies the server), and the addresses follow from the inventory's groups."""

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from sqlalchemy.engine import make_url

from app.config import Settings
from tests.conftest import ROOT, TEST_KEY

ROLE = ROOT / "deploy" / "ansible" / "roles" / "flask_jwt_api"
PASSWORD = "p@ss:w/rd?#%+$ x"
ADDRESSES = {"app1": "192.0.2.11", "app2": "192.0.2.12", "db1": "192.0.2.20", "edge1": "192.0.2.30"}
SPLIT = {"db": ["db1"], "app": ["app1", "app2"], "edge": ["edge1"]}


def _trusted(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: _trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_trusted(item) for item in value]
    return value


def _render(expression: str, **overrides) -> str:
    loader = DataLoader()
    variables = {
        **_trusted(loader.load_from_file(str(ROLE / "defaults" / "main.yml"))),
        **_trusted(loader.load_from_file(str(ROLE / "vars" / "main.yml"))),
        "flask_jwt_api_secrets": {
            "db_password": PASSWORD,
            "db_owner_password": PASSWORD[::-1],
            "jwt_secret_key": TEST_KEY,
        },
        "groups": {"db": ["db1"]},
        "inventory_hostname": "app1",
        "base_private_address": "192.0.2.11",
        "hostvars": {name: {"base_private_address": ip} for name, ip in ADDRESSES.items()},
        "role_path": str(ROLE),
        **overrides,
    }
    return Templar(loader=loader, variables=variables).template(trust_as_template(expression))


@pytest.mark.parametrize(
    ("db_host", "host", "query_host"),
    [("192.0.2.20", "192.0.2.20", None), ("2001:db8::20", "2001:db8::20", None),
     ("::1", "::1", None), ("/var/run/postgresql", None, "/var/run/postgresql")],
)  # fmt: skip
def test_the_database_url_carries_every_part_exactly(db_host, host, query_host):
    url = make_url(_render("{{ flask_jwt_api_db_url }}", flask_jwt_api_db_host=db_host))
    assert url.username == "flask_jwt_api"
    assert url.password == PASSWORD
    assert url.database == "flask_jwt_db"
    assert url.host == host
    assert url.query.get("host") == query_host
    Settings.from_env({"DATABASE_URL": str(url.render_as_string(hide_password=False)),
                       "JWT_SECRET_KEY": TEST_KEY})  # fmt: skip


def test_the_migrations_connect_as_the_owner_role():
    url = make_url(_render("{{ flask_jwt_api_migrate_environment.DATABASE_URL }}"))
    assert url.username == "flask_jwt_api_owner"
    assert url.password == PASSWORD[::-1]


@pytest.mark.parametrize(
    ("groups", "hops"), [({"db": ["db1"], "edge": ["app1"]}, 1), ({"db": ["db1"]}, 0)]
)
def test_behind_the_edge_the_app_trusts_exactly_one_proxy(groups, hops):
    environment = _render("{{ flask_jwt_api_environment }}", groups=groups)
    assert environment["PROXY_FIX_X_FOR"] == str(hops)
    settings = Settings.from_env({**environment, "JWT_SECRET_KEY": TEST_KEY})
    assert settings.proxy_fix_x_for == hops


def test_an_operator_may_still_set_the_proxy_count_explicitly():
    environment = _render("{{ flask_jwt_api_environment }}", groups=SPLIT,
                          flask_jwt_api_extra_env={"PROXY_FIX_X_FOR": "2"})  # fmt: skip
    assert environment["PROXY_FIX_X_FOR"] == "2"


def test_in_a_split_layout_the_app_reaches_the_db_server_by_its_address_and_verifies_it():
    url = make_url(_render("{{ flask_jwt_api_db_url }}", groups=SPLIT))
    assert url.host == "192.0.2.20"
    assert url.query["sslmode"] == "verify-full"
    assert url.query["sslrootcert"] == "/etc/flask-jwt-api/postgresql-ca.crt"
    Settings.from_env({"DATABASE_URL": str(url.render_as_string(hide_password=False)),
                       "JWT_SECRET_KEY": TEST_KEY})  # fmt: skip


def test_on_the_db_server_itself_the_app_uses_the_socket_without_tls():
    url = make_url(_render("{{ flask_jwt_api_db_url }}", groups={"db": ["app1"], "app": ["app1"]}))
    assert url.host is None
    assert url.query == {"host": "/var/run/postgresql", "port": "5432"}


@pytest.mark.parametrize(
    ("groups", "bind", "allowed"),
    [
        # The single-server layout: loopback only.
        ({"db": ["app1"], "app": ["app1"], "edge": ["app1"]}, "127.0.0.1:8000", ["localhost"]),
        # The split layout: the private address, admitted from itself, the edge and the db server.
        (SPLIT, "192.0.2.11:8000", ["localhost", "192.0.2.11", "192.0.2.30", "192.0.2.20"]),
    ],
)
def test_the_bind_and_the_ip_filter_follow_from_the_groups(groups, bind, allowed):
    assert _render("{{ flask_jwt_api_bind }}", groups=groups) == bind
    assert _render("{{ flask_jwt_api_ip_address_allow }}", groups=groups) == allowed


SEED = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
OLD_SEED = "ffeeddccbbaa99887766554433221100fedcba9876543210f0e1d2c3b4a59687"
CLIENT_SECRET = "Gx7kP2mQ9rT4vW8yZ1bC3dF5hJ6lN0pS2uX4aE7gI9kM1oQ3"


def _token_environment(**overrides) -> dict:
    secrets = {"db_password": PASSWORD, "db_owner_password": PASSWORD, "jwt_secret_key": TEST_KEY,
               "jwt_ed25519_key": SEED, "introspection_client_billing": CLIENT_SECRET}  # fmt: skip
    return _render("{{ flask_jwt_api_environment }}", flask_jwt_api_secrets=secrets, **overrides)


def test_eddsa_mode_writes_the_generated_seed_as_an_ed25519_key_the_app_reads():
    environment = _token_environment(flask_jwt_api_jwt_algorithm="EdDSA")
    assert environment["JWT_SECRET_KEY"] == f"ed25519:{SEED}"
    assert Settings.from_env(environment).jwt_algorithm == "EdDSA"


def test_an_eddsa_rotation_writes_a_keyring_of_seeds_newest_first():
    environment = _token_environment(
        flask_jwt_api_jwt_algorithm="EdDSA", flask_jwt_api_jwt_previous_keys=[OLD_SEED]
    )
    assert "JWT_SECRET_KEY" not in environment
    assert environment["JWT_SECRET_KEYS"] == f"ed25519:{SEED},ed25519:{OLD_SEED}"
    assert len(Settings.from_env(environment).signing_keys) == 2


def test_hs256_is_the_default_and_introspection_is_off_without_clients():
    environment = _token_environment()
    assert environment["JWT_SECRET_KEY"] == TEST_KEY
    assert "JWT_INTROSPECTION_CLIENTS" not in environment
    assert Settings.from_env(environment).jwt_algorithm == "HS256"


def test_introspection_clients_get_their_secrets_in_the_environment():
    environment = _token_environment(flask_jwt_api_introspection_clients=["billing"])
    assert environment["JWT_INTROSPECTION_CLIENTS"] == f"billing:{CLIENT_SECRET}"
    settings = Settings.from_env(environment)
    assert settings.introspection_clients == (("billing", CLIENT_SECRET),)


def test_only_the_options_in_use_have_secrets_generated():
    names = _render("{{ flask_jwt_api_all_secret_specs | map(attribute='name') | list }}")
    assert names == ["db_password", "db_owner_password", "jwt_secret_key"]
    specs = _render(
        "{{ flask_jwt_api_all_secret_specs }}",
        flask_jwt_api_jwt_algorithm="EdDSA",
        flask_jwt_api_introspection_clients=["billing", "reports"],
        flask_jwt_api_introspection_secrets={"reports": CLIENT_SECRET},
    )
    given = {spec["name"]: spec["given"] for spec in specs[3:]}
    assert given == {"jwt_ed25519_key": "", "introspection_client_billing": "",
                     "introspection_client_reports": CLIENT_SECRET}  # fmt: skip
