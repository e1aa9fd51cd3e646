"""The SØM calculation frame on cases small enough to check on paper — exact to the krone.

Each test writes out the arithmetic. Conventions: savings positive, costs negative; ``N·s`` successful persons;
consequence year j of a cohort falls j years after its last course year.
"""

import pytest

from som_models.parameters import parse_parameter_set
from som_models.projection import project


def doc(**over):
    d = {
        "intervention": "hand", "target_group": "tg", "start_year": 2024, "horizon_years": 3, "price_year": 2024,
        "course_years": 1, "cohorts": [{"year": 2024, "participants": 50}],
        "success_rate": {"value": 0.4, "se": 0.1},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -20000}],
        "consequences": {"shelter_nights": [-10, -5], "gp_contacts": [2, 1]},
        "prices": {"shelter_nights": {"kommune": 800, "stat": 800}, "gp_contacts": {"region": 352, "kommune": 110}},
        "discounting": "none",
    }
    d.update(over)
    return d


def cells(p):
    return {(r["year"], r["payer"], r["item"]): r["amount"] for r in p.rows.to_dicts()}


def test_case_1_fifty_participants_two_items_two_payers_three_years():
    p = project(parse_parameter_set(doc()))
    # 50 participants × 0.4 = 20 successful persons.
    # 2024: kommune 50 × −20,000 = −1,000,000.
    # 2025 (consequence year 1): shelter −20 × (−10) × 800 = +160,000 for kommune and for stat;
    #                            GP      −20 × 2 × 352 = −14,080 region, −20 × 2 × 110 = −4,400 kommune.
    # 2026 (consequence year 2): shelter −20 × (−5) × 800 = +80,000 each; GP −20 × 1 × 352 = −7,040, −20 × 110 = −2,200.
    assert cells(p) == {
        (2024, "kommune", "intervention_cost"): -1_000_000,
        (2025, "kommune", "shelter_nights"): 160_000, (2025, "stat", "shelter_nights"): 160_000,
        (2025, "region", "gp_contacts"): -14_080, (2025, "kommune", "gp_contacts"): -4_400,
        (2026, "kommune", "shelter_nights"): 80_000, (2026, "stat", "shelter_nights"): 80_000,
        (2026, "region", "gp_contacts"): -7_040, (2026, "kommune", "gp_contacts"): -2_200,
    }
    # No discounting: kommune −1,000,000 + 160,000 − 4,400 + 80,000 − 2,200 = −766,600;
    # region −14,080 − 7,040 = −21,120; stat 240,000; total −547,720.
    assert round(p.npv["kommune"]) == -766_600
    assert round(p.npv["region"]) == -21_120
    assert round(p.npv["stat"]) == 240_000
    assert round(p.npv["total"]) == -547_720
    # Net 2025: 160,000 + 160,000 − 14,080 − 4,400 = 301,520; 2026: 80,000 + 80,000 − 7,040 − 2,200 = 150,760.
    # Cumulative −1,000,000, −698,480, −547,720: never paid back.
    assert p.cumulative["cumulative"].to_list() == [-1_000_000, -698_480, -547_720]
    assert p.payback_year is None
    assert p.roi == pytest.approx(-547_720 / 1_000_000)


def test_case_2_the_same_with_the_finance_ministry_discount_rate():
    p = project(parse_parameter_set(doc(discounting="fm2021")))
    # Year 1 after start: factor 1/1.035; year 2: 1/1.035².
    # kommune: −1,000,000 + (160,000 − 4,400)/1.035 + (80,000 − 2,200)/1.035²
    #        = −1,000,000 + 150,338.16 + 72,627.13 = −777,034.70
    # region:  −14,080/1.035 − 7,040/1.035² = −13,603.86 − 6,571.92 = −20,175.78
    # stat:    160,000/1.035 + 80,000/1.035² = 154,589.37 + 74,680.86 = 229,270.23
    assert round(p.npv["kommune"]) == -777_035
    assert round(p.npv["region"]) == -20_176
    assert round(p.npv["stat"]) == 229_270
    assert round(p.npv["total"]) == -567_940
    row = p.rows.filter((p.rows["year"] == 2026) & (p.rows["payer"] == "stat")).to_dicts()[0]
    assert row["amount"] == 80_000 and round(row["discounted"], 2) == 74_680.86


def test_case_3_two_cohorts_two_course_years_avoided_costs_and_payback():
    d = doc(start_year=2020, horizon_years=5, course_years=2,
            cohorts=[{"year": 2020, "participants": 10}, {"year": 2021, "participants": 20}],
            success_rate={"value": 0.5},
            costs=[{"course_year": 1, "payer": "kommune", "amount": -1000},
                   {"course_year": 2, "payer": "kommune", "amount": -500}],
            avoided_costs=[{"course_year": 2, "payer": "stat", "amount": 200}],
            consequences={"item": [-10]}, prices={"item": {"kommune": 300, "stat": 100}})
    p = project(parse_parameter_set(d))
    # Cohort 2020 (10): 2020 −10,000; 2021 −5,000 kommune, +2,000 stat avoided; success 2021 →
    #   2022: −10 × 0.5 × (−10) × 300 = +15,000 kommune, × 100 = +5,000 stat.
    # Cohort 2021 (20): 2021 −20,000; 2022 −10,000 kommune, +4,000 stat; success 2022 → 2023: +30,000, +10,000.
    # Net by year: 2020 −10,000; 2021 −23,000; 2022 +14,000; 2023 +40,000; 2024 0.
    assert p.cumulative["amount"].to_list() == [-10_000, -23_000, 14_000, 40_000, 0]
    # Cumulative −10,000, −33,000, −19,000, +21,000 → payback 2023.
    assert p.payback_year == 2023
    assert p.npv == {"kommune": 0.0, "region": 0.0, "stat": 21_000.0, "total": 21_000.0}
    # kommune: −10,000, −25,000, +5,000, +30,000 → cumulative reaches exactly 0 in 2023 (non-negative = paid back).
    assert p.payback_by_payer == {"kommune": 2023, "region": None, "stat": None}
    # ROI: 21,000 / |−10,000 − 25,000 − 10,000| (avoided costs are not intervention costs).
    assert p.roi == pytest.approx(21_000 / 45_000)


def test_case_4_refusion_staircase_moves_part_of_the_saving_to_the_state():
    d = doc(horizon_years=2, cohorts=[{"year": 2024, "participants": 10}], success_rate={"value": 0.5}, costs=[],
            consequences={"kontanthjaelp_weeks": [-10]}, prices={"kontanthjaelp_weeks": {"kommune": 3000}},
            refusion={"staircase": {"items": ["kontanthjaelp_weeks"], "weeks_before": 0}})
    p = project(parse_parameter_set(d))
    # 5 successful persons each avoid weeks 1–10 of a spell: gross kommune saving 10 × 3,000 = 30,000.
    # State share: weeks 1–4 at 80 %, 5–10 at 40 % → 4 × 0.8 + 6 × 0.4 = 5.6 weeks × 3,000 = 16,800 per person.
    assert cells(p) == {(2025, "kommune", "kontanthjaelp_weeks"): 150_000,
                        (2025, "kommune", "refusion:kontanthjaelp_weeks"): -84_000,
                        (2025, "stat", "refusion:kontanthjaelp_weeks"): 84_000}
    assert p.npv["kommune"] == 66_000 and p.npv["stat"] == 84_000 and p.npv["total"] == 150_000
    # Long-term recipients (52 weeks before): 20 % → 10 × 0.2 × 3,000 × 5 = 30,000 to the state.
    d["refusion"]["staircase"]["weeks_before"] = 52
    p = project(parse_parameter_set(d))
    assert p.npv["kommune"] == 120_000 and p.npv["stat"] == 30_000


def test_case_5_expensive_case_refusion_and_committee_split():
    d = doc(start_year=2022, price_year=2022, horizon_years=2, cohorts=[{"year": 2022, "participants": 2}],
            success_rate={"value": 0.5},
            costs=[{"course_year": 1, "payer": "kommune", "amount": -50000, "committee": "boern_og_unge"},
                   {"course_year": 1, "payer": "kommune", "amount": -10000, "committee": "social"}],
            consequences={"placement_days": [-100]},
            prices={"placement_days": {"kommune": {"boern_og_unge": 2000, "sundhed": 1000}}},
            refusion={"expensive_cases": {"items": ["placement_days"], "case_expense": 2_500_000}})
    p = project(parse_parameter_set(d))
    # 1 successful child; kommune price 2,000 + 1,000 = 3,000 per day; gross saving 100 × 3,000 = 300,000.
    # Serviceloven § 176 at 2022 level, thresholds 860,000 / 1,680,000 / 2,120,000, marginal 25 / 50 / 75 %:
    #   R(2,500,000) = 0.25·1,640,000 + 0.25·820,000 + 0.25·380,000 = 410,000 + 205,000 + 95,000 = 710,000
    #   R(2,200,000) = 0.25·1,340,000 + 0.25·520,000 + 0.25·80,000  = 335,000 + 130,000 + 20,000 = 485,000
    #   ΔR = 225,000 (= 75 % of the 300,000, all above the third threshold).
    assert cells(p) == {(2022, "kommune", "intervention_cost"): -120_000,
                        (2023, "kommune", "placement_days"): 300_000,
                        (2023, "kommune", "refusion:serviceloven_176"): -225_000,
                        (2023, "stat", "refusion:serviceloven_176"): 225_000}
    # Committees: boern_og_unge −100,000 + 2/3 · 300,000 − 2/3 · 225,000 = −50,000;
    # sundhed 1/3 · (300,000 − 225,000) = 25,000; social −20,000. Sum −45,000 = kommune NPV.
    assert {k: round(v) for k, v in p.npv_by_committee.items()} == {"boern_og_unge": -50_000, "social": -20_000,
                                                                    "sundhed": 25_000}
    assert round(p.npv["kommune"]) == -45_000


def test_case_6_tax_on_changed_earnings_and_transfers():
    d = doc(horizon_years=2, cohorts=[{"year": 2024, "participants": 10}], success_rate={"value": 0.3}, costs=[],
            consequences={"earnings_dkk": [100_000], "kontanthjaelp_weeks": [-10]},
            prices={"kontanthjaelp_weeks": {"kommune": 2500}},
            tax={"rates": {"kommune": 0.25, "stat": 0.12}, "tilbageloeb": 0.2,
                 "taxable": {"earnings_dkk": 1, "kontanthjaelp_weeks": 2000}})
    p = project(parse_parameter_set(d))
    # 3 successful persons. Earnings +300,000: kommune tax 0.25 × 300,000 = 75,000; stat 0.12 × 300,000 = 36,000;
    #   tilbageløb 0.2 × (1 − 0.37) × 300,000 = 37,800.
    # Kontanthjælp −30 weeks: saving 30 × 2,500 = 75,000 (kommune); taxable income −30 × 2,000 = −60,000 →
    #   kommune −15,000, stat −7,200, tilbageløb 0.2 × 0.63 × −60,000 = −7,560.
    c = cells(p)
    assert c[(2025, "kommune", "tax:earnings_dkk")] == pytest.approx(75_000)
    assert c[(2025, "stat", "tax:earnings_dkk")] == pytest.approx(36_000)
    assert c[(2025, "stat", "tilbageloeb:earnings_dkk")] == pytest.approx(37_800)
    assert c[(2025, "kommune", "tax:kontanthjaelp_weeks")] == pytest.approx(-15_000)
    assert c[(2025, "stat", "tilbageloeb:kontanthjaelp_weeks")] == pytest.approx(-7_560)
    # kommune 75,000 + 75,000 − 15,000 = 135,000; stat 36,000 + 37,800 − 7,200 − 7,560 = 59,040.
    assert round(p.npv["kommune"]) == 135_000 and round(p.npv["stat"]) == 59_040 and p.npv["region"] == 0


def test_case_7_price_year_conversion_with_an_inline_index():
    d = doc(horizon_years=2, cohorts=[{"year": 2024, "participants": 10}], success_rate={"value": 1.0},
            price_index={2022: 100, 2024: 110},
            costs=[{"course_year": 1, "payer": "kommune", "amount": -500, "price_year": 2022}],
            consequences={"item": [-1]}, prices={"item": {"kommune": 1000, "price_year": 2022}})
    p = project(parse_parameter_set(d))
    # Factor I(2024)/I(2022) = 110/100 = 1.1: cost 10 × −500 × 1.1 = −5,500; saving 10 × 1 × 1,000 × 1.1 = 11,000.
    assert cells(p) == {(2024, "kommune", "intervention_cost"): pytest.approx(-5_500),
                        (2025, "kommune", "item"): pytest.approx(11_000)}
    assert any("× 1.1000" in n for n in p.notes)


def test_events_outside_the_horizon_are_not_counted_and_success_rate_override():
    p = project(parse_parameter_set(doc(horizon_years=2)))  # consequence year 2 falls in 2026, outside 2024–2025
    assert 2026 not in p.rows["year"].to_list()
    q = project(parse_parameter_set(doc()), success_rate=0.0)
    assert q.npv["total"] == -1_000_000 and q.success_rate == 0.0


def test_to_dict_has_the_documented_keys():
    out = project(parse_parameter_set(doc())).to_dict()
    assert set(out["npv"]) == {"total", "kommune", "region", "stat"}
    assert {"payback_year", "rows", "roi", "cumulative", "payback_by_payer", "price_year"} <= set(out)
    assert set(out["rows"][0]) == {"year", "payer", "item", "amount", "discounted"}
