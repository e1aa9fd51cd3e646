"""Carried evidence (som_models.evidence): an update from the root prior keeps the evidence of other evaluations
that entered the lineage between the root and the version under test.

The lineage of the hand-computed case, through the store (SQLite in tmp_path):

* v1 — the seed: success rate 0.30 (SE 0.10);
* v2 — evaluation A on vintage 2021 (years 2015–2021; realised success 0.28, SE 0.06), approved;
* v3 — evaluation B, another population (years 2016–2022; realised 0.20, SE 0.05), tests v2, approved;
* A on vintage 2023 (years 2015–2023, cumulative: overlaps A-2021; realised 0.25, SE 0.04) tests v3.

The root prior is v1 (v2 holds A's person-years up to 2021, which A-2023 repeats). B's persons are not in A-2023,
so B is carried: the prior is v1 updated with B, then combined with A-2023. On paper (precision weights 1/SE²):

* carried prior: weights 1/0.10² = 100 and 1/0.05² = 400; value (100·0.30 + 400·0.20)/500 = 110/500 = 0.22,
  SE = 500^(−1/2) = 0.0447214;
* with A-2023: weights 500 and 1/0.04² = 625; value (500·0.22 + 625·0.25)/1125 = (110 + 156.25)/1125 = 0.2366667,
  SE = 1125^(−1/2) = 0.0298142.

Dropping B (the behaviour before carrying) would give weights 100 and 625: (30 + 156.25)/725 = 0.2568966,
SE = 725^(−1/2) = 0.0371391.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from pipeline import evaluation as ev
from som_models.calibration import combine, propose
from som_models.estimators.results import ESTIMATES_SCHEMA
from som_models.evaluation_spec import parse_evaluation_spec
from som_models.evidence import CarryStep, EvidenceWindow, LineageStep, carry_evidence, choose_root
from som_models.parameters import parse_parameter_set
from som_reference.strict_yaml import load_yaml

SPEC = Path(__file__).resolve().parents[1] / "assets" / "evaluations" / "housing_first_demo.yaml"
PW = "precision_weighted"
A21 = {"first_year": 2015, "last_year": 2021, "persons": 900}
A23 = {"first_year": 2015, "last_year": 2023, "persons": 950}
B22 = {"first_year": 2016, "last_year": 2022, "persons": 400}
C22 = {"first_year": 2017, "last_year": 2022, "persons": 300}


@pytest.fixture
def store(tmp_path):
    from pipeline.store import ParameterStore

    with ParameterStore(f"sqlite:///{tmp_path / 'som.db'}") as s:
        yield s


@pytest.fixture
def loaded():
    """The demo spec (evaluation A) with a seed whose success rate is 0.30 (SE 0.10)."""
    base = ev.load_spec(SPEC)
    doc = base.seed.to_dict()
    doc["success_rate"] = {**doc["success_rate"], "value": 0.30, "se": 0.10}
    return ev.LoadedSpec(base.path, base.spec, parse_parameter_set(doc), base.seed_path)


def _other(loaded, evaluation: str, **changes):
    """Another evaluation of the same intervention (another population), with spec ``changes``."""
    spec = parse_evaluation_spec({**loaded.spec.document, "evaluation": evaluation, **changes})
    return ev.LoadedSpec(loaded.path, spec, loaded.seed, loaded.seed_path)


def _estimates(success: tuple[float, float], shelter: tuple[float, float] | None = None) -> pl.DataFrame:
    """Event-time estimates: the success indicator in consequence year 1 (event time 1, course_years = 1) and,
    optionally, the shelter-night ATT in consequence year 1."""
    rows = [("no_shelter_stay", 1, *success)]
    if shelter is not None:
        rows.append(("shelter_nights", 1, *shelter))
    return pl.DataFrame([{"outcome": o, "estimand": "event", "group": None, "time": None, "event_time": e,
                          "estimate": est, "se": se, "ci_low": est - 1.96 * se, "ci_high": est + 1.96 * se,
                          "n_treated": 400, "n_control": 4000} for o, e, est, se in rows], schema=ESTIMATES_SCHEMA)


def _evaluate(store, loaded, estimates, vintage, window, *, data_hash=None):
    """What the Dagster graph does for one vintage (no verdict rows: the update is what is tested here)."""
    record = ev.assumptions_version(store, loaded)
    assumptions = {"intervention": record.intervention, "version": record.version, "content": record.content}
    return ev.store_proposal(store, loaded, assumptions, estimates, ev.verdict_frame(()), data_vintage=vintage,
                             data_hash=data_hash or (vintage * 64)[:64], code_version="test", window=window)


def _approve(store, loaded, version):
    store.decide(loaded.spec.intervention, version, approve=True, actor="analyst", reason="ok")


def _success(proposal) -> tuple[float, float]:
    sr = proposal["content"]["success_rate"]
    return sr["value"], sr["se"]


# ------------------------------------------------------------------------------------------ the store


def test_other_evidence_between_root_and_current_is_carried(store, loaded):
    p2 = _evaluate(store, loaded, _estimates((0.28, 0.06), (-20.0, 5.0)), "2021", A21)
    _approve(store, loaded, p2["version"])
    p3 = _evaluate(store, _other(loaded, "other_population_eval", reestimate_consequences=False),
                   _estimates((0.20, 0.05)), "2022", B22)
    assert (p3["version"], p3["prior_version"]) == (3, 2)  # B overlaps nothing: an ordinary update of v2
    _approve(store, loaded, 3)

    p4 = _evaluate(store, loaded, _estimates((0.25, 0.04), (-20.0, 4.0)), "2023", A23)
    assert (p4["version"], p4["parent_version"], p4["prior_version"]) == (4, 3, 1)
    value, se = _success(p4)
    assert value == pytest.approx(0.2366667, abs=1e-6) and se == pytest.approx(0.0298142, abs=1e-6)
    carried = combine(0.30, 0.10, 0.20, 0.05, PW, 0.5)
    assert carried == pytest.approx((0.22, 0.0447214), abs=1e-6)
    assert (value, se) == pytest.approx(combine(*carried, 0.25, 0.04, PW, 0.5), abs=1e-6)
    assert abs(value - combine(0.30, 0.10, 0.25, 0.04, PW, 0.5)[0]) > 0.02  # not the root alone (B dropped)

    # (a) B did not update the consequences: they stay as the root has them, so shelter year 1 combines the seed's
    # -95 (SE 20) with A-2023 alone — not v3's value, which holds A-2021.
    c = -20.0 / 0.25
    se_c = abs(c) * math.sqrt((4.0 / 20.0) ** 2 + (0.04 / 0.25) ** 2)
    year1 = combine(-95.0, 20.0, c, se_c, PW, 0.5)
    shelter = p4["content"]["consequences"]["shelter_nights"]
    assert shelter["units"][0] == pytest.approx(year1[0], rel=1e-5)
    assert shelter["se"][0] == pytest.approx(year1[1], rel=1e-5)
    assert store.get_version(loaded.spec.intervention, 3).content["consequences"]["shelter_nights"]["units"][0] != -95

    # (d) the audit trail: reason, provenance and the stored prior record name the carried evidence
    prior = p4["content"]["provenance"]["prior"]
    assert prior["version"] == 1 and [c["version"] for c in prior["carried"]] == [3]
    assert prior["carried"][0]["evaluation"] == "other_population_eval" and "not_carried" not in prior
    assert "carried into the prior: version 3 (evaluation other_population_eval, vintage 2022" in p4["reason"]
    assert "WARNING" not in p4["reason"]
    sr_source = p4["content"]["success_rate"]["source"]
    assert "root prior: version 1 with the evidence of version 3 carried" in sr_source
    change = next(c for c in p4["content"]["provenance"]["changes"] if c["parameter"] == "success_rate")
    assert (change["prior"], change["prior_se"]) == pytest.approx((0.22, 0.0447214), abs=1e-6)
    stored = store.get_version(loaded.spec.intervention, 4)
    assert stored.prior_version == 1
    assert stored.evidence["prior"]["carried_versions"] == [3]
    assert stored.evidence["prior"]["skipped_versions"] == [2] and stored.evidence["prior"]["not_carried"] == []

    # (c) a rerun on the same data proposes the same content: no new version
    again = _evaluate(store, loaded, _estimates((0.25, 0.04), (-20.0, 4.0)), "2023", A23)
    assert again["reused"] and again["version"] == 4 and again["content"] == p4["content"]


def test_nothing_between_root_and_current_is_unchanged(store, loaded):
    """Root = the parent of the version under test: the proposal is the root combined with the new evidence, and its
    reason and provenance are as before carrying existed (no carried/not_carried keys)."""
    p2 = _evaluate(store, loaded, _estimates((0.28, 0.06)), "2021", A21)
    _approve(store, loaded, p2["version"])
    p3 = _evaluate(store, loaded, _estimates((0.25, 0.04)), "2023", A23)
    assert p3["prior_version"] == 1
    assert _success(p3) == pytest.approx(combine(0.30, 0.10, 0.25, 0.04, PW, 0.5), abs=1e-6)
    prior = p3["content"]["provenance"]["prior"]
    assert set(prior) == {"version", "reason"}
    assert "carried" not in p3["reason"] and "WARNING" not in p3["reason"]
    assert store.get_version(loaded.spec.intervention, 3).evidence["prior"]["carried_versions"] == []


def test_a_version_written_by_hand_is_not_carried_and_the_reason_warns(store, loaded):
    """(b) v3 was proposed through the store's API with values set by hand (success rate 0.5), not by an update from
    its run's estimates: its values cannot be re-derived. The update falls back to the root prior for them, the
    reason starts with a warning naming v3, and provenance.prior.not_carried says why."""
    hf = loaded.spec.intervention
    p2 = _evaluate(store, loaded, _estimates((0.28, 0.06)), "2021", A21)
    _approve(store, loaded, p2["version"])
    content = store.get_version(hf, 2).content
    edited = {**content, "success_rate": {**content["success_rate"], "value": 0.5}}
    run = store.record_run(evaluation_id="hand_eval", intervention=hf, data_vintage="x", data_hash="h" * 64,
                           code_version="t", spec={**loaded.spec.document, "evaluation": "hand_eval"},
                           tested_version=2)
    v3 = store.propose_version(intervention=hf, parent_version=2, content=edited, reason="set by hand",
                               run_id=run.id, data_vintage="x", data_hash="h" * 64, code_version="t", evidence={},
                               estimates=[], verdicts=[], window=B22)
    _approve(store, loaded, v3.version)

    p4 = _evaluate(store, loaded, _estimates((0.25, 0.04)), "2023", A23)
    assert p4["prior_version"] == 1
    assert _success(p4) == pytest.approx(combine(0.30, 0.10, 0.25, 0.04, PW, 0.5), abs=1e-6)
    assert p4["reason"].startswith("WARNING: the values of version(s) 3 between the root prior (version 1)")
    assert "not carried (cannot be re-derived): version 3" in p4["reason"]
    prior = p4["content"]["provenance"]["prior"]
    assert "carried" not in prior and [n["version"] for n in prior["not_carried"]] == [3]
    assert "record" in prior["not_carried"][0]["reason"]  # its provenance is v2's (updated by A), not its run's
    assert store.get_version(hf, p4["version"]).evidence["prior"]["not_carried"][0]["version"] == 3
    # reproducible: the rerun proposes the same content
    again = _evaluate(store, loaded, _estimates((0.25, 0.04)), "2023", A23)
    assert again["reused"] and again["version"] == p4["version"]


def test_two_carried_evidences_apply_in_lineage_order_each_with_its_rule(store, loaded):
    """v3 = B (precision-weighted, 0.20 ± 0.05), v4 = C (policy replace, 0.35 ± 0.08), then A-2023 on v4. In lineage
    order the carried prior is B then C: precision-weighted gives 0.22 (SE 0.0447214), then C *replaces* it with
    0.35 (SE 0.08); with A-2023: weights 1/0.08² = 156.25 and 625, value (156.25·0.35 + 625·0.25)/781.25 = 0.27,
    SE 781.25^(−1/2) = 0.0357771. The reverse order (C then B) would give combine(0.35 ± 0.08, B) = 0.2415730 first
    and 0.2466031 at the end: the order is checked."""
    p2 = _evaluate(store, loaded, _estimates((0.28, 0.06)), "2021", A21)
    _approve(store, loaded, p2["version"])
    _evaluate(store, _other(loaded, "b_eval", reestimate_consequences=False), _estimates((0.20, 0.05)), "2022", B22)
    _approve(store, loaded, 3)
    p4 = _evaluate(store, _other(loaded, "c_eval", reestimate_consequences=False, update_policy="replace"),
                   _estimates((0.35, 0.08)), "2022c", C22)
    assert _success(p4) == pytest.approx((0.35, 0.08))
    _approve(store, loaded, 4)

    p5 = _evaluate(store, loaded, _estimates((0.25, 0.04)), "2023", A23)
    assert p5["prior_version"] == 1
    assert _success(p5) == pytest.approx((0.27, 0.0357771), abs=1e-6)
    reverse = combine(*combine(0.35, 0.08, 0.20, 0.05, PW, 0.5), 0.25, 0.04, PW, 0.5)
    assert abs(_success(p5)[0] - reverse[0]) > 0.02
    assert [c["version"] for c in p5["content"]["provenance"]["prior"]["carried"]] == [3, 4]


def test_a_superseded_vintage_of_a_carried_evaluation_is_not_carried_twice(store, loaded):
    """B is evaluated on two cumulative vintages between A's: v3 = B-2021, v4 = B-2022 (root v2, since it repeats
    B-2021). A-2023 on v4: root v1; B-2022 is carried, B-2021 is superseded (its person-years are in B-2022)."""
    p2 = _evaluate(store, loaded, _estimates((0.28, 0.06)), "2021", A21)
    _approve(store, loaded, p2["version"])
    other = _other(loaded, "b_eval", reestimate_consequences=False)
    _evaluate(store, other, _estimates((0.22, 0.07)), "b2021", {**B22, "last_year": 2021})
    _approve(store, loaded, 3)
    p4 = _evaluate(store, other, _estimates((0.20, 0.05)), "b2022", B22)
    assert p4["prior_version"] == 2
    _approve(store, loaded, 4)
    p5 = _evaluate(store, loaded, _estimates((0.25, 0.04)), "2023", A23)
    assert p5["prior_version"] == 1
    assert _success(p5) == pytest.approx((0.2366667, 0.0298142), abs=1e-6)  # B-2022 once, B-2021 not again
    record = store.get_version(loaded.spec.intervention, p5["version"]).evidence["prior"]
    assert (record["carried_versions"], record["superseded_versions"]) == ([4], [3])


# ------------------------------------------------------------------------------------------ choose_root


def _w(evaluation, first, last, h):
    return EvidenceWindow(evaluation, str(last), h, first, last, 100)


def test_choose_root_carries_moves_the_root_below_evidence_a_carried_one_overlaps():
    """v4 = B-2023, v3 = A-2021, v2 = B-2021, v1 seed; new A-2023. A-2021 overlaps: root v2 at first — but v2 holds
    B-2021, which the carried B-2023 repeats, so the root moves to v1: carried [4], superseded [2]."""
    lineage = [LineageStep(4, _w("b", 2016, 2023, "b23")), LineageStep(3, _w("a", 2015, 2021, "a21")),
               LineageStep(2, _w("b", 2016, 2021, "b21")), LineageStep(1)]
    choice = choose_root(lineage, _w("a", 2015, 2023, "a23"))
    assert (choice.version, [s.version for s in choice.overlapping]) == (1, [3])
    assert ([s.version for s in choice.carried], [s.version for s in choice.superseded]) == ([4], [2])
    assert choice.to_dict()["carried_versions"] == [4] and choice.to_dict()["superseded_versions"] == [2]
    assert "carried into the prior repeats (version 2 by evaluation b, vintage 2021" in choice.reason


def test_choose_root_lists_versions_without_evidence_between_root_and_current():
    """A version without a recorded window (stored before evidence accounting, or written by hand) between the
    root and the version under test cannot be re-derived: it is listed in not_carried and the reason warns."""
    lineage = [LineageStep(4, _w("b", 2016, 2022, "b")), LineageStep(3), LineageStep(2, _w("a", 2015, 2021, "a21")),
               LineageStep(1)]
    choice = choose_root(lineage, _w("a", 2015, 2023, "a23"))
    assert choice.version == 1 and [s.version for s in choice.carried] == [4]
    assert [v for v, _ in choice.not_carried] == [3] and choice.warning.startswith("WARNING: the values of version(s) 3")
    settled = choice.with_carry([4], [])
    assert settled.reason.count("carried into the prior") == 1 and settled.not_carried == choice.not_carried
    with pytest.raises(ValueError, match="not proposed for carrying"):
        choice.with_carry([2], [])


def test_root_choice_to_dict_keeps_its_old_keys():
    lineage = [LineageStep(2, _w("a", 2015, 2021, "a21")), LineageStep(1)]
    doc = choose_root(lineage, _w("a", 2015, 2023, "a23")).to_dict()
    assert {"prior_version", "tested_version", "skipped_versions", "overlapping_evidence", "reason"} <= set(doc)
    assert (doc["carried_versions"], doc["carried_evidence"], doc["not_carried"]) == ([], [], [])
    assert "carried" not in doc["reason"]


# ------------------------------------------------------------------------------------------ carry_evidence


def _step(loaded, prior, estimates, *, version=3, rule=None, edit=None):
    """A CarryStep as the store holds it: the version's content is ``prior`` updated with ``estimates`` (its own
    update), with its change record; ``edit`` changes the content afterwards (by hand)."""
    rule = rule or ev._update_rule(loaded.spec)
    doc, _, changes = ev.proposal_document(prior, estimates, loaded.spec, run_label="B")
    if edit:
        edit(doc)
    return CarryStep(version=version, evidence=_w("b", 2016, 2022, "b"), estimates=estimates,
                     changes=tuple(doc["provenance"]["changes"]), content=doc, rule=rule)


def test_carry_evidence_rederives_and_checks_the_record(loaded):
    seed = loaded.seed
    v2 = parse_parameter_set(propose(seed, _estimates((0.28, 0.06)), policy=PW).document)  # what B saw as prior
    good = _step(loaded, v2, _estimates((0.20, 0.05)))
    out = carry_evidence(seed, [good])
    assert (out.prior.success_rate.value, out.prior.success_rate.se) == pytest.approx((0.22, 0.0447214), abs=1e-6)
    assert out.carried[0]["version"] == 3 and "success_rate" in out.carried[0]["parameters"] and not out.not_carried
    # consequences B did not update stay as the root has them
    assert out.prior.to_dict()["consequences"] == seed.to_dict()["consequences"]

    def by_hand(doc):
        doc["success_rate"]["value"] = 0.5

    edited = carry_evidence(seed, [_step(loaded, v2, _estimates((0.20, 0.05)), edit=by_hand)])
    assert edited.prior.success_rate.value == 0.30 and edited.carried == ()
    assert "not the one its change record gives" in edited.not_carried[0][1]
    # stored estimates that do not reproduce the record (another realised value) are not carried either
    other = CarryStep(version=3, evidence=good.evidence, estimates=_estimates((0.21, 0.05)), changes=good.changes,
                      content=good.content, rule=good.rule)
    assert "change record" in carry_evidence(seed, [other]).not_carried[0][1]
    no_record = CarryStep(version=3, evidence=good.evidence, estimates=good.estimates, changes=({"parameter": "x"},),
                          content=good.content, rule=good.rule)
    assert "names no realised value" in carry_evidence(seed, [no_record]).not_carried[0][1]


def test_a_descriptive_profile_is_carried_from_the_change_record(loaded):
    """The descriptive contrast is not stored with a run's estimates: a carried version's descriptive values come
    from its change record and enter the same rule. Kontanthjælp weeks (descriptive, seed −30 ± 6 in year 1) with
    the recorded contrast −24 ± 3: weights 1/36 and 1/9, value (−30/36 − 24/9)/(1/36 + 1/9) = −25.2, SE
    (1/36 + 1/9)^(−1/2) = 2.6832816. Earnings, without a contrast, stay as the root has them."""
    seed = parse_parameter_set(load_yaml(Path(SPEC).parents[1] / "parameters" / "ips_employment_demo.yaml"))
    contrast = pl.DataFrame([{"outcome": "kontanthjaelp_weeks", "estimand": "consequence", "group": None, "time": None,
                              "event_time": j, "estimate": est, "se": 3.0, "ci_low": None, "ci_high": None,
                              "n_treated": 100, "n_control": 100} for j, est in ((1, -24.0), (2, -20.0))],
                            schema=ESTIMATES_SCHEMA)
    estimates = _estimates((0.20, 0.05)).with_columns(pl.lit("self_supporting").alias("outcome"))
    doc, _, _ = ev.proposal_document(seed, estimates, loaded.spec, run_label="B", descriptive=contrast)
    step = CarryStep(version=3, evidence=_w("b", 2016, 2022, "b"), estimates=estimates,
                     changes=tuple(doc["provenance"]["changes"]), content=doc, rule=ev._update_rule(loaded.spec))
    out = carry_evidence(seed, [step])
    assert not out.not_carried and "consequences.kontanthjaelp_weeks" in out.carried[0]["parameters"]
    kh = {c.item: c for c in out.prior.consequences}["kontanthjaelp_weeks"]
    assert (kh.units[0], kh.se[0]) == pytest.approx((-25.2, 2.6832816), abs=1e-5)
    assert {c.item: c for c in out.prior.consequences}["earnings_dkk"].units == \
        {c.item: c for c in seed.consequences}["earnings_dkk"].units


def test_a_version_without_an_evidence_window_is_not_carried(store, loaded):
    """(b) A version stored before evidence accounting has no window (migration 0003 left NULL): whether its evidence
    overlaps the new one cannot be told, so it is not carried, and the reason warns."""
    from sqlalchemy import update

    from pipeline.store.models import ParameterVersion

    p2 = _evaluate(store, loaded, _estimates((0.28, 0.06)), "2021", A21)
    _approve(store, loaded, p2["version"])
    _evaluate(store, _other(loaded, "b_eval", reestimate_consequences=False), _estimates((0.20, 0.05)), "2022", B22)
    _approve(store, loaded, 3)
    with store._transaction(write=True) as session:
        session.execute(update(ParameterVersion).where(ParameterVersion.version == 3).values(
            evidence_evaluation=None, evidence_first_year=None, evidence_last_year=None, evidence_persons=None))
    p4 = _evaluate(store, loaded, _estimates((0.25, 0.04)), "2023", A23)
    assert p4["prior_version"] == 1
    assert _success(p4) == pytest.approx(combine(0.30, 0.10, 0.25, 0.04, PW, 0.5), abs=1e-6)
    assert p4["reason"].startswith("WARNING: the values of version(s) 3") and "no recorded evidence" in p4["reason"]


def test_params_show_names_what_the_prior_carried():
    from pipeline.commands.params import _carried_text

    content = {"provenance": {"prior": {"version": 1, "carried": [{"version": 3, "evaluation": "b"}],
                                        "not_carried": [{"version": 4, "reason": "written by hand"}]}}}
    assert _carried_text(content) == (", with the evidence of version(s) 3 carried; version(s) 4 not carried (their "
                                      "values cannot be re-derived; see the reason)")
    assert _carried_text({"provenance": {"prior": {"version": 1}}}) == "" == _carried_text({})
