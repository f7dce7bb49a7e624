"""Password hashing: argon2id for new hashes, with the demo's Werkzeug hashes still accepted.

A login for an unknown user verifies against a dummy hash of the same cost, so that the answer
takes as long as a login for a known user.
"""

import unicodedata
from functools import cached_property

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from werkzeug.security import check_password_hash

# Hash prefixes written by werkzeug.security.generate_password_hash, which the demo used.
LEGACY_PREFIXES = ("scrypt:", "pbkdf2:")


def _normalize(password: str) -> str:
    # NIST 800-63B: normalise Unicode so that the same password typed on two keyboards matches.
    return unicodedata.normalize("NFKC", password)


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash("dummy password for unknown users")

    def hash(self, password: str) -> str:
        return self._hasher.hash(_normalize(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no stored hash, spends the same time and says no."""
        if stored_hash is None:
            self._verify_argon2(self._dummy_hash, password)
            return False
        if stored_hash.startswith(LEGACY_PREFIXES):
            try:
                return check_password_hash(stored_hash, password)
            except ValueError:  # a corrupt or unknown legacy method
                return False
        return self._verify_argon2(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        if stored_hash.startswith(LEGACY_PREFIXES):
            return True
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _verify_argon2(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, _normalize(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
