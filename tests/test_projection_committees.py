"""The default udvalg mapping: a hand-computed ledger, the document's own split wins per item and payer, bad files
refused."""

import pytest

from som_models.parameters import ParameterError, parse_parameter_set
from som_models.projection import project
from som_models.projection.committees import load_committee_map


def doc(**over):
    d = {
        "intervention": "udv", "target_group": "tg", "start_year": 2020, "horizon_years": 4, "price_year": 2024,
        "course_years": 1, "cohorts": [{"year": 2020, "participants": 10}],
        "success_rate": {"value": 0.5, "se": 0.1},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": {"shelter_nights": [-4, -2], "placement_days": [-3], "prison_days": [-1]},
        "prices": {"shelter_nights": {"kommune": 100, "stat": 50}, "placement_days": {"kommune": 1000},
                   "prison_days": {"stat": 2000}},
        "discounting": "none",
    }
    d.update(over)
    return d


def test_hand_computed_ledger_with_the_default_mapping():
    p = project(parse_parameter_set(doc()))
    # 5 successful persons: shelter 5 × (4 + 2) × 100 = 3,000 (socialudvalget); placements 5 × 3 × 1,000 = 15,000
    # (boerne_og_ungeudvalget); the cost line names no committee: −10,000 unassigned.
    assert dict(p.npv_by_committee) == pytest.approx({"boerne_og_ungeudvalget": 15_000, "socialudvalget": 3_000,
                                                      "unassigned": -10_000}, abs=1e-9)
    assert sum(p.npv_by_committee.values()) == pytest.approx(p.npv["kommune"], abs=1e-9)
    # the state's side of the items: shelter 5 × 6 × 50 = 1,500 (social), prison days 5 × 2,000 (kriminalforsorg)
    assert dict(p.ledger.npv) == pytest.approx({
        "kommune/boerne_og_ungeudvalget": 15_000, "kommune/socialudvalget": 3_000, "kommune/unassigned": -10_000,
        "stat/kriminalforsorg": 10_000, "stat/social": 1_500}, abs=1e-9)
    assert any("default mapping default_committees.yaml" in n and "placement_days kommune → boerne_og_ungeudvalget" in n
               for n in p.notes)
    assert p.committees is not None
    by_year = {(r["year"], r["committee"]): r["amount"] for r in p.committees.to_dicts()}
    assert by_year == pytest.approx({(2020, "unassigned"): -10_000, (2021, "socialudvalget"): 2_000,
                                     (2022, "socialudvalget"): 1_000, (2021, "boerne_og_ungeudvalget"): 15_000})


def test_the_documents_own_split_wins_per_item_and_payer():
    own = doc(prices={"shelter_nights": {"kommune": 100, "stat": {"socialstyrelsen": 50}},
                      "placement_days": {"kommune": {"bu": 1000}}, "prison_days": {"stat": 2000}})
    p = project(parse_parameter_set(own))
    # placements: the document's "bu"; shelters' kommune side from the default; the stat side the document's
    assert dict(p.npv_by_committee) == pytest.approx({"bu": 15_000, "socialudvalget": 3_000, "unassigned": -10_000})
    assert p.ledger.npv["stat/socialstyrelsen"] == pytest.approx(1_500)
    assert "stat/social" not in p.ledger.npv
    # a cost line with a committee (any payer) is booked there
    p = project(parse_parameter_set(doc(costs=[{"course_year": 1, "payer": "kommune", "amount": -1000,
                                                "committee": "socialudvalget"},
                                               {"course_year": 1, "payer": "stat", "amount": -100,
                                                "committee": "kriminalforsorg"}])))
    assert dict(p.npv_by_committee) == pytest.approx({"socialudvalget": -7_000, "boerne_og_ungeudvalget": 15_000})
    assert p.ledger.npv["stat/kriminalforsorg"] == pytest.approx(10_000 - 1_000)


def test_no_committee_view_when_no_item_is_mapped():
    p = project(parse_parameter_set(doc(consequences={"x": [-1]}, prices={"x": {"kommune": 100}})))
    assert p.committees is None and not p.npv_by_committee
    assert dict(p.ledger.npv) == pytest.approx({"kommune/unassigned": -10_000 + 500})


def test_the_shipped_mapping_states_status_and_unit():
    cmap = load_committee_map()
    assert {"kontanthjaelp_weeks", "placement_days", "shelter_nights", "gp_contacts", "prison_days",
            "earnings_dkk"} <= set(cmap.items)
    assert all(abs(sum(s.values()) - 1) < 1e-12 for by_payer in cmap.items.values() for s in by_payer.values())
    assert all(st.startswith("placeholder") for st in cmap.status.values())
    assert set(cmap.names["kommune"]) == {"beskaeftigelsesudvalget", "boerne_og_ungeudvalget", "socialudvalget",
                                          "sundheds_og_aeldreudvalget"}
    assert set(cmap.names["region"]) == {"somatik", "psykiatri"}
    assert {"overfoersler", "kriminalforsorg"} <= set(cmap.names["stat"])


GOOD = """udvalg:
  kommune: {a: A, b: B}
  stat: {s: S}
items:
  x:
    kommune: {a: 0.25, b: 0.75}
    stat: {s: 1}
    unit: share of the item's flows per payer
    status: placeholder
"""


@pytest.mark.parametrize("old, new, message", [
    ("    status: placeholder\n", "", r"items\.x: no status"),
    ("    unit: share of the item's flows per payer\n", "", r"items\.x: no unit"),
    ("{a: 0.25, b: 0.75}", "{a: 0.25, b: 0.5}", r"items\.x\.kommune: shares add up to 0\.75, not 1"),
    ("{a: 0.25, b: 0.75}", "{a: 0.25, c: 0.75}", r"items\.x\.kommune: unknown udvalg 'c'"),
    ("stat: {s: 1}\n    unit", "stat: {a: 1}\n    unit", r"items\.x\.stat: unknown udvalg 'a'"),
    ("    stat: {s: 1}\n    unit", "    county: {s: 1}\n    unit", r"items\.x: unknown key\(s\) county"),
    ("{a: 0.25, b: 0.75}", "{a: -0.25, b: 1.25}", r"items\.x\.kommune\.a: a share between 0 and 1"),
    ("udvalg:\n  kommune: {a: A, b: B}\n  stat: {s: S}\n", "", r"expected a mapping with 'udvalg' and 'items'"),
])
def test_a_bad_mapping_file_is_refused_naming_file_and_entry(tmp_path, old, new, message):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    assert dict(load_committee_map(str(good)).items) == {"x": {"kommune": {"a": 0.25, "b": 0.75}, "stat": {"s": 1.0}}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace(old, new), encoding="utf-8")
    with pytest.raises(ParameterError, match=r"bad\.yaml: .*" + message):
        load_committee_map(str(bad))
