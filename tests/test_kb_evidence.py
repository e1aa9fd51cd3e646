"""An approved evaluation becomes a knowledge-base study (issue 12 item 6), through the CLI on a SQLite store."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import ParameterStore

ROOT = Path(__file__).resolve().parents[1]
SEED = yaml.safe_load((ROOT / "assets" / "parameters" / "housing_first_demo.yaml").read_text(encoding="utf-8"))
HF, EV = "housing_first_demo", "housing_first_demo_eval"
SPEC = {"evaluation": EV, "intervention": HF, "design": "staggered", "min_cell": 5}
runner = CliRunner()


def _estimates(rate: float, se: float, shelter: float, n: int = 400) -> list[dict]:
    """A run's estimates: the success indicator in consequence year 1 (e = 1) and the overall effects; the
    kontanthjælp estimate rests on 3 treated persons (below min_cell: never a study)."""
    base = {"group": None, "time": None, "ci_low": None, "ci_high": None, "n_control": 3000}
    return [
        {**base, "outcome": "no_shelter_stay", "estimand": "event", "event_time": 1, "estimate": rate, "se": se,
         "n_treated": n},
        {**base, "outcome": "shelter_nights", "estimand": "event", "event_time": 1, "estimate": shelter, "se": 3.0,
         "n_treated": n},
        {**base, "outcome": "shelter_nights", "estimand": "event", "event_time": 3, "estimate": shelter, "se": 3.0,
         "n_treated": n},
        {**base, "outcome": "shelter_nights", "estimand": "overall", "event_time": None, "estimate": shelter,
         "se": 2.5, "n_treated": n},
        {**base, "outcome": "kontanthjaelp_weeks", "estimand": "overall", "event_time": None, "estimate": -1.3,
         "se": 0.2, "n_treated": 3},
    ]


def _propose(url: str, parent: int, vintage: str, data_hash: str, rate: float, se: float, shelter: float) -> int:
    doc = copy.deepcopy(SEED)
    doc["success_rate"] = {**doc["success_rate"], "value": rate}
    with ParameterStore(url) as store:
        run = store.record_run(evaluation_id=EV, intervention=HF, data_vintage=vintage, data_hash=data_hash,
                               code_version="c", spec=SPEC, tested_version=parent)
        return store.propose_version(intervention=HF, parent_version=parent, content=doc, reason=f"vintage {vintage}",
                                     run_id=run.id, data_vintage=vintage, data_hash=data_hash, code_version="c",
                                     evidence={}, estimates=_estimates(rate, se, shelter), verdicts=[]).version


@pytest.fixture
def env(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    url = f"sqlite:///{work / 'som.db'}"
    with ParameterStore(url) as store:
        store.ensure_parameter_set(HF, SEED, title=SEED["title"], source="housing_first_demo.yaml")
    return {"SOM_DATABASE_URL": "", "SOM_HOME": str(work), "SOM_USER": "tester"}, url


def _json(env, *args):
    result = runner.invoke(app, [*args, "--json", "-"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _own(env) -> list[dict]:
    return _json(env, "kb", "search", "--own")


def test_no_store_means_the_packaged_studies_only(tmp_path):
    env = {"SOM_DATABASE_URL": "", "SOM_HOME": str(tmp_path / "nothing"), "SOM_USER": "tester"}
    assert _own(env) == []
    found = _json(env, "kb", "search", "housing")
    assert "stergiopoulos2015_hf_icm" in {s["id"] for s in found} and {s["origin"] for s in found} == {"reference"}
    assert not (tmp_path / "nothing").exists()  # reading the knowledge base never creates a store


def test_approved_evaluation_becomes_a_study_with_its_provenance(env):
    environ, url = env
    v2 = _propose(url, 1, "2023-06", "a" * 64, 0.21, 0.02, -12.0)
    assert _own(environ) == []  # a proposal is not evidence yet
    approve = runner.invoke(app, ["params", "approve", HF, str(v2), "-r", "register follow-up", "--json", "-"], env=environ)
    assert approve.exit_code == 0, approve.output
    assert "som kb show housing_first_demo_eval.no_shelter_stay" in approve.output
    studies = {s["id"]: s for s in _own(environ)}
    # the kontanthjælp estimate rests on 3 treated persons (< min_cell 5): not a study
    assert set(studies) == {f"{EV}.no_shelter_stay", f"{EV}.shelter_nights"}
    s = studies[f"{EV}.no_shelter_stay"]
    assert s["origin"] == "agency register evaluation"
    assert s["effects"]["difference"] == {"value": 0.21, "se": 0.02, "derived_from": "as reported"}
    assert (s["design"], s["evidence_level"], s["n_treatment"], s["n_control"], s["year"]) == (
        "quasi-experimental", 2, 400, 3000, 2023)
    p = s["provenance"]
    assert (p["evaluation"], p["data_vintage"], p["data_hash"], p["parameter_version"], p["approved_by"]) == (
        EV, "2023-06", "a" * 64, v2, "tester")
    assert p["run_id"] and p["earlier_vintages"] == []
    shelter = studies[f"{EV}.shelter_nights"]
    assert shelter["effects"]["difference"]["value"] == -12.0 and shelter["desirable"] == "lower"
    assert shelter["follow_up_months"] == 48  # observed through event time 3
    # show and search (without --own) list it too, with the provenance
    show = runner.invoke(app, ["kb", "show", f"{EV}.no_shelter_stay"], env=environ)
    assert show.exit_code == 0 and "agency register evaluation" in show.output
    assert "provenance: run_id" in show.output and "provenance: data_vintage" in show.output
    assert _json(environ, "kb", "show", f"{EV}.no_shelter_stay")["provenance"] == p
    listing = {s["id"] for s in _json(environ, "kb", "search", "-t", "voksne_i_hjemloeshed")}
    assert {"stergiopoulos2015_hf_icm", f"{EV}.no_shelter_stay"} <= listing
    # kb pool uses it: a difference in shares is a success-rate prior
    doc = _json(environ, "kb", "pool", "--outcome", "no_shelter_stay")
    assert [x["origin"] for x in doc["studies"]] == ["agency register evaluation"]
    assert doc["success_rate_prior"]["value"] == pytest.approx(0.21)
    assert doc["success_rate_prior"]["se"] == pytest.approx(0.02)


def test_approving_again_and_rejections_do_not_duplicate_and_a_later_vintage_supersedes(env):
    environ, url = env
    v2 = _propose(url, 1, "2023-06", "a" * 64, 0.21, 0.02, -12.0)
    assert runner.invoke(app, ["params", "approve", HF, str(v2), "-r", "ok"], env=environ).exit_code == 0
    again = runner.invoke(app, ["params", "approve", HF, str(v2), "-r", "again"], env=environ)
    assert again.exit_code == 2  # not a proposal any more
    rejected = _propose(url, v2, "2023-12", "b" * 64, 0.30, 0.03, -20.0)
    assert runner.invoke(app, ["params", "reject", HF, str(rejected), "-r", "no"], env=environ).exit_code == 0
    studies = _own(environ)
    assert len(studies) == 2 and {s["provenance"]["data_vintage"] for s in studies} == {"2023-06"}
    # the next vintage (cumulative: it holds the earlier persons) is approved: it supersedes the study
    v4 = _propose(url, v2, "2024-06", "c" * 64, 0.19, 0.015, -10.0)
    assert runner.invoke(app, ["params", "approve", HF, str(v4), "-r", "2024"], env=environ).exit_code == 0
    studies = {s["id"]: s for s in _own(environ)}
    assert set(studies) == {f"{EV}.no_shelter_stay", f"{EV}.shelter_nights"}
    s = studies[f"{EV}.no_shelter_stay"]
    assert s["effects"]["difference"]["value"] == 0.19 and s["year"] == 2024
    assert s["provenance"]["parameter_version"] == v4 and s["provenance"]["data_hash"] == "c" * 64
    earlier = s["provenance"]["earlier_vintages"]
    assert [(e["data_vintage"], e["parameter_version"], e["data_hash"]) for e in earlier] == [("2023-06", v2, "a" * 64)]
    pool = _json(environ, "kb", "pool", "--outcome", "no_shelter_stay")
    assert [(x["id"], x["effect"], x["origin"]) for x in pool["studies"]] == [
        (f"{EV}.no_shelter_stay", 0.19, "agency register evaluation")]
