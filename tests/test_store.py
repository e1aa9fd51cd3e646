"""Tests of the parameter store (``pipeline.store``) on SQLite and on PostgreSQL.

Every test that takes ``url``/``store`` runs on a temporary SQLite file and on a fresh PostgreSQL
database (``SOM_TEST_POSTGRES_URL``; those cases skip with the reason when it is unset).
"""

from __future__ import annotations

import math
import threading
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.store import (
    ConflictError,
    ParameterStore,
    RunRecord,
    StoreError,
    VersionRecord,
    database_url,
)
from pipeline.store.diff import diff_documents
from pipeline.store.models import AuditEntry, Base, Estimate, ParameterVersion, Verdict
from pipeline.store.repository import _alembic_config, content_hash
from pipeline.store.testing import SKIP_REASON, postgres_admin_url, temporary_postgres_database

SEED = {"success_rate": {"value": 0.3, "se": 0.05, "source": "SØM 2023"}, "horizon": 10}
HOSTILE = [
    "x'); DROP TABLE parameter_versions;--",
    "Robert'); DELETE FROM audit_log WHERE ('1'='1",
    '" OR 1=1; --',
    "100% %s %(name)s {0} $1 $$ ?",
    "back\\slash\\' and 'quote''",
    "line\nbreak\ttab",
    "Ærø Å ø — 🦀 \u202e",
    "/* comment */ ; SELECT pg_sleep(10);",
    "x" * 5000,
]
HEAD = "0003_evidence_windows"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'som.db'}"
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(SKIP_REASON)
    with temporary_postgres_database(admin) as pg:
        yield pg


@pytest.fixture
def store(url: str) -> ParameterStore:
    with ParameterStore(url) as s:
        yield s


def _estimates(n: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "outcome": "employment", "estimand": "event", "group": None, "time": None,
            "event_time": e, "estimate": 0.05 * e, "se": 0.01, "ci_low": 0.05 * e - 0.02,
            "ci_high": 0.05 * e + 0.02, "n_treated": 120, "n_control": float("nan"),
        }
        for e in range(n)
    ]


def _verdict(label: str = "consistent", **extra: Any) -> dict[str, Any]:
    return {
        "assumption": "success_rate", "outcome": None, "label": label, "test": "z-test",
        "statistic": 1.2, "p_value": 0.02, "p_adjusted": float("nan"), "margin": 0.05,
        "assumed": 0.3, "realised": 0.28, "ci_low": 0.22, "ci_high": 0.34,
        "sentence": "The assumed success rate is consistent with the realised one.",
        "evidence": {"n": 240, "bands": (0.1, math.inf)}, **extra,
    }


def _propose(store: ParameterStore, content: dict[str, Any], *, parent: int = 1,
             verdicts: list[dict[str, Any]] | None = None, reason: str = "update",
             intervention: str = "mst", vintage: str = "2024-06", evaluation: str = "mst-2024",
             actor: str = "pipeline") -> tuple[VersionRecord, RunRecord]:
    data_hash = content_hash({"vintage": vintage})  # one hash per vintage: same vintage = same data
    run = store.record_run(
        evaluation_id=evaluation, intervention=intervention, data_vintage=vintage,
        data_hash=data_hash, code_version="abc123", spec={"design": "cs2021", "title": "MST"},
        tested_version=parent,
    )
    version = store.propose_version(
        intervention=intervention, parent_version=parent, content=content, reason=reason,
        run_id=run.id, data_vintage=vintage, data_hash=data_hash, code_version="abc123",
        evidence={"verdicts": 1}, estimates=_estimates(),
        verdicts=[_verdict()] if verdicts is None else verdicts, actor=actor,
    )
    return version, run


def _count(store: ParameterStore, model: type) -> int:
    with Session(store.engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_seed_creates_approved_v1_once(store: ParameterStore) -> None:
    v1 = store.ensure_parameter_set("mst", SEED, title="MST", source="assets/parameters/mst.yaml")
    assert (v1.version, v1.status, v1.parent_version) == (1, "approved", None)
    assert v1.reason == "seed from assets/parameters/mst.yaml"
    assert v1.decided_by == "seed" and v1.content == SEED
    assert v1.content_hash == content_hash(SEED) and len(v1.content_hash) == 64
    assert v1.created_at.tzinfo is not None and v1.created_at.utcoffset().total_seconds() == 0

    again = store.ensure_parameter_set("mst", {"other": 1}, source="elsewhere")
    assert again == v1
    assert [v.version for v in store.versions("mst")] == [1]
    assert [e["action"] for e in store.audit_entries("mst")] == ["seed"]
    (summary,) = store.interventions()
    assert summary["approved_version"] == 1 and summary["versions"] == 1 and summary["title"] == "MST"


def test_missing_rows_raise_store_error(store: ParameterStore) -> None:
    with pytest.raises(StoreError, match="nope"):
        store.latest_approved("nope")
    with pytest.raises(StoreError, match="nope"):
        store.versions("nope")
    with pytest.raises(StoreError, match="nope"):
        store.audit_trail("nope")
    store.ensure_parameter_set("mst", SEED, source="seed")
    with pytest.raises(StoreError, match="version 7 .*'mst'"):
        store.get_version("mst", 7)
    with pytest.raises(StoreError, match="no evaluation run"):
        store.get_run("0" * 32)


def test_propose_stores_version_estimates_verdicts_and_links_the_run(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    new = {**SEED, "horizon": 12}
    v2, run = _propose(store, new)
    assert (v2.version, v2.status, v2.parent_version, v2.reused) == (2, "proposed", 1, False)
    assert v2.evaluation_run_id == run.id and v2.data_vintage == "2024-06"
    assert store.get_version("mst", 2) == v2
    assert store.latest_approved("mst").version == 1

    estimates = store.estimates_for_run(run.id)
    assert len(estimates) == 3
    assert estimates[2]["event_time"] == 2 and estimates[2]["estimate"] == pytest.approx(0.1)
    assert estimates[0]["n_control"] is None and estimates[0]["group"] is None

    (verdict,) = store.verdicts_for_run(run.id)
    assert verdict["label"] == "consistent" and verdict["p_adjusted"] is None
    assert verdict["evidence"] == {"n": 240, "bands": [0.1, None]}

    stored = store.get_run(run.id)
    assert (stored.tested_version, stored.proposed_version) == (1, 2)
    assert [r.id for r in store.runs("mst")] == [run.id]
    assert store.runs("other") == []
    assert store.evaluations("mst") == [{"id": "mst-2024", "intervention": "mst", "title": "MST",
                                         "created_at": store.evaluations()[0]["created_at"]}]
    assert [e["action"] for e in store.audit_entries("mst")] == ["seed", "propose"]


def test_rerun_with_same_content_keeps_its_evidence_but_makes_no_new_version(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    new = {**SEED, "horizon": 12}
    first, run1 = _propose(store, new)
    second, run2 = _propose(store, dict(reversed(list(new.items()))), vintage="2024-06")  # same canonical JSON
    assert second.reused and not first.reused
    assert second.version == first.version == 2
    assert second.evaluation_run_id == run1.id  # the version still names the run that created it
    assert [v.version for v in store.versions("mst")] == [1, 2]
    # Both runs' estimates and verdicts are kept: the audit trail of how the assumption held.
    assert len(store.estimates_for_run(run1.id)) == len(store.estimates_for_run(run2.id)) == 3
    assert len(store.verdicts_for_run(run2.id)) == 1
    assert _count(store, Estimate) == 6 and _count(store, Verdict) == 2
    assert store.get_run(run2.id).proposed_version == 2
    actions = store.audit_entries("mst")
    assert [e["action"] for e in actions] == ["seed", "propose", "rerun"]
    assert actions[-1]["run_id"] == run2.id and "no new version" in actions[-1]["detail"]["note"]
    trail = store.audit_trail("mst")
    assert [(r["run_id"], r["proposed_version"]) for r in trail] == [(run1.id, 2), (run2.id, 2)]

    other_parent, _ = _propose(store, new, parent=2, vintage="2025-06")  # same content, other parent: new
    assert (other_parent.version, other_parent.reused) == (3, False)


def test_a_rerun_does_not_update_a_version_with_the_data_it_came_from(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    v2, _ = _propose(store, {**SEED, "horizon": 12}, vintage="2024-06")
    store.decide("mst", 2, approve=True, actor="analyst", reason="ok")
    # The scheduled rerun on the same delivery evaluates v2 and would update it with the same data again.
    again, run = _propose(store, {**SEED, "horizon": 13}, parent=2, vintage="2024-06")
    assert (again.version, again.reused, again.status) == (2, True, "approved")
    assert [v.version for v in store.versions("mst")] == [1, 2]
    assert len(store.estimates_for_run(run.id)) == 3 and store.get_run(run.id).proposed_version == 2
    assert "already incorporated in version 2" in store.audit_entries("mst")[-1]["detail"]["note"]
    # A new vintage, or another evaluation of the same data, is new evidence.
    newer, _ = _propose(store, {**SEED, "horizon": 13}, parent=2, vintage="2025-06")
    assert (newer.version, newer.reused) == (3, False)
    other, _ = _propose(store, {**SEED, "horizon": 14}, parent=2, vintage="2024-06", evaluation="mst-rct")
    assert (other.version, other.reused) == (4, False)


def test_a_run_proposes_once(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    _, run = _propose(store, {**SEED, "horizon": 12})
    with pytest.raises(StoreError, match="already has a proposal"):
        store.propose_version(intervention="mst", parent_version=1, content={**SEED, "horizon": 13}, reason="r",
                              run_id=run.id, data_vintage=None, data_hash=None, code_version=None, evidence={},
                              estimates=_estimates(), verdicts=[])
    assert _count(store, Estimate) == 3


def test_approve_supersedes_previous(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    _propose(store, {**SEED, "horizon": 12})
    approved = store.decide("mst", 2, approve=True, actor="analyst", reason="looks right",
                            expected_parent=1)
    assert approved.status == "approved" and approved.decided_by == "analyst"
    assert approved.decision_reason == "looks right" and approved.decided_at is not None
    assert store.latest_approved("mst").version == 2
    assert store.get_version("mst", 1).status == "superseded"
    assert store.audit_entries("mst")[-1]["detail"]["superseded"] == [1]
    assert store.interventions()[0]["approved_version"] == 2

    with pytest.raises(StoreError, match="not 'proposed'"):
        store.decide("mst", 2, approve=False, actor="analyst", reason="changed my mind")
    with pytest.raises(StoreError, match="needs a reason"):
        store.decide("mst", 2, approve=False, actor="analyst", reason="  ")


def test_reject_keeps_approved_version(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    _propose(store, {**SEED, "horizon": 12})
    rejected = store.decide("mst", 2, approve=False, actor="analyst", reason="weak evidence")
    assert rejected.status == "rejected"
    assert store.latest_approved("mst").version == 1
    assert store.get_version("mst", 1).status == "approved"
    # A rerun that proposes the rejected content again does not resurrect it.
    again, _ = _propose(store, {**SEED, "horizon": 12})
    assert again.reused and again.status == "rejected"


def test_competing_approval_conflicts(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    a, _ = _propose(store, {**SEED, "horizon": 12})
    b, _ = _propose(store, {**SEED, "horizon": 15})
    assert (a.parent_version, b.parent_version) == (1, 1)
    store.decide("mst", a.version, approve=True, actor="alice", reason="ok")
    with pytest.raises(ConflictError, match="approved version is now 2"):
        store.decide("mst", b.version, approve=True, actor="bob", reason="ok too")
    assert store.get_version("mst", b.version).status == "proposed"
    assert store.latest_approved("mst").version == a.version

    c, _ = _propose(store, {**SEED, "horizon": 20}, parent=2, vintage="2025-06")
    with pytest.raises(ConflictError, match="not the expected 1"):
        store.decide("mst", c.version, approve=True, actor="bob", reason="x", expected_parent=1)
    assert store.decide("mst", c.version, approve=True, actor="bob", reason="x").status == "approved"
    assert [v.status for v in store.versions("mst")] == ["superseded", "superseded", "proposed", "approved"]


def test_concurrent_approvals_serialise(url: str, store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    proposals = [_propose(store, {**SEED, "horizon": h})[0].version for h in (12, 15, 18, 21)]
    barrier = threading.Barrier(len(proposals))
    outcomes: list[str] = []

    def approve(version: int) -> None:
        with ParameterStore(url) as own:  # a separate engine, as another process would have
            barrier.wait()
            try:
                own.decide("mst", version, approve=True, actor=f"u{version}", reason="race")
                outcomes.append("approved")
            except ConflictError as exc:
                assert "re-propose on top of the current version" in str(exc)
                outcomes.append("conflict")

    threads = [threading.Thread(target=approve, args=(v,)) for v in proposals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["approved", "conflict", "conflict", "conflict"]
    statuses = [v.status for v in store.versions("mst")]
    assert statuses.count("approved") == 1 and statuses.count("superseded") == 1
    assert [e["action"] for e in store.audit_entries("mst")].count("approve") == 1


def test_failed_propose_writes_nothing(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    with pytest.raises(StoreError, match="nothing was written"):
        _propose(store, {**SEED, "horizon": 12}, verdicts=[_verdict(), _verdict("maybe")])
    assert [v.version for v in store.versions("mst")] == [1]
    assert _count(store, Estimate) == 0 and _count(store, Verdict) == 0
    assert [e["action"] for e in store.audit_entries()] == ["seed"]

    with pytest.raises(ValueError, match="bogus"):
        _propose(store, {**SEED, "horizon": 12}, verdicts=[_verdict(bogus=1)])
    with pytest.raises(StoreError, match="no version 5"):
        _propose(store, {**SEED, "horizon": 12}, parent=5)
    with pytest.raises(StoreError, match="no parameter set"):
        _propose(store, SEED, intervention="unknown")
    with pytest.raises(ValueError, match="non-finite"):
        _propose(store, {**SEED, "horizon": float("inf")})
    assert [v.version for v in store.versions("mst")] == [1]
    assert _count(store, Estimate) == 0
    assert all(r.proposed_version is None for r in store.runs())


def test_check_constraints_and_foreign_keys_are_enforced(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    bad = ParameterVersion(intervention="mst", version=9, status="live", content={},
                           content_hash="0" * 64, reason="r")
    with Session(store.engine) as session, pytest.raises(IntegrityError):
        session.add(bad)
        session.flush()
    orphan = Estimate(run_id="0" * 32, outcome="y", estimand="att", estimate=1.0)
    with Session(store.engine) as session, pytest.raises(IntegrityError):
        session.add(orphan)
        session.flush()
    twin = ParameterVersion(intervention="mst", version=2, parent_version=None, status="proposed",
                            content=SEED, content_hash=content_hash(SEED), reason="r")
    with Session(store.engine) as session:
        session.add(twin)
        session.flush()  # parent NULL: the unique index does not apply
        session.rollback()
    _propose(store, {**SEED, "horizon": 12})
    dup = ParameterVersion(intervention="mst", version=3, parent_version=1, status="proposed",
                           content={}, content_hash=content_hash({**SEED, "horizon": 12}), reason="r")
    with Session(store.engine) as session, pytest.raises(IntegrityError):
        session.add(dup)
        session.flush()


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings_are_stored_verbatim(store: ParameterStore, hostile: str) -> None:
    content = {"note": hostile, hostile: [hostile]}
    seeded = store.ensure_parameter_set(hostile, content, title=hostile, source=hostile, actor=hostile)
    assert seeded.intervention == hostile and seeded.content == content
    version, run = _propose(store, {"note": "v2"}, reason=hostile, intervention=hostile, vintage=hostile,
                            evaluation=hostile, actor=hostile,
                            verdicts=[_verdict(sentence=hostile, outcome=hostile, test=hostile)])
    assert store.get_version(hostile, 2).reason == hostile
    assert store.get_version(hostile, 2).data_vintage == hostile
    decided = store.decide(hostile, 2, approve=False, actor=hostile, reason=hostile)
    assert (decided.decided_by, decided.decision_reason) == (hostile, hostile)
    assert store.runs(hostile)[0].id == run.id and store.runs(hostile)[0].evaluation_id == hostile
    assert store.verdicts_for_run(run.id)[0]["sentence"] == hostile
    assert store.evaluations(hostile)[0]["id"] == hostile
    audit = store.audit_entries(hostile)
    assert audit[0]["detail"]["source"] == hostile and audit[-1]["actor"] == hostile
    assert store.audit_trail(hostile)[0]["data_vintage"] == hostile
    # Nothing else happened: every table is still there and holds exactly what was written.
    tables = set(inspect(store.engine).get_table_names())
    assert {"parameter_sets", "parameter_versions", "evaluation_runs", "estimates", "verdicts",
            "audit_log", "evaluations"} <= tables
    assert _count(store, ParameterVersion) == 2 and _count(store, AuditEntry) == 3
    assert store.latest_approved(hostile).version == 1


def test_nul_characters_are_refused_clearly_on_every_database(store: ParameterStore) -> None:
    with pytest.raises(StoreError, match=r"intervention holds the control character U\+0000"):
        store.ensure_parameter_set("a\x00b", SEED, source="seed")
    store.ensure_parameter_set("mst", SEED, source="seed")
    with pytest.raises(StoreError, match=r"reason holds the control character U\+0000"):
        _propose(store, {**SEED, "horizon": 12}, reason="r\x00")
    for control in ("\r", "\x1b[2J", "\x07", "\x9b"):  # terminal control: refused like NUL (issue 16)
        with pytest.raises(StoreError, match="reason holds the control character"):
            _propose(store, {**SEED, "horizon": 12}, reason=f"r{control}")
    assert [v.version for v in store.versions("mst")] == [1]
    nul_in_json = {**SEED, "note": "a\x00b"}  # inside JSON content it is an escaped character: fine
    version, _ = _propose(store, nul_in_json)
    assert store.get_version("mst", version.version).content == nul_in_json


def test_migrations_are_idempotent_and_match_models(url: str) -> None:
    with ParameterStore(url) as first:
        first.ensure_parameter_set("mst", SEED, source="seed")
    with ParameterStore(url) as second:
        assert second.latest_approved("mst").content == SEED
        second.upgrade()
        with second.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert second.latest_approved("mst").created_at.tzinfo == UTC


def test_upgrade_from_0001_backfills_and_downgrade_round_trips(url: str) -> None:
    engine = create_engine(url)
    config = _alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001_initial")
    now = "2024-01-01 00:00:00"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO parameter_sets (intervention, title, created_at) VALUES ('mst', '', :t)"), {"t": now})
        conn.execute(text("INSERT INTO evaluation_runs (id, evaluation_id, intervention, spec, created_at) "
                          "VALUES ('r1', 'ev', 'mst', '{}', :t)"), {"t": now})
        for v, parent, status, run in ((1, None, "superseded", None), (2, 1, "approved", "r1")):
            conn.execute(text("INSERT INTO parameter_versions (intervention, version, parent_version, status, content, "
                              "content_hash, reason, evaluation_run_id, created_at) VALUES ('mst', :v, :p, :s, '{}', :h, "
                              "'r', :run, :t)"), {"v": v, "p": parent, "s": status, "h": str(v) * 64, "run": run, "t": now})
    engine.dispose()
    with ParameterStore(url) as store:
        assert store.interventions()[0]["approved_version"] == 2
        assert (store.get_run("r1").tested_version, store.get_run("r1").proposed_version) == (1, 2)
        assert [e["id"] for e in store.evaluations("mst")] == ["ev"]
        _propose(store, {"x": 1}, parent=2)
        assert store.decide("mst", 3, approve=True, actor="a", reason="r").status == "approved"
    engine = create_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001_initial")
    with engine.connect() as conn:
        assert "evaluations" not in inspect(conn).get_table_names()
        assert conn.exec_driver_sql("SELECT count(*) FROM parameter_versions").scalar() == 3
    engine.dispose()
    with ParameterStore(url) as store:  # and up again
        assert store.latest_approved("mst").version == 3


def test_from_workdir_creates_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    workdir = tmp_path / "nested" / "work"
    with ParameterStore.from_workdir(workdir) as s:
        s.ensure_parameter_set("mst", SEED, source="seed")
    assert (workdir / "som.db").is_file()


def test_database_url_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    assert database_url(tmp_path) == f"sqlite:///{(tmp_path / 'som.db').resolve().as_posix()}"
    monkeypatch.setenv("SOM_DATABASE_URL", "")
    assert database_url(tmp_path).startswith("sqlite:///")
    monkeypatch.setenv("SOM_DATABASE_URL", "postgresql+psycopg://som@db/som")
    assert database_url(tmp_path) == "postgresql+psycopg://som@db/som"


def test_non_finite_content_is_refused(store: ParameterStore) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        store.ensure_parameter_set("mst", {"rate": float("nan")}, source="seed")
    with pytest.raises(StoreError):
        store.latest_approved("mst")


def test_audit_trail_follows_assumptions_across_vintages(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    v2, run1 = _propose(store, {**SEED, "horizon": 12}, vintage="2023-06",
                        verdicts=[_verdict("consistent"), _verdict("refuted-overestimated", assumption="effect_path:crime",
                                                                   outcome="convictions", assumed=-0.5, realised=0.2)])
    store.decide("mst", v2.version, approve=True, actor="analyst", reason="ok")
    _, run2 = _propose(store, {**SEED, "horizon": 14}, parent=2, vintage="2024-06",
                       verdicts=[_verdict("inconclusive")])
    interrupted = store.record_run(evaluation_id="mst-2024", intervention="mst", data_vintage="2025-06",
                                   data_hash=None, code_version=None, spec={}, tested_version=2)
    trail = store.audit_trail("mst")
    assert [(r["data_vintage"], r["assumption"], r["label"], r["tested_version"], r["proposed_version"],
             r["proposed_status"]) for r in trail] == [
        ("2023-06", "success_rate", "consistent", 1, 2, "approved"),
        ("2023-06", "effect_path:crime", "refuted-overestimated", 1, 2, "approved"),
        ("2024-06", "success_rate", "inconclusive", 2, 3, "proposed"),
        ("2025-06", None, None, 2, None, None),
    ]
    assert trail[1]["realised"] == pytest.approx(0.2) and trail[1]["ci_low"] == pytest.approx(0.22)
    assert trail[-1]["run_id"] == interrupted.id and trail[0]["run_id"] == run1.id != run2.id


def test_diff_documents_lists_changed_leaves() -> None:
    a = {"success_rate": {"value": 0.2, "se": 0.05}, "units": [1, 2, 3], "gone": True, "same": 1}
    b = {"success_rate": {"value": 0.15, "se": 0.05}, "units": [1, 2.5, 3], "new": "x", "same": 1.0}
    assert diff_documents(a, b) == [
        {"path": "gone", "change": "removed", "from": True, "to": None},
        {"path": "new", "change": "added", "from": None, "to": "x"},
        {"path": "success_rate.value", "change": "changed", "from": 0.2, "to": 0.15},
        {"path": "units[1]", "change": "changed", "from": 2, "to": 2.5},
    ]
    assert diff_documents(a, a) == []
    assert diff_documents({"u": [1]}, {"u": [1, 2]}) == [{"path": "u", "change": "changed", "from": [1], "to": [1, 2]}]


def test_a_look_missed_by_a_parallel_run_is_refused_and_nothing_written(store: ParameterStore) -> None:
    """Two vintages of one evaluation judged at the same time both think they are look 1 of the hypothesis: the one
    that writes second is refused (its boundary would spend α the other already spent); rerun, it is look 2."""
    store.ensure_parameter_set("mst", SEED, title="MST", source="assets/parameters/mst.yaml")

    def look(n: int) -> list[dict[str, Any]]:
        return [_verdict(evidence={"sequential": {"hypothesis": "h1", "look": n, "reused": False,
                                                  "information": 400.0, "reference_information": 300.0}})]

    _propose(store, {**SEED, "horizon": 11}, vintage="2022-06", verdicts=look(1))
    before = (_count(store, ParameterVersion), _count(store, Verdict))
    with pytest.raises(StoreError, match=r"judged as look 1, but 1 earlier look\(s\) on other data \(vintages 2022-06\)"):
        _propose(store, {**SEED, "horizon": 12}, vintage="2023-06", verdicts=look(1))
    assert (_count(store, ParameterVersion), _count(store, Verdict)) == before
    # rerun: now look 2 — accepted; and a rerun on the first vintage's data is the same look again (reused)
    _propose(store, {**SEED, "horizon": 12}, vintage="2023-06", verdicts=look(2))
    same = [_verdict(evidence={"sequential": {"hypothesis": "h1", "look": 1, "reused": True,
                                              "information": 400.0, "reference_information": 300.0}})]
    _propose(store, {**SEED, "horizon": 11}, vintage="2022-06", verdicts=same)
