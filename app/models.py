"""The tables: users, login sessions (one per login: the unit of revocation), login throttling."""

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

# The longest client address and user agent kept for a login; longer values are cut.
ADDRESS_MAX, USER_AGENT_MAX = 64, 256


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Kept as registered for display; uniqueness and look-ups use its canonical form (see
    # canonical()), ASCII lower case, which lower() gives only under the "C" collation.
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_users_username_canonical", func.lower(username.collate("C")), unique=True),
    )

    @classmethod
    def named(cls, canonical_name: str):
        """The condition for the user whose canonical name is `canonical_name`."""
        return func.lower(cls.username.collate("C")) == canonical_name


class LoginSession(db.Model):
    """One login: the access and refresh tokens it issues share its id (`sid`).

    Revoking the row revokes every token of that login at once, on every worker. The refresh
    token's jti is rotated on each refresh; presenting an older one means it was stolen.
    """

    __tablename__ = "login_sessions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    refresh_jti: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # When the newest refresh token expires; after that the row is only history and is pruned.
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    # How many times the refresh token was rotated; the current one is generation N, the one it
    # replaced (previous_refresh_jti) N - 1. Only those two are ever accepted, the second only
    # within the grace window after refreshed_at, and only for the same successor.
    generation: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    previous_refresh_jti: Mapped[str | None] = mapped_column(String(64))
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The client of the latest login or refresh, as shown by GET /auth/sessions (cut to length).
    client_address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))


class LoginThrottle(db.Model):
    """Attempt counters per throttling key: (account, address) pair, account, address, or
    registrations per address. See throttle.py."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Pair keys only: this account logged in from this address, so the address limit skips it.
    known_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
