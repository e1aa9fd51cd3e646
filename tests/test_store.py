"""Tests of the parameter store (``pipeline.store``) on temporary SQLite files."""

from __future__ import annotations

import math
import threading
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select
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
from pipeline.store.models import Base, Estimate, ParameterVersion, Verdict
from pipeline.store.repository import content_hash

SEED = {"success_rate": {"value": 0.3, "se": 0.05, "source": "SØM 2023"}, "horizon": 10}
HOSTILE = "x'); DROP TABLE parameter_versions;--"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'som.db'}"


@pytest.fixture
def store(url: str) -> ParameterStore:
    with ParameterStore(url) as s:
        yield s


def _estimates(n: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "outcome": "employment", "estimand": "event_time_att", "group": None, "time": None,
            "event_time": e, "estimate": 0.05 * e, "se": 0.01, "ci_low": 0.05 * e - 0.02,
            "ci_high": 0.05 * e + 0.02, "n_treated": 120, "n_control": float("nan"),
        }
        for e in range(n)
    ]


def _verdict(label: str = "consistent", **extra: Any) -> dict[str, Any]:
    return {
        "assumption": "success_rate", "outcome": None, "label": label, "test": "TOST",
        "statistic": 1.2, "p_value": 0.02, "p_adjusted": float("nan"), "margin": 0.05,
        "assumed": 0.3, "realised": 0.28, "ci_low": 0.22, "ci_high": 0.34,
        "sentence": "The assumed success rate is consistent with the realised one.",
        "evidence": {"n": 240, "bands": (0.1, math.inf)}, **extra,
    }


def _propose(store: ParameterStore, content: dict[str, Any], *, parent: int = 1,
             verdicts: list[dict[str, Any]] | None = None, reason: str = "update",
             intervention: str = "mst") -> tuple[VersionRecord, RunRecord]:
    run = store.record_run(
        evaluation_id="mst-2024", intervention=intervention, data_vintage="2024-06",
        data_hash="d" * 64, code_version="abc123", spec={"design": "cs2021"},
    )
    version = store.propose_version(
        intervention=intervention, parent_version=parent, content=content, reason=reason,
        run_id=run.id, data_vintage="2024-06", data_hash="d" * 64, code_version="abc123",
        evidence={"verdicts": 1}, estimates=_estimates(),
        verdicts=[_verdict()] if verdicts is None else verdicts,
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


def test_missing_rows_raise_store_error(store: ParameterStore) -> None:
    with pytest.raises(StoreError, match="nope"):
        store.latest_approved("nope")
    with pytest.raises(StoreError, match="nope"):
        store.versions("nope")
    store.ensure_parameter_set("mst", SEED, source="seed")
    with pytest.raises(StoreError, match="version 7 .*'mst'"):
        store.get_version("mst", 7)


def test_propose_stores_version_estimates_and_verdicts(store: ParameterStore) -> None:
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

    assert [r.id for r in store.runs("mst")] == [run.id]
    assert store.runs("other") == []
    assert [e["action"] for e in store.audit_entries("mst")] == ["seed", "propose"]


def test_propose_is_idempotent(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    new = {**SEED, "horizon": 12}
    first, run = _propose(store, new)
    second, _ = _propose(store, dict(reversed(list(new.items()))))  # same canonical JSON
    assert second.reused and not first.reused
    assert second.version == first.version == 2
    assert [v.version for v in store.versions("mst")] == [1, 2]
    assert _count(store, Estimate) == 3 and _count(store, Verdict) == 1

    other_parent, _ = _propose(store, new, parent=2)  # same content, other parent: new
    assert (other_parent.version, other_parent.reused) == (3, False)


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

    with pytest.raises(StoreError, match="not 'proposed'"):
        store.decide("mst", 2, approve=False, actor="analyst", reason="changed my mind")


def test_reject_keeps_approved_version(store: ParameterStore) -> None:
    store.ensure_parameter_set("mst", SEED, source="seed")
    _propose(store, {**SEED, "horizon": 12})
    rejected = store.decide("mst", 2, approve=False, actor="analyst", reason="weak evidence")
    assert rejected.status == "rejected"
    assert store.latest_approved("mst").version == 1
    assert store.get_version("mst", 1).status == "approved"


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

    c, _ = _propose(store, {**SEED, "horizon": 20}, parent=2)
    with pytest.raises(ConflictError):
        store.decide("mst", c.version, approve=True, actor="bob", reason="x", expected_parent=1)
    assert store.decide("mst", c.version, approve=True, actor="bob", reason="x").status == (
        "approved"
    )


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
            except ConflictError:
                outcomes.append("conflict")

    threads = [threading.Thread(target=approve, args=(v,)) for v in proposals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["approved", "conflict", "conflict", "conflict"]
    statuses = [v.status for v in store.versions("mst")]
    assert statuses.count("approved") == 1 and statuses.count("superseded") == 1


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
    assert [v.version for v in store.versions("mst")] == [1]
    assert _count(store, Estimate) == 0


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


def test_hostile_strings_are_stored_verbatim(store: ParameterStore) -> None:
    content = {"note": HOSTILE}
    seeded = store.ensure_parameter_set(HOSTILE, content, title=HOSTILE, source=HOSTILE)
    assert seeded.intervention == HOSTILE and seeded.content == content
    version, run = _propose(store, {"note": "v2"}, reason=HOSTILE, intervention=HOSTILE)
    assert store.get_version(HOSTILE, 2).reason == HOSTILE
    assert inspect(store.engine).has_table("parameter_versions")
    assert store.runs(HOSTILE)[0].id == run.id
    assert store.audit_entries(HOSTILE)[0]["detail"]["source"] == HOSTILE


def test_migrations_are_idempotent_and_match_models(url: str) -> None:
    with ParameterStore(url) as first:
        first.ensure_parameter_set("mst", SEED, source="seed")
    with ParameterStore(url) as second:
        assert second.latest_approved("mst").content == SEED
        second.upgrade()
        with second.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == (
                "0001_initial"
            )
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert second.latest_approved("mst").created_at.tzinfo == UTC


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
