"""Login sessions: the refresh generation and the token it replaced (the reuse grace window), the
time of the last refresh, and the client's address and user agent (GET /auth/sessions).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    ("generation", sa.Integer(), {"nullable": False, "server_default": "0"}),
    ("previous_refresh_jti", sa.String(64), {"nullable": True}),
    ("refreshed_at", sa.DateTime(timezone=True), {"nullable": True}),
    ("client_address", sa.String(64), {"nullable": True}),
    ("user_agent", sa.String(256), {"nullable": True}),
)


def upgrade():
    for name, type_, options in COLUMNS:
        op.add_column("login_sessions", sa.Column(name, type_, **options))


def downgrade():
    for name, _type, _options in reversed(COLUMNS):
        op.drop_column("login_sessions", name)
