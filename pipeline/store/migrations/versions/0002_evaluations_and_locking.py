"""Evaluations, run ↔ version links, optimistic locking and content idempotency.

* ``evaluations``: one row per evaluation id (backfilled from the runs);
* ``evaluation_runs.tested_version`` / ``proposed_version``: which version a run evaluated and which it
  proposed (or re-proposed), backfilled from the versions' ``evaluation_run_id``;
* ``parameter_sets.approved_version`` / ``revision``: the version in force, changed by compare-and-swap;
* a unique index on ``parameter_versions (intervention, parent_version, content_hash)``.

Only additive operations (no table rebuilds), so it runs inside one transaction on SQLite and PostgreSQL.

Revision ID: 0002_evaluations_and_locking
Revises: 0001_initial
Create Date: 2025-01-02 00:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_evaluations_and_locking"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the tables, columns and index; backfill them from the existing rows."""
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("intervention", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    op.create_index(op.f("ix_evaluations_intervention"), "evaluations", ["intervention"])
    op.add_column("evaluation_runs", sa.Column("tested_version", sa.Integer(), nullable=True))
    op.add_column("evaluation_runs", sa.Column("proposed_version", sa.Integer(), nullable=True))
    op.add_column("parameter_sets", sa.Column("approved_version", sa.Integer(), nullable=True))
    op.add_column(
        "parameter_sets",
        sa.Column("revision", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_index(
        "uq_parameter_versions_content",
        "parameter_versions",
        ["intervention", "parent_version", "content_hash"],
        unique=True,
    )
    # Backfill (plain SQL over the store's own tables; no user input).
    op.execute(
        "INSERT INTO evaluations (id, intervention, title, created_at) "
        "SELECT evaluation_id, MIN(intervention), '', MIN(created_at) FROM evaluation_runs "
        "GROUP BY evaluation_id"
    )
    op.execute(
        "UPDATE evaluation_runs SET proposed_version = (SELECT MIN(v.version) FROM parameter_versions v "
        "WHERE v.evaluation_run_id = evaluation_runs.id), "
        "tested_version = (SELECT MIN(v.parent_version) FROM parameter_versions v "
        "WHERE v.evaluation_run_id = evaluation_runs.id)"
    )
    op.execute(
        "UPDATE parameter_sets SET approved_version = (SELECT MAX(v.version) FROM parameter_versions v "
        "WHERE v.intervention = parameter_sets.intervention AND v.status = 'approved')"
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` added (run ↔ version links and the evaluations table are lost)."""
    op.drop_index("uq_parameter_versions_content", table_name="parameter_versions")
    with op.batch_alter_table("parameter_sets") as batch:
        batch.drop_column("revision")
        batch.drop_column("approved_version")
    with op.batch_alter_table("evaluation_runs") as batch:
        batch.drop_column("proposed_version")
        batch.drop_column("tested_version")
    op.drop_index(op.f("ix_evaluations_intervention"), table_name="evaluations")
    op.drop_table("evaluations")
