"""How each assumption held over time: one point per (vintage, tested version); monthly reruns on unchanged data
change neither `som audit` nor the report's history; a verdict that changes between vintages is flagged with why."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import ParameterStore

runner = CliRunner()
SEED = {"success_rate": {"value": 0.25}}


def _verdict(label, realised, lo, hi, *, gate=None, look=None, boundary=None, pretrend_p=0.4, n=200):
    evidence = {"n_treated": n, "gate": gate, "pretrend_p": pretrend_p, "se": 0.03}
    if look is not None:
        evidence["sequential"] = {"look": look, "information_fraction": 0.5 + 0.1 * look,
                                  "decision_boundary": boundary, "decision_nominal_level": 0.01}
    return {"assumption": "success_rate", "outcome": "ok", "label": label, "test": "z-test", "assumed": 0.25,
            "realised": realised, "ci_low": lo, "ci_high": hi, "p_adjusted": 0.2,
            "sentence": f"{label}: realised {realised}.", "evidence": evidence}


def _run(store, vintage, data_hash, verdicts, *, spec=None, content=None):
    run = store.record_run(evaluation_id="e", intervention="x", data_vintage=vintage, data_hash=data_hash,
                           code_version="c", spec=spec or {"min_cell": 5}, tested_version=1)
    store.propose_version(intervention="x", parent_version=1, content=content or {**SEED, "v": vintage},
                          reason="r", run_id=run.id, data_vintage=vintage, data_hash=data_hash, code_version="c",
                          evidence={}, estimates=[], verdicts=verdicts)
    return run


def test_points_by_vintage_reruns_collapsed_and_changes_flagged(tmp_path):
    with ParameterStore(f"sqlite:///{tmp_path / 'som.db'}") as store:
        store.ensure_parameter_set("x", SEED, source="seed")
        # backfilled out of order: 2023 first, then 2021 and 2022; monthly reruns repeat 2021 and 2023
        first_2023 = _run(store, "2023-06", "c" * 64, [_verdict("inconclusive", 0.2, 0.1, 0.3, gate="pretrend",
                                                                pretrend_p=0.01)])
        first_2021 = _run(store, "2021-06", "a" * 64, [_verdict("consistent", 0.24, 0.2, 0.28, look=1, boundary=3.1)])
        _run(store, "2022-06", "b" * 64, [_verdict("refuted-overestimated", 0.17, 0.12, 0.22, look=2, boundary=2.4)])
        for _ in range(2):
            _run(store, "2021-06", "a" * 64, [_verdict("consistent", 0.24, 0.2, 0.28, look=1, boundary=3.1)])
            _run(store, "2023-06", "c" * 64, [_verdict("inconclusive", 0.2, 0.1, 0.3, gate="pretrend",
                                                       pretrend_p=0.01)])
        points = store.assumption_history("x")
        assert [(p["data_vintage"], p["label"], p["run_id"]) for p in points] == [
            ("2021-06", "consistent", first_2021.id), ("2022-06", "refuted-overestimated", points[1]["run_id"]),
            ("2023-06", "inconclusive", first_2023.id)]
        assert points[0]["flag"] is None
        why = points[1]["flag"]["why"]
        assert points[1]["flag"]["from"] == "consistent" and points[1]["flag"]["to"] == "refuted-overestimated"
        assert "boundary changed with look 2: |z| ≥ 3.1 (nominal 0.01) at look 1 → |z| ≥ 2.4" in why
        assert "estimate moved from 0.24 (CI 0.2 to 0.28) to 0.17 (CI 0.12 to 0.22)" in why
        assert "the pre-trend gate (treated and comparison diverged before the start), p = 0.01 now applies" in (
            points[2]["flag"]["why"])
        # a corrected 2022 delivery replaces the 2022 point (with a note), it does not add one
        _run(store, "2022-06", "d" * 64, [_verdict("refuted-overestimated", 0.16, 0.11, 0.21, look=3, boundary=2.3)])
        again = store.assumption_history("x")
        assert [p["data_vintage"] for p in again] == ["2021-06", "2022-06", "2023-06"]
        assert again[1]["realised"] == 0.16 and "data sha256 bbbbbbbbbbbb → dddddddddddd" in again[1]["replaces"][0]


def test_small_cells_are_withheld_in_points_and_flags(tmp_path):
    with ParameterStore(f"sqlite:///{tmp_path / 'som.db'}") as store:
        store.ensure_parameter_set("x", SEED, source="seed")
        _run(store, "2021-06", "a" * 64, [_verdict("consistent", 0.24, 0.2, 0.28)])
        _run(store, "2022-06", "b" * 64, [_verdict("refuted-overestimated", 0.123456, 0.1, 0.15, n=3)])
        small = store.assumption_history("x")[1]
    assert small["suppressed"] and small["realised"] is None and small["ci_low"] is None
    assert "0.123" not in json.dumps(small, default=str) and "estimate not shown" in small["flag"]["why"]


# ---- through the runner: the one evaluation path ------------------------------------------------------------

@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    from som_models.simulate import simulate, write_delivery

    root = tmp_path_factory.mktemp("vintages")
    early = write_delivery(simulate("homelessness", 2500, 5, last_year=2021), root / "2022")
    late = write_delivery(simulate("homelessness", 2500, 5), root / "2023")
    return early, late


def _audit(work: Path) -> tuple[str, dict]:
    text = runner.invoke(app, ["audit", "housing_first_demo", "--workdir", str(work)])
    doc = runner.invoke(app, ["audit", "housing_first_demo", "--workdir", str(work), "--json", "-"])
    assert text.exit_code == 0 and doc.exit_code == 0, text.output + doc.output
    return text.stdout, json.loads(doc.stdout)


def _history(work: Path) -> list[dict]:
    from pipeline.report import gather
    from pipeline.store import database_url

    with ParameterStore(database_url(work)) as store:
        return list(gather(store, intervention="housing_first_demo").history)


def test_monthly_reruns_leave_audit_and_report_history_unchanged(tmp_path, deliveries, monkeypatch):
    from pipeline.runner import run_evaluation

    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "ab" * 32)
    early, late = deliveries
    work, instance = tmp_path / "som", dg.DagsterInstance.ephemeral()

    def evaluate(delivery):
        from pipeline.store import database_url

        outcome = run_evaluation(work, delivery=delivery, instance=instance)
        assert outcome.success, outcome.failures
        with ParameterStore(database_url(work)) as store:  # the verdicts as stored, with their evidence
            return store.verdicts_for_run(store.runs("housing_first_demo")[-1].id)

    first = evaluate(early)
    audit, history = _audit(work), _history(work)
    tested = [v for v in first if (v["evidence"] or {}).get("sequential")]
    assert tested and all(v["evidence"]["sequential"]["look"] == 1 for v in tested)
    for _ in range(2):  # the monthly schedule reruns the evaluation on the same delivery
        again = evaluate(early)
        assert [(v["assumption"], v["label"], v["ci_low"], v["p_adjusted"]) for v in again] == [
            (v["assumption"], v["label"], v["ci_low"], v["p_adjusted"]) for v in first]
        assert all(v["evidence"]["sequential"]["reused"] for v in again if v["evidence"].get("sequential"))
    assert _audit(work) == audit and _history(work) == history
    # a new vintage: one more point per assumption, look 2 where the assumption was tested both times
    second = evaluate(late)
    text, doc = _audit(work)
    assert doc["vintages"] == 2 and all(
        [p["data_vintage"] for p in points] == ["2022-06", "2023-06"] for points in doc["assumptions"].values())
    looks = {v["assumption"]: v["evidence"]["sequential"]["look"] for v in second
             if (v["evidence"] or {}).get("sequential")}
    assert looks and set(looks.values()) <= {1, 2} and 2 in looks.values()
    after_second = (text, doc), _history(work)
    evaluate(early)  # a rerun of the older vintage: the same look again, nothing new in the history
    evaluate(late)
    assert (_audit(work), _history(work)) == after_second
