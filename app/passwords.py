"""Password hashing: argon2id for new hashes; the demo's Werkzeug hashes still verify, wrapped in
argon2id at rest until their owner's next login replaces them.

A login for an unknown user verifies against a dummy hash of the same cost, so that the answer
takes as long as a login for a known user.

Wrapping (OWASP's password storage guidance, "upgrading legacy hashes"): the legacy hash is
`scrypt:N:r:p$salt$hex` or `pbkdf2:HASH:ITER$salt$hex`; its hex digest is hashed again with argon2id
and stored as `wrapped:METHOD$salt$<argon2id>`. Checking one recomputes the legacy digest from the
password and the kept salt, then verifies it with argon2id. Nothing of the weak digest remains.
"""

import hashlib
import hmac
import unicodedata
from functools import cached_property

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from werkzeug.security import check_password_hash

# Hash prefixes written by werkzeug.security.generate_password_hash, which the demo used.
LEGACY_PREFIXES = ("scrypt:", "pbkdf2:")
WRAPPED_PREFIX = "wrapped:"
# Werkzeug 3's defaults when a method names no parameters.
SCRYPT_DEFAULTS = (2**15, 8, 1)
PBKDF2_DEFAULT_ITERATIONS = 1_000_000


def normalize(password: str) -> str:
    # NIST 800-63B: normalise Unicode so that the same password typed on two keyboards matches.
    return unicodedata.normalize("NFKC", password)


def legacy_digest(method: str, salt: str, password: str) -> str:
    """The hex digest Werkzeug stored for `password` under `method` and `salt` (raw, as the demo
    hashed it, without normalisation). Raises ValueError for an unknown or corrupt method."""
    name, *params = method.split(":")
    secret, salt_bytes = password.encode(), salt.encode()
    if name == "scrypt":
        n, r, p = (int(value) for value in params) if params else SCRYPT_DEFAULTS
        return hashlib.scrypt(
            secret, salt=salt_bytes, n=n, r=r, p=p, maxmem=132 * n * r * p, dklen=64
        ).hex()
    if name == "pbkdf2":
        hash_name = params[0] if params else "sha256"
        iterations = int(params[1]) if len(params) > 1 else PBKDF2_DEFAULT_ITERATIONS
        return hashlib.pbkdf2_hmac(hash_name, secret, salt_bytes, iterations).hex()
    raise ValueError(f"unknown legacy method {name!r}")


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash("dummy password for unknown users")

    def hash(self, password: str) -> str:
        return self._hasher.hash(normalize(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no stored hash, spends the same time and says no."""
        if stored_hash is None:
            self._verify_argon2(self._dummy_hash, normalize(password))
            return False
        try:
            if stored_hash.startswith(WRAPPED_PREFIX):
                method, salt, inner = stored_hash.removeprefix(WRAPPED_PREFIX).split("$", 2)
                return self._verify_argon2(inner, legacy_digest(method, salt, password))
            if stored_hash.startswith(LEGACY_PREFIXES):
                return check_password_hash(stored_hash, password)
        except ValueError:  # a corrupt or unknown legacy method
            return False
        return self._verify_argon2(stored_hash, normalize(password))

    def wrap(self, legacy_hash: str) -> str:
        """The wrapped form of a Werkzeug hash; ValueError when it is not one."""
        method, salt, digest = legacy_hash.split("$", 2)
        if not method.startswith(LEGACY_PREFIXES) or not salt or not digest:
            raise ValueError("not a Werkzeug password hash")
        return f"{WRAPPED_PREFIX}{method}${salt}${self._hasher.hash(digest)}"

    def needs_rehash(self, stored_hash: str) -> bool:
        if stored_hash.startswith((*LEGACY_PREFIXES, WRAPPED_PREFIX)):
            return True
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _verify_argon2(self, stored_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def same_hash(first: str, second: str) -> bool:
    return hmac.compare_digest(first.encode(), second.encode())
