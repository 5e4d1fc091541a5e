"""Cycles: a backtest row may stand for a span of consecutive quiet cycles of one pair; fills
keep the broker's order within a bar.

A backtest cycle that evaluated, decided, ordered, filled and failed nothing leaves the account
as it was; consecutive such cycles of one pair over contiguous bars with the same account are
stored as ONE row: ``bars`` cycles from ``bar_ts`` to ``last_bar_ts`` (the bars ``bar_ts + k *
step`` for ``k < bars``, ``step`` the run's bar length). Other rows: ``bars`` 1 and
``last_bar_ts`` NULL. Readers expand spans (``WorkflowStore.equity``).

``fills.position``: a fill's place among the fills its cycle reported. Fills of one bar share
their time (an entry at the open and its stop inside the same bar); ordering them by id put the
stop first at random.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``bars`` (default 1) and ``last_bar_ts`` to ``cycles``, ``position`` to ``fills``."""
    with op.batch_alter_table("cycles") as batch:
        batch.add_column(sa.Column("bars", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_bar_ts", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("position", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    """Back to revision 0004: a span row becomes its first cycle (the others are lost)."""
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("position")
    with op.batch_alter_table("cycles") as batch:
        batch.drop_column("last_bar_ts")
        batch.drop_column("bars")
