"""Each charging station's own credentials (OCPP security profiles 2 and 3) instead of one shared
password or none.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "csms_station_credentials",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("certificate", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_table("csms_station_credentials")
