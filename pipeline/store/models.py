"""SQLAlchemy 2.x ORM models of the parameter store.

The schema is portable (generic column types only) so that the same models
work on the embedded SQLite default and on PostgreSQL via ``SOM_DATABASE_URL``.
The authoritative DDL lives in the Alembic migrations
(``pipeline/store/migrations``); ``tests/test_store.py`` checks that the two
agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

VERSION_STATUSES: tuple[str, ...] = ("proposed", "approved", "rejected", "superseded")
VERDICT_LABELS: tuple[str, ...] = (
    "consistent",
    "refuted-overestimated",
    "refuted-underestimated",
    "inconclusive",
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def _in_list(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a ``column IN (...)`` check over fixed, trusted literals."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    SQLite has no time-zone type and returns naive values; they are stored in
    UTC, so UTC is re-attached on the way out. Naive input is rejected.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the store only accepts timezone-aware values")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable migration names)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class ParameterSet(Base):
    """One parameter set per intervention; its contents live in versions.

    ``approved_version`` is the version in force; approvals change it by compare-and-swap
    (``UPDATE … WHERE approved_version = <the proposal's parent>``): optimistic locking on the
    parent version. ``revision`` counts those changes.
    """

    __tablename__ = "parameter_sets"

    intervention: Mapped[str] = mapped_column(String, primary_key=True)
    title: Mapped[str] = mapped_column(String, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_version: Mapped[int | None] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Evaluation(Base):
    """An evaluation (a spec's ``evaluation`` id) of one intervention; its executions are runs."""

    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    intervention: Mapped[str] = mapped_column(String, index=True)
    title: Mapped[str] = mapped_column(String, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvaluationRun(Base):
    """One execution of an evaluation on one data vintage with one code version."""

    __tablename__ = "evaluation_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    evaluation_id: Mapped[str] = mapped_column(String)
    intervention: Mapped[str] = mapped_column(String, index=True)
    data_vintage: Mapped[str | None] = mapped_column(String)
    data_hash: Mapped[str | None] = mapped_column(String)
    code_version: Mapped[str | None] = mapped_column(String)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the parameter version whose assumptions this run evaluated
    tested_version: Mapped[int | None] = mapped_column(Integer)
    #: the version this run proposed (new) or re-proposed (same content as an existing version)
    proposed_version: Mapped[int | None] = mapped_column(Integer)


class ParameterVersion(Base):
    """An append-only version of an intervention's parameter document."""

    __tablename__ = "parameter_versions"
    __table_args__ = (
        UniqueConstraint("intervention", "version"),
        CheckConstraint(_in_list("status", VERSION_STATUSES), name="status"),
        # Idempotency by content: one version per (intervention, parent, content hash).
        Index("uq_parameter_versions_content", "intervention", "parent_version", "content_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    intervention: Mapped[str] = mapped_column(
        String, ForeignKey("parameter_sets.intervention")
    )
    version: Mapped[int] = mapped_column(Integer)
    parent_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String)
    evaluation_run_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("evaluation_runs.id"), index=True
    )
    data_vintage: Mapped[str | None] = mapped_column(String)
    data_hash: Mapped[str | None] = mapped_column(String)
    code_version: Mapped[str | None] = mapped_column(String)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: the evidence window that informed this version (:class:`som_models.evidence.EvidenceWindow`; its vintage
    #: and data hash are ``data_vintage`` / ``data_hash``): the evaluation, first/last year and persons of the
    #: panel. NULL evaluation = informed by no evidence (a seed, or a version stored before evidence accounting).
    evidence_evaluation: Mapped[str | None] = mapped_column(String)
    evidence_first_year: Mapped[int | None] = mapped_column(Integer)
    evidence_last_year: Mapped[int | None] = mapped_column(Integer)
    evidence_persons: Mapped[int | None] = mapped_column(Integer)
    #: the version whose values the update combined with the evidence (the root prior); NULL = the parent
    prior_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String)
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(String)


class Estimate(Base):
    """One realised-effect estimate of a run (aggregate numbers only)."""

    __tablename__ = "estimates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("evaluation_runs.id"), index=True
    )
    outcome: Mapped[str] = mapped_column(String)
    estimand: Mapped[str] = mapped_column(String)
    group: Mapped[int | None] = mapped_column("grp", Integer)
    time: Mapped[int | None] = mapped_column(Integer)
    event_time: Mapped[int | None] = mapped_column(Integer)
    estimate: Mapped[float | None] = mapped_column(Float)
    se: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n_treated: Mapped[int | None] = mapped_column(Integer)
    n_control: Mapped[int | None] = mapped_column(Integer)


class Verdict(Base):
    """One assumption-vs-realisation verdict of a run."""

    __tablename__ = "verdicts"
    __table_args__ = (CheckConstraint(_in_list("label", VERDICT_LABELS), name="label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("evaluation_runs.id"), index=True
    )
    assumption: Mapped[str] = mapped_column(String)
    outcome: Mapped[str | None] = mapped_column(String)
    label: Mapped[str] = mapped_column(String)
    test: Mapped[str] = mapped_column(String)
    statistic: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    p_adjusted: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)
    assumed: Mapped[float | None] = mapped_column(Float)
    realised: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    sentence: Mapped[str] = mapped_column(String)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AuditEntry(Base):
    """An append-only audit trail of everything that changed the store."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    intervention: Mapped[str | None] = mapped_column(String, index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
