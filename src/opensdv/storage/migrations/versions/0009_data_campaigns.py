"""Data collection campaigns: each campaign's newest document and state, and the revision of the
signed set last published for each car (a car refuses a set not newer than its own).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_campaigns",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "data_campaign_sets",
        sa.Column("vin", sa.String(17), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("campaigns", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("data_campaign_sets")
    op.drop_table("data_campaigns")
