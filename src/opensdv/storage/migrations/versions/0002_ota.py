"""OTA: ECU keys and installed images, RXSWIN, campaigns and their vehicles, reported events.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ota_ecus",
        sa.Column("ecu_id", sa.Integer, sa.ForeignKey("ecus.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False),
        sa.Column("installed_filename", sa.String(256)),
        sa.Column("installed_sha256", sa.String(64)),
        sa.Column("installed_version", sa.String(32)),
        sa.Column("release_counter", sa.Integer, nullable=False),
        sa.Column("last_nonce", sa.String(128)),
        sa.Column("last_report_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "ota_vehicles",
        sa.Column(
            "vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("rxswin", sa.String(128), nullable=False),
        sa.Column("last_manifest_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "ota_campaigns",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ota_campaign_vehicles",
        sa.Column(
            "campaign_id",
            sa.String(64),
            sa.ForeignKey("ota_campaigns.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("vin", sa.String(17), primary_key=True),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ota_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("vin", sa.String(17), nullable=False, index=True),
        sa.Column("ecu_serial", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("ota_events", "ota_campaign_vehicles", "ota_campaigns", "ota_vehicles", "ota_ecus"):
        op.drop_table(table)
