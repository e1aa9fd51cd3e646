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


def test_a_superseded_vintage_is_carried_when_the_newer_one_cannot_be_rederived(tmp_path):
    """B is evaluated on two cumulative vintages between A's: v3 = B-2021 (by a run, re-derivable), v4 = B-2022
    stored by hand (not re-derivable). A-2023 on v4: the root is v1, B-2022 is proposed for carrying and B-2021 is
    superseded by it. B-2022 then cannot be re-derived, so it is not carried — and B-2021, whose person-years only
    B-2022 held, was dropped too: the prior was the seed alone (0.256897 ± 0.0371391 with A-2023), and the warning
    named version 4 only. Now the root is chosen again without version 4, and B-2021 is carried in its place
    (0.22 ± 0.07), as the prior had it before B-2022 was stored; the warning still names version 4."""
    from pipeline.store import ParameterStore
    from som_models.calibration import combine
    from tests.test_evidence_carry import A21, A23, B22, _approve, _estimates, _evaluate, _other, _success

    base = ev.load_spec(SPEC)
    doc = base.seed.to_dict()
    doc["success_rate"] = {**doc["success_rate"], "value": 0.30, "se": 0.10}
    loaded = ev.LoadedSpec(base.path, base.spec, parse_parameter_set(doc), base.seed_path)
    hf = loaded.spec.intervention
    with ParameterStore(f"sqlite:///{tmp_path / 'som.db'}") as store:
        p2 = _evaluate(store, loaded, _estimates((0.28, 0.06)), "2021", A21)
        _approve(store, loaded, p2["version"])
        other = _other(loaded, "b_eval", reestimate_consequences=False)
        p3 = _evaluate(store, other, _estimates((0.22, 0.07)), "b2021", {**B22, "last_year": 2021})
        _approve(store, loaded, p3["version"])
        content = store.get_version(hf, 3).content
        edited = {**content, "success_rate": {**content["success_rate"], "value": 0.21}}
        run = store.record_run(evaluation_id="b_eval", intervention=hf, data_vintage="b2022", data_hash="b" * 64,
                               code_version="t", spec=dict(other.spec.document), tested_version=3)
        v4 = store.propose_version(intervention=hf, parent_version=3, content=edited, reason="by hand", run_id=run.id,
                                   data_vintage="b2022", data_hash="b" * 64, code_version="t", evidence={},
                                   estimates=[], verdicts=[], window=B22, prior_version=2)
        _approve(store, loaded, v4.version)
        p5 = _evaluate(store, loaded, _estimates((0.25, 0.04)), "2023", A23)
        assert p5["prior_version"] == 1 and p5["reason"].startswith("WARNING")
        expected = combine(*combine(0.30, 0.10, 0.22, 0.07, "precision_weighted", 0.5), 0.25, 0.04,
                           "precision_weighted", 0.5)
        assert _success(p5) == pytest.approx(expected, abs=1e-6)
        record = store.get_version(hf, p5["version"]).evidence["prior"]
        assert record["carried_versions"] == [3] and [n["version"] for n in record["not_carried"]] == [4]
        assert "not carried (cannot be re-derived): version 4" in p5["reason"]


def test_choose_root_without_an_excluded_version():
    """The root choice again without a version that cannot be re-derived (``exclude``): it is not carried and no
    longer supersedes the older vintage of its evaluation — v4 = B-2023, v3 = A-2021, v2 = B-2021, v1 seed, new
    A-2023: with v4 carried the root is v1 (B-2021 superseded); without it the root is v2, which holds B-2021."""
    from som_models.evidence import LineageStep, choose_root

    def w(evaluation, first, last, h):
        return EvidenceWindow(evaluation, str(last), h, first, last, 100)

    lineage = [LineageStep(4, w("b", 2016, 2023, "b23")), LineageStep(3, w("a", 2015, 2021, "a21")),
               LineageStep(2, w("b", 2016, 2021, "b21")), LineageStep(1)]
    new = w("a", 2015, 2023, "a23")
    assert choose_root(lineage, new).version == 1
    without = choose_root(lineage, new, exclude={4})
    assert (without.version, without.carried, without.superseded) == (2, (), ())


def test_the_delivery_asset_refuses_an_unknown_report_language_first(tmp_path, monkeypatch):
    """Runs the sensor, the schedule or a backfill start (no `som evaluate` check before them) refuse an unknown
    report language in their first asset, not in the audit report after the proposal is stored."""
    import dagster as dg

    from pipeline.definitions import assets, build_resources
    from pipeline.defs.partitions import VINTAGES
    from tests.test_delivery_corrections import EVALUATION, _drop

    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    monkeypatch.delenv("SOM_DELIVERY", raising=False)
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "cd" * 32)
    landing = tmp_path / "landing"
    _drop(landing, "one", 11, mtime=1.7e9)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VINTAGES.name, ["2023-06"])
    instance.add_dynamic_partitions("evaluation", [EVALUATION])
    resources = build_resources(str(tmp_path / "som"), landing=str(landing), report_language="xx")
    with pytest.raises(Exception, match="report language 'xx' is not available"):
        dg.materialize([assets.delivery], resources=resources, instance=instance,
                       partition_key=f"{EVALUATION}|2023-06")
