"""`som audit INTERVENTION`: how each assumption held across evaluation runs and data vintages."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import ParameterStore
from pipeline.store.testing import SKIP_REASON, postgres_admin_url, temporary_postgres_database

runner = CliRunner()
SEED = {"success_rate": {"value": 0.25}, "consequences": {"convictions": {"units": [-1.0, -0.8]}}}


def _verdict(assumption, label, assumed, realised, lo, hi):
    return {"assumption": assumption, "outcome": assumption.split(":")[-1], "label": label, "test": "z-test",
            "assumed": assumed, "realised": realised, "ci_low": lo, "ci_high": hi, "p_adjusted": 0.01,
            "sentence": f"{label}: realised {realised} against {assumed}.", "evidence": {"n_treated": 200}}


def _run(store, vintage, parent, content, verdicts):
    run = store.record_run(evaluation_id="mst_followup", intervention="mst", data_vintage=vintage, data_hash=vintage * 8,
                           code_version="c", spec={}, tested_version=parent)
    store.propose_version(intervention="mst", parent_version=parent, content=content, reason=f"vintage {vintage}",
                          run_id=run.id, data_vintage=vintage, data_hash=vintage * 8, code_version="c", evidence={},
                          estimates=[], verdicts=verdicts)
    return run


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path):
    """Three vintages of an MST-like follow-up: the crime assumption is refuted again and again."""
    if request.param == "sqlite":
        url, ctx = f"sqlite:///{tmp_path / 'som.db'}", None
        environment = {"SOM_DATABASE_URL": url}
    else:
        admin = postgres_admin_url()
        if admin is None:
            pytest.skip(SKIP_REASON)
        ctx = temporary_postgres_database(admin)
        url = ctx.__enter__()
        environment = {"SOM_DATABASE_URL": url}
    with ParameterStore(url) as store:
        store.ensure_parameter_set("mst", SEED, source="seed")
        _run(store, "2014-06", 1, {**SEED, "v": 2}, [
            _verdict("success_rate", "inconclusive", 0.25, 0.1, -0.1, 0.3),
            _verdict("effect_path:convictions", "refuted-overestimated", -0.225, 0.12, 0.05, 0.19)])
        store.decide("mst", 2, approve=True, actor="analyst", reason="first follow-up")
        _run(store, "2015-06", 2, {**SEED, "v": 3}, [
            _verdict("success_rate", "refuted-overestimated", 0.2, -0.08, -0.14, -0.02),
            _verdict("effect_path:convictions", "refuted-overestimated", -0.18, 0.15, 0.08, 0.21)])
        _run(store, "2015-06", 2, {**SEED, "v": 3}, [  # a rerun on the same data
            _verdict("success_rate", "refuted-overestimated", 0.2, -0.08, -0.14, -0.02),
            _verdict("effect_path:convictions", "refuted-overestimated", -0.18, 0.15, 0.08, 0.21)])
        store.record_run(evaluation_id="mst_followup", intervention="mst", data_vintage="2016-06", data_hash=None,
                         code_version="c", spec={}, tested_version=2)  # interrupted: no verdicts
    yield environment
    if ctx is not None:
        ctx.__exit__(None, None, None)


def test_audit_json_follows_each_assumption_over_vintages(env):
    result = runner.invoke(app, ["audit", "mst", "--json", "-"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    # one point per (vintage, tested version): the rerun on the 2015-06 data adds none
    assert doc["approved_version"] == 2 and doc["points"] == 5 and doc["vintages"] == 3
    crime = doc["assumptions"]["effect_path:convictions"]
    assert [(r["data_vintage"], r["tested_version"], r["label"], r["realised"], r["proposed_version"], r["proposed_status"])
            for r in crime] == [("2014-06", 1, "refuted-overestimated", 0.12, 2, "approved"),
                                ("2015-06", 2, "refuted-overestimated", 0.15, 3, "proposed")]
    assert crime[0]["ci_low"] == 0.05 and crime[0]["assumed"] == -0.225 and crime[1]["flag"] is None
    success = doc["assumptions"]["success_rate"]
    assert success[1]["flag"]["from"] == "inconclusive" and success[1]["flag"]["to"] == "refuted-overestimated"
    assert "tested version changed from v1 to v2" in success[1]["flag"]["why"]
    assert "estimate moved from 0.1 (CI -0.1 to 0.3) to -0.08 (CI -0.14 to -0.02)" in success[1]["flag"]["why"]
    assert doc["assumptions"]["(run without verdicts)"][0]["data_vintage"] == "2016-06"


def test_audit_text_and_filter(env):
    result = runner.invoke(app, ["audit", "mst", "--assumption", "success_rate"], env=env)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "success_rate" in out and "inconclusive" in out and "refuted-overestimated" in out
    assert "effect_path:convictions" not in out
    assert "2014-06" in out and "v2 approved" in out and "Latest: refuted-overestimated" in out
    full = runner.invoke(app, ["audit", "mst"], env=env)
    assert "(no verdicts stored)" in full.stdout and "3 data vintage(s) evaluated; version 2 is approved" in full.stdout
    assert "* Changed at vintage 2015-06 (v2): inconclusive → refuted-overestimated" in full.stdout


@pytest.mark.parametrize("args, message", [
    (["audit", "nope"], "no parameter set for intervention 'nope'"),
    (["audit", "mst", "--assumption", "effect_path:beds"], "no verdicts on assumption 'effect_path:beds'"),
])
def test_bad_input_is_one_line_and_exit_2(env, args, message):
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_intervention_without_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 'som.db'}"
    with ParameterStore(url) as store:
        store.ensure_parameter_set("quiet", SEED, source="seed")
    result = runner.invoke(app, ["audit", "quiet"], env={"SOM_DATABASE_URL": url})
    assert result.exit_code == 0 and "No evaluation runs of quiet yet (approved version 1)" in result.stdout
