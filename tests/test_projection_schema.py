"""Bad calculation documents give clear errors naming the field; the extended schema stays backwards compatible."""

from pathlib import Path

import pytest
import yaml

from som_models.parameters import ParameterError, parse_parameter_set
from som_models.projection import project

ROOT = Path(__file__).resolve().parents[1]


def doc(**over):
    d = {
        "intervention": "x", "target_group": "tg", "start_year": 2024, "horizon_years": 5, "price_year": 2024,
        "cohorts": [{"year": 2024, "participants": 10}], "success_rate": {"value": 0.5, "se": 0.1},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": {"weeks": {"units": [-2, -1], "se": [1, 1]}},
        "prices": {"weeks": {"kommune": 100, "stat": 50}},
    }
    d.update(over)
    return d


def test_minimal_calculation_document_without_success_measure_is_valid():
    p = parse_parameter_set(doc())
    assert p.success_measure is None and p.refusion == () and p.tax is None and p.monte_carlo.draws == 0


@pytest.mark.parametrize("over,match", [
    ({"sucess_rate": 1}, r"^sucess_rate: unknown key"),
    ({"refusion": {"staircase": {"items": ["weeks"], "weeks_befor": 3}}}, r"^refusion\.staircase\.weeks_befor: unknown key"),
    ({"refusion": {"stairs": {}}}, r"^refusion\.stairs: unknown key"),
    ({"tax": {"rates": {"kommune": 0.2}, "taxable": {"weeks": 1}, "vat": 0.2}}, r"^tax\.vat: unknown key"),
    ({"monte_carlo": {"draw": 10}}, r"^monte_carlo\.draw: unknown key"),
    ({"prices": {"weeks": {"kommune": 100, "rnage": [0.9, 1.1]}}}, r"^prices\.weeks\.rnage: unknown key"),
    ({"costs": [{"course_year": 1, "payer": "kommune", "amount": -1, "comittee": "a"}]}, r"^costs\[0\]\.comittee: unknown key"),
])
def test_unknown_keys_are_errors_naming_the_key(over, match):
    with pytest.raises(ParameterError, match=match):
        parse_parameter_set(doc(**over))


@pytest.mark.parametrize("over,match", [
    ({"cohorts": [{"year": 2024, "participants": -5}]}, r"cohorts\[0\]\.participants: must be ≥ 0"),
    ({"cohorts": [{"year": 2024, "participants": 2.5}]}, r"cohorts\[0\]\.participants: expected an integer"),
    ({"cohorts": [{"year": 2030, "participants": 5}]}, r"cohorts\[0\]\.year: 2030 is outside the horizon 2024–2028"),
    ({"success_rate": {"value": 1.2}}, r"success_rate\.value: a share must be between 0 and 1, got 1\.2"),
    ({"success_rate": {"value": -0.1}}, r"success_rate\.value: a share must be between 0 and 1"),
    ({"success_rate": {"value": 0.5, "se": -1}}, r"success_rate\.se: must be ≥ 0"),
    ({"consequences": {"weeks": [-1], "nights": [-2]}}, r"prices\.nights: consequence item has no unit prices"),
    ({"costs": [{"course_year": 1, "payer": "county", "amount": -1}]}, r"costs\[0\]\.payer: 'county' is not a payer"),
    ({"prices": {"weeks": {"county": 100}}}, r"prices\.weeks\.county: unknown key \(allowed: cashable, kommune, "),
    ({"prices": {"weeks": {"stat": {}}}}, r"prices\.weeks\.stat: an udvalg split needs at least one udvalg"),
    ({"udvalg": {"default": "no"}}, r"udvalg\.default: true or false"),
    ({"udvalg": {"items": {"weeks": {"kommune": {"a": 0.5}}}}}, r"udvalg\.items\.weeks\.kommune: shares add up to 0\.5, not 1"),
    ({"udvalg": {"items": {"nights": {"kommune": {"a": 1}}}}}, r"udvalg\.items\.nights: not a consequence item"),
    ({"udvalg": {"items": {"weeks": {"county": {"a": 1}}}}}, r"udvalg\.items\.weeks\.county: unknown key"),
    ({"prices": {"weeks": {"kommune": 100, "range": [1.1, 1.3]}}}, r"prices\.weeks\.range: relative factors"),
    ({"costs": [{"course_year": 1, "payer": "kommune", "amount": -1000, "range": [-900, -800]}]},
     r"costs\[0\]\.range: \[-900, -800\] does not contain"),
    ({"refusion": {"staircase": {"items": ["nights"]}}}, r"refusion\.staircase\.items\[0\]: 'nights' is not a consequence item"),
    ({"refusion": {"expensive_cases": {"items": ["weeks"]}}}, r"refusion\.expensive_cases\.case_expense: required key missing"),
    ({"refusion": {"staircase": {"items": ["weeks"], "weeks_before": []}}},
     r"refusion\.staircase\.weeks_before: expected a number or a non-empty list"),
    ({"refusion": {"staircase": {"items": ["weeks"], "weeks_before": [-1]}}},
     r"refusion\.staircase\.weeks_before\[0\]: must be ≥ 0"),
    ({"refusion": {"staircase": {"items": ["weeks"]}, "expensive_cases": {"items": ["weeks"], "case_expense": 1}}},
     r"refusion\.expensive_cases\.items\[0\]: 'weeks' is already under refusion\.staircase"),
    ({"tax": {"rates": {"kommune": 0.6, "stat": 0.5}, "taxable": {"weeks": 1}}}, r"tax\.rates: the rates add up to 1\.1"),
    ({"tax": {"rates": {"kommune": 0.2}, "taxable": {"earnings": 1}}}, r"tax\.taxable\.earnings: not a consequence item"),
    ({"monte_carlo": {"range_distribution": "normal"}}, r"monte_carlo\.range_distribution: 'normal' is not one of"),
    ({"price_index": {"twenty": 1}}, r"price_index\.twenty: expected a year"),
    ({"discounting": "gov"}, r"discounting: expected 'fm2021', 'none'"),
])
def test_bad_values_are_errors_naming_the_field(over, match):
    with pytest.raises(ParameterError, match=match):
        parse_parameter_set(doc(**over))


def test_errors_found_when_projecting_name_the_field():
    with pytest.raises(ParameterError, match=r"refusion\.staircase\.rule: unknown refusion rule 'trappe'"):
        project(parse_parameter_set(doc(refusion={"staircase": {"items": ["weeks"], "rule": "trappe"}})))
    with pytest.raises(ParameterError,
                       match=r"prices\.weeks\.price_year: the price index 'nettoprisindeks' has no value for 1950"):
        project(parse_parameter_set(doc(prices={"weeks": {"kommune": 100, "price_year": 1950}})))
    with pytest.raises(ParameterError, match=r"price_index: unknown index 'cpi'"):
        project(parse_parameter_set(doc(price_index="cpi", prices={"weeks": {"kommune": 1, "price_year": 2020}})))
    with pytest.raises(ParameterError, match=r"costs\[0\]\.item: 'weeks' is also a consequence item"):
        project(parse_parameter_set(doc(costs=[{"course_year": 1, "payer": "kommune", "amount": -1, "item": "weeks"}])))


def test_a_tax_only_item_needs_no_price():
    p = parse_parameter_set(doc(consequences={"earnings": [1000]}, prices={},
                                tax={"rates": {"kommune": 0.25}, "taxable": {"earnings": 1}}))
    # cost 10 × −1,000 in 2024; tax 25 % of 5 successful × 1,000 kr more earnings in 2025, discounted one year.
    assert project(p).npv["kommune"] == pytest.approx(-10_000 + 10 * 0.5 * 0.25 * 1000 / 1.035)


@pytest.mark.parametrize("name", ["housing_first_demo", "youth_crime_demo", "ips_employment_demo", "children_placement_demo"])
def test_seed_parameter_sets_are_valid_and_project(name):
    p = parse_parameter_set(yaml.safe_load((ROOT / "assets" / "parameters" / f"{name}.yaml").read_text(encoding="utf-8")))
    result = project(p)
    assert set(result.npv) == {"kommune", "region", "stat", "total"}
    assert result.rows.height > 0


def test_housing_first_demo_numbers_are_unchanged():
    # Regression guard for the seed every other component uses (values of the walking skeleton's frame).
    seed = ROOT / "assets" / "parameters" / "housing_first_demo.yaml"
    p = parse_parameter_set(yaml.safe_load(seed.read_text(encoding="utf-8")))
    result = project(p)
    # 2018: 150 × −95,000 = −14,250,000; 2019 adds the second cohort's cost and the first cohort's year-1 savings:
    # 30 successful × (95 × 850 + 20 × 2,300) = 3,802,500 kommune, 30 × (95 × 850 + 20 × 600) = 2,782,500 stat.
    # Each cohort's course year (per participant, no success rate): 150 × (14 × 850 + 3 × 2,300) = 2,820,000
    # kommune and 150 × (14 × 850 + 3 × 600) = 2,055,000 stat, in 2018 (first cohort) and 2019 (second cohort).
    rows = {(r["year"], r["payer"]): r["amount"] for r in result.rows.group_by("year", "payer").agg(
        __import__("polars").col("amount").sum()).to_dicts()}
    assert rows[(2018, "kommune")] == -14_250_000 + 2_820_000
    assert rows[(2018, "stat")] == 2_055_000
    assert rows[(2019, "kommune")] == -14_250_000 + 2_820_000 + 3_802_500
    assert rows[(2019, "stat")] == 2_055_000 + 2_782_500
    assert result.payback_year == 2021


def test_the_documented_example_is_a_valid_calculation_document():
    text = (ROOT / "docs" / "calculation-document.md").read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    params = parse_parameter_set(yaml.safe_load(example))
    result = project(params)
    assert params.refusion[0].kind == "staircase" and params.tax is not None and params.monte_carlo.draws == 10000
    assert "beskaeftigelsesudvalget" in result.npv_by_committee
