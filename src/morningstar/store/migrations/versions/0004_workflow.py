"""Trading workflow: runs, cycles, orders, fills, open positions, step errors, resume state.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODES = ("backtest", "paper", "live")
RUN_STATUSES = ("running", "finished", "failed", "stopped")
ORDER_STATUSES = ("new", "open", "filled", "cancelled", "rejected")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"],
        ["workflow_runs.run_id"],
        name=op.f(f"fk_{table}_run_id_workflow_runs"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Create the seven tables of the trading workflow."""
    op.create_table(
        "workflow_runs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(200), nullable=False),
        sa.Column("pairs", sa.JSON(), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("calendar", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("last_bar_ts", _ts(), nullable=True),
        sa.Column("cycles", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_workflow_runs")),
        sa.CheckConstraint(_in("mode", MODES), name=op.f("ck_workflow_runs_mode")),
        sa.CheckConstraint(_in("status", RUN_STATUSES), name=op.f("ck_workflow_runs_status")),
    )
    op.create_index(op.f("ix_workflow_runs_started_at"), "workflow_runs", ["started_at"])

    op.create_table(
        "cycles",
        sa.Column("cycle_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("bar_ts", _ts(), nullable=False),
        sa.Column("strategy", sa.String(200), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=True),
        sa.Column("supervision", sa.JSON(), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("llm_verdict", sa.String(16), nullable=True),
        sa.Column("equity", sa.Float(), nullable=True),
        sa.Column("cash", sa.Float(), nullable=True),
        sa.Column("realized_pnl", sa.Float(), nullable=True),
        sa.Column("unrealized_pnl", sa.Float(), nullable=True),
        sa.Column("fees", sa.Float(), nullable=True),
        sa.Column("drawdown", sa.Float(), nullable=True),
        sa.Column("risk_state", sa.String(16), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("persisted_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", name=op.f("pk_cycles")),
        _run_fk("cycles"),
        sa.UniqueConstraint("run_id", "pair", "bar_ts", name=op.f("uq_cycles_run_id_pair_bar_ts")),
    )
    op.create_index(op.f("ix_cycles_run_id_seq"), "cycles", ["run_id", "seq"])

    op.create_table(
        "cycle_errors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cycle_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("bar_ts", _ts(), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycle_errors")),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["cycles.cycle_id"],
            name=op.f("fk_cycle_errors_cycle_id_cycles"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("cycle_id", "position", name=op.f("uq_cycle_errors_cycle_id_position")),
    )
    op.create_index(op.f("ix_cycle_errors_created_at"), "cycle_errors", ["created_at"])

    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.String(40), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("cycle_id", sa.String(32), nullable=True),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("limit_price", sa.Float(), nullable=True),
        sa.Column("reference_price", sa.Float(), nullable=True),
        sa.Column("quote_quantity", sa.Float(), nullable=True),
        sa.Column("max_cost", sa.Float(), nullable=True),
        sa.Column("filled_quantity", sa.Float(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("bar_ts", _ts(), nullable=False),
        sa.Column("updated_cycle_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("client_order_id", name=op.f("pk_orders")),
        _run_fk("orders"),
        sa.CheckConstraint(_in("status", ORDER_STATUSES), name=op.f("ck_orders_status")),
    )
    op.create_index(op.f("ix_orders_run_id_pair_status"), "orders", ["run_id", "pair", "status"])
    op.create_index(op.f("ix_orders_run_id_created_at"), "orders", ["run_id", "created_at"])

    op.create_table(
        "fills",
        sa.Column("fill_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(40), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("cycle_id", sa.String(32), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("fill_id", name=op.f("pk_fills")),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name=op.f("fk_fills_client_order_id_orders"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_fills_client_order_id"), "fills", ["client_order_id"])
    op.create_index(op.f("ix_fills_run_id_ts"), "fills", ["run_id", "ts"])

    op.create_table(
        "positions",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("cycle_id", sa.String(32), nullable=False),
        sa.Column("side", sa.SmallInteger(), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("mark_price", sa.Float(), nullable=False),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("unrealized_pnl", sa.Float(), nullable=False),
        sa.Column("opened_at", _ts(), nullable=False),
        sa.Column("bar_ts", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "pair", name=op.f("pk_positions")),
        _run_fk("positions"),
    )

    op.create_table(
        "workflow_state",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("cycle_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("bar_ts", _ts(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "pair", name=op.f("pk_workflow_state")),
        _run_fk("workflow_state"),
    )


def downgrade() -> None:
    """Drop the seven tables, children first."""
    op.drop_table("workflow_state")
    op.drop_table("positions")
    op.drop_index(op.f("ix_fills_run_id_ts"), table_name="fills")
    op.drop_index(op.f("ix_fills_client_order_id"), table_name="fills")
    op.drop_table("fills")
    op.drop_index(op.f("ix_orders_run_id_created_at"), table_name="orders")
    op.drop_index(op.f("ix_orders_run_id_pair_status"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_cycle_errors_created_at"), table_name="cycle_errors")
    op.drop_table("cycle_errors")
    op.drop_index(op.f("ix_cycles_run_id_seq"), table_name="cycles")
    op.drop_table("cycles")
    op.drop_index(op.f("ix_workflow_runs_started_at"), table_name="workflow_runs")
    op.drop_table("workflow_runs")
