"""CSMS state: charging stations and their transactions survive a CSMS restart.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "csms_stations",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("vendor", sa.String(64)),
        sa.Column("model", sa.String(64)),
        sa.Column("firmware", sa.String(64)),
        sa.Column("last_heartbeat", sa.String(40)),
        sa.Column("connectors", sa.Text, nullable=False),
    )
    op.create_table(
        "csms_transactions",
        sa.Column("transaction_id", sa.String(64), primary_key=True),
        sa.Column(
            "station_id",
            sa.String(64),
            sa.ForeignKey("csms_stations.station_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("evse_id", sa.Integer, nullable=False),
        sa.Column("started", sa.String(40), nullable=False),
        sa.Column("id_token", sa.String(64)),
        sa.Column("energy_wh", sa.Float, nullable=False),
        sa.Column("power_w", sa.Float),
        sa.Column("ended", sa.String(40)),
        sa.Column("stopped_reason", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("csms_transactions")
    op.drop_table("csms_stations")
