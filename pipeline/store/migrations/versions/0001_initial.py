"""Initial schema: parameter sets and versions, runs, estimates, verdicts, audit log.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01 00:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = "status IN ('proposed', 'approved', 'rejected', 'superseded')"
_LABEL = (
    "label IN ('consistent', 'refuted-overestimated', 'refuted-underestimated', 'inconclusive')"
)


def upgrade() -> None:
    """Create every table of the parameter store."""
    op.create_table(
        "parameter_sets",
        sa.Column("intervention", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("intervention", name=op.f("pk_parameter_sets")),
    )
    op.create_table(
        "evaluation_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("evaluation_id", sa.String(), nullable=False),
        sa.Column("intervention", sa.String(), nullable=False),
        sa.Column("data_vintage", sa.String(), nullable=True),
        sa.Column("data_hash", sa.String(), nullable=True),
        sa.Column("code_version", sa.String(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_runs")),
    )
    op.create_index(
        op.f("ix_evaluation_runs_intervention"), "evaluation_runs", ["intervention"]
    )
    op.create_table(
        "parameter_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("intervention", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parent_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("evaluation_run_id", sa.String(length=32), nullable=True),
        sa.Column("data_vintage", sa.String(), nullable=True),
        sa.Column("data_hash", sa.String(), nullable=True),
        sa.Column("code_version", sa.String(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(), nullable=True),
        sa.CheckConstraint(_STATUS, name=op.f("ck_parameter_versions_status")),
        sa.ForeignKeyConstraint(
            ["intervention"],
            ["parameter_sets.intervention"],
            name=op.f("fk_parameter_versions_intervention_parameter_sets"),
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_run_id"],
            ["evaluation_runs.id"],
            name=op.f("fk_parameter_versions_evaluation_run_id_evaluation_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parameter_versions")),
        sa.UniqueConstraint(
            "intervention", "version", name=op.f("uq_parameter_versions_intervention")
        ),
    )
    op.create_index(
        op.f("ix_parameter_versions_evaluation_run_id"),
        "parameter_versions",
        ["evaluation_run_id"],
    )
    op.create_table(
        "estimates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("estimand", sa.String(), nullable=False),
        sa.Column("grp", sa.Integer(), nullable=True),
        sa.Column("time", sa.Integer(), nullable=True),
        sa.Column("event_time", sa.Integer(), nullable=True),
        sa.Column("estimate", sa.Float(), nullable=True),
        sa.Column("se", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("n_treated", sa.Integer(), nullable=True),
        sa.Column("n_control", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["evaluation_runs.id"], name=op.f("fk_estimates_run_id_evaluation_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_estimates")),
    )
    op.create_index(op.f("ix_estimates_run_id"), "estimates", ["run_id"])
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("assumption", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("test", sa.String(), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("p_adjusted", sa.Float(), nullable=True),
        sa.Column("margin", sa.Float(), nullable=True),
        sa.Column("assumed", sa.Float(), nullable=True),
        sa.Column("realised", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("sentence", sa.String(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.CheckConstraint(_LABEL, name=op.f("ck_verdicts_label")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["evaluation_runs.id"], name=op.f("fk_verdicts_run_id_evaluation_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verdicts")),
    )
    op.create_index(op.f("ix_verdicts_run_id"), "verdicts", ["run_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("intervention", sa.String(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_intervention"), "audit_log", ["intervention"])


def downgrade() -> None:
    """Drop every table of the parameter store (destroys all versions)."""
    op.drop_index(op.f("ix_audit_log_intervention"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_verdicts_run_id"), table_name="verdicts")
    op.drop_table("verdicts")
    op.drop_index(op.f("ix_estimates_run_id"), table_name="estimates")
    op.drop_table("estimates")
    op.drop_index(op.f("ix_parameter_versions_evaluation_run_id"), table_name="parameter_versions")
    op.drop_table("parameter_versions")
    op.drop_index(op.f("ix_evaluation_runs_intervention"), table_name="evaluation_runs")
    op.drop_table("evaluation_runs")
    op.drop_table("parameter_sets")
