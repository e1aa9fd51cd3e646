"""Evidence accounting: the evidence window of each parameter version and the prior its update used.

* ``parameter_versions.evidence_evaluation`` / ``evidence_first_year`` / ``evidence_last_year`` /
  ``evidence_persons``: the evaluation and the person-year window that informed the version (its vintage and
  data hash are the existing ``data_vintage`` / ``data_hash``);
* ``parameter_versions.prior_version``: the root prior the update combined with the evidence (NULL = the parent).

Existing rows get NULL everywhere: informed by no known evidence window, so they can serve as root priors
(the store's earlier same-data rule — no update of a version with the data it came from — still holds for
them). Only additive operations, so it runs inside one transaction on SQLite and PostgreSQL.

Revision ID: 0003_evidence_windows
Revises: 0002_evaluations_and_locking
Create Date: 2025-01-03 00:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_evidence_windows"
down_revision: str | Sequence[str] | None = "0002_evaluations_and_locking"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("evidence_evaluation", sa.String()),
    ("evidence_first_year", sa.Integer()),
    ("evidence_last_year", sa.Integer()),
    ("evidence_persons", sa.Integer()),
    ("prior_version", sa.Integer()),
)


def upgrade() -> None:
    """Add the nullable evidence columns (existing rows: no evidence)."""
    for name, type_ in _COLUMNS:
        op.add_column("parameter_versions", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    """Drop the evidence columns (the evidence windows are lost)."""
    with op.batch_alter_table("parameter_versions") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
