"""EdDSA: Ed25519 keyrings, their rotation, the JWK Set, and one algorithm family per deployment
(no token of the other family, and no public key used as an HMAC secret, is ever accepted)."""

import base64
import hashlib
import hmac
import json
import secrets

import jwt as pyjwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.config import ConfigError, Settings
from tests.conftest import (
    ED25519_KEY,
    ED25519_SEED,
    TEST_KEY,
    bearer,
    claims_of,
    login,
    register,
    sign,
)

# RFC 8037 A.2 and A.3: the public key of ED25519_SEED and its RFC 7638 thumbprint.
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
NEW_SEED = "5ee1f4c6a8d1b3e2907f6c5d4b3a29180f7e6d5c4b3a29181f2e3d4c5b6a7988"
NEW_KEY = f"ed25519:{NEW_SEED}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    """A token assembled by hand, as an attacker would, whatever its header says."""
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64url(signature)}"


def _forge_hs256(claims: dict, secret: bytes, kid: str) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    unsigned = _forge(header, claims).rsplit(".", 1)[0]
    signature = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{_b64url(signature)}"


def _public_forms() -> dict[str, bytes]:
    """Every form in which the deployment's public key is known to the world."""
    public = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(ED25519_SEED)).public_key()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    return {
        "raw bytes": public.public_bytes(Encoding.Raw, PublicFormat.Raw),
        "base64url x": RFC8037_X.encode(),
        "PEM": public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        "OpenSSH": public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH),
        "JWK": json.dumps(jwk).encode(),
    }


def _settings(**env):
    return Settings.from_env({"DATABASE_URL": "postgresql://u:p@localhost/db", **env})


def test_an_eddsa_keyring_signs_with_eddsa_and_names_the_key_by_its_thumbprint(eddsa_client):
    register(eddsa_client)
    pair = login(eddsa_client)
    for token in (pair["access_token"], pair["refresh_token"]):
        header = pyjwt.get_unverified_header(token)
        assert header["alg"] == "EdDSA"
        assert header["kid"] == RFC8037_THUMBPRINT
    dashboard = eddsa_client.get("/protected/dashboard", headers=bearer(pair["access_token"]))
    assert dashboard.status_code == 200
    refreshed = eddsa_client.post("/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert refreshed.status_code == 200


def test_the_jwks_publishes_the_public_key_only_with_cache_headers(eddsa_client):
    response = eddsa_client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.get_json() == {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": RFC8037_X,
                "kid": RFC8037_THUMBPRINT,
                "alg": "EdDSA",
                "use": "sig",
            }
        ]
    }
    assert ED25519_SEED not in response.get_data(as_text=True)


def test_another_service_verifies_access_tokens_with_the_jwks_alone(eddsa_client):
    register(eddsa_client)
    token = login(eddsa_client)["access_token"]
    key_set = pyjwt.PyJWKSet.from_dict(eddsa_client.get("/.well-known/jwks.json").get_json())
    key = next(k for k in key_set.keys if k.key_id == pyjwt.get_unverified_header(token)["kid"])
    claims = pyjwt.decode(token, key.key, algorithms=["EdDSA"])
    assert claims["sub"] == "1"
    assert claims["type"] == "access"


def test_hs256_mode_publishes_an_empty_key_set(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.get_json() == {"keys": []}
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert TEST_KEY not in response.get_data(as_text=True)


def test_a_rotation_verifies_the_previous_key_and_publishes_both(make_app):
    before = make_app(JWT_SECRET_KEY=ED25519_KEY).test_client()
    register(before)
    old = login(before)
    after = make_app(JWT_SECRET_KEY="", JWT_SECRET_KEYS=f"{NEW_KEY}, {ED25519_KEY}").test_client()
    assert after.get("/auth/me", headers=bearer(old["access_token"])).status_code == 200
    assert after.post("/auth/refresh", headers=bearer(old["refresh_token"])).status_code == 200
    new = login(after)
    new_kid = pyjwt.get_unverified_header(new["access_token"])["kid"]
    keys = after.get("/.well-known/jwks.json").get_json()["keys"]
    # Newest first: the key that signs now, then the one still verifying.
    assert [key["kid"] for key in keys] == [new_kid, RFC8037_THUMBPRINT]
    assert new_kid != RFC8037_THUMBPRINT


def test_a_key_dropped_from_the_keyring_no_longer_verifies_nor_is_published(make_app):
    before = make_app(JWT_SECRET_KEY=ED25519_KEY).test_client()
    register(before)
    old = login(before)
    after = make_app(JWT_SECRET_KEY=NEW_KEY).test_client()
    response = after.get("/auth/me", headers=bearer(old["access_token"]))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Signature verification failed"}
    kids = [key["kid"] for key in after.get("/.well-known/jwks.json").get_json()["keys"]]
    assert RFC8037_THUMBPRINT not in kids


@pytest.mark.parametrize("form", list(_public_forms()))
def test_the_public_key_used_as_an_hmac_secret_is_refused(eddsa_client, form):
    """The classic algorithm confusion: HS256 "signed" with the published key."""
    register(eddsa_client)
    claims = claims_of(login(eddsa_client)["access_token"])
    forged = _forge_hs256(claims, _public_forms()[form], RFC8037_THUMBPRINT)
    response = eddsa_client.get("/protected/dashboard", headers=bearer(forged))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Token algorithm is not allowed"}


@pytest.mark.parametrize("deployment", ["HS256", "EdDSA"])
def test_an_unsigned_token_is_refused(make_app, deployment):
    key = TEST_KEY if deployment == "HS256" else ED25519_KEY
    client = make_app(JWT_SECRET_KEY=key).test_client()
    register(client)
    real = login(client)["access_token"]
    for alg in ("none", "None", "NONE"):
        header = {**pyjwt.get_unverified_header(real), "alg": alg}
        response = client.get(
            "/protected/dashboard", headers=bearer(_forge(header, claims_of(real)))
        )
        assert response.status_code == 401, alg
        assert response.get_json() == {"msg": "Token algorithm is not allowed"}


def test_an_hs256_token_is_refused_by_an_eddsa_deployment(eddsa_client):
    register(eddsa_client)
    claims = claims_of(login(eddsa_client)["access_token"])
    # Validly signed with a real HMAC key, even one carrying the Ed25519 key's kid.
    for token in (sign(claims), sign(claims, TEST_KEY, kid=RFC8037_THUMBPRINT)):
        response = eddsa_client.get("/protected/dashboard", headers=bearer(token))
        assert response.status_code == 401
        assert response.get_json() == {"msg": "Token algorithm is not allowed"}


def test_an_eddsa_token_is_refused_by_an_hs256_deployment(make_app, eddsa_client):
    register(eddsa_client)
    token = login(eddsa_client)["access_token"]
    hs256 = make_app().test_client()
    response = hs256.get("/protected/dashboard", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Token algorithm is not allowed"}


def test_a_token_signed_by_another_ed25519_key_is_refused(eddsa_client):
    register(eddsa_client)
    claims = claims_of(login(eddsa_client)["access_token"])
    stranger = Ed25519PrivateKey.generate()
    forged = pyjwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": RFC8037_THUMBPRINT})
    response = eddsa_client.get("/protected/dashboard", headers=bearer(forged))
    assert response.status_code == 401
    assert response.get_json() == {"msg": "Signature verification failed"}


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        (
            {"JWT_SECRET_KEYS": f"{ED25519_KEY},{TEST_KEY}"},
            "JWT_SECRET_KEYS mixes HMAC secrets and Ed25519 keys",
        ),
        (
            {"JWT_SECRET_KEYS": f"{TEST_KEY},{ED25519_KEY}"},
            "JWT_SECRET_KEYS mixes HMAC secrets and Ed25519 keys",
        ),
        (
            {"JWT_SECRET_KEY": "ed25519:" + ED25519_SEED[:62]},
            "JWT_SECRET_KEY is not an Ed25519 key",
        ),
        ({"JWT_SECRET_KEY": "ed25519:" + "g" * 64}, "JWT_SECRET_KEY is not an Ed25519 key"),
        ({"JWT_SECRET_KEY": "ed25519:" + "0" * 64}, "JWT_SECRET_KEY is too repetitive"),
        (
            {"JWT_SECRET_KEYS": f"{ED25519_KEY},{ED25519_KEY.upper().replace('ED', 'ed', 1)}"},
            "JWT_SECRET_KEYS lists the same key twice",
        ),
    ],
)
def test_bad_ed25519_keyrings_are_refused_with_a_sentence(env, sentence):
    with pytest.raises(ConfigError, match=sentence):
        _settings(**{"JWT_SECRET_KEY": "", **env})


def test_the_algorithm_follows_from_the_keyring():
    assert _settings(JWT_SECRET_KEY=TEST_KEY).jwt_algorithm == "HS256"
    assert _settings(JWT_SECRET_KEY=ED25519_KEY).jwt_algorithm == "EdDSA"
    ring = _settings(JWT_SECRET_KEYS=f"{NEW_KEY},{ED25519_KEY}")
    assert ring.jwt_algorithm == "EdDSA"
    assert [key.kid for key in ring.signing_keys][1] == RFC8037_THUMBPRINT


@pytest.mark.slow
def test_eddsa_tokens_issued_by_one_worker_verify_on_every_worker(gunicorn):
    seed = secrets.token_hex(32)
    with gunicorn(workers=3, JWT_SECRET_KEY=f"ed25519:{seed}") as server:
        credentials = {"username": "worker-user", "password": "worker-password"}
        assert requests.post(f"{server.url}/auth/register", json=credentials, timeout=10).ok
        pair = requests.post(f"{server.url}/auth/login", json=credentials, timeout=10).json()
        # A new connection each time: gunicorn's workers take turns accepting them.
        answers = [
            requests.get(
                f"{server.url}/protected/dashboard",
                headers=bearer(pair["access_token"]),
                timeout=10,
            ).status_code
            for _ in range(15)
        ]
        key_sets = [
            requests.get(f"{server.url}/.well-known/jwks.json", timeout=10) for _ in range(6)
        ]
    assert answers == [200] * 15
    assert len({response.text for response in key_sets}) == 1
    key = pyjwt.PyJWKSet.from_dict(key_sets[0].json()).keys[0]
    assert pyjwt.decode(pair["access_token"], key.key, algorithms=["EdDSA"])["sub"] == "1"
