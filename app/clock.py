"""The one clock: token lifetimes, session expiry and throttle windows all read the time here."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def timestamp() -> float:
    return now().timestamp()
