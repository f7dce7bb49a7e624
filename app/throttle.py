"""Throttling of password checks and registrations, kept in PostgreSQL so that every worker and
every restart sees the same counts.

A login is counted under three keys, each with its own threshold:
- the pair (account, client address): the owner's own address is never slowed by an attacker's;
- the account across all addresses: a much higher threshold, for distributed guessing;
- the client address across all accounts: for spraying many accounts from one address. A pair
  that has logged in successfully is exempt from it, so an office's users keep logging in while
  someone behind the same address sprays.
Each attempt is reserved before the password is checked, by one statement per key that counts
and decides under the row's lock, so concurrent attempts never check more passwords than the
threshold. A success gives the reservation back. From the threshold on, the key is blocked for a
delay that doubles with each further attempt, up to a cap. Counts are forgotten only after a
whole window without attempts since the end of the last block, so an attacker who keeps going
never starts over.
"""

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text

from . import clock
from .config import settings
from .errors import TooManyRequests
from .extensions import db

# Behind ProxyFix the address comes from a header; the bound keeps any value within the key column.
ADDRESS_MAX = 64


@dataclass(frozen=True)
class Key:
    kind: str  # pair, account, address or register
    name: str
    threshold: int


def _address(address: str | None) -> str:
    return (address or "unknown")[:ADDRESS_MAX]


def login_keys(username: str, address: str | None) -> list["Key"]:
    """The keys of a password check for the canonical `username` from `address`, in lock order."""
    config = settings()
    return [
        Key("pair", f"pair:{username}|{_address(address)}", config.throttle_pair_failures),
        Key("account", f"account:{username}", config.throttle_account_failures),
        Key("address", f"address:{_address(address)}", config.throttle_ip_failures),
    ]


def register_keys(address: str | None) -> list["Key"]:
    return [Key("register", f"register:{_address(address)}", settings().register_address_limit)]


# A counter is forgotten after a whole window without attempts, counted from its last attempt or
# from the end of its last block, whichever is later (greatest() ignores a NULL block).
_FORGOTTEN = "greatest(t.last_failure_at, t.blocked_until) + :window <= :now"
_COUNT = f"(CASE WHEN {_FORGOTTEN} THEN 1 ELSE t.failures + 1 END)"
# From the threshold on: base, 2 x base, 4 x base ... capped (the exponent too, against overflow).
_BLOCK = f"""CASE WHEN {_COUNT} >= :threshold THEN CAST(:now AS timestamptz) + least(
    :max_delay, :base * power(2, least({_COUNT} - :threshold, 30))) END"""

# One statement counts and decides: a blocked key is not updated, so no row comes back.
RESERVE = text(f"""
INSERT INTO login_throttle AS t (key, failures, last_failure_at, blocked_until)
VALUES (:key, 1, :now, CASE WHEN :threshold <= 1 THEN CAST(:now AS timestamptz) + :base END)
ON CONFLICT (key) DO UPDATE SET
    failures = {_COUNT}, last_failure_at = :now, blocked_until = {_BLOCK}
WHERE t.blocked_until IS NULL OR t.blocked_until <= :now
RETURNING t.known_until
""")  # noqa: S608 - the fragments are constants; every value is bound


def reserve(keys: list[Key]) -> None:
    """Count one attempt under each key, or raise TooManyRequests when any key is blocked.

    Commits the reservation, so no lock is held while the password is checked; a refusal rolls
    all of it back. A pair that has logged in before is exempt from the address key.
    """
    config = settings()
    now = clock.now()
    params = {
        "now": now,
        "window": timedelta(seconds=config.throttle_window),
        "base": timedelta(seconds=config.throttle_base_delay),
        "max_delay": timedelta(seconds=config.throttle_max_delay),
    }
    known = False
    for key in keys:
        if known and key.kind == "address":
            continue
        row = db.session.execute(
            RESERVE, {**params, "key": key.name, "threshold": key.threshold}
        ).first()
        if row is None:
            db.session.rollback()
            raise TooManyRequests(_retry_after(key, now))
        if key.kind == "pair":
            known = row.known_until is not None and row.known_until > now
    db.session.commit()


def _retry_after(key: Key, now) -> int:
    blocked_until = db.session.execute(
        text("SELECT blocked_until FROM login_throttle WHERE key = :key"), {"key": key.name}
    ).scalar_one_or_none()
    if blocked_until is None:
        return 1
    return max(1, math.ceil((blocked_until - now).total_seconds()))


def succeeded(keys: list[Key]) -> None:
    """Give back the reservations of an attempt that succeeded; the caller commits.

    The pair is cleared and remembered as known (exempt from the address limit) for the refresh
    token's lifetime; the other keys each lose the one attempt that was reserved.
    """
    now = clock.now()
    for key in keys:
        if key.kind == "pair":
            db.session.execute(
                text(
                    "UPDATE login_throttle SET failures = 0, blocked_until = NULL,"
                    " known_until = :known_until WHERE key = :key"
                ),
                {
                    "key": key.name,
                    "known_until": now + timedelta(seconds=settings().refresh_token_seconds),
                },
            )
        else:
            db.session.execute(
                text(
                    "UPDATE login_throttle SET failures = greatest(failures - 1, 0),"
                    " blocked_until = CASE WHEN failures - 1 >= :threshold"
                    " THEN blocked_until END WHERE key = :key"
                ),
                {"key": key.name, "threshold": key.threshold},
            )


PRUNE = text("""
DELETE FROM login_throttle AS t
WHERE greatest(t.last_failure_at, t.blocked_until) + :window <= :now
  AND (t.known_until IS NULL OR t.known_until <= :now)
""")


def prune() -> int:
    """Delete counters that are forgotten and not a known pair; the caller commits."""
    window = timedelta(seconds=settings().throttle_window)
    return db.session.execute(PRUNE, {"now": clock.now(), "window": window}).rowcount
