"""The role's DATABASE_URL, rendered with Ansible's own templating from the role's files, reaches
the app exactly: any password characters, an IPv6 address, a socket directory."""

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from sqlalchemy.engine import make_url

from app.config import Settings
from tests.conftest import ROOT, TEST_KEY

ROLE = ROOT / "deploy" / "ansible" / "roles" / "flask_jwt_api"
PASSWORD = "p@ss:w/rd?#%+$ x"


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
    environment = _render("{{ flask_jwt_api_environment }}", groups={"db": ["db1"], "edge": ["e1"]},
                          flask_jwt_api_extra_env={"PROXY_FIX_X_FOR": "2"})  # fmt: skip
    assert environment["PROXY_FIX_X_FOR"] == "2"
