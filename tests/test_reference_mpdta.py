"""Published reference: the R `did` example (mpdta), see tests/reference/mpdta/EXPECTED.md for sources."""

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from som_models.estimators import aggregate, att_gt, pretrend_test

HERE = Path(__file__).parent / "reference" / "mpdta"

# Source A (R did README): ATT(g,t) and bootstrap SEs, t = 2004..2007.
ATT = {
    2004: [(-0.0105, 0.0241), (-0.0704, 0.0313), (-0.1373, 0.0380), (-0.1008, 0.0337)],
    2006: [(0.0065, 0.0223), (-0.0028, 0.0196), (-0.0046, 0.0188), (-0.0412, 0.0202)],
    2007: [(0.0305, 0.0154), (-0.0027, 0.0168), (-0.0311, 0.0190), (-0.0261, 0.0182)],
}


@pytest.fixture(scope="module")
def result():
    data = pl.read_csv(HERE / "mpdta.csv")
    digest = hashlib.sha256((HERE / "mpdta.csv").read_bytes()).hexdigest()
    assert digest == json.loads((HERE / "PROVENANCE.json").read_text())[0]["csv_sha256"]
    return att_gt(data, outcome="lemp", id_col="countyreal", time_col="year", group_col="first.treat")


def test_every_group_time_att_matches_published_table(result):
    got = {(c.group, c.time): c for c in result.cells}
    assert len(got) == 12
    for g, row in ATT.items():
        for t, (att, se) in zip(range(2004, 2008), row, strict=False):
            assert got[(g, t)].estimate == pytest.approx(att, abs=1e-4), (g, t)
            assert got[(g, t)].se == pytest.approx(se, rel=0.20), (g, t)


def test_pretest_p_value(result):
    test = pretrend_test(result)
    assert test.df == 5
    assert test.p_value == pytest.approx(0.16812, abs=1e-4)


def test_dynamic_aggregation(result):
    agg = aggregate(result, "dynamic")
    expected = {-3: 0.0305, -2: -0.0006, -1: -0.0245, 0: -0.0199, 1: -0.0510, 2: -0.1373, 3: -0.1008}
    ses = {-3: 0.0153, -2: 0.0136, -1: 0.0138, 0: 0.0115, 1: 0.0174, 2: 0.0356, 3: 0.0354}
    for e, v in expected.items():
        assert agg.estimates[e] == pytest.approx(v, abs=1e-4)
        assert agg.ses[e] == pytest.approx(ses[e], rel=0.20)
    assert agg.overall == pytest.approx(-0.0772, abs=1e-4)
    assert agg.overall_se == pytest.approx(0.0196, rel=0.20)


def test_group_calendar_and_simple_aggregations(result):
    group = aggregate(result, "group")
    assert group.overall == pytest.approx(-0.0310, abs=1e-4)
    assert group.overall_se == pytest.approx(0.0123, rel=0.20)
    for g, v in {2004: -0.0797, 2006: -0.0229, 2007: -0.0261}.items():
        assert group.estimates[g] == pytest.approx(v, abs=1e-4)
    calendar = aggregate(result, "calendar")
    assert calendar.overall == pytest.approx(-0.0417, abs=1e-4)
    assert calendar.overall_se == pytest.approx(0.0169, rel=0.20)
    for t, v in {2004: -0.0105, 2005: -0.0704, 2006: -0.0488, 2007: -0.0371}.items():
        assert calendar.estimates[t] == pytest.approx(v, abs=1e-4)
    simple = aggregate(result, "simple")
    assert simple.overall == pytest.approx(-0.03995, abs=1e-4)
    assert simple.overall_se == pytest.approx(0.0120, abs=5e-4)


def test_realised_effect_is_significantly_negative_against_zero(result):
    simple = aggregate(result, "simple")
    assert abs(simple.overall / simple.overall_se) > 2.5
