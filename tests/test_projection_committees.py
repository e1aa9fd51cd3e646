"""The default committee (udvalg) mapping: a hand-computed ledger, the document's own split wins, bad files refused."""

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
    # (boerne_og_ungeudvalget); the cost line names no committee: −10,000 unassigned; prison days are stat only.
    assert dict(p.npv_by_committee) == {"boerne_og_ungeudvalget": 15_000, "socialudvalget": 3_000, "unassigned": -10_000}
    assert sum(p.npv_by_committee.values()) == p.npv["kommune"] == 8_000
    assert any("default mapping default_committees.yaml" in n and "placement_days → boerne_og_ungeudvalget" in n
               for n in p.notes)
    assert p.committees is not None
    by_year = {(r["year"], r["committee"]): r["amount"] for r in p.committees.to_dicts()}
    assert by_year == {(2020, "unassigned"): -10_000, (2021, "socialudvalget"): 2_000, (2022, "socialudvalget"): 1_000,
                       (2021, "boerne_og_ungeudvalget"): 15_000}


def test_the_documents_own_split_replaces_the_default_entirely():
    own = doc(prices={"shelter_nights": {"kommune": 100, "stat": 50}, "placement_days": {"kommune": {"bu": 1000}},
                      "prison_days": {"stat": 2000}})
    p = project(parse_parameter_set(own))
    assert dict(p.npv_by_committee) == {"bu": 15_000, "unassigned": -7_000}
    assert not any("default mapping" in n for n in p.notes)
    # a cost line with a committee counts as the document's own split too
    p = project(parse_parameter_set(doc(costs=[{"course_year": 1, "payer": "kommune", "amount": -1000,
                                                "committee": "socialudvalget"}])))
    assert dict(p.npv_by_committee) == {"socialudvalget": -10_000, "unassigned": 18_000}


def test_no_committee_view_when_no_item_is_mapped():
    p = project(parse_parameter_set(doc(consequences={"x": [-1]}, prices={"x": {"kommune": 100}})))
    assert p.committees is None and not p.npv_by_committee


def test_the_shipped_mapping_states_status_and_unit():
    cmap = load_committee_map()
    assert {"kontanthjaelp_weeks", "placement_days", "shelter_nights", "gp_contacts"} <= set(cmap.items)
    assert all(abs(sum(s.values()) - 1) < 1e-12 for s in cmap.items.values())
    assert all(st.startswith("placeholder") for st in cmap.status.values())
    assert set(cmap.names) == {"beskaeftigelsesudvalget", "boerne_og_ungeudvalget", "socialudvalget",
                               "sundheds_og_aeldreudvalget"}


GOOD = """committees: {a: A, b: B}
items:
  x:
    kommune: {a: 0.25, b: 0.75}
    unit: share of the item's kommune price
    status: placeholder
"""


@pytest.mark.parametrize("old, new, message", [
    ("    status: placeholder\n", "", r"items\.x: no status"),
    ("    unit: share of the item's kommune price\n", "", r"items\.x: no unit"),
    ("{a: 0.25, b: 0.75}", "{a: 0.25, b: 0.5}", r"items\.x\.kommune: shares add up to 0\.75, not 1"),
    ("{a: 0.25, b: 0.75}", "{a: 0.25, c: 0.75}", r"items\.x\.kommune: unknown committee 'c'"),
    ("{a: 0.25, b: 0.75}", "{a: -0.25, b: 1.25}", r"items\.x\.kommune\.a: a share between 0 and 1"),
    ("committees: {a: A, b: B}\n", "", r"expected a mapping with 'committees' and 'items'"),
])
def test_a_bad_mapping_file_is_refused_naming_file_and_entry(tmp_path, old, new, message):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    assert dict(load_committee_map(str(good)).items) == {"x": {"a": 0.25, "b": 0.75}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace(old, new), encoding="utf-8")
    with pytest.raises(ParameterError, match=r"bad\.yaml: .*" + message):
        load_committee_map(str(bad))
