"""Volume, course-length and cost verdicts (som_models.volume_verdicts): hand-computed cases and the proposal's cohorts."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import polars as pl
import pytest
import yaml

from som_models.calibration import propose
from som_models.estimators import ESTIMATES_SCHEMA
from som_models.parameters import parse_parameter_set
from som_models.verdicts import holm
from som_models.volume_verdicts import (
    COST,
    COURSE_YEARS,
    PARTICIPANTS,
    VolumeSettings,
    assumed_cost,
    garwood,
    judge_volumes,
    observed_cohorts,
    realised_cohorts_from,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = yaml.safe_load((ROOT / "assets" / "parameters" / "housing_first_demo.yaml").read_text(encoding="utf-8"))


def _params(**changes):
    doc = copy.deepcopy(SEED)
    doc.update(changes)
    return parse_parameter_set(doc)


def _poisson_cdf(r: int, mu: float) -> float:
    """P(X ≤ r), X ~ Poisson(mu), summed by hand."""
    return sum(math.exp(-mu) * mu**k / math.factorial(k) for k in range(r + 1))


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def _treatments(rows):
    return pl.DataFrame(rows, schema={"person_id": pl.Utf8, "start_year": pl.Int64, "end_year": pl.Int64,
                                      "course_days": pl.Int64}, orient="row")


def test_participants_hand_computed_refuted():
    # one assumed cohort of 10 in 2018; 20 persons start in 2018 (one of them twice: counted once)
    params = _params(cohorts=[{"year": 2018, "participants": 10}])
    rows = [(f"p{i}", 2018, None, None) for i in range(20)] + [("p0", 2019, None, None)]
    (v,) = judge_volumes(params, treatments=_treatments(rows), window=(2018, 2018),
                         settings=VolumeSettings(margin=0.2), tested=(PARTICIPANTS,))
    # band 8 … 12; p = 2 · min(P(X ≥ 20 | 12), P(X ≤ 20 | 8)) = 2 · P(X ≥ 20 | 12)
    p = 2 * (1 - _poisson_cdf(19, 12.0))
    assert v.realised == 20 and v.assumed == 10
    assert v.p_value == pytest.approx(p, rel=1e-9) and p == pytest.approx(0.0426, abs=5e-4)
    assert v.label == "refuted-underestimated"
    assert v.ci_low == pytest.approx(garwood(20, 0.95)[0]) and v.ci_low > 12  # the interval lies above the band
    assert v.evidence["cohorts"] == [{"year": 2018, "assumed": 10, "realised": 20}]


def test_participants_consistent_and_inconclusive():
    params = _params(cohorts=[{"year": 2018, "participants": 150}, {"year": 2019, "participants": 150}])
    rows = [(f"a{i}", 2018, None, None) for i in range(148)] + [(f"b{i}", 2019, None, None) for i in range(155)]
    (v,) = judge_volumes(params, treatments=_treatments(rows), window=(2017, 2019), tested=(PARTICIPANTS,))
    assert (v.assumed, v.realised, v.label) == (300, 303, "consistent")  # 90 % Garwood 275–331 inside 240–360
    # the 2020 cohort is not observed yet: only 2018 is compared (assumed 150), 2019 is listed as not yet observed
    (w,) = judge_volumes(params, treatments=_treatments(rows[:148]), window=(2018, 2018), tested=(PARTICIPANTS,))
    assert (w.assumed, w.realised) == (150, 148)
    assert w.evidence["not_yet_observed"] == [{"year": 2019, "assumed": 150}]
    few = _treatments([(f"a{i}", 2018, None, None) for i in range(9)])
    (u,) = judge_volumes(_params(cohorts=[{"year": 2018, "participants": 10}]), treatments=few, window=(2018, 2018),
                         tested=(PARTICIPANTS,))
    assert u.label == "inconclusive"  # 9 vs 10: neither outside nor shown inside ±20 %


def test_course_length_hand_computed():
    # durations 2, 2, 3, 3 years (dates); K = 1, band ± max(0.2 · 1, 0.5) = 0.5
    days = [731, 731, 1096, 1096]
    rows = [(f"p{i}", 2015, 2015 + round(d / 365.25), d) for i, d in enumerate(days)]
    (v,) = judge_volumes(_params(), treatments=_treatments(rows), window=(2015, 2022),
                         settings=VolumeSettings(min_persons=2), tested=(COURSE_YEARS,))
    x = [d / 365.25 for d in days]
    mean = sum(x) / 4
    se = math.sqrt(sum((a - mean) ** 2 for a in x) / 3) / 2
    assert v.realised == pytest.approx(mean)
    assert v.p_value == pytest.approx(2 * _norm_sf((mean - 1 - 0.5) / se), rel=1e-9)
    assert v.label == "refuted-underestimated"
    assert v.evidence["measured_by"].startswith("dates")


def test_course_length_uses_complete_cohorts_only_and_years_without_dates():
    rows = ([(f"a{i}", 2018, 2019, None) for i in range(30)]      # complete cohort, 1 year each (years only)
            + [(f"b{i}", 2019, None, None) for i in range(5)]     # ongoing: its cohort is left out
            + [(f"c{i}", 2019, 2019, None) for i in range(25)])
    (v,) = judge_volumes(_params(), treatments=_treatments(rows), window=(2015, 2022), tested=(COURSE_YEARS,))
    assert v.evidence["complete_cohorts"] == [2018] and v.evidence["incomplete_cohorts"] == [2019]
    assert v.evidence["n_treated"] == 30 and v.realised == 1.0
    assert v.label == "consistent"  # all exactly 1 year: inside the band with certainty
    assert v.evidence["measured_by"].startswith("years only")
    (w,) = judge_volumes(_params(), treatments=_treatments(rows[30:35]), window=(2015, 2022), tested=(COURSE_YEARS,))
    assert w.label == "inconclusive" and "could not be checked" in w.sentence


def test_cost_hand_computed_and_holm_family():
    costs = pl.DataFrame({"amount": [90_000.0, 110_000.0, 100_000.0, 100_000.0] * 10, "price_year": [2024] * 40})
    params = _params(costs=[{"course_year": 1, "payer": "kommune", "amount": -60_000},
                            {"course_year": 1, "payer": "stat", "amount": -40_000}])
    assert assumed_cost(params) == 100_000
    rows = [(f"p{i}", 2018, 2018, 200) for i in range(40)]
    verdicts = {v.assumption: v for v in judge_volumes(params, treatments=_treatments(rows), window=(2018, 2018),
                                                        costs=costs)}
    v = verdicts[COST]
    se = math.sqrt(sum((a - 100_000) ** 2 for a in costs["amount"]) / 39) / math.sqrt(40)
    assert v.realised == 100_000 and v.evidence["se"] == pytest.approx(se)
    tost = _norm_sf(20_000 / se)
    assert v.evidence["tost"]["p_value"] == pytest.approx(tost, rel=1e-6)
    assert v.label == "consistent"
    raw = [verdicts[a].p_value for a in (PARTICIPANTS, COURSE_YEARS, COST)]
    assert [verdicts[a].p_adjusted for a in (PARTICIPANTS, COURSE_YEARS, COST)] == pytest.approx(holm(raw))
    assert all(v.evidence["family_size"] == 3 for v in verdicts.values())
    (none,) = judge_volumes(params, tested=(COST,))
    assert none.label == "inconclusive" and "no cost file" in none.sentence


def test_observed_cohorts_and_proposal_uses_them():
    t = _treatments([("a", 2018, None, None), ("b", 2018, None, None), ("a", 2019, None, None), ("c", 2020, None, None)])
    assert observed_cohorts(t, first_year=2017, last_year=2019) == {2017: 0, 2018: 2, 2019: 0}
    params = _params(cohorts=[{"year": 2018, "participants": 150}, {"year": 2019, "participants": 150},
                              {"year": 2021, "participants": 150}])
    (v,) = judge_volumes(params, treatments=t, window=(2017, 2019), tested=(PARTICIPANTS,))
    realised = realised_cohorts_from([v.to_record()])
    assert realised == {2017: 0, 2018: 2, 2019: 0}
    p = propose(params, pl.DataFrame(schema=ESTIMATES_SCHEMA), realised_cohorts=realised, evidence_label="test")
    # observed years take the register's count (2019: nobody started → no cohort), 2021 is not observed yet
    assert p.document["cohorts"] == [{"year": 2018, "participants": 2}, {"year": 2021, "participants": 150}]
    change = next(c for c in p.changes if c["parameter"] == "cohorts")
    assert change["from"][0] == {"year": 2018, "participants": 150}
    assert p.document["sources"]["cohorts"]["status"] == "estimated"
    parse_parameter_set(p.document)
    unchanged = propose(params, pl.DataFrame(schema=ESTIMATES_SCHEMA), evidence_label="test")
    assert unchanged.document["cohorts"] == SEED["cohorts"] + [{"year": 2021, "participants": 150}]


def test_the_specs_assumptions_choose_the_volume_verdicts():
    from pipeline import evaluation as ev
    from som_models.evaluation_spec import parse_evaluation_spec
    from som_models.parameters import ParameterError

    base = {"evaluation": "e", "intervention": SEED["intervention"], "parameters": "p.yaml"}
    t = _treatments([(f"p{i}", 2018, 2019, 400) for i in range(30)]).with_columns(pl.lit("T").alias("arm"))
    params = _params()

    def names(**extra):
        spec = parse_evaluation_spec({**base, **extra})
        return [v.assumption for v in ev.volume_verdicts(params, t, spec, window=(2018, 2019), costs=None)]

    assert names() == [PARTICIPANTS, COURSE_YEARS, COST]
    assert names(assumptions=["effect_path:shelter_nights"]) == []
    assert names(assumptions=["success_rate", "participants"]) == [PARTICIPANTS]
    with pytest.raises(ParameterError, match="participant"):
        parse_evaluation_spec({**base, "assumptions": ["participant"]})
    with pytest.raises(ParameterError, match="volume_margin"):
        parse_evaluation_spec({**base, "volume_margin": 0})
    # a randomised control arm is not counted among the participants
    controls = t.with_columns(pl.when(pl.col("person_id") < "p2").then(pl.lit("C")).otherwise(pl.col("arm")).alias("arm"))
    (v,) = ev.volume_verdicts(params, controls, parse_evaluation_spec({**base, "assumptions": ["participants"]}),
                              window=(2018, 2019), costs=None)
    assert v.realised == 30 - controls.filter(pl.col("arm") == "C").height


def test_cost_file_reader_names_file_column_and_rows(tmp_path):
    from pipeline import evaluation as ev
    from som_models.parameters import ParameterError

    good = tmp_path / "costs.csv"
    good.write_text("PNR;BELOEB;PRISAAR\n0101011234;95000,5;2024\n0101015678;105000;2023\n", encoding="utf-8")
    df = ev.read_costs(good)
    assert df.columns == ["amount", "price_year"] and df["amount"].to_list() == [95000.5, 105000.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("BELOEB\n100\n-5\n\n", encoding="utf-8")
    with pytest.raises(ParameterError,
                       match=r"bad\.csv: column BELOEB: rule cost-sign: 1 value\(s\) are negative .*\(rows \[1\]\)"):
        ev.read_costs(bad)
