"""A proposal updates only what the evaluation tests: an evaluation whose ``assumptions:`` leave ``success_rate``
out keeps the success rate (with the reason), while its realised estimate still gates the consequence update.
Hand-made estimates, numbers checkable on paper (the table of tests/test_course_years.py)."""

from som_models.calibration import combine, propose
from som_models.evaluation_spec import parse_evaluation_spec
from tests.test_course_years import PARAMS, table


def _changes(p) -> dict:
    return {c["parameter"]: c for c in p.changes}


def test_the_success_rate_is_kept_when_the_evaluation_does_not_test_it():
    t = table(sr=(0.30, 0.02))  # z = 15: significant; precision-weighted with the prior 0.2 (se 0.05)
    tested = propose(PARAMS, t)
    value, _ = combine(0.2, 0.05, 0.30, 0.02, "precision_weighted", 0.5)
    assert tested.document["success_rate"]["value"] == round(value, 6) != 0.2
    kept = propose(PARAMS, t, update_success=False)
    assert kept.document["success_rate"] == PARAMS.to_dict()["success_rate"]
    assert _changes(kept)["success_rate"] == {"parameter": "success_rate",
                                              "kept": "the evaluation does not test it (assumptions:)"}
    # the consequence profile is updated either way (the realised success rate is significantly positive)
    assert kept.document["consequences"]["nights"]["units"] == tested.document["consequences"]["nights"]["units"]
    assert kept.document["consequences"]["nights"]["units"] != PARAMS.to_dict()["consequences"]["nights"]["units"]
    assert "the success rate and" not in kept.reason and "the success rate and" in tested.reason


def test_a_non_significant_success_rate_still_keeps_the_consequences_when_not_tested():
    t = table(sr=(0.01, 0.02))
    kept = propose(PARAMS, t, update_success=False)
    assert kept.document["success_rate"] == PARAMS.to_dict()["success_rate"]
    assert kept.reason.startswith("success rate kept (not tested); consequences kept")
    assert _changes(kept)["consequences.nights"]["kept"] == "realised success rate not significantly positive"


def test_the_pipeline_passes_the_specs_assumptions(tmp_path):
    from pipeline.evaluation import proposal_document

    base = {"evaluation": "e", "intervention": "x", "parameters": "p.yaml", "intervention_code": "X"}
    t = table(sr=(0.30, 0.02))
    only_path = parse_evaluation_spec({**base, "assumptions": ["effect_path:nights"]})
    doc, reason, _ = proposal_document(PARAMS, t, only_path, run_label="run")
    assert doc["success_rate"] == PARAMS.to_dict()["success_rate"]
    every = parse_evaluation_spec(base)
    doc, _, _ = proposal_document(PARAMS, t, every, run_label="run")
    assert doc["success_rate"]["value"] != PARAMS.success_rate.value
