"""The unobserved tail end to end: the demo's refuted item is extrapolated and marked unverified everywhere,
and an implausible proposal is refused by the blocking check before anything is written to the store."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from pipeline import evaluation as ev
from pipeline import jsonio
from pipeline.cli import app
from pipeline.store import ParameterStore, database_url
from som_models.parameters import parse_parameter_set
from som_models.plausibility import ImplausibleProposal
from som_models.projection import monte_carlo, project

ROOT = Path(__file__).resolve().parents[1]
HF = "housing_first_demo"


def _versions(workdir):
    with ParameterStore(database_url(workdir)) as store:
        versions = store.versions(HF)
        run = store.get_run(versions[-1].evaluation_run_id)
        verdicts = store.verdicts_for_run(run.id)
    return versions, verdicts


def _candidate(workdir) -> dict:
    (path,) = (Path(workdir) / "storage" / "parameter_candidate").glob("*.json")
    return jsonio.loads(path.read_text(encoding="utf-8"))


def test_demo_tail_of_the_refuted_item_is_extrapolated_and_marked_unverified(demo_run):
    workdir, _, _, outcome, _ = demo_run
    assert outcome.success, outcome.failures
    (v1, v2), verdicts = _versions(workdir)
    refuted = [v["assumption"].split(":", 1)[1] for v in verdicts
               if v["label"] == "refuted-overestimated" and v["assumption"].startswith("effect_path:")]
    assert refuted == ["kontanthjaelp_weeks"]
    changes = {c["parameter"]: c for c in v2.evidence["changes"]}
    for item in refuted:
        before, after = v1.content["consequences"][item], v2.content["consequences"][item]
        observed = [y["consequence_year"] for y in changes[f"consequences.{item}"]["years"]]
        unobserved = [j for j in range(1, len(after["units"]) + 1) if j not in observed]
        assert observed == [1, 2, 3, 4] and after["unverified"] == unobserved == [5, 6, 7, 8, 9, 10]
        for j in unobserved:
            old, new = before["units"][j - 1], after["units"][j - 1]
            assert new != old and abs(new) < abs(old), (item, j)  # moved from the refuted value toward the evidence
            assert after["se"][j - 1] > max(after["se"][o - 1] for o in observed)  # wider than the observed years
        assert after["extrapolation"]["rule"] == "ratio" and after["extrapolation"]["observed_years"] == observed
    # the proposal written is the candidate the blocking check passed
    candidate = _candidate(workdir)
    assert candidate["content"] == v2.content
    assert ev.proposal_problems(candidate, {"content": v1.content}) == ()


def test_the_old_behaviour_tail_at_the_refuted_values_is_refused(demo_run):
    workdir, _, _, _, _ = demo_run
    (v1, _), _ = _versions(workdir)
    candidate = copy.deepcopy(_candidate(workdir))
    entry = candidate["content"]["consequences"]["kontanthjaelp_weeks"]
    for j in entry.pop("unverified"):
        entry["units"][j - 1] = v1.content["consequences"]["kontanthjaelp_weeks"]["units"][j - 1]
    problems = ev.proposal_problems(candidate, {"content": v1.content})
    assert {(p.check, p.parameter) for p in problems} == {("boundary_jump", "consequences.kontanthjaelp_weeks"),
                                                          ("unverified_tail", "consequences.kontanthjaelp_weeks")}


def test_unverified_years_are_marked_in_params_show_projection_monte_carlo_and_report(demo_run, monkeypatch):
    workdir, _, _, outcome, _ = demo_run
    monkeypatch.setenv("SOM_DATABASE_URL", "")
    shown = CliRunner().invoke(app, ["params", "show", HF, "-v", "2", "--workdir", str(workdir)])
    assert shown.exit_code == 0, shown.output
    assert ("unverified consequence years (no data; extrapolated from the observed years): shelter_nights 5–10, "
            "kontanthjaelp_weeks 5–10") in " ".join(shown.output.split())
    (_, v2), _ = _versions(workdir)
    params = parse_parameter_set(v2.content)
    assert any(n.startswith("unverified consequence years") for n in project(params).notes)
    mc = monte_carlo(params, draws=200, seed=3)
    assert dict(mc.unverified) == {"shelter_nights": tuple(range(5, 11)), "kontanthjaelp_weeks": tuple(range(5, 11))}
    assert mc.unverified_npv["total"] > 0 and "Unverified consequence years" in mc.summary()
    assert {r.input for r in mc.tornado} >= {"consequence:kontanthjaelp_weeks unverified years 5–10 (total units)"}
    assert mc.to_dict()["unverified"]["kontanthjaelp_weeks"] == list(range(5, 11))
    html = Path(outcome.report).read_text(encoding="utf-8")
    assert html.count("ikke verificeret (ekstrapoleret)") == 12 and "de bidrager med" in html  # Danish by default


def _strong_tail_spec(tmp_path: Path) -> Path:
    """The demo spec with a parameter file whose kontanthjælp tail is stated as (almost) certain and its observed
    years as vague: the update moves years 1–4 to the data and holds year 5 at −12 — a jump at the boundary."""
    params = yaml.safe_load((ROOT / "assets" / "parameters" / "housing_first_demo.yaml").read_text(encoding="utf-8"))
    params["consequences"]["kontanthjaelp_weeks"]["se"] = [100, 100, 100, 100, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01]
    spec = yaml.safe_load((ROOT / "assets" / "evaluations" / "housing_first_demo.yaml").read_text(encoding="utf-8"))
    spec["parameters"] = "../parameters/strong_tail.yaml"
    (tmp_path / "parameters").mkdir()
    (tmp_path / "evaluations").mkdir()
    (tmp_path / "parameters" / "strong_tail.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    path = tmp_path / "evaluations" / "strong_tail.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def _dump(db: Path) -> dict:
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table' order by name")]
        return {t: sorted(map(repr, con.execute(f'select * from "{t}"').fetchall())) for t in tables}


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "ab" * 32)


def test_an_implausible_proposal_is_refused_before_anything_is_written(demo_delivery, tmp_path, env):
    from pipeline.runner import run_evaluation

    folder, _ = demo_delivery
    spec_path = _strong_tail_spec(tmp_path)
    workdir = tmp_path / "som"
    loaded = ev.load_spec(spec_path)
    with ParameterStore(database_url(workdir)) as store:  # the seed, as the assumptions asset writes it
        ev.assumptions_version(store, loaded)
    before = _dump(workdir / "som.db")
    assert before["parameter_versions"] and not before["evaluation_runs"]

    instance = dg.DagsterInstance.ephemeral()
    outcome = run_evaluation(workdir, delivery=folder, evaluation_spec=str(spec_path), instance=instance)
    assert not outcome.success and outcome.proposal is None
    text = "\n".join(outcome.failures)
    assert "check parameter_candidate:proposal_plausible failed (ERROR)" in outcome.failures
    assert "proposal refused, nothing written" in text and "kontanthjaelp_weeks: jump at the data boundary" in text
    assert "reestimate_consequences" in text  # says what to do
    assert _dump(workdir / "som.db") == before  # no run, estimates, verdicts or version written
    materialised = {e.dagster_event.asset_key.to_user_string()
                    for e in instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    assert "parameter_candidate" in materialised and "verdicts" in materialised
    assert not materialised & {"parameter_proposal", "projections", "audit_report"}
    started = {e.step_key for e in instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.STEP_START)}
    assert "parameter_candidate" in started and "parameter_proposal" not in started  # blocked, not failed

    # Any other caller of the write is refused the same way, before writing.
    candidate = _candidate(workdir)
    assumptions = {"intervention": HF, "version": 1, "content": loaded.seed.to_dict()}
    (effects,) = (workdir / "storage" / "realised_effects").glob("*.parquet")
    (verdicts,) = (workdir / "storage" / "verdicts").glob("*.parquet")
    with ParameterStore(database_url(workdir)) as store, pytest.raises(ImplausibleProposal, match="nothing written"):
        ev.store_proposal(store, loaded, assumptions, pl.read_parquet(effects), pl.read_parquet(verdicts),
                          data_vintage=candidate["data_vintage"], data_hash=candidate["data_hash"], code_version="test",
                          candidate=candidate)
    assert _dump(workdir / "som.db") == before
