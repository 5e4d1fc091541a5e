"""LLM call history: indexes ordered by (started_at, id), as the history is read.

The history pages of ``llm_calls`` are ordered by ``started_at`` then ``id`` (newest first).
Indexes ending in ``started_at`` alone left SQLite a sort of each page's candidates (and a scan
of every skipped row for deep pages); with ``id`` appended the index gives the order itself.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = (
    ("started_at",),
    ("model", "started_at"),
    ("caller", "started_at"),
    ("status", "started_at"),
)


def _name(columns: Sequence[str]) -> str:
    return op.f("ix_llm_calls_" + "_".join(columns))


def upgrade() -> None:
    """Replace the four history indexes by the same ones ending in ``id``."""
    for columns in _OLD:
        op.drop_index(_name(columns), table_name="llm_calls")
        op.create_index(_name((*columns, "id")), "llm_calls", [*columns, "id"])


def downgrade() -> None:
    """Back to the indexes of revision 0002."""
    for columns in _OLD:
        op.drop_index(_name((*columns, "id")), table_name="llm_calls")
        op.create_index(_name(columns), "llm_calls", list(columns))
