"""LLM gateway: the traced calls of the LLM monitor and the replay cache.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = (
    "ok",
    "timeout",
    "rate_limited",
    "transport_error",
    "provider_error",
    "invalid_output",
    "budget",
    "cache_miss",
    "cancelled",
)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``llm_calls`` and ``llm_cache``."""
    listed = ", ".join(f"'{s}'" for s in STATUSES)
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("template_id", sa.String(128), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("error_type", sa.String(128), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("ttft_s", sa.Float(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cached_input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("price_status", sa.String(16), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("streamed", sa.Boolean(), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_calls")),
        sa.CheckConstraint(f"status IN ({listed})", name=op.f("ck_llm_calls_status")),
    )
    op.create_index(op.f("ix_llm_calls_session_id"), "llm_calls", ["session_id"])
    op.create_index(op.f("ix_llm_calls_started_at"), "llm_calls", ["started_at"])
    op.create_index(op.f("ix_llm_calls_model_started_at"), "llm_calls", ["model", "started_at"])
    op.create_index(op.f("ix_llm_calls_caller_started_at"), "llm_calls", ["caller", "started_at"])
    op.create_index(op.f("ix_llm_calls_status_started_at"), "llm_calls", ["status", "started_at"])
    op.create_table(
        "llm_cache",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("template_id", sa.String(128), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("raw_text", sa.Text(), nullable=False),
        sa.Column("parsed", sa.JSON(), nullable=True),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_llm_cache")),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("llm_cache")
    names = ("status_started_at", "caller_started_at", "model_started_at", "started_at")
    for name in (*names, "session_id"):
        op.drop_index(op.f(f"ix_llm_calls_{name}"), table_name="llm_calls")
    op.drop_table("llm_calls")
