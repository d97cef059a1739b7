"""What a managed site plans with across a CSMS restart: each EVSE's charging needs (ISO 15118,
NotifyEVChargingNeeds) and each transaction's meter register at its start.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("csms_stations") as table:
        table.add_column(sa.Column("ev_needs", sa.Text, nullable=False, server_default="{}"))
    with op.batch_alter_table("csms_transactions") as table:
        table.add_column(sa.Column("meter_start_wh", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("csms_transactions") as table:
        table.drop_column("meter_start_wh")
    with op.batch_alter_table("csms_stations") as table:
        table.drop_column("ev_needs")
