"""The parameter store: append-only parameter versions with their evidence.

:class:`ParameterStore` is the only writer of the database. Every write runs in
one transaction; on SQLite that transaction starts with ``BEGIN IMMEDIATE`` (so
concurrent writers queue on the busy timeout instead of failing half-way), on
PostgreSQL a proposal locks the intervention's ``parameter_sets`` row
(``SELECT ... FOR UPDATE``) so version numbers are allocated one at a time. Approvals use optimistic
locking on the parent version: ``UPDATE parameter_sets SET approved_version = <new> WHERE
approved_version = <the proposal's parent>`` — if another approval got there first no row matches and
:class:`ConflictError` is raised. All SQL goes through the ORM / Core with bound parameters.

Every run keeps its estimates and verdicts, also when its proposal has the same content as an existing
version (then no new version is written; the run is linked to that version and the audit log says so).

Evidence accounting (:mod:`som_models.evidence`): every version proposed by a run records its evidence window
(evaluation, vintage, data hash, first/last year, persons) and the prior its update combined with
(``prior_version``; NULL = the parent). :meth:`ParameterStore.evidence_root` picks the root prior of an update;
:meth:`ParameterStore.propose_version` refuses a proposal whose evidence overlaps the evidence that informs its
prior, so no person-year is counted twice.
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.hashing import canonical_json, content_hash  # noqa: F401 - part of the store's API
from pipeline.jsonio import NonFiniteError, to_jsonable
from pipeline.store.models import (
    AuditEntry,
    Estimate,
    Evaluation,
    EvaluationRun,
    ParameterSet,
    ParameterVersion,
    Verdict,
    utcnow,
)
from som_models.evidence import EvidenceWindow, LineageStep, RootChoice, choose_root

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
    #: the evidence that informed this version (``EvidenceWindow.to_dict()``), None = none (a seed, or older)
    evidence_window: dict[str, Any] | None = None
    #: the root prior its update combined with the evidence (None: the parent, or no update)
    prior_version: int | None = None


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
    tested_version: int | None = None
    proposed_version: int | None = None


def database_url(workdir: Path | str) -> str:
    """``SOM_DATABASE_URL`` if set and non-empty, else ``sqlite:///<workdir>/som.db``."""
    url = os.environ.get("SOM_DATABASE_URL", "").strip()
    if url:
        return url
    return f"sqlite:///{(Path(workdir).expanduser().resolve() / 'som.db').as_posix()}"


def _jsonable(value: Any, *, strict: bool) -> Any:
    """A plain-JSON copy of ``value`` (:func:`pipeline.jsonio.to_jsonable`).

    Non-finite floats raise ``ValueError`` when ``strict`` (parameter documents) and become ``None``
    otherwise (PostgreSQL's JSON type rejects NaN and Infinity).
    """
    try:
        return to_jsonable(value, nonfinite="error" if strict else "null")
    except NonFiniteError as exc:
        raise NonFiniteError(f"{exc} in a parameter document") from None


def _check_text(**fields: Any) -> None:
    """Refuse text that is not plain text (:func:`som_reference.strict_yaml.text_problem`): control characters
    (NUL — which PostgreSQL text rejects — ESC and the rest; tab and line feed are allowed) and more than
    :data:`~som_reference.strict_yaml.MAX_TEXT_CHARS` characters. The message names the field, never the value.

    Everything else — quotes, semicolons, SQL keywords, backslashes, ``%``, rich markup such as ``[/x]`` — is
    stored verbatim: all values travel as bound parameters, and the CLI prints stored text as plain text.
    """
    from som_reference.strict_yaml import text_problem

    for name, value in fields.items():
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                raise StoreError(f"{name} {problem}; the store does not accept it")


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


def _estimate_rows(run_id: str, estimates: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate estimate dicts and turn them into rows for an ORM bulk insert (attribute names)."""
    rows = []
    for i, est in enumerate(estimates):
        _check_keys(est, ESTIMATE_KEYS, ("outcome", "estimand"), "estimate", i)
        values: dict[str, Any] = {"outcome": str(est["outcome"]), "estimand": str(est["estimand"])}
        _check_text(**{f"estimate #{i} outcome": values["outcome"], f"estimate #{i} estimand": values["estimand"]})
        for key in ESTIMATE_KEYS[2:]:
            raw = est.get(key)
            values[key] = _opt_int(raw, key) if key in _ESTIMATE_INTS else _opt_float(raw)
        rows.append({"run_id": run_id, **values})
    return rows


def _verdict_rows(run_id: str, verdicts: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate verdict dicts and turn them into bulk-insert rows (labels are checked by the DB)."""
    rows = []
    for i, ver in enumerate(verdicts):
        _check_keys(ver, VERDICT_KEYS, ("assumption", "label", "test", "sentence"), "verdict", i)
        values: dict[str, Any] = {k: ver.get(k) for k in VERDICT_KEYS}
        _check_text(**{f"verdict #{i} {k}": values[k] for k in ("assumption", "outcome", "label", "test", "sentence")})
        for key in _VERDICT_FLOATS:
            values[key] = _opt_float(values[key])
        if values["evidence"] is not None:
            values["evidence"] = _jsonable(values["evidence"], strict=False)
        rows.append({"run_id": run_id, **values})
    return rows


def _row_window(row: ParameterVersion) -> EvidenceWindow | None:
    """The evidence window stored on a version row (None: informed by no evidence)."""
    if row.evidence_evaluation is None:
        return None
    return EvidenceWindow(evaluation=row.evidence_evaluation, vintage=row.data_vintage, data_hash=row.data_hash,
                          first_year=row.evidence_first_year, last_year=row.evidence_last_year,
                          persons=row.evidence_persons)


def _version_record(row: ParameterVersion, *, reused: bool = False) -> VersionRecord:
    window = _row_window(row)
    return VersionRecord(
        intervention=row.intervention, version=row.version, status=row.status,
        content=copy.deepcopy(row.content), content_hash=row.content_hash,
        parent_version=row.parent_version, reason=row.reason,
        evaluation_run_id=row.evaluation_run_id, data_vintage=row.data_vintage,
        data_hash=row.data_hash, code_version=row.code_version,
        evidence=copy.deepcopy(row.evidence), created_at=row.created_at,
        decided_by=row.decided_by, decided_at=row.decided_at,
        decision_reason=row.decision_reason, reused=reused,
        evidence_window=None if window is None else window.to_dict(), prior_version=row.prior_version,
    )


def _run_record(row: EvaluationRun) -> RunRecord:
    return RunRecord(
        id=row.id, evaluation_id=row.evaluation_id, intervention=row.intervention,
        data_vintage=row.data_vintage, data_hash=row.data_hash,
        code_version=row.code_version, spec=copy.deepcopy(row.spec), created_at=row.created_at,
        tested_version=row.tested_version, proposed_version=row.proposed_version,
    )


def _window_years(window: Mapping[str, Any] | None) -> dict[str, int | None]:
    """``first_year``, ``last_year``, ``persons`` of a proposal's window (unknown keys refused, ints checked)."""
    keys = ("first_year", "last_year", "persons")
    if window is None:
        return dict.fromkeys(keys)
    unknown = sorted(set(window) - set(keys))
    if unknown:
        raise ValueError(f"evidence window: unknown key(s) {unknown}; allowed: {list(keys)}")
    years = {k: _opt_int(window.get(k), f"evidence window {k}") for k in keys}
    # consistent: both years or neither, last ≥ first, persons ≥ 0
    EvidenceWindow(evaluation="check", first_year=years["first_year"], last_year=years["last_year"],
                   persons=years["persons"])
    return years


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


_UPGRADE_LOCK = threading.Lock()
_UPGRADE_ATTEMPTS = 5


def _concurrent_migration(exc: OperationalError) -> bool:
    """The error a concurrent first migration can cause (worth re-reading the version and retrying)."""
    text = str(exc.orig if getattr(exc, "orig", None) is not None else exc).lower()
    return "already exists" in text or "database is locked" in text or "database table is locked" in text


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """A cross-process lock for the first migration of a SQLite file (``<database>.migrate.lock`` beside it);
    a no-op for other databases (PostgreSQL: the migration environment's advisory lock)."""
    from pipeline.atomic import file_lock

    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with file_lock(Path(database).expanduser().with_name(Path(database).name + ".migrate.lock")):
        yield


@lru_cache(maxsize=1)
def _script_heads() -> frozenset[str]:
    """The head revision(s) of the migration scripts."""
    return frozenset(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


def _alembic_config(url: str) -> Config:
    """A programmatic Alembic configuration (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class ParameterStore:
    """Versioned parameter sets, evaluation runs and their evidence, with an audit log."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        """Connect to ``url`` and bring the schema to the latest migration (``migrate`` False: leave the schema as
        it is — for read-only lookups, which check :attr:`is_current` first)."""
        self.url = url
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.upgrade()

    @property
    def is_current(self) -> bool:
        """Whether the schema is at the migration scripts' head (an empty database is not)."""
        return self._current_heads() == _script_heads()

    @classmethod
    def from_workdir(cls, workdir: Path | str) -> ParameterStore:
        """The store at :func:`database_url` of ``workdir``."""
        return cls(database_url(workdir))

    def upgrade(self) -> None:
        """Run ``alembic upgrade head`` in one transaction (a no-op when current).

        Alembic's ``context`` is a process-wide global, so migrations are serialised across threads
        here; across processes the migration environment takes a PostgreSQL advisory lock (SQLite:
        ``BEGIN IMMEDIATE`` and a lock file beside the database, :func:`_migration_lock`). A database
        already at head is detected without running Alembic, and again once the lock is held (another
        process may have migrated meanwhile). Should a concurrent start still collide ("table … already
        exists", "database is locked"), the upgrade is retried after re-reading the version.
        """
        heads = _script_heads()
        if self._current_heads() == heads:
            return
        with _UPGRADE_LOCK, _migration_lock(self.url):
            for attempt in range(_UPGRADE_ATTEMPTS):
                if self._current_heads() == heads:  # another process migrated while this one waited
                    return
                try:
                    self._run_upgrade()
                    return
                except OperationalError as exc:
                    if attempt + 1 == _UPGRADE_ATTEMPTS or not _concurrent_migration(exc):
                        raise
                    time.sleep(0.1 * (attempt + 1))

    def _current_heads(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())

    def _run_upgrade(self) -> None:
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

    @classmethod
    def _lineage_rows(cls, session: Session, intervention: str, version: int) -> list[ParameterVersion]:
        """``version`` and its ancestors, newest first (parent pointers up to the seed)."""
        rows: list[ParameterVersion] = []
        seen: set[int] = set()
        current: int | None = version
        while current is not None:
            if current in seen:
                raise StoreError(f"parameter set {intervention!r}: the parents of version {version} form a cycle")
            seen.add(current)
            row = cls._version_row(session, intervention, current)
            rows.append(row)
            current = row.parent_version
        return rows

    def lineage(self, intervention: str, version: int) -> list[VersionRecord]:
        """``version`` and its ancestors, newest first: the versions whose values it may carry."""
        with self._transaction() as session:
            return [_version_record(r) for r in self._lineage_rows(session, intervention, version)]

    def informed_by(self, intervention: str, version: int) -> list[dict[str, Any]]:
        """The evidence that informs ``version``: its own and its ancestors' windows, newest first.

        Each entry is ``{"version": v, **EvidenceWindow.to_dict()}``; a version carries every value of its
        parent it did not change, so it is informed by all of them.
        """
        with self._transaction() as session:
            out = []
            for row in self._lineage_rows(session, intervention, version):
                window = _row_window(row)
                if window is not None:
                    out.append({"version": row.version, **window.to_dict()})
            return out

    def evidence_root(self, intervention: str, version: int, evidence: EvidenceWindow, *,
                      exclude: tuple[int, ...] = ()) -> RootChoice:
        """The root prior for updating ``version`` with ``evidence`` and the versions whose evidence is carried into
        it (:func:`som_models.evidence.choose_root`, ``exclude`` the versions that cannot be re-derived; the caller
        re-derives them, :func:`som_models.evidence.carry_evidence`)."""
        with self._transaction() as session:
            steps = [LineageStep(r.version, _row_window(r))
                     for r in self._lineage_rows(session, intervention, version)]
        try:
            return choose_root(steps, evidence, exclude=exclude)
        except ValueError as exc:
            raise StoreError(f"parameter set {intervention!r}: {exc}") from None

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

    @staticmethod
    def _check_looks(session: Session, run: EvaluationRun, verdict_rows: list[dict[str, Any]]) -> None:
        """Refuse verdicts whose look number missed a look stored meanwhile (:mod:`som_models.sequential`).

        A verdict judged at look ``k`` of its hypothesis counted ``k − 1`` earlier looks on other data. If the store
        now holds more distinct data sets for that hypothesis and evaluation — another vintage judged while this
        run was (parallel backfills) — its boundary spent α that look already spent: the error over the looks
        would no longer be controlled. Checked in the proposal's locked transaction; :class:`StoreError`, nothing
        written; a rerun then counts the other look."""
        wanted = [(v["assumption"], v["evidence"]["sequential"]) for v in verdict_rows
                  if isinstance(v.get("evidence"), dict) and isinstance(v["evidence"].get("sequential"), dict)]
        wanted = [(a, r) for a, r in wanted if r.get("hypothesis") and r.get("look") and not r.get("reused")]
        if not wanted:
            return
        stmt = (select(EvaluationRun.data_hash, EvaluationRun.data_vintage, Verdict.evidence)
                .join(Verdict, Verdict.run_id == EvaluationRun.id)
                .where(EvaluationRun.evaluation_id == run.evaluation_id, EvaluationRun.id != run.id))
        seen: dict[str, dict[str, str | None]] = {}
        for data_hash, vintage, evidence in session.execute(stmt).all():
            rec = evidence.get("sequential") if isinstance(evidence, dict) else None
            if isinstance(rec, dict) and rec.get("hypothesis") and data_hash:
                seen.setdefault(str(rec["hypothesis"]), {})[data_hash] = vintage
        for assumption, rec in wanted:
            others = {h: v for h, v in seen.get(str(rec["hypothesis"]), {}).items() if h != run.data_hash}
            if len(others) > int(rec["look"]) - 1:
                vintages = ", ".join(sorted(str(v) for v in others.values()))
                raise StoreError(
                    f"evaluation {run.evaluation_id!r}: the verdict on {assumption} was judged as look {rec['look']}, "
                    f"but {len(others)} earlier look(s) on other data (vintages {vintages}) are stored now — another "
                    "vintage was judged while this run was (parallel runs of one evaluation); nothing was written. "
                    "Rerun this evaluation: it will count that look (run the vintages of one evaluation one at a "
                    "time).")

    def look_records(self, evaluation_id: str) -> list[dict[str, Any]]:
        """The looks an evaluation's verdicts recorded (:mod:`som_models.sequential`), oldest run first.

        One row per stored verdict that carries a look record (``evidence["sequential"]``): ``run_id``,
        ``run_at``, ``data_vintage``, ``data_hash`` (of the run), ``assumption`` and the record ``sequential``.
        Reruns on the same data appear again; :func:`som_models.sequential.plan_look` counts distinct data once.
        """
        stmt = (select(EvaluationRun.id, EvaluationRun.created_at, EvaluationRun.data_vintage, EvaluationRun.data_hash,
                       Verdict.assumption, Verdict.evidence)
                .join(Verdict, Verdict.run_id == EvaluationRun.id)
                .where(EvaluationRun.evaluation_id == evaluation_id)
                .order_by(EvaluationRun.created_at, EvaluationRun.id, Verdict.id))
        with self._transaction() as session:
            rows = session.execute(stmt).all()
        return [{"run_id": r[0], "run_at": r[1], "data_vintage": r[2], "data_hash": r[3], "assumption": r[4],
                 "sequential": copy.deepcopy(r[5]["sequential"])}
                for r in rows if isinstance(r[5], dict) and isinstance(r[5].get("sequential"), dict)]

    def audit_entries(self, intervention: str | None = None) -> list[dict[str, Any]]:
        """Audit log entries (optionally of one intervention), oldest first."""
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        if intervention is not None:
            stmt = stmt.where(AuditEntry.intervention == intervention)
        keys = ("id", "at", "actor", "action", "intervention", "version", "run_id", "detail")
        with self._transaction() as session:
            return [{k: getattr(r, k) for k in keys} for r in session.scalars(stmt)]

    def interventions(self) -> list[dict[str, Any]]:
        """Every parameter set: intervention, title, approved version, latest version, counts."""
        with self._transaction() as session:
            counts = dict(session.execute(
                select(ParameterVersion.intervention, func.count()).group_by(ParameterVersion.intervention)
            ).all())
            latest = dict(session.execute(
                select(ParameterVersion.intervention, func.max(ParameterVersion.version))
                .group_by(ParameterVersion.intervention)
            ).all())
            proposed = dict(session.execute(
                select(ParameterVersion.intervention, func.count())
                .where(ParameterVersion.status == "proposed").group_by(ParameterVersion.intervention)
            ).all())
            runs = dict(session.execute(
                select(EvaluationRun.intervention, func.count()).group_by(EvaluationRun.intervention)
            ).all())
            return [
                {"intervention": r.intervention, "title": r.title, "approved_version": r.approved_version,
                 "latest_version": latest.get(r.intervention), "versions": counts.get(r.intervention, 0),
                 "proposed": proposed.get(r.intervention, 0), "runs": runs.get(r.intervention, 0),
                 "created_at": r.created_at}
                for r in session.scalars(select(ParameterSet).order_by(ParameterSet.intervention))
            ]

    def evaluations(self, intervention: str | None = None) -> list[dict[str, Any]]:
        """Registered evaluations (optionally of one intervention), by id."""
        stmt = select(Evaluation).order_by(Evaluation.id)
        if intervention is not None:
            stmt = stmt.where(Evaluation.intervention == intervention)
        with self._transaction() as session:
            return [{"id": e.id, "intervention": e.intervention, "title": e.title, "created_at": e.created_at}
                    for e in session.scalars(stmt)]

    def audit_trail(self, intervention: str) -> list[dict[str, Any]]:
        """How each assumption held across evaluation runs and data vintages, oldest run first.

        One row per run × verdict: the run (evaluation, vintage, data hash, code version, time, the content
        hash of its spec ``spec_hash`` and the spec's ``min_cell``), the version it evaluated and the version it
        proposed (with that version's current status), and the verdict (assumed, realised with interval, label,
        test, Holm-adjusted p, sentence, and its ``evidence`` unfiltered: not for output as it is). Runs that
        stored no verdicts (e.g. interrupted) appear once with ``assumption`` None. :meth:`assumption_history`
        turns the rows into one point per vintage and tested version.
        """
        with self._transaction() as session:
            if session.get(ParameterSet, intervention) is None:
                raise StoreError(f"no parameter set for intervention {intervention!r}")
            runs = session.scalars(
                select(EvaluationRun).where(EvaluationRun.intervention == intervention)
                .order_by(EvaluationRun.created_at, EvaluationRun.id)
            ).all()
            status = dict(session.execute(
                select(ParameterVersion.version, ParameterVersion.status)
                .where(ParameterVersion.intervention == intervention)
            ).all())
            ids = [r.id for r in runs]
            by_run: dict[str, list[Verdict]] = {i: [] for i in ids}
            if ids:
                for v in session.scalars(select(Verdict).where(Verdict.run_id.in_(ids)).order_by(Verdict.id)):
                    by_run[v.run_id].append(v)
            rows = []
            for r in runs:
                head = {"run_id": r.id, "evaluation_id": r.evaluation_id, "data_vintage": r.data_vintage,
                        "data_hash": r.data_hash, "code_version": r.code_version, "run_at": r.created_at,
                        "tested_version": r.tested_version, "proposed_version": r.proposed_version,
                        "proposed_status": status.get(r.proposed_version), "spec_hash": content_hash(r.spec or {}),
                        "min_cell": (r.spec or {}).get("min_cell")}
                if not by_run[r.id]:
                    rows.append({**head, **{k: None for k in ("assumption", "outcome", "label", "assumed", "realised",
                                                              "ci_low", "ci_high", "p_adjusted", "test", "sentence",
                                                              "evidence")}})
                for v in by_run[r.id]:
                    rows.append({**head, "assumption": v.assumption, "outcome": v.outcome, "label": v.label,
                                 "assumed": v.assumed, "realised": v.realised, "ci_low": v.ci_low,
                                 "ci_high": v.ci_high, "p_adjusted": v.p_adjusted, "test": v.test,
                                 "sentence": v.sentence, "evidence": copy.deepcopy(v.evidence)})
            return rows

    def assumption_history(self, intervention: str, evaluation_id: str | None = None) -> list[dict[str, Any]]:
        """How each assumption held over data vintages: one point per (evaluation, assumption, vintage, tested
        version), ordered by vintage, reruns on unchanged data collapsed, changed verdicts flagged with why
        (:func:`pipeline.store.history.assumption_history`); optionally of one evaluation only."""
        from pipeline.store.history import assumption_history

        trail = self.audit_trail(intervention)
        if evaluation_id is not None:
            trail = [r for r in trail if r["evaluation_id"] == evaluation_id]
        return assumption_history(trail)

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
        _check_text(intervention=intervention, title=title, source=source, actor=actor)
        doc = _jsonable(content, strict=True)
        digest = content_hash(doc)
        try:
            with self._transaction(write=True) as session:
                if self._lock_set(session, intervention) is None:
                    now = utcnow()
                    session.add(ParameterSet(intervention=intervention, title=title, created_at=now,
                                             approved_version=1, revision=1))
                    session.flush()
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
        tested_version: int | None = None, title: str | None = None,
    ) -> RunRecord:
        """Register an evaluation run (and its evaluation, the first time); return it with its new id.

        The id is a uuid4 hex. ``tested_version`` is the parameter version whose assumptions the run
        evaluates.
        """
        _check_text(evaluation_id=evaluation_id, intervention=intervention, data_vintage=data_vintage,
                    data_hash=data_hash, code_version=code_version, title=title)
        values = dict(
            id=uuid.uuid4().hex, evaluation_id=evaluation_id, intervention=intervention,
            data_vintage=data_vintage, data_hash=data_hash, code_version=code_version,
            spec=_jsonable(spec, strict=False), created_at=utcnow(), tested_version=tested_version,
        )
        title = title if title is not None else str((spec or {}).get("title", "") or "")
        for attempt in range(2):
            try:
                with self._transaction(write=True) as session:
                    if session.get(Evaluation, evaluation_id) is None:
                        session.add(Evaluation(id=evaluation_id, intervention=intervention, title=title,
                                               created_at=values["created_at"]))
                        session.flush()
                    row = EvaluationRun(**values)
                    session.add(row)
                    session.flush()
                    return _run_record(row)
            except IntegrityError:
                if attempt:  # not a lost race on the evaluation row: report it
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _insert_evidence(session: Session, estimate_rows: list[dict[str, Any]],
                         verdict_rows: list[dict[str, Any]]) -> None:
        """Bulk-insert a run's estimates and verdicts (one executemany each)."""
        if estimate_rows:
            session.execute(insert(Estimate), estimate_rows)
        if verdict_rows:
            session.execute(insert(Verdict), verdict_rows)

    @staticmethod
    def _already_incorporated(session: Session, parent: ParameterVersion, run: EvaluationRun,
                              data_hash: str | None) -> bool:
        """Whether ``parent`` was itself proposed by the same evaluation from the same data (hash)."""
        if data_hash is None or parent.data_hash != data_hash or parent.evaluation_run_id is None:
            return False
        origin = session.get(EvaluationRun, parent.evaluation_run_id)
        return origin is not None and origin.evaluation_id == run.evaluation_id

    def propose_version(
        self, *, intervention: str, parent_version: int, content: dict[str, Any], reason: str,
        run_id: str, data_vintage: str | None, data_hash: str | None, code_version: str | None,
        evidence: dict[str, Any], estimates: list[dict[str, Any]],
        verdicts: list[dict[str, Any]], actor: str = "pipeline",
        window: Mapping[str, Any] | None = None, prior_version: int | None = None,
    ) -> VersionRecord:
        """Store a run's estimates and verdicts and a new ``proposed`` version, atomically.

        Idempotent by content: if a version with the same content hash and the same parent exists
        already, no version is written and that version is returned with ``reused=True`` — but the
        run's estimates and verdicts are still stored (every run is evidence of how the assumptions
        held on its data) and the run is linked to the existing version. Likewise when the parent
        itself was proposed by the same evaluation from the same data (``data_hash``): a rerun after
        approving that proposal adds no evidence, and updating the parent again would count the
        same data twice, so the parent is returned (``reused=True``). All of it is one transaction:
        a failure or a killed process leaves everything or nothing.

        Evidence accounting: the new version records its evidence — the run's evaluation, ``data_vintage``,
        ``data_hash`` and ``window`` (``first_year``, ``last_year``, ``persons`` of the panel; None = unknown) —
        and ``prior_version``, the root prior its values were updated from (None = the parent). The prior must
        be the parent or one of its ancestors, and neither it nor any of its ancestors may be informed by
        evidence overlapping the new evidence (:meth:`EvidenceWindow.overlaps`): such a proposal would count
        the same person-years twice and is refused (:class:`StoreError`, nothing written).
        """
        _check_text(intervention=intervention, reason=reason, run_id=run_id, data_vintage=data_vintage,
                    data_hash=data_hash, code_version=code_version, actor=actor)
        doc = _jsonable(content, strict=True)
        digest = content_hash(doc)
        estimate_rows = _estimate_rows(run_id, estimates)
        verdict_rows = _verdict_rows(run_id, verdicts)
        evidence_doc = _jsonable(evidence, strict=False)
        years = _window_years(window)
        try:
            with self._transaction(write=True) as session:
                if self._lock_set(session, intervention) is None:
                    raise StoreError(f"no parameter set for intervention {intervention!r}")
                parent = self._version_row(session, intervention, parent_version)
                run = session.get(EvaluationRun, run_id)
                if run is None:
                    raise StoreError(f"no evaluation run {run_id!r}; call record_run first")
                if run.intervention != intervention:
                    raise StoreError(f"evaluation run {run_id!r} belongs to {run.intervention!r}, not {intervention!r}")
                if run.proposed_version is not None:
                    raise StoreError(f"evaluation run {run_id!r} already has a proposal (version "
                                     f"{run.proposed_version}); record a new run")
                self._check_looks(session, run, verdict_rows)
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
                note = None if existing is None else (
                    f"same content as version {existing.version} ({existing.status}); no new version")
                if existing is None and self._already_incorporated(session, parent, run, data_hash):
                    existing = parent
                    note = (f"the data (sha256 {data_hash[:12]}) are already incorporated in version "
                            f"{parent.version} by this evaluation; updating it again would count them twice")
                now = utcnow()
                detail = {"parent_version": parent_version, "content_hash": digest, "reason": reason,
                          "n_estimates": len(estimate_rows), "n_verdicts": len(verdict_rows),
                          "data_vintage": data_vintage, "data_hash": data_hash}
                if existing is not None:
                    self._insert_evidence(session, estimate_rows, verdict_rows)
                    run.proposed_version = existing.version
                    if run.tested_version is None:
                        run.tested_version = parent_version
                    session.add(AuditEntry(
                        at=now, actor=actor, action="rerun", intervention=intervention,
                        version=existing.version, run_id=run_id,
                        detail={**detail, "note": note},
                    ))
                    session.flush()
                    return _version_record(existing, reused=True)
                latest = session.scalar(
                    select(func.max(ParameterVersion.version)).where(
                        ParameterVersion.intervention == intervention
                    )
                )
                new_evidence = EvidenceWindow(evaluation=run.evaluation_id, vintage=data_vintage,
                                              data_hash=data_hash, **years)
                self._check_prior(session, intervention, parent_version, prior_version, new_evidence)
                detail = {**detail, "evidence_window": new_evidence.to_dict(),
                          "prior_version": parent_version if prior_version is None else prior_version}
                row = ParameterVersion(
                    intervention=intervention, version=(latest or 0) + 1,
                    parent_version=parent_version, status="proposed", content=doc,
                    content_hash=digest, reason=reason, evaluation_run_id=run_id,
                    data_vintage=data_vintage, data_hash=data_hash, code_version=code_version,
                    evidence=evidence_doc, created_at=now, evidence_evaluation=run.evaluation_id,
                    evidence_first_year=years["first_year"], evidence_last_year=years["last_year"],
                    evidence_persons=years["persons"],
                    prior_version=None if prior_version in (None, parent_version) else prior_version,
                )
                session.add(row)
                session.flush()
                self._insert_evidence(session, estimate_rows, verdict_rows)
                run.proposed_version = row.version
                if run.tested_version is None:
                    run.tested_version = parent_version
                session.add(AuditEntry(
                    at=now, actor=actor, action="propose", intervention=intervention,
                    version=row.version, run_id=run_id, detail=detail,
                ))
                session.flush()
                return _version_record(row)
        except IntegrityError as exc:
            raise StoreError(
                f"proposal for {intervention!r} rejected by the database, nothing was written: "
                f"{' '.join(str(exc.orig).split())}"
            ) from exc

    @classmethod
    def _check_prior(cls, session: Session, intervention: str, parent_version: int, prior_version: int | None,
                     evidence: EvidenceWindow) -> None:
        """Refuse a prior outside the parent's lineage, or one informed by evidence overlapping ``evidence``."""
        chain = cls._lineage_rows(session, intervention, parent_version)
        versions = [r.version for r in chain]
        prior = parent_version if prior_version is None else prior_version
        if prior not in versions:
            raise StoreError(f"prior version {prior} of {intervention!r} is not version {parent_version} or one of its "
                             f"ancestors ({', '.join(map(str, versions))}); nothing was written")
        for row in chain[versions.index(prior):]:
            window = _row_window(row)
            if window is not None and window.overlaps(evidence):
                how = ("it is the prior" if row.version == prior else f"it informs the prior, version {prior}")
                try:
                    root: int | None = choose_root([LineageStep(r.version, _row_window(r)) for r in chain],
                                                   evidence).version
                except ValueError:
                    root = None
                hint = (f"update from the root prior, version {root} (the spec's overlap: root, the default)"
                        if root is not None else "no ancestor is free of the overlapping evidence")
                raise StoreError(
                    f"refusing the proposal for {intervention!r}: its evidence ({evidence.describe()}) overlaps the "
                    f"evidence of version {row.version} ({window.describe()}) and {how}; the update would count the "
                    f"same person-years twice. Nothing was written; {hint}.")

    def decide(
        self, intervention: str, version: int, *, approve: bool, actor: str, reason: str,
        expected_parent: int | None = None,
    ) -> VersionRecord:
        """Approve or reject a proposed version.

        Approving supersedes the currently approved version. Optimistic locking: the approval swaps
        ``parameter_sets.approved_version`` from the proposal's parent to the proposal in one
        conditional ``UPDATE``; if the approved version is no longer the parent (another approval won)
        it raises :class:`ConflictError` and changes nothing. ``expected_parent``, if given, must equal
        the proposal's parent. A proposal decided concurrently by someone else is a conflict too.
        """
        _check_text(intervention=intervention, actor=actor, reason=reason)
        if not str(actor).strip():
            raise StoreError("a decision needs an actor (who decided)")
        if not str(reason).strip():
            raise StoreError("a decision needs a reason")
        with self._transaction(write=True) as session:
            pset = session.get(ParameterSet, intervention)
            if pset is None:
                raise StoreError(f"no parameter set for intervention {intervention!r}")
            row = self._version_row(session, intervention, version)
            if row.status != "proposed":
                raise StoreError(
                    f"version {version} of {intervention!r} is {row.status!r}, not 'proposed'; "
                    "only proposals can be decided"
                )
            now = utcnow()
            superseded: list[int] = []
            if approve:
                parent = row.parent_version
                if expected_parent is not None and expected_parent != parent:
                    raise ConflictError(
                        f"cannot approve version {version} of {intervention!r}: it was proposed on top of "
                        f"version {parent}, not the expected {expected_parent}"
                    )
                swapped = session.execute(
                    update(ParameterSet)
                    .where(ParameterSet.intervention == intervention,
                           ParameterSet.approved_version == parent)
                    .values(approved_version=version, revision=ParameterSet.revision + 1)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if swapped != 1:
                    current = session.scalar(
                        select(ParameterSet.approved_version)
                        .where(ParameterSet.intervention == intervention)
                        .execution_options(populate_existing=True)
                    )
                    raise ConflictError(
                        f"cannot approve version {version} of {intervention!r}: it was proposed on top of "
                        f"version {parent}, but the approved version is now {current}; re-propose on top "
                        "of the current version"
                    )
                superseded = list(session.scalars(
                    select(ParameterVersion.version).where(
                        ParameterVersion.intervention == intervention,
                        ParameterVersion.status == "approved",
                    )
                ))
                session.execute(
                    update(ParameterVersion)
                    .where(ParameterVersion.intervention == intervention,
                           ParameterVersion.status == "approved")
                    .values(status="superseded")
                    .execution_options(synchronize_session=False)
                )
            changed = session.execute(
                update(ParameterVersion)
                .where(ParameterVersion.id == row.id, ParameterVersion.status == "proposed")
                .values(status="approved" if approve else "rejected", decided_by=actor,
                        decided_at=now, decision_reason=reason)
                .execution_options(synchronize_session=False)
            ).rowcount
            if changed != 1:
                raise ConflictError(
                    f"version {version} of {intervention!r} was decided by someone else meanwhile"
                )
            session.add(AuditEntry(
                at=now, actor=actor, action="approve" if approve else "reject",
                intervention=intervention, version=version, run_id=row.evaluation_run_id,
                detail={"reason": reason, "parent_version": row.parent_version,
                        "superseded": sorted(superseded)},
            ))
            session.flush()
            session.refresh(row)
            return _version_record(row)
