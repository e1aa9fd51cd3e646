"""Defects found in the review of the day's changes (each test demonstrates one; see the docstrings)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline import evaluation as ev
from som_models.estimators.results import ESTIMATES_SCHEMA
from som_models.evidence import CarryStep, EvidenceWindow, carry_evidence
from som_models.parameters import parse_parameter_set
from som_reference.strict_yaml import load_yaml

SPEC = Path(__file__).resolve().parents[1] / "assets" / "evaluations" / "housing_first_demo.yaml"


def _contrast(rows) -> pl.DataFrame:
    return pl.DataFrame([{"outcome": item, "estimand": "consequence", "group": None, "time": None, "event_time": j,
                          "estimate": est, "se": se, "ci_low": None, "ci_high": None, "n_treated": 100,
                          "n_control": 100} for item, j, est, se in rows], schema=ESTIMATES_SCHEMA)


def test_descriptive_update_without_a_realised_success_rate_is_carried():
    """A version whose update changed only a descriptive profile (the run had no realised success rate: the success
    estimand was not estimable) is re-derived by :func:`carry_evidence` with the descriptive values of its change
    record passed as ``consequence_estimates`` — but :func:`som_models.calibration.propose` returned early ("no
    realised success rate: parameters unchanged") whenever there was neither a success rate nor a descriptive
    contrast table, ignoring external estimates. The re-derivation then updated nothing and the version was
    reported as not re-derivable (its evidence dropped from the prior)."""
    loaded = ev.load_spec(SPEC)
    seed = parse_parameter_set(load_yaml(SPEC.parents[1] / "parameters" / "ips_employment_demo.yaml"))
    estimates = pl.DataFrame(schema=ESTIMATES_SCHEMA)  # no event rows: no realised success rate
    contrast = _contrast([("kontanthjaelp_weeks", 1, -24.0, 3.0), ("kontanthjaelp_weeks", 2, -20.0, 3.0)])
    doc, _, changes = ev.proposal_document(seed, estimates, loaded.spec, run_label="B", descriptive=contrast)
    assert any(c.get("parameter") == "consequences.kontanthjaelp_weeks" and "years" in c for c in changes)
    step = CarryStep(version=3, evidence=EvidenceWindow("b", "2022", "b" * 64, 2016, 2022, 100),
                     estimates=estimates, changes=tuple(doc["provenance"]["changes"]), content=doc,
                     rule=ev._update_rule(loaded.spec))
    out = carry_evidence(seed, [step])
    assert out.not_carried == ()
    kh = {c.item: c for c in out.prior.consequences}["kontanthjaelp_weeks"]
    assert kh.units[0] == pytest.approx(doc["consequences"]["kontanthjaelp_weeks"]["units"][0], rel=1e-5)


def test_an_unknown_report_language_in_the_environment_is_refused_before_the_run(tmp_path, monkeypatch):
    """``SOM_REPORT_LANGUAGE`` is checked like ``--lang``: before anything runs or is written. Unchecked, a run went
    through every asset — the proposal stored — and failed only at the audit report."""
    from pipeline.runner import EvaluationRefused, evaluate

    monkeypatch.setenv("SOM_REPORT_LANGUAGE", "xx")
    with pytest.raises(EvaluationRefused, match="report language 'xx'"):
        evaluate(SPEC, workdir=tmp_path, delivery=tmp_path / "no-such-delivery")
    assert not (tmp_path / "som.db").exists()
