"""Login throttling, kept in PostgreSQL so that every worker and every restart sees the same counts.

Each key (an account, or a client address) counts failed logins. Once a key reaches its threshold
it is blocked for a delay that doubles with each further failure, up to a cap. Failures older than
the window are forgotten, and a successful login clears the account's counter.
"""

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects.postgresql import insert

from .config import settings
from .extensions import db
from .models import LoginThrottle


def account_key(username: str) -> str:
    return "account:" + username.lower()


# Behind ProxyFix the address comes from a header; the bound keeps any value within the key column.
ADDRESS_MAX = 64


def address_key(address: str | None) -> str:
    return "address:" + (address or "unknown")[:ADDRESS_MAX]


def register_key(address: str | None) -> str:
    return "register:" + (address or "unknown")[:ADDRESS_MAX]


def retry_after(keys: list[str]) -> int | None:
    """Seconds until every key is unblocked, or None when none is blocked."""
    now = datetime.now(UTC)
    latest = db.session.execute(
        select(func.max(LoginThrottle.blocked_until)).where(
            LoginThrottle.key.in_(keys), LoginThrottle.blocked_until > now
        )
    ).scalar_one()
    if latest is None:
        return None
    return max(1, math.ceil((latest - now).total_seconds()))


def record(key: str, threshold: int) -> None:
    """Count one failure (or, for registration, one attempt) for `key`, and block the key once it
    reaches `threshold`. The caller commits."""
    config = settings()
    table = LoginThrottle.__table__
    now = func.now()
    forgotten = table.c.last_failure_at < now - timedelta(seconds=config.throttle_window)
    failures = case((forgotten, 1), else_=table.c.failures + 1)
    # Doubling delay: base, 2*base, 4*base ... from the threshold on, capped at the maximum.
    delay_seconds = func.least(
        config.throttle_max_delay,
        config.throttle_base_delay * func.power(2, func.greatest(failures - threshold, 0)),
    )
    blocked_until = case(
        (failures >= threshold, now + func.make_interval(0, 0, 0, 0, 0, 0, delay_seconds)),
        else_=None,
    )
    first_block = now + timedelta(seconds=config.throttle_base_delay) if threshold <= 1 else None
    statement = insert(table).values(
        key=key, failures=1, last_failure_at=now, blocked_until=first_block
    )
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"failures": failures, "last_failure_at": now, "blocked_until": blocked_until},
        )
    )


def clear(key: str) -> None:
    """Forget the failures of `key`. The caller commits."""
    db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
