"""Boundaries: refusion tiers around each threshold, the staircase's week bands, the discount-rate switches at
years 36 and 71, and price-year conversion with the net price index kept in assets/."""

from pathlib import Path

import pytest
import yaml

from som_models.parameters import ParameterError, parse_parameter_set
from som_models.projection import discount_factors, project
from som_models.projection.prices import load_price_index
from som_models.projection.rules import load_rule

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="module")
def sel176():
    return load_rule("expensive_cases", "serviceloven_176")


@pytest.mark.parametrize("expense,expected", [
    (859_999, 0.0),                       # just below 860,000: nothing
    (860_000, 0.0),
    (860_001, 0.25),                      # 25 % of the 1 kr above
    (1_679_999, 0.25 * 819_999),          # 204,999.75
    (1_680_001, 205_000 + 0.5),           # 25 % of 820,000 + 50 % of 1 kr
    (2_119_999, 205_000 + 0.5 * 439_999),  # 424,999.50
    (2_120_001, 425_000 + 0.75),          # 205,000 + 220,000 + 75 % of 1 kr
])
def test_expensive_case_tiers_just_below_and_above_each_threshold(sel176, expense, expected):
    thresholds, note = sel176.thresholds(2022, None)
    assert thresholds == (860_000, 1_680_000, 2_120_000) and "as stated" in note
    assert float(sel176.refusion(expense, thresholds)) == pytest.approx(expected, abs=1e-9)


def test_stated_2020_level_is_used_as_is_and_other_years_carry_the_statutes_own_growth(sel176):
    assert sel176.thresholds(2020, None)[0] == (830_000, 1_630_000, 2_050_000)
    # Not the net price index: a 5 % index rise must not move the thresholds. 2023 = the 2022 level × the yearly
    # growth of the stated levels, g_k = (T_k(2022) / T_k(2020))^(1/2): 860,000 · √(860/830) = 875,404.21 …
    t, note = sel176.thresholds(2023, load_price_index({2022: 100, 2023: 105}))
    assert t == pytest.approx((860_000 * (860 / 830) ** 0.5, 1_680_000 * (1680 / 1630) ** 0.5,
                               2_120_000 * (2120 / 2050) ** 0.5))
    assert t[0] == pytest.approx(875_404.21, abs=0.01) and "estimate" in note
    assert sel176.thresholds(2023, None)[0] == t  # no index needed
    # two years on from 2022: g² ; Barnets lov § 198 (one stated level) borrows § 176's growth
    t25 = sel176.thresholds(2025)[0]
    assert t25[0] == pytest.approx(860_000 * (860 / 830) ** 1.5)
    assert load_rule("expensive_cases", "barnets_lov_198").thresholds(2025)[0] == pytest.approx(t25)
    single = load_rule("expensive_cases", {"rates": [0.25], "levels": {2022: [100]}})
    with pytest.raises(ParameterError, match="no growth between levels"):
        single.thresholds(2023)


def test_expensive_case_threshold_crossing_through_a_projection():
    d = {
        "intervention": "x", "target_group": "tg", "start_year": 2022, "horizon_years": 2, "price_year": 2022,
        "cohorts": [{"year": 2022, "participants": 1}], "success_rate": {"value": 1.0}, "costs": [],
        "consequences": {"days": [-1]}, "prices": {"days": {"kommune": 200}}, "discounting": "none",
        "refusion": {"expensive_cases": {"items": ["days"], "case_expense": 860_100}},
    }
    # The case drops from 860,100 to 859,900: only the 100 kr above the first threshold carried refusion → 25 kr.
    p = project(parse_parameter_set(d))
    assert p.npv["stat"] == pytest.approx(25.0) and p.npv["kommune"] == pytest.approx(175.0)
    d["refusion"]["expensive_cases"]["case_expense"] = 859_999  # entirely below: no refusion at stake
    assert project(parse_parameter_set(d)).npv["stat"] == 0


@pytest.mark.parametrize("before,weeks,expected", [
    (0, 4, 4 * 0.8),            # weeks 1–4
    (0, 5, 4 * 0.8 + 0.4),      # week 5 is the first 40 % week
    (3, 2, 0.8 + 0.4),          # weeks 4 and 5
    (25, 2, 0.4 + 0.3),         # weeks 26 and 27
    (51, 2, 0.3 + 0.2),         # weeks 52 and 53
    (52, 10, 10 * 0.2),         # after 52 weeks: 20 %
    (0, 0.5, 0.5 * 0.8),        # half a week
])
def test_refusion_staircase_week_bands(before, weeks, expected):
    rule = load_rule("staircase", "refusionstrappe")
    assert float(rule.weeks_share(before, weeks)) == pytest.approx(expected)


def test_discount_rate_switches_at_years_36_and_71():
    f = discount_factors("fm2021", 80)
    assert f[0] == 1
    assert f[34] / f[35] == pytest.approx(1.035)   # year 35 still at 3.5 %
    assert f[35] / f[36] == pytest.approx(1.025)   # year 36 at 2.5 %
    assert f[69] / f[70] == pytest.approx(1.025)   # year 70 still at 2.5 %
    assert f[70] / f[71] == pytest.approx(1.015)   # year 71 at 1.5 %
    assert f[71] == pytest.approx(1.035**-35 * 1.025**-35 / 1.015)
    assert discount_factors("none", 5).tolist() == [1, 1, 1, 1, 1]
    custom = discount_factors(((1, 0.1), (3, 0.0)), 5)
    assert custom.tolist() == pytest.approx([1, 1 / 1.1, 1 / 1.21, 1 / 1.21, 1 / 1.21])


def test_an_amount_in_year_36_is_discounted_by_the_switched_schedule():
    d = {
        "intervention": "x", "target_group": "tg", "start_year": 2000, "horizon_years": 40, "price_year": 2024,
        "course_years": 35, "cohorts": [{"year": 2000, "participants": 1}], "success_rate": {"value": 1.0},
        "costs": [], "consequences": {"item": [-1]}, "prices": {"item": {"stat": 1000}},
    }
    # Success in 2034 (course year 35 = year 34 after start); consequence year 1 in 2035 = year 35; year 2 absent.
    p = project(parse_parameter_set(d))
    assert p.npv["stat"] == pytest.approx(1000 / 1.035**35)
    d["course_years"] = 36  # now the saving falls in year 36 after start, the first year at 2.5 %
    assert project(parse_parameter_set(d)).npv["stat"] == pytest.approx(1000 / (1.035**35 * 1.025))


def test_net_price_index_asset():
    index = load_price_index()
    assert index.name == "nettoprisindeks"
    assert index.values[2015] == pytest.approx(100.0, abs=0.05)  # 2015 = 100 (mean of the monthly values)
    assert index.values[2022] == pytest.approx(sum([107.9, 109.5, 110.1, 111.6, 112.7, 113.6, 115.1, 115.1, 116.4,
                                                    117.7, 116.7, 116.0]) / 12)
    assert 2014 in index.partial and 2023 not in index.partial
    assert index.last_month == (2024, 6) and not index.extrapolated(2023)
    # 2024 (January–June shown) and 2025 are extrapolated by the stated rule: the twelve-month growth to June 2024
    # (118.8 / 117.6) continued month by month; hand computation of 2025's mean
    g = 118.8 / 117.6
    assert index.growth == pytest.approx(g)
    assert index.level(2025) == pytest.approx(sum(118.8 * g ** ((6 + m) / 12) for m in range(1, 13)) / 12)
    assert index.level(2024) == pytest.approx((118.1 + 5 * 118.8 + sum(118.8 * g ** (m / 12) for m in range(1, 7))) / 12)
    (w,) = index.warnings_for(2025)
    assert "2025 is extrapolated" in w and "2024-06" in w and "+1.02 %" in w
    with pytest.raises(ParameterError, match="no value for 2040"):
        index.level(2040)
    assert index.factor(2022, 2022) == 1.0
    with pytest.raises(ParameterError, match="no value for 1990"):
        index.factor(1990, 2022)


def test_rule_files_carry_status_and_source_for_every_version():
    for path in sorted((ASSETS / "refusion").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc["id"] == path.stem
        for v in doc["versions"]:
            assert v.get("status") and v.get("source"), (path.name, v.get("version"))
    for path in sorted((ASSETS / "price_index").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc.get("status") and doc.get("source")


def test_inline_rules_and_versions():
    rule = load_rule("staircase", {"steps": [{"from_week": 1, "to_week": 10, "rate": 0.5}, {"from_week": 11, "rate": 0.1}]})
    assert float(rule.weeks_share(8, 4)) == pytest.approx(2 * 0.5 + 2 * 0.1)
    with pytest.raises(ParameterError, match=r"refusion\.version: rule 'serviceloven_176' has no version '1999'"):
        load_rule("expensive_cases", "serviceloven_176", "1999")
    with pytest.raises(ParameterError, match="is a staircase rule"):
        load_rule("expensive_cases", "refusionstrappe")
    with pytest.raises(ParameterError, match="steps must be contiguous"):
        load_rule("staircase", {"steps": [{"from_week": 1, "to_week": 4, "rate": 0.8}, {"from_week": 6, "rate": 0.2}]})
