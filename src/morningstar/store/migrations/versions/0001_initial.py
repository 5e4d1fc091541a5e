"""Initial schema: CLI runs, data imports, validation reports and their issues.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four tables of the first storage issue."""
    op.create_table(
        "cli_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("command", sa.String(200), nullable=False),
        sa.Column("argv", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cli_runs")),
        sa.CheckConstraint("status IN ('running', 'ok', 'error')", name=op.f("ck_cli_runs_status")),
    )
    op.create_index(op.f("ix_cli_runs_started_at"), "cli_runs", ["started_at"])

    op.create_table(
        "data_imports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_stored", sa.BigInteger(), nullable=False),
        sa.Column("rows_added", sa.BigInteger(), nullable=False),
        sa.Column("first_ts", _ts(), nullable=True),
        sa.Column("last_ts", _ts(), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_imports")),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["cli_runs.id"],
            name=op.f("fk_data_imports_run_id_cli_runs"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(op.f("ix_data_imports_run_id"), "data_imports", ["run_id"])
    op.create_index(
        op.f("ix_data_imports_venue_pair_timeframe"), "data_imports", ["venue", "pair", "timeframe"]
    )

    op.create_table(
        "validation_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("venue", sa.String(64), nullable=True),
        sa.Column("pair", sa.String(64), nullable=True),
        sa.Column("timeframe", sa.String(16), nullable=True),
        sa.Column("calendar", sa.String(32), nullable=False),
        sa.Column("bars_in", sa.BigInteger(), nullable=False),
        sa.Column("bars_out", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_reports")),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["data_imports.id"],
            name=op.f("fk_validation_reports_import_id_data_imports"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('clean', 'warnings', 'errors')", name=op.f("ck_validation_reports_status")
        ),
    )
    op.create_index(op.f("ix_validation_reports_import_id"), "validation_reports", ["import_id"])

    op.create_table(
        "validation_issues",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("check", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_ts", _ts(), nullable=True),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_issues")),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["validation_reports.id"],
            name=op.f("fk_validation_issues_report_id_validation_reports"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "severity IN ('error', 'warning', 'info')", name=op.f("ck_validation_issues_severity")
        ),
    )
    op.create_index(op.f("ix_validation_issues_report_id"), "validation_issues", ["report_id"])


def downgrade() -> None:
    """Drop the four tables, children first."""
    op.drop_index(op.f("ix_validation_issues_report_id"), table_name="validation_issues")
    op.drop_table("validation_issues")
    op.drop_index(op.f("ix_validation_reports_import_id"), table_name="validation_reports")
    op.drop_table("validation_reports")
    op.drop_index(op.f("ix_data_imports_venue_pair_timeframe"), table_name="data_imports")
    op.drop_index(op.f("ix_data_imports_run_id"), table_name="data_imports")
    op.drop_table("data_imports")
    op.drop_index(op.f("ix_cli_runs_started_at"), table_name="cli_runs")
    op.drop_table("cli_runs")
