"""Vehicle registry: vehicles and their ECUs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vehicles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("vin", sa.String(17), nullable=False, unique=True),
        sa.Column("definition_id", sa.String(64), nullable=False),
        sa.Column("brand", sa.String(64), nullable=False, index=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("model_year", sa.Integer, nullable=False),
        sa.Column("market", sa.String(2), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ecus",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "vehicle_id",
            sa.Integer,
            sa.ForeignKey("vehicles.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("hardware_id", sa.String(128), nullable=False, index=True),
        sa.Column("serial", sa.String(128), nullable=False),
        sa.UniqueConstraint("vehicle_id", "name"),
    )


def downgrade() -> None:
    op.drop_table("ecus")
    op.drop_table("vehicles")
