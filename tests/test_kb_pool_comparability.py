"""`som kb pool` refuses or warns on incomparable outcomes (measure, horizon) and states the transferability rule
applied when a pooled contrast is offered as a success rate (som_models/knowledge/comparability.py)."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from som_models.knowledge import KnowledgeBase, KnowledgeError, parse_study
from som_models.knowledge.comparability import HORIZON_RATIO, check_comparable

runner = CliRunner()


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase.load()


def study(sid, *, measure="point", months=12.0, country="Canada", value=0.2, se=0.05):
    """A made-up study of outcome ``made_up`` (test data, not a published result)."""
    return parse_study({
        "id": sid, "title": sid, "url": "https://example.org", "citation": "made up for a test", "country": country,
        "year": 2020, "target_group": "voksne_i_hjemloeshed", "intervention": "x", "comparison": "treatment as usual",
        "design": "rct", "evidence_level": 1, "outcome": "made_up", "outcome_type": "binary",
        "outcome_definition": "made up", "unit": "share", "desirable": "higher", "sample": sid, "reported": "made up",
        "data": [{"kind": "estimate", "metric": "difference", "value": value, "se": se}], "status": "illustrative",
        **({"measure": measure} if measure else {}), **({"follow_up_months": months} if months else {}),
    })


def test_a_point_share_and_a_share_of_time_are_refused_with_the_ways_out(kb):
    with pytest.raises(KnowledgeError, match=r"point: aubry2015_hf_act_12m; share_of_time: stergiopoulos2015_hf_icm"):
        kb.pool(outcome="stable_housing")
    res = kb.pool(outcome="stable_housing", measure="share_of_time", method="DL")
    assert [s.id for s in res.studies] == ["somers2017_congregate_hf", "stergiopoulos2015_hf_icm"]
    assert dict(res.excluded)["aubry2015_hf_act_12m"] == "measure point, not share_of_time"
    assert not any(w.startswith("incomparable") for w in res.warnings)
    with pytest.raises(KnowledgeError, match="measure must be one of"):
        kb.pool(outcome="stable_housing", measure="weekly")


def test_horizons_more_than_one_and_a_half_times_apart_are_refused_closer_ones_warned():
    assert HORIZON_RATIO == 1.5
    with pytest.raises(ValueError, match=r"follow-up from 12 to 24 months \(more than 1.5× apart"):
        check_comparable([study("a", months=12), study("b", months=24)])
    (w,) = check_comparable([study("a", months=18), study("b", months=24)])
    assert w == "follow-up from 18 to 24 months: pooled as one horizon (within 1.5×)"
    warnings = check_comparable([study("a"), study("b", measure=None, months=None)])
    assert warnings == ["measure not stated for b: comparability with the others unchecked",
                        "follow-up not stated for b: horizon comparability unchecked"]
    allowed = check_comparable([study("a", measure="ever"), study("b")], allow=True)
    assert allowed[0].startswith("incomparable outcomes") and allowed[0].endswith("pooled anyway (allow_incomparable)")


def test_transferability_rules_for_a_success_rate(kb):
    one_foreign = kb.with_study(study("us_trial", country="United States", value=0.3, se=0.1))
    res = one_foreign.pool(outcome="made_up", basis="mean")
    sr = res.success_rate_prior
    # rule 2: mean unchanged, predictive SD (= se with one study: τ² = 0) and a warning saying so
    assert sr.value == pytest.approx(0.3) and sr.se == pytest.approx(0.1) and sr.basis == "predictive"
    assert "transferability rule 2" in res.warnings[-1] and "United States vs treatment as usual" in res.warnings[-1]
    assert "τ² cannot be estimated" in res.warnings[-1]
    mixed = one_foreign.with_study(study("dk_trial", country="Denmark", value=0.1, se=0.05))
    res = mixed.pool(outcome="made_up", method="FE")
    # rule 1: the pool holds both (FE estimate between them), the success-rate prior is the Danish study alone
    assert 0.1 < res.result.estimate < 0.3 and res.success_rate_prior.value == pytest.approx(0.1)
    assert res.success_rate_prior.se == pytest.approx(0.05)
    assert "pooled from dk_trial only; us_trial (United States) shown in the pool" in res.transfer


def test_cli_prints_warnings_and_json_records_the_rule(tmp_path):
    r = runner.invoke(app, ["kb", "pool", "--outcome", "employment_or_education", "--metric", "cox_d",
                            "--baseline", "0.4", "--allow-incomparable", "--json", "-"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["warnings"][0].startswith("incomparable outcomes: the studies measure the outcome differently")
    assert doc["transferability"].startswith("transferability rule 1")
    assert "transferability rule 1" in r.stderr and "warning: incomparable outcomes" in r.stderr
    refused = runner.invoke(app, ["kb", "pool", "--outcome", "employment_or_education", "--metric", "cox_d"])
    assert refused.exit_code == 2 and "ever: bond_ips_young_adults" in refused.output
    assert len(refused.output.strip().splitlines()) == 1


def test_every_packaged_study_states_its_measure():
    from pathlib import Path

    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "assets" / "knowledge" / "studies.yaml")
                         .read_text(encoding="utf-8"))
    assert all(s.get("measure") for s in doc["studies"])
