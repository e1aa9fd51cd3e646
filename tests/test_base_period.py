"""Base period = the last observed period before g; event time counted in observed periods (issue 11)."""

import numpy as np
import polars as pl
import pytest

from som_models.estimators import aggregate, att_gt, pretrend_test
from som_models.estimators.staggered_did import cell_plan, event_times


def _panel(periods, groups, n_per_group, seed, effect=1.5):
    """Long frame: unit fixed effect, common period shocks, a group-specific trend-free effect after g."""
    rng = np.random.default_rng(seed)
    rows = []
    uid = 0
    shocks = {t: rng.normal() for t in periods}
    for g in groups:
        for _ in range(n_per_group):
            uid += 1
            alpha = rng.normal()
            x = rng.normal()
            for t in periods:
                y = alpha + shocks[t] + 0.3 * x + rng.normal() + (effect if g and t >= g else 0.0)
                rows.append({"id": uid, "t": t, "g": g, "y": y, "x": x})
    return pl.DataFrame(rows)


def test_survey_waves_1975_1978_give_the_hand_computed_2x2():
    data = pl.DataFrame({
        "id": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
        "t": [1975, 1978] * 5,
        "g": [1978, 1978, 1978, 1978, 0, 0, 0, 0, 0, 0],
        "y": [1.0, 4.0, 2.0, 6.0, 1.0, 2.0, 3.0, 3.5, 0.0, 1.0],
    })
    # treated changes 3, 4 (mean 3.5); comparison changes 1, 0.5, 1 (mean 2.5/3)
    hand = 3.5 - 2.5 / 3
    for base in ("varying", "universal"):
        res = att_gt(data, outcome="y", id_col="id", time_col="t", group_col="g", base_period=base)
        assert [(c.group, c.time, c.event_time) for c in res.cells] == [(1978, 1978, 0)]
        assert res.cells[0].estimate == pytest.approx(hand, abs=1e-12)
        assert aggregate(res, "dynamic").overall == pytest.approx(hand, abs=1e-12)


@pytest.mark.parametrize("control", ["never", "notyet"])
@pytest.mark.parametrize("base", ["varying", "universal"])
@pytest.mark.parametrize("covariates", [False, True])
def test_biennial_register_equals_the_same_data_on_consecutive_periods(control, base, covariates):
    years = [2010, 2012, 2014, 2016, 2018, 2020]
    data = _panel(years, [2014, 2016, 0], 40, seed=3)
    recode = {y: k + 1 for k, y in enumerate(years)}
    idx = data.with_columns(pl.col("t").replace_strict(recode).alias("t"),
                            pl.col("g").replace_strict({**recode, 0: 0}).alias("g"))
    kw = dict(outcome="y", id_col="id", time_col="t", group_col="g", control=control, base_period=base,
              covariates=["x"] if covariates else [])
    a, b = att_gt(data, **kw), att_gt(idx, **kw)
    assert len(a.cells) == len(b.cells) == 2 * 5
    for ca, cb in zip(a.cells, b.cells, strict=False):
        assert (recode[ca.group], recode[ca.time], ca.event_time) == (cb.group, cb.time, cb.event_time)
        assert ca.estimate == cb.estimate and ca.se == cb.se
    for kind in ("dynamic", "group", "calendar", "simple"):
        ga, gb = aggregate(a, kind), aggregate(b, kind)
        assert list(ga.estimates.values()) == list(gb.estimates.values())
        assert list(ga.ses.values()) == list(gb.ses.values())
        assert (ga.overall, ga.overall_se) == (gb.overall, gb.overall_se)
    # event time in periods (two years = one period): e = -1 is the reference period under the universal base
    expected = {-2, -1, 0, 1, 2, 3} if base == "varying" else {-3, -2, 0, 1, 2, 3}
    assert set(aggregate(a, "dynamic").estimates) == expected
    pa, pb = pretrend_test(a), pretrend_test(b)
    assert (pa.statistic, pa.df) == (pb.statistic, pb.df)


def test_biennial_unbalanced_panel_keeps_its_cells():
    years = [2010, 2012, 2014, 2016, 2018, 2020]
    data = _panel(years, [2014, 2016, 0], 30, seed=5)
    data = data.filter(~((pl.col("id") == 2) & (pl.col("t") == 2012)))
    res = att_gt(data, outcome="y", id_col="id", time_col="t", group_col="g")
    assert {(c.group, c.time) for c in res.cells} == {(g, t) for g in (2014, 2016) for t in years[1:]}
    cell = {(c.group, c.time): c for c in res.cells}[(2014, 2014)]
    assert cell.n_treated == 29  # unit 2 is not observed in the base period 2012


def test_cohort_starting_between_waves():
    """g = 2013 on waves 2010/2012/2014: base 2012 (last wave before g), first treated wave 2014 has e = 0."""
    periods = np.array([2010, 2012, 2014])
    plan = cell_plan(periods, [2013], "varying")
    assert plan == [(2013, 2012, 2010), (2013, 2014, 2012)]
    assert event_times(periods, plan) == {(2013, 2012): -1, (2013, 2014): 0}
    assert cell_plan(periods, [2013], "universal") == [(2013, 2010, 2012), (2013, 2014, 2012)]
    data = _panel([2010, 2012, 2014], [2013, 0], 20, seed=8)
    res = att_gt(data, outcome="y", id_col="id", time_col="t", group_col="g")
    w = data.pivot(on="t", index=["id", "g"], values="y")
    d = w.with_columns((pl.col("2014") - pl.col("2012")).alias("d")).group_by("g").agg(pl.col("d").mean())
    means = dict(zip(d["g"], d["d"], strict=False))
    post = {(c.group, c.time): c for c in res.cells}[(2013, 2014)]
    assert post.event_time == 0
    assert post.estimate == pytest.approx(means[2013] - means[0], abs=1e-12)


def test_consecutive_years_unchanged():
    periods = np.arange(2003, 2008)
    plan = cell_plan(periods, [2004, 2006], "varying")
    assert all(b == (g - 1 if t >= g else t - 1) for g, t, b in plan)
    assert all(e == t - g for (g, t), e in event_times(periods, plan).items())
