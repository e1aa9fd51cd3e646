"""Integrity of the parameter store under crashes and concurrency, on SQLite and PostgreSQL.

* a process killed (SIGKILL) at every statement of writing a proposal — and at random moments — leaves
  the whole proposal (version, estimates, verdicts, audit entry, run link) or nothing of it;
* concurrent identical proposals from separate (forked) processes make exactly one version, and every run keeps
  its estimates and verdicts;
* concurrent approvals of competing proposals: exactly one wins, the others get a conflict.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.store import ConflictError, ParameterStore
from pipeline.store.models import AuditEntry, Estimate, EvaluationRun, ParameterVersion, Verdict
from pipeline.store.testing import SKIP_REASON, postgres_admin_url, temporary_postgres_database

SEED = {"success_rate": {"value": 0.3, "se": 0.05}, "horizon": 10}
N_ESTIMATES, N_VERDICTS = 150, 4


def _child(url: str, progress: str, pause: float, content: str) -> None:
    """A forked writer: records a run, then proposes with a pause logged before every statement and COMMIT.

    Forked (not a new interpreter) so a kill costs milliseconds; ``os._exit`` skips the parent's atexit
    handlers. The parent reads ``progress`` and sends SIGKILL at the moment it wants.
    """
    from sqlalchemy import event

    log = open(progress, "a", buffering=1)
    store = ParameterStore(url)
    run = store.record_run(evaluation_id="ev", intervention="mst", data_vintage="2024-06", data_hash="d" * 64,
                           code_version="c", spec={}, tested_version=1)
    log.write(f"RUN {run.id}\n")
    armed = [True]

    @event.listens_for(store.engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):
        if armed[0]:
            log.write("S " + statement.split()[0].upper() + "\n")
            time.sleep(pause)  # the parent kills us here, in the middle of the transaction

    @event.listens_for(store.engine, "commit")
    def _commit(conn):
        if armed[0]:
            log.write("COMMIT\n")
            time.sleep(pause)

    estimates = [{"outcome": "crime", "estimand": "event", "event_time": e // 15, "estimate": 0.1 * e, "se": 0.01,
                  "n_treated": 100, "n_control": 900} for e in range(N_ESTIMATES)]
    verdicts = [{"assumption": f"a{k}", "outcome": "crime", "label": "consistent", "test": "z", "sentence": "s"}
                for k in range(N_VERDICTS)]
    store.propose_version(intervention="mst", parent_version=1, content={"x": content}, reason="r", run_id=run.id,
                          data_vintage="2024-06", data_hash="d" * 64, code_version="c", evidence={"k": 1},
                          estimates=estimates, verdicts=verdicts)
    armed[0] = False
    log.write("DONE\n")
    log.close()
    os._exit(0)


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


def _lines(progress: Path) -> list[str]:
    return progress.read_text().splitlines() if progress.exists() else []


def _state(url: str, run_id: str) -> dict[str, int]:
    with ParameterStore(url) as store, Session(store.engine) as s:
        def count(model, *where):
            return s.scalar(select(func.count()).select_from(model).where(*where))
        return {
            "versions": count(ParameterVersion, ParameterVersion.evaluation_run_id == run_id),
            "estimates": count(Estimate, Estimate.run_id == run_id),
            "verdicts": count(Verdict, Verdict.run_id == run_id),
            "audit": count(AuditEntry, AuditEntry.run_id == run_id),
            "linked": count(EvaluationRun, EvaluationRun.id == run_id, EvaluationRun.proposed_version.is_not(None)),
        }


WHOLE = {"versions": 1, "estimates": N_ESTIMATES, "verdicts": N_VERDICTS, "audit": 1, "linked": 1}
NOTHING = {"versions": 0, "estimates": 0, "verdicts": 0, "audit": 0, "linked": 0}


def _kill_at(tmp_path: Path, url: str, name: str, *, statement: int | None = None, after: float | None = None,
             pause: float = 0.03) -> tuple[str, int, dict[str, int]]:
    """Run the child; SIGKILL it when it has logged ``statement`` statements of the proposal (or after
    ``after`` seconds from the run being recorded). Returns the run id, statements seen and the state."""
    progress = tmp_path / f"{name}.log"
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(url, str(progress), pause, name))
    proc.start()
    deadline = time.monotonic() + 60
    started = None
    try:
        while time.monotonic() < deadline:
            lines = _lines(progress)
            steps = [ln for ln in lines if ln.startswith(("S ", "COMMIT"))]
            if lines and lines[0].startswith("RUN") and started is None:
                started = time.monotonic()
            if "DONE" in lines or not proc.is_alive():
                break
            if statement is not None and len(steps) >= statement:
                break
            if after is not None and started is not None and time.monotonic() - started >= after:
                break
            time.sleep(0.002)
        else:
            pytest.fail(f"child {name} made no progress")
        proc.kill()  # SIGKILL
        proc.join(timeout=30)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    lines = _lines(progress)
    if not lines or not lines[0].startswith("RUN"):
        pytest.fail(f"child {name} did not record its run (exit code {proc.exitcode})")
    run_id = lines[0].split()[1]
    return run_id, len([ln for ln in lines if ln.startswith(("S ", "COMMIT"))]), _state(url, run_id)


def test_killed_proposal_leaves_all_or_nothing(url: str, tmp_path: Path) -> None:
    with ParameterStore(url) as store:
        store.ensure_parameter_set("mst", SEED, source="seed")
    # A full, unkilled write first: how many statements does a proposal take?
    run_id, total, state = _kill_at(tmp_path, url, "full", statement=10**6, pause=0.0)
    assert state == WHOLE, state
    assert total >= 6
    seen: list[str] = []
    # Kill at statements of the transaction (after it is logged, before it runs): every one of the first
    # twelve (all of them today), a seeded sample of the rest and the last three (the last insert, the run
    # link, COMMIT); then at random times. The writer is a forked process, killed with SIGKILL.
    rng = random.Random(6)
    points = sorted({*range(1, min(total, 12) + 1), *rng.sample(range(1, total + 1), min(total, 4)),
                     *range(max(1, total - 2), total + 1)})
    for k in points:
        run_id, steps, state = _kill_at(tmp_path, url, f"at{k}", statement=k)
        assert state in (WHOLE, NOTHING), (k, state)
        seen.append("whole" if state == WHOLE else "nothing")
    for i in range(3):
        run_id, steps, state = _kill_at(tmp_path, url, f"random{i}", after=rng.uniform(0.0, 0.03 * total))
        assert state in (WHOLE, NOTHING), (i, steps, state)
        seen.append("whole" if state == WHOLE else "nothing")
    assert "nothing" in seen  # kills inside the transaction really happened
    with ParameterStore(url) as store:
        versions = store.versions("mst")[1:]  # each child proposed its own content: a whole proposal is a version
        assert len(versions) == 1 + seen.count("whole")
        for v in versions:
            assert len(store.estimates_for_run(v.evaluation_run_id)) == N_ESTIMATES
            assert len(store.verdicts_for_run(v.evaluation_run_id)) == N_VERDICTS
        assert {len(store.estimates_for_run(r.id)) for r in store.runs("mst")} <= {0, N_ESTIMATES}
        # …and the store is still fully usable after the crashes
        assert store.decide("mst", versions[0].version, approve=True, actor="a", reason="ok").status == "approved"


def test_concurrent_identical_proposals_make_one_version(url: str, tmp_path: Path) -> None:
    with ParameterStore(url) as store:
        store.ensure_parameter_set("mst", SEED, source="seed")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child, args=(url, str(tmp_path / f"p{i}.log"), 0.0, "same")) for i in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    with ParameterStore(url) as store:
        assert [v.version for v in store.versions("mst")] == [1, 2]
        runs = store.runs("mst")
        assert len(runs) == 4 and {r.proposed_version for r in runs} == {2}
        assert all(len(store.estimates_for_run(r.id)) == N_ESTIMATES for r in runs)
        actions = sorted(e["action"] for e in store.audit_entries("mst"))
        assert actions == ["propose", "rerun", "rerun", "rerun", "seed"]


def _approve(url: str, version: int, start: float, queue) -> None:
    """A forked approver: waits for the common start time, then tries to approve ``version``."""
    store = ParameterStore(url)
    time.sleep(max(0.0, start - time.time()))
    try:
        store.decide("mst", version, approve=True, actor=f"user{version}", reason="race")
        queue.put({"version": version, "result": "approved"})
    except ConflictError as exc:
        queue.put({"version": version, "result": "conflict", "message": str(exc)})
    except Exception as exc:  # pragma: no cover - reported to the parent as a failure
        queue.put({"version": version, "result": f"error {type(exc).__name__}: {exc}"})


def test_concurrent_approvals_from_processes_one_wins(url: str, tmp_path: Path) -> None:
    with ParameterStore(url) as store:
        store.ensure_parameter_set("mst", SEED, source="seed")
        for h in (11, 12, 13):
            run = store.record_run(evaluation_id="ev", intervention="mst", data_vintage="v", data_hash=None,
                                   code_version=None, spec={})
            store.propose_version(intervention="mst", parent_version=1, content={**SEED, "horizon": h}, reason="r",
                                  run_id=run.id, data_vintage="v", data_hash=None, code_version=None, evidence={},
                                  estimates=[], verdicts=[])
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start = time.time() + 1.0
    procs = [ctx.Process(target=_approve, args=(url, v, start, queue)) for v in (2, 3, 4)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert sorted(r["result"] for r in results) == ["approved", "conflict", "conflict"]
    assert all("approved version is now" in r["message"] for r in results if r["result"] == "conflict")
    winner = next(r["version"] for r in results if r["result"] == "approved")
    with ParameterStore(url) as store:
        assert store.latest_approved("mst").version == winner
        assert [v.status for v in store.versions("mst")].count("approved") == 1


def test_approve_and_reject_of_the_same_proposal_race(url: str) -> None:
    with ParameterStore(url) as store:
        store.ensure_parameter_set("mst", SEED, source="seed")
        run = store.record_run(evaluation_id="ev", intervention="mst", data_vintage="v", data_hash=None,
                               code_version=None, spec={})
        store.propose_version(intervention="mst", parent_version=1, content={"x": 1}, reason="r", run_id=run.id,
                              data_vintage="v", data_hash=None, code_version=None, evidence={}, estimates=[], verdicts=[])
    barrier = threading.Barrier(2)
    results: list[str] = []

    def act(approve: bool) -> None:
        with ParameterStore(url) as own:
            barrier.wait()
            try:
                own.decide("mst", 2, approve=approve, actor="x", reason="race")
                results.append("approved" if approve else "rejected")
            except ConflictError:
                results.append("conflict")
            except Exception as exc:  # the loser may also see the decided status (StoreError)
                results.append(type(exc).__name__)

    threads = [threading.Thread(target=act, args=(flag,)) for flag in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and sum(r in ("approved", "rejected") for r in results) == 1
    with ParameterStore(url) as store:
        status = store.get_version("mst", 2).status
        assert status in ("approved", "rejected")
        assert (store.latest_approved("mst").version == 2) == (status == "approved")
        assert len([e for e in store.audit_entries("mst") if e["action"] in ("approve", "reject")]) == 1
