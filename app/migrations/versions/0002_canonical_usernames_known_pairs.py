"""Canonical usernames compared under the "C" collation; known (account, address) pairs.

The unique index compares lower(username) under "C", which folds ASCII letters only, so no other
character can ever collide with (or log in as) an account. login_throttle.known_until marks pairs
that logged in successfully (exempt from the per-address limit).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "uq_users_username_canonical",
        "users",
        [sa.literal_column('lower(username COLLATE "C")')],
        unique=True,
    )
    op.drop_index("uq_users_username_lower", table_name="users")
    op.add_column(
        "login_throttle", sa.Column("known_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade():
    op.drop_column("login_throttle", "known_until")
    op.create_index(
        "uq_users_username_lower", "users", [sa.literal_column("lower(username)")], unique=True
    )
    op.drop_index("uq_users_username_canonical", table_name="users")
