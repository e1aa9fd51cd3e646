"""Alerts in a real Dagster materialisation: the ``case_alerts`` check against a parameter store holding two
evaluations, the second a planted deterioration (the effect disappeared: the success rate collapsed, the verdict
turned to refuted and the proposal carries it, so P(NPV ≥ 0) for the kommune falls below the threshold).
``verdict_turns`` fires on a change of label, not on the label alone."""

import copy

import dagster as dg
import pytest
import yaml

from pipeline.alerts import previous_labels, run_alerts
from pipeline.defs.checks import build_extra_checks
from pipeline.defs.resources import SomSettings
from pipeline.store import ParameterStore
from som_reference import asset
from tests.static_io import StaticIOManager

ALERTS = {"npv_kommune_probability_below": 0.5, "verdict_turns": "refuted", "severity": "error"}




def _verdict(label: str) -> dict:
    return {"assumption": "success_rate", "outcome": "housed", "label": label, "test": "hand-planted",
            "sentence": f"{label} (planted)", "assumed": 0.3, "realised": 0.3 if label == "consistent" else 0.02}


def _evaluate(store, doc, vintage: str, content: dict, label: str, parent: int) -> tuple[str, int]:
    spec = {"evaluation": "hf", "intervention": doc["intervention"], "alerts": ALERTS}
    run = store.record_run(evaluation_id="hf", intervention=doc["intervention"], data_vintage=vintage,
                           data_hash=f"hash-{vintage}", code_version="test", spec=spec, tested_version=parent)
    record = store.propose_version(intervention=doc["intervention"], parent_version=parent, content=content,
                                   reason=f"evaluation on {vintage}", run_id=run.id, data_vintage=vintage,
                                   data_hash=f"hash-{vintage}", code_version="test", evidence={}, estimates=[],
                                   verdicts=[_verdict(label)])
    return run.id, record.version


def _check(workdir, run_id: str):
    checks = {next(iter(c.check_keys)).name: c for c in build_extra_checks()}
    result = dg.materialize(
        [dg.AssetSpec("projections").with_io_manager_key("io_manager"),
         dg.AssetSpec("parameter_proposal").with_io_manager_key("io_manager"), checks["case_alerts"]],
        resources={"io_manager": StaticIOManager({"projections": {}, "parameter_proposal": {"run_id": run_id}}),
                   "som": SomSettings(workdir=str(workdir))},
        selection=dg.AssetSelection.checks_for_assets("projections"),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


@pytest.fixture
def store_with_history(tmp_path):
    doc = yaml.safe_load(asset("parameters", "housing_first_demo.yaml").read_text())
    store = ParameterStore.from_workdir(tmp_path)
    store.upgrade()
    store.ensure_parameter_set(doc["intervention"], doc, source="test")
    healthy_run, v2 = _evaluate(store, doc, "2022", doc, "consistent", 1)
    worse = copy.deepcopy(doc)
    worse["success_rate"]["value"] = 0.02  # the effect disappeared in the second vintage
    turned_run, v3 = _evaluate(store, doc, "2023", worse, "refuted-overestimated", 1)
    still_run, _ = _evaluate(store, doc, "2024", {**worse, "title": "still bad"}, "refuted-overestimated", 1)
    yield tmp_path, store, healthy_run, turned_run, still_run
    store.close()


def test_case_alerts_fire_in_a_dagster_run_on_a_planted_deterioration(store_with_history):
    workdir, _, healthy_run, turned_run, still_run = store_with_history
    healthy = _check(workdir, healthy_run)
    assert healthy.passed and healthy.metadata["fired"].value == 0
    turned = _check(workdir, turned_run)
    assert not turned.passed and turned.severity == dg.AssetCheckSeverity.ERROR
    alerts = {a["kind"]: a for a in turned.metadata["alerts"].data}
    assert set(alerts) == {"npv_probability", "verdict"}
    assert alerts["npv_probability"]["subject"] == "kommune" and alerts["npv_probability"]["value"] < 0.5
    assert "consistent → refuted-overestimated" in alerts["verdict"]["message"]
    # the next vintage keeps the label: the verdict does not alert again (only the still-low probability does)
    still = _check(workdir, still_run)
    assert [a["kind"] for a in still.metadata["alerts"].data] == ["npv_probability"]


def test_verdict_turns_fires_on_a_change_not_on_the_label():
    spec = {"alerts": {"verdict_turns": "refuted"}}
    refuted = [{"assumption": "success_rate", "label": "refuted-overestimated"}]
    history = [{"assumption": "success_rate", "run_id": "a", "data_vintage": "2022", "label": "refuted-overestimated"},
               {"assumption": "success_rate", "run_id": "b", "data_vintage": "2023", "label": "refuted-overestimated"},
               {"assumption": "success_rate", "run_id": "c", "data_vintage": "2024", "label": "consistent"}]
    assert run_alerts(spec, refuted, None, history, "b") == ()  # refuted before and now: no turn
    (first,) = run_alerts(spec, refuted, None, history, "a")  # first evaluation: a turn from "not evaluated"
    assert "first evaluation" in first.message
    # a rerun on unchanged data keeps the first run's id in the history: found by vintage and tested version
    assert previous_labels(history, "rerun-of-c", vintage="2024") == {"success_rate": "refuted-overestimated"}
    (turn,) = run_alerts({"alerts": {"verdict_turns": "consistent"}}, [{"assumption": "success_rate",
                                                                        "label": "consistent"}], None, history, "c")
    assert "refuted-overestimated → consistent" in turn.message
