"""Settings: read from the environment once at start-up, validated, and turned into Flask config.

Every problem is reported as a ConfigError whose message says which variable to set and how.
"""

import base64
import hashlib
import ipaddress
import json
import os
import re
from dataclasses import dataclass

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import current_app
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MIN_KEY_BYTES = 32

# Signing keys that appear in tutorials and demos. A key containing one of these is refused even
# when it is long enough, because it is guessable.
KNOWN_DEFAULT_KEYS = (
    "supersecretkey",
    "super-secret",
    "super_secret",
    "secretkey",
    "secret-key",
    "secret_key",
    "changeme",
    "change-me",
    "change_me",
    "your-secret",
    "your_secret",
    "jwt-secret",
    "jwt_secret",
    "mysecret",
    "notsecret",
    "password",
)

# OWASP's minimum for argon2id: 19 MiB of memory, 2 iterations, 1 lane.
ARGON2_MIN_MEMORY_KIB = 19 * 1024
ARGON2_MIN_TIME_COST = 2


class ConfigError(click.ClickException, RuntimeError):
    """The environment does not describe a usable configuration.

    A ClickException, so that every `flask --app app ...` command answers `Error: <sentence>` and
    exits 1 instead of printing a traceback; gunicorn still exits non-zero with the sentence.
    """


# The two families a keyring can hold; every entry of one keyring is of the same family.
HS256, EDDSA = "HS256", "EdDSA"
# An Ed25519 keyring entry: this prefix, then the 32-byte private seed as 64 hex digits.
ED25519_PREFIX = "ed25519:"
ED25519_SEED = re.compile(r"[0-9a-fA-F]{64}")
# RFC 6749 2.3.1 allows any printable client id; this one also goes into logs and env files.
CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")


@dataclass(frozen=True)
class SigningKey:
    """A keyring entry. HS256: `secret` is the shared secret, which also verifies. EdDSA: `secret`
    is the private key, and `public` the key that verifies, which JWKS publishes."""

    kid: str
    secret: str | Ed25519PrivateKey
    algorithm: str = HS256
    public: Ed25519PublicKey | None = None

    @property
    def verifying_key(self) -> str | Ed25519PublicKey:
        return self.secret if self.public is None else self.public


def key_id(secret: str) -> str:
    """A stable, non-reversible name for a key, carried in each token's `kid` header."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def ed25519_jwk(public: Ed25519PublicKey) -> dict:
    """The public key's required JWK members (RFC 8037)."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"crv": "Ed25519", "kty": "OKP", "x": x}


def jwk_thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 of the required members, sorted and without whitespace, in base64url."""
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _ed25519_key(entry: str, name: str) -> SigningKey:
    seed = entry[len(ED25519_PREFIX) :]
    if not ED25519_SEED.fullmatch(seed):
        raise ConfigError(
            f"{name} is not an Ed25519 key: write ed25519: and the 32-byte private seed as 64 hex "
            "digits, for example the output of "
            "`python3 -c \"import secrets; print('ed25519:' + secrets.token_hex(32))\"`."
        )
    if len(set(seed.lower())) < 8:
        raise ConfigError(f"{name} is too repetitive to be random: set it to a random seed.")
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    public = private.public_key()
    kid = jwk_thumbprint(ed25519_jwk(public))
    return SigningKey(kid=kid, secret=private, algorithm=EDDSA, public=public)


def _check_key(secret: str, name: str) -> SigningKey:
    if secret.startswith(ED25519_PREFIX):
        return _ed25519_key(secret, name)
    _check_secret(secret, name)
    return SigningKey(kid=key_id(secret), secret=secret)


def _check_secret(secret: str, name: str) -> None:
    """The rules for every shared secret: long, not a well-known default, not repetitive."""
    if len(secret.encode()) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{name} is too short: use at least {MIN_KEY_BYTES} random bytes, "
            'for example the output of `python3 -c "import secrets; print(secrets.token_hex(32))"`.'
        )
    lowered = secret.lower()
    for weak in KNOWN_DEFAULT_KEYS:
        if weak in lowered:
            raise ConfigError(
                f"{name} contains the well-known default {weak!r}: "
                "set it to a random value of at least 32 bytes."
            )
    if len(set(secret)) < 8:
        raise ConfigError(f"{name} is too repetitive to be random: set it to a random value.")


def _signing_keys(env) -> tuple[SigningKey, ...]:
    single = env.get("JWT_SECRET_KEY", "").strip()
    ring = env.get("JWT_SECRET_KEYS", "").strip()
    if single and ring:
        raise ConfigError(
            "Both JWT_SECRET_KEY and JWT_SECRET_KEYS are set: set only one "
            "(JWT_SECRET_KEYS for a keyring during rotation, JWT_SECRET_KEY otherwise)."
        )
    if ring:
        secrets = [part.strip() for part in ring.split(",") if part.strip()]
        keys = tuple(_check_key(s, f"JWT_SECRET_KEYS entry {i + 1}") for i, s in enumerate(secrets))
        if len({k.kid for k in keys}) != len(keys):
            raise ConfigError("JWT_SECRET_KEYS lists the same key twice: remove the duplicate.")
        if len({k.algorithm for k in keys}) > 1:
            # A public key must never be usable as an HMAC secret: one family per deployment.
            raise ConfigError(
                "JWT_SECRET_KEYS mixes HMAC secrets and Ed25519 keys (ed25519:...): list keys of "
                "one kind only. Tokens cannot outlive a change between HS256 and EdDSA: set the "
                "new kind alone, and users log in again."
            )
        return keys
    if single:
        return (_check_key(single, "JWT_SECRET_KEY"),)
    raise ConfigError(
        "JWT_SECRET_KEY is not set: set it to a random value of at least 32 bytes "
        "(or set JWT_SECRET_KEYS to a comma-separated keyring, newest first)."
    )


def _introspection_clients(env) -> tuple[tuple[str, str], ...]:
    """JWT_INTROSPECTION_CLIENTS: `client_id:secret` pairs, comma-separated; none by default."""
    entries = [part.strip() for part in env.get("JWT_INTROSPECTION_CLIENTS", "").split(",")]
    clients = []
    for number, entry in enumerate(filter(None, entries), 1):
        name = f"JWT_INTROSPECTION_CLIENTS entry {number}"
        client_id, colon, secret = entry.partition(":")
        if not colon or not CLIENT_ID.fullmatch(client_id):
            raise ConfigError(
                f"{name} must be CLIENT_ID:SECRET, the id at most 64 letters, digits, '.', '_', "
                "'~' or '-'."
            )
        _check_secret(secret, f"{name}'s secret")
        clients.append((client_id, secret))
    if len({client_id for client_id, _ in clients}) != len(clients):
        raise ConfigError("JWT_INTROSPECTION_CLIENTS names a client twice: remove the duplicate.")
    return tuple(clients)


# The app's hot path uses psycopg 3's own API (autocommit, automatic prepare), so it is the driver.
SUPPORTED_DRIVERS = ("postgresql", "postgresql+psycopg")


def _database_url(env) -> str:
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        raise ConfigError(
            "DATABASE_URL is not set: set it to postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        )
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL is not a valid URL: use postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        ) from None
    if url.get_backend_name() != "postgresql" or not url.database:
        raise ConfigError(
            "DATABASE_URL must name a PostgreSQL database: "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        )
    if url.drivername not in SUPPORTED_DRIVERS:
        raise ConfigError(
            f"DATABASE_URL names the driver {url.drivername!r}, which this app does not use: "
            "write postgresql://... (psycopg 3, the pinned driver)."
        )
    try:
        url.get_dialect().import_dbapi()
    except ImportError:
        raise ConfigError(
            "DATABASE_URL needs psycopg 3, which is not installed: install requirements.txt."
        ) from None
    return raw


# Connection parameters the app sets from its own settings (libpq's names): a DATABASE_URL that also
# sets one is refused, since one of the two values would be silently ignored.
OWNED_URL_PARAMETERS = {
    "connect_timeout": "DB_CONNECT_TIMEOUT",
    "tcp_user_timeout": "DB_CONNECT_TIMEOUT",
}
_STATEMENT_TIMEOUT = re.compile(r"statement[_-]timeout", re.IGNORECASE)


def _database_options(env, database_url: str) -> str:
    """The server options the operator asked for (DATABASE_URL's `options`, else PGOPTIONS, as
    libpq would read them), to which the app adds its statement timeout."""
    query = make_url(database_url).query
    for parameter, setting in OWNED_URL_PARAMETERS.items():
        if parameter in query:
            raise ConfigError(
                f"DATABASE_URL sets {parameter}, which the app sets from {setting}: "
                f"remove it from the URL and set {setting} (seconds) instead."
            )
    if "options" in query:
        value, source = query["options"], "DATABASE_URL's options parameter"
        value = " ".join(value) if isinstance(value, tuple) else value
    else:
        value, source = env.get("PGOPTIONS", ""), "PGOPTIONS"
    if _STATEMENT_TIMEOUT.search(value):
        raise ConfigError(
            f"{source} sets statement_timeout, which the app sets from DB_STATEMENT_TIMEOUT: "
            "remove it there and set DB_STATEMENT_TIMEOUT (seconds) instead."
        )
    return value.strip()


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(env, name: str) -> tuple[Network, ...]:
    """Comma-separated addresses and CIDRs, e.g. `192.0.2.10, 10.0.0.0/24, 2001:db8::/64`."""
    networks = []
    for entry in (part.strip() for part in env.get(name, "").split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
            continue
        except ValueError:
            pass
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"{name} lists {entry!r}, which is not an IP address or CIDR: list addresses "
                "(192.0.2.10) or networks (10.0.0.0/24), comma-separated; no host names."
            ) from None
        raise ConfigError(
            f"{name} lists {entry!r}, which has host bits set: write {network} for the network, "
            f"or {entry.split('/')[0]} for the one address."
        )
    return tuple(networks)


def _int(env, name: str, default: int, minimum: int, maximum: int) -> int:
    """A whole number within bounds the code can handle (every setting has both bounds)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, not {value}.")
    return value


DAY = 24 * 3600


@dataclass(frozen=True)
class Settings:
    database_url: str
    signing_keys: tuple[SigningKey, ...]
    access_token_seconds: int
    refresh_token_seconds: int
    max_request_bytes: int
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int
    throttle_pair_failures: int
    throttle_account_failures: int
    throttle_ip_failures: int
    throttle_base_delay: int
    throttle_max_delay: int
    throttle_window: int
    register_address_limit: int
    sessions_per_user: int
    refresh_reuse_grace: int
    session_max_age: int
    proxy_fix_x_for: int
    db_pool_size: int
    db_max_overflow: int
    db_pool_timeout: int
    db_connect_timeout: int
    db_statement_timeout: int
    database_options: str
    jwt_decode_cache_size: int
    introspection_clients: tuple[tuple[str, str], ...]
    log_level: str
    # Who besides loopback may read /metrics (app/metrics.py).
    metrics_allowed_networks: tuple[Network, ...]

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        env = os.environ if env is None else env
        log_level = env.get("LOG_LEVEL", "INFO").strip().upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("LOG_LEVEL must be one of DEBUG, INFO, WARNING or ERROR.")
        access = _int(env, "JWT_ACCESS_TOKEN_EXPIRES", 15 * 60, 10, DAY)
        refresh = _int(env, "JWT_REFRESH_TOKEN_EXPIRES", 30 * DAY, 60, 365 * DAY)
        if refresh <= access:
            raise ConfigError(
                "JWT_REFRESH_TOKEN_EXPIRES must be longer than JWT_ACCESS_TOKEN_EXPIRES."
            )
        base_delay = _int(env, "LOGIN_THROTTLE_BASE_DELAY", 30, 1, 3600)
        max_delay = _int(env, "LOGIN_THROTTLE_MAX_DELAY", 15 * 60, 1, DAY)
        if max_delay < base_delay:
            raise ConfigError(
                "LOGIN_THROTTLE_MAX_DELAY must be at least LOGIN_THROTTLE_BASE_DELAY "
                f"({base_delay} s), not {max_delay}."
            )
        pair = _int(env, "LOGIN_THROTTLE_PAIR_FAILURES", 5, 1, 1000)
        account = _int(env, "LOGIN_THROTTLE_ACCOUNT_FAILURES", 100, 2, 100_000)
        if account <= pair:
            raise ConfigError(
                f"LOGIN_THROTTLE_ACCOUNT_FAILURES ({account}) must be higher than "
                f"LOGIN_THROTTLE_PAIR_FAILURES ({pair}): the limit across all addresses is for "
                "distributed guessing, and one address must not be able to block the owner."
            )
        session_max_age = _int(env, "JWT_SESSION_MAX_AGE", 90 * DAY, 3600, 10 * 365 * DAY)
        if session_max_age <= access:
            raise ConfigError(
                f"JWT_SESSION_MAX_AGE ({session_max_age} s) must be longer than "
                f"JWT_ACCESS_TOKEN_EXPIRES ({access} s)."
            )
        database_url = _database_url(env)
        return cls(
            database_url=database_url,
            signing_keys=_signing_keys(env),
            access_token_seconds=access,
            refresh_token_seconds=refresh,
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 16 * 1024, 1024, 1024 * 1024),
            argon2_time_cost=_int(env, "ARGON2_TIME_COST", ARGON2_MIN_TIME_COST, 2, 20),
            argon2_memory_kib=_int(
                env, "ARGON2_MEMORY_KIB", ARGON2_MIN_MEMORY_KIB, ARGON2_MIN_MEMORY_KIB, 1024 * 1024
            ),
            argon2_parallelism=_int(env, "ARGON2_PARALLELISM", 1, 1, 8),
            throttle_pair_failures=pair,
            throttle_account_failures=account,
            throttle_ip_failures=_int(env, "LOGIN_THROTTLE_IP_FAILURES", 50, 1, 100_000),
            throttle_base_delay=base_delay,
            throttle_max_delay=max_delay,
            throttle_window=_int(env, "LOGIN_THROTTLE_WINDOW", 15 * 60, 60, 7 * DAY),
            register_address_limit=_int(env, "REGISTER_THROTTLE_ADDRESS_LIMIT", 20, 0, 100_000),
            sessions_per_user=_int(env, "SESSIONS_PER_USER", 100, 1, 10_000),
            refresh_reuse_grace=_int(env, "JWT_REFRESH_REUSE_GRACE", 30, 0, 300),
            session_max_age=session_max_age,
            proxy_fix_x_for=_int(env, "PROXY_FIX_X_FOR", 0, 0, 5),
            db_pool_size=_int(env, "DB_POOL_SIZE", 5, 1, 100),
            db_max_overflow=_int(env, "DB_MAX_OVERFLOW", 10, 0, 100),
            db_pool_timeout=_int(env, "DB_POOL_TIMEOUT", 3, 1, 60),
            # libpq and psycopg wait at least 2 s for a connection whatever is asked, so 2 is the
            # lowest value that means what it says.
            db_connect_timeout=_int(env, "DB_CONNECT_TIMEOUT", 3, 2, 60),
            db_statement_timeout=_int(env, "DB_STATEMENT_TIMEOUT", 5, 1, 300),
            database_options=_database_options(env, database_url),
            # About 1 KiB per entry: the upper bound keeps the cache under 64 MiB per worker.
            jwt_decode_cache_size=_int(env, "JWT_DECODE_CACHE_SIZE", 1024, 0, 65_536),
            introspection_clients=_introspection_clients(env),
            log_level=log_level,
            metrics_allowed_networks=_networks(env, "METRICS_ALLOWED_ADDRESSES"),
        )

    @property
    def jwt_algorithm(self) -> str:
        """HS256 or EdDSA: the keyring's one family, the only algorithm tokens may carry."""
        return self.signing_keys[0].algorithm

    def connect_args(self) -> dict:
        """psycopg's connection parameters, the same over TCP and over a Unix socket.

        connect_timeout bounds opening a connection (up to the server's first answer);
        tcp_user_timeout closes an open TCP connection whose host stops acknowledging what is sent
        (a paused or unplugged host; libpq ignores it on a socket); the statement timeout, passed at
        start-up so it costs no round trip, has the server cancel a statement that waits or runs
        longer (SQLSTATE 57014).
        """
        statement_timeout = f"-c statement_timeout={self.db_statement_timeout * 1000}"
        return {
            "connect_timeout": self.db_connect_timeout,
            "tcp_user_timeout": self.db_connect_timeout * 1000,
            "options": f"{self.database_options} {statement_timeout}".strip(),
        }

    def flask_config(self) -> dict:
        return {
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            # Pre-ping replaces connections that died with a database restart before a request
            # sees them; pool_recycle keeps idle connections from outliving server-side timeouts.
            # A request that finds the pool exhausted waits pool_timeout, then answers 503.
            # hide_parameters keeps statement values (usernames, hashes) out of every error text.
            # A database that does not answer is given up on after the timeouts of connect_args().
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "connect_args": self.connect_args(),
                "pool_pre_ping": True,
                "pool_size": self.db_pool_size,
                "max_overflow": self.db_max_overflow,
                "pool_timeout": self.db_pool_timeout,
                "pool_recycle": 1800,
                "hide_parameters": True,
            },
            "MAX_CONTENT_LENGTH": self.max_request_bytes,
            "API_TITLE": "flask-jwt-api",
            "API_VERSION": "1.0.0",
            "OPENAPI_VERSION": "3.0.3",
            "OPENAPI_URL_PREFIX": "/",
            "OPENAPI_JSON_PATH": "openapi.json",
            "API_SPEC_OPTIONS": {
                "components": {
                    "securitySchemes": {
                        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                        # RFC 7662 2.1: a client of JWT_INTROSPECTION_CLIENTS, as RFC 6749 2.3.1.
                        "introspectionClient": {"type": "http", "scheme": "basic"},
                    }
                }
            },
        }


def settings() -> Settings:
    """The current app's settings, as validated at start-up."""
    return current_app.extensions["settings"]
