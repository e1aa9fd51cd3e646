"""The parameter store: append-only parameter versions with their evidence.

:class:`ParameterStore` is the only writer of the database. Every write runs in
one transaction; on SQLite that transaction starts with ``BEGIN IMMEDIATE`` (so
concurrent writers queue on the busy timeout instead of failing half-way), on
PostgreSQL it locks the intervention's ``parameter_sets`` row
(``SELECT ... FOR UPDATE``). All SQL goes through the ORM with bound parameters.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.models import (
    AuditEntry,
    Estimate,
    EvaluationRun,
    ParameterSet,
    ParameterVersion,
    Verdict,
    utcnow,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE = "som_store_write"  # execution option: this transaction will write

ESTIMATE_KEYS = (
    "outcome", "estimand", "group", "time", "event_time", "estimate",
    "se", "ci_low", "ci_high", "n_treated", "n_control",
)
_ESTIMATE_INTS = ("group", "time", "event_time", "n_treated", "n_control")
VERDICT_KEYS = (
    "assumption", "outcome", "label", "test", "statistic", "p_value", "p_adjusted",
    "margin", "assumed", "realised", "ci_low", "ci_high", "sentence", "evidence",
)
_VERDICT_FLOATS = (
    "statistic", "p_value", "p_adjusted", "margin", "assumed", "realised", "ci_low", "ci_high",
)


class StoreError(Exception):
    """A request the store cannot satisfy (missing row, invalid state transition)."""


class ConflictError(StoreError):
    """Optimistic-locking failure: the approved version moved on since the proposal."""


@dataclass(frozen=True)
class VersionRecord:
    """A parameter version as handed out by the store (detached from the database)."""

    intervention: str
    version: int
    status: str
    content: dict[str, Any]
    content_hash: str
    parent_version: int | None
    reason: str
    evaluation_run_id: str | None
    data_vintage: str | None
    data_hash: str | None
    code_version: str | None
    evidence: dict[str, Any] | None
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    reused: bool = False


@dataclass(frozen=True)
class RunRecord:
    """An evaluation run: which evaluation, on which data, with which code."""

    id: str
    evaluation_id: str
    intervention: str
    data_vintage: str | None
    data_hash: str | None
    code_version: str | None
    spec: dict[str, Any]
    created_at: datetime


def database_url(workdir: Path | str) -> str:
    """``SOM_DATABASE_URL`` if set and non-empty, else ``sqlite:///<workdir>/som.db``."""
    url = os.environ.get("SOM_DATABASE_URL", "").strip()
    if url:
        return url
    return f"sqlite:///{(Path(workdir).expanduser().resolve() / 'som.db').as_posix()}"


def canonical_json(content: Any) -> str:
    """The canonical JSON text of a document (the input of its content hash)."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical_json` of ``content``."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def _jsonable(value: Any, *, strict: bool) -> Any:
    """A plain-JSON copy of ``value`` (numpy scalars/arrays, tuples, dates converted).

    Non-finite floats raise ``ValueError`` when ``strict`` and become ``None``
    otherwise (PostgreSQL's JSON type rejects NaN and Infinity).
    """
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, strict=strict) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, strict=strict) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if strict:
            raise ValueError(f"non-finite number {value!r} in a parameter document")
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _jsonable(value.tolist(), strict=strict)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable: {value!r}")


def _opt_float(value: Any) -> float | None:
    """``float(value)``, with None and NaN mapped to None (stored as NULL)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _opt_int(value: Any, key: str) -> int | None:
    """``int(value)``, with None and NaN mapped to None; non-integral values refused."""
    if value is None:
        return None
    if isinstance(value, float) or hasattr(value, "is_integer"):
        number = float(value)
        if math.isnan(number):
            return None
        if not number.is_integer():
            raise ValueError(f"{key} must be an integer, got {value!r}")
    return int(value)


def _check_keys(
    row: Mapping[str, Any],
    allowed: tuple[str, ...],
    required: tuple[str, ...],
    what: str,
    index: int,
) -> None:
    """Raise ``ValueError`` naming unknown or missing keys of an input row."""
    unknown = sorted(set(row) - set(allowed))
    if unknown:
        raise ValueError(f"{what} #{index}: unknown key(s) {unknown}; allowed: {list(allowed)}")
    missing = [k for k in required if row.get(k) is None]
    if missing:
        raise ValueError(f"{what} #{index}: missing required key(s) {missing}")


def _estimate_rows(run_id: str, estimates: list[Mapping[str, Any]]) -> list[Estimate]:
    """Validate estimate dicts and turn them into ORM rows."""
    rows = []
    for i, est in enumerate(estimates):
        _check_keys(est, ESTIMATE_KEYS, ("outcome", "estimand"), "estimate", i)
        values: dict[str, Any] = {"outcome": str(est["outcome"]), "estimand": str(est["estimand"])}
        for key in ESTIMATE_KEYS[2:]:
            raw = est.get(key)
            values[key] = _opt_int(raw, key) if key in _ESTIMATE_INTS else _opt_float(raw)
        rows.append(Estimate(run_id=run_id, **values))
    return rows


def _verdict_rows(run_id: str, verdicts: list[Mapping[str, Any]]) -> list[Verdict]:
    """Validate verdict dicts and turn them into ORM rows (labels are checked by the DB)."""
    rows = []
    for i, ver in enumerate(verdicts):
        _check_keys(ver, VERDICT_KEYS, ("assumption", "label", "test", "sentence"), "verdict", i)
        values: dict[str, Any] = {k: ver.get(k) for k in VERDICT_KEYS}
        for key in _VERDICT_FLOATS:
            values[key] = _opt_float(values[key])
        if values["evidence"] is not None:
            values["evidence"] = _jsonable(values["evidence"], strict=False)
        rows.append(Verdict(run_id=run_id, **values))
    return rows


def _version_record(row: ParameterVersion, *, reused: bool = False) -> VersionRecord:
    return VersionRecord(
        intervention=row.intervention, version=row.version, status=row.status,
        content=copy.deepcopy(row.content), content_hash=row.content_hash,
        parent_version=row.parent_version, reason=row.reason,
        evaluation_run_id=row.evaluation_run_id, data_vintage=row.data_vintage,
        data_hash=row.data_hash, code_version=row.code_version,
        evidence=copy.deepcopy(row.evidence), created_at=row.created_at,
        decided_by=row.decided_by, decided_at=row.decided_at,
        decision_reason=row.decision_reason, reused=reused,
    )


def _run_record(row: EvaluationRun) -> RunRecord:
    return RunRecord(
        id=row.id, evaluation_id=row.evaluation_id, intervention=row.intervention,
        data_vintage=row.data_vintage, data_hash=row.data_hash,
        code_version=row.code_version, spec=copy.deepcopy(row.spec), created_at=row.created_at,
    )


def _make_engine(url: str) -> Engine:
    """Create the engine; on SQLite: foreign keys on, busy timeout, real transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would not
        # BEGIN before SELECT or DDL); SQLAlchemy emits BEGIN in _on_begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS:d}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _alembic_config(url: str) -> Config:
    """A programmatic Alembic configuration (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class ParameterStore:
    """Versioned parameter sets, evaluation runs and their evidence, with an audit log."""

    def __init__(self, url: str) -> None:
        """Connect to ``url`` and bring the schema to the latest migration."""
        self.url = url
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.upgrade()

    @classmethod
    def from_workdir(cls, workdir: Path | str) -> ParameterStore:
        """The store at :func:`database_url` of ``workdir``."""
        return cls(database_url(workdir))

    def upgrade(self) -> None:
        """Run ``alembic upgrade head`` in one transaction (a no-op when current)."""
        config = _alembic_config(self.url)
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                config.attributes["connection"] = conn
                command.upgrade(config, "head")

    def close(self) -> None:
        """Release all pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> ParameterStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ParameterStore({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Session]:
        """One session in one transaction; committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            if write:
                session.connection(execution_options={_WRITE: True})
            yield session

    # ------------------------------------------------------------------ reads

    @staticmethod
    def _lock_set(session: Session, intervention: str) -> ParameterSet | None:
        """The intervention's parameter-set row, locked for update where supported."""
        stmt = select(ParameterSet).where(ParameterSet.intervention == intervention)
        return session.scalars(stmt.with_for_update()).one_or_none()

    @staticmethod
    def _version_row(session: Session, intervention: str, version: int) -> ParameterVersion:
        row = session.scalars(
            select(ParameterVersion).where(
                ParameterVersion.intervention == intervention,
                ParameterVersion.version == version,
            )
        ).one_or_none()
        if row is None:
            raise StoreError(f"no version {version} of parameter set {intervention!r}")
        return row

    @staticmethod
    def _latest_approved_row(session: Session, intervention: str) -> ParameterVersion | None:
        return session.scalars(
            select(ParameterVersion)
            .where(
                ParameterVersion.intervention == intervention,
                ParameterVersion.status == "approved",
            )
            .order_by(ParameterVersion.version.desc())
            .limit(1)
        ).one_or_none()

    def get_version(self, intervention: str, version: int) -> VersionRecord:
        """One version of an intervention's parameter set."""
        with self._transaction() as session:
            return _version_record(self._version_row(session, intervention, version))

    def latest_approved(self, intervention: str) -> VersionRecord:
        """The version currently in force."""
        with self._transaction() as session:
            row = self._latest_approved_row(session, intervention)
            if row is None:
                raise StoreError(f"no approved version of parameter set {intervention!r}")
            return _version_record(row)

    def versions(self, intervention: str) -> list[VersionRecord]:
        """All versions of an intervention, ascending by version number."""
        with self._transaction() as session:
            rows = session.scalars(
                select(ParameterVersion)
                .where(ParameterVersion.intervention == intervention)
                .order_by(ParameterVersion.version)
            ).all()
            if not rows:
                raise StoreError(f"no parameter set for intervention {intervention!r}")
            return [_version_record(r) for r in rows]

    def get_run(self, run_id: str) -> RunRecord:
        """One evaluation run by id."""
        with self._transaction() as session:
            row = session.get(EvaluationRun, run_id)
            if row is None:
                raise StoreError(f"no evaluation run {run_id!r}")
            return _run_record(row)

    def runs(self, intervention: str | None = None) -> list[RunRecord]:
        """Evaluation runs (optionally of one intervention), oldest first."""
        stmt = select(EvaluationRun).order_by(EvaluationRun.created_at, EvaluationRun.id)
        if intervention is not None:
            stmt = stmt.where(EvaluationRun.intervention == intervention)
        with self._transaction() as session:
            return [_run_record(r) for r in session.scalars(stmt)]

    def estimates_for_run(self, run_id: str) -> list[dict[str, Any]]:
        """The run's estimates as dicts with the keys of :data:`ESTIMATE_KEYS`."""
        stmt = select(Estimate).where(Estimate.run_id == run_id).order_by(Estimate.id)
        with self._transaction() as session:
            return [{k: getattr(r, k) for k in ESTIMATE_KEYS} for r in session.scalars(stmt)]

    def verdicts_for_run(self, run_id: str) -> list[dict[str, Any]]:
        """The run's verdicts as dicts with the keys of :data:`VERDICT_KEYS`."""
        stmt = select(Verdict).where(Verdict.run_id == run_id).order_by(Verdict.id)
        with self._transaction() as session:
            return [{k: getattr(r, k) for k in VERDICT_KEYS} for r in session.scalars(stmt)]

    def audit_entries(self, intervention: str | None = None) -> list[dict[str, Any]]:
        """Audit log entries (optionally of one intervention), oldest first."""
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        if intervention is not None:
            stmt = stmt.where(AuditEntry.intervention == intervention)
        keys = ("id", "at", "actor", "action", "intervention", "version", "run_id", "detail")
        with self._transaction() as session:
            return [{k: getattr(r, k) for k in keys} for r in session.scalars(stmt)]

    # ----------------------------------------------------------------- writes

    def ensure_parameter_set(
        self, intervention: str, content: dict[str, Any], *, title: str = "", source: str,
        actor: str = "seed",
    ) -> VersionRecord:
        """Seed ``intervention`` with ``content`` as approved version 1, once.

        If the parameter set already exists nothing changes and its latest
        approved version is returned (compare ``content_hash`` to detect a seed
        file that has drifted from the database).
        """
        doc = _jsonable(content, strict=True)
        digest = content_hash(doc)
        try:
            with self._transaction(write=True) as session:
                if self._lock_set(session, intervention) is None:
                    now = utcnow()
                    session.add(
                        ParameterSet(intervention=intervention, title=title, created_at=now)
                    )
                    row = ParameterVersion(
                        intervention=intervention, version=1, parent_version=None,
                        status="approved", content=doc, content_hash=digest,
                        reason=f"seed from {source}", created_at=now,
                        decided_by=actor, decided_at=now, decision_reason=f"seed from {source}",
                    )
                    session.add(row)
                    session.add(AuditEntry(
                        at=now, actor=actor, action="seed", intervention=intervention, version=1,
                        detail={"source": source, "content_hash": digest, "title": title},
                    ))
                    session.flush()
                    return _version_record(row)
        except IntegrityError:
            pass  # a concurrent writer seeded it first (PostgreSQL); fall through
        return self.latest_approved(intervention)

    def record_run(
        self, *, evaluation_id: str, intervention: str, data_vintage: str | None,
        data_hash: str | None, code_version: str | None, spec: dict[str, Any],
    ) -> RunRecord:
        """Register an evaluation run and return it with its new id (uuid4 hex)."""
        row = EvaluationRun(
            id=uuid.uuid4().hex, evaluation_id=evaluation_id, intervention=intervention,
            data_vintage=data_vintage, data_hash=data_hash, code_version=code_version,
            spec=_jsonable(spec, strict=False), created_at=utcnow(),
        )
        with self._transaction(write=True) as session:
            session.add(row)
            session.flush()
            return _run_record(row)

    def propose_version(
        self, *, intervention: str, parent_version: int, content: dict[str, Any], reason: str,
        run_id: str, data_vintage: str | None, data_hash: str | None, code_version: str | None,
        evidence: dict[str, Any], estimates: list[dict[str, Any]],
        verdicts: list[dict[str, Any]], actor: str = "pipeline",
    ) -> VersionRecord:
        """Store a run's estimates and verdicts and a new ``proposed`` version, atomically.

        Idempotent: if a version with the same content hash and the same parent
        exists already, it is returned unchanged with ``reused=True`` and
        nothing is written (not even the estimates and verdicts).
        """
        doc = _jsonable(content, strict=True)
        digest = content_hash(doc)
        estimate_rows = _estimate_rows(run_id, estimates)
        verdict_rows = _verdict_rows(run_id, verdicts)
        evidence_doc = _jsonable(evidence, strict=False)
        try:
            with self._transaction(write=True) as session:
                if self._lock_set(session, intervention) is None:
                    raise StoreError(f"no parameter set for intervention {intervention!r}")
                existing = session.scalars(
                    select(ParameterVersion)
                    .where(
                        ParameterVersion.intervention == intervention,
                        ParameterVersion.content_hash == digest,
                        ParameterVersion.parent_version == parent_version,
                    )
                    .order_by(ParameterVersion.version)
                    .limit(1)
                ).one_or_none()
                if existing is not None:
                    return _version_record(existing, reused=True)
                self._version_row(session, intervention, parent_version)
                if session.get(EvaluationRun, run_id) is None:
                    raise StoreError(f"no evaluation run {run_id!r}; call record_run first")
                latest = session.scalar(
                    select(func.max(ParameterVersion.version)).where(
                        ParameterVersion.intervention == intervention
                    )
                )
                now = utcnow()
                row = ParameterVersion(
                    intervention=intervention, version=(latest or 0) + 1,
                    parent_version=parent_version, status="proposed", content=doc,
                    content_hash=digest, reason=reason, evaluation_run_id=run_id,
                    data_vintage=data_vintage, data_hash=data_hash, code_version=code_version,
                    evidence=evidence_doc, created_at=now,
                )
                session.add_all([*estimate_rows, *verdict_rows, row])
                session.add(AuditEntry(
                    at=now, actor=actor, action="propose", intervention=intervention,
                    version=row.version, run_id=run_id,
                    detail={"parent_version": parent_version, "content_hash": digest,
                            "reason": reason, "n_estimates": len(estimate_rows),
                            "n_verdicts": len(verdict_rows)},
                ))
                session.flush()
                return _version_record(row)
        except IntegrityError as exc:
            raise StoreError(
                f"proposal for {intervention!r} rejected by the database, nothing was written: "
                f"{exc.orig}"
            ) from exc

    def decide(
        self, intervention: str, version: int, *, approve: bool, actor: str, reason: str,
        expected_parent: int | None = None,
    ) -> VersionRecord:
        """Approve or reject a proposed version.

        Approving supersedes the currently approved version. It fails with
        :class:`ConflictError` if the proposal's parent is no longer the latest
        approved version, or if ``expected_parent`` is given and differs from
        the proposal's parent or the latest approved version.
        """
        with self._transaction(write=True) as session:
            if self._lock_set(session, intervention) is None:
                raise StoreError(f"no parameter set for intervention {intervention!r}")
            row = self._version_row(session, intervention, version)
            if row.status != "proposed":
                raise StoreError(
                    f"version {version} of {intervention!r} is {row.status!r}, not 'proposed'; "
                    "only proposals can be decided"
                )
            current = self._latest_approved_row(session, intervention)
            current_version = current.version if current is not None else None
            superseded: list[int] = []
            if approve:
                if row.parent_version != current_version or (
                    expected_parent is not None and expected_parent != current_version
                ):
                    raise ConflictError(
                        f"cannot approve version {version} of {intervention!r}: it was proposed "
                        f"on top of version {row.parent_version}, but the approved version is "
                        f"now {current_version}"
                        + (f" (expected {expected_parent})" if expected_parent is not None else "")
                        + "; re-propose on top of the current version"
                    )
                for old in session.scalars(
                    select(ParameterVersion).where(
                        ParameterVersion.intervention == intervention,
                        ParameterVersion.status == "approved",
                    )
                ):
                    old.status = "superseded"
                    superseded.append(old.version)
            now = utcnow()
            row.status = "approved" if approve else "rejected"
            row.decided_by, row.decided_at, row.decision_reason = actor, now, reason
            session.add(AuditEntry(
                at=now, actor=actor, action="approve" if approve else "reject",
                intervention=intervention, version=version, run_id=row.evaluation_run_id,
                detail={"reason": reason, "parent_version": row.parent_version,
                        "superseded": sorted(superseded)},
            ))
            session.flush()
            return _version_record(row)
