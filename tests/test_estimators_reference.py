"""Published references for the covariate-adjusted estimators and the randomised design (see SOURCE.md files)."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from reference_files import checked

from som_models.estimators import aggregate, att_gt, drdid_panel, pretrend_test, rct_effects

REF = Path(__file__).parent / "reference"


# Source C of tests/reference/mpdta/EXPECTED.md: did/csdid, xformla = ~lpop, est_method = "dr", t = 2004..2007.
DR_MPDTA = {
    2004: [-0.0145297, -0.0764219, -0.1404483, -0.1069039],
    2006: [-0.0004721, -0.0062025, 0.0009606, -0.0412939],
    2007: [0.0267278, -0.0045766, -0.0284475, -0.0287814],
}
# Stata csdid 0.1 (drimp) printout, same page as Source C (point estimates and SEs with the n−1 convention).
DRIMP_MPDTA = {
    2004: [-0.0145329, -0.0764267, -0.1404536, -0.1069093],
    2006: [-0.0006112, -0.006267, 0.0009473, -0.0413123],
    2007: [0.0266993, -0.0045906, -0.0284515, -0.0287821],
}


@pytest.fixture(scope="module")
def mpdta():
    return pl.read_csv(checked("mpdta", "mpdta.csv"))


@pytest.fixture(scope="module")
def dr_result(mpdta):
    return att_gt(mpdta, outcome="lemp", id_col="countyreal", time_col="year", group_col="first.treat",
                  covariates=["lpop"], method="dr")


def test_mpdta_conditional_dr_matches_all_twelve_cells(dr_result):
    got = {(c.group, c.time): c.estimate for c in dr_result.cells}
    assert len(got) == 12
    for g, row in DR_MPDTA.items():
        for t, att in zip(range(2004, 2008), row, strict=False):
            assert got[(g, t)] == pytest.approx(att, abs=1e-6), (g, t)


def test_mpdta_conditional_dr_ses_and_aggregations_match_moderndid(dr_result):
    # computed with moderndid 0.2.0 (att_gt xformla="~lpop", est_method="dr"; aggte, analytic SEs) — see SOURCE.md
    ses = [0.022129, 0.028671, 0.035378, 0.032886, 0.022223, 0.018496, 0.0194, 0.019721,
           0.014066, 0.015718, 0.018181, 0.016239]
    assert [round(c.se, 6) for c in dr_result.cells] == pytest.approx(ses, abs=1.5e-6)
    dyn = aggregate(dr_result, "dynamic")
    assert dyn.overall == pytest.approx(-0.08035395, abs=1e-7)
    assert dyn.overall_se == pytest.approx(0.01895756, abs=1e-7)
    assert aggregate(dr_result, "group").overall == pytest.approx(-0.03281960, abs=1e-7)
    assert aggregate(dr_result, "simple").overall_se == pytest.approx(0.01150284, abs=1e-7)
    assert aggregate(dr_result, "calendar").overall == pytest.approx(-0.04417736, abs=1e-7)


def test_mpdta_improved_dr_matches_stata_drimp(mpdta):
    res = att_gt(mpdta, outcome="lemp", id_col="countyreal", time_col="year", group_col="first.treat",
                 covariates=["lpop"], method="dr-imp")
    got = {(c.group, c.time): c for c in res.cells}
    for g, row in DRIMP_MPDTA.items():
        for t, att in zip(range(2004, 2008), row, strict=False):
            assert got[(g, t)].estimate == pytest.approx(att, abs=1e-6), (g, t)
    # Stata printed 0.0221602 for (2004, 2004) with sd(ψ)/√n; ours is sqrt(Σψ²)/n
    n = 20 + 309
    assert got[(2004, 2004)].se * np.sqrt(n / (n - 1)) == pytest.approx(0.0221602, abs=2e-6)


def test_without_covariates_every_method_is_the_unconditional_estimator(mpdta):
    base = att_gt(mpdta, outcome="lemp", id_col="countyreal", time_col="year", group_col="first.treat")
    for method in ("reg", "ipw", "dr"):
        other = att_gt(mpdta, outcome="lemp", id_col="countyreal", time_col="year", group_col="first.treat",
                       method=method)
        assert other.method == "unconditional"
        assert [c.estimate for c in other.cells] == [c.estimate for c in base.cells]
    assert pretrend_test(base).p_value == pytest.approx(0.16812, abs=1e-4)


# Sant'Anna & Zhao (2020) LaLonde–CPS illustration; published by R DRDID (drimp) and Stata drdid (all estimators).
LALONDE = {  # method: (ATT, SE as sqrt(Σψ²)/n — Stata's printout)
    "dr": (-871.3271, 396.0211),
    "dr-imp": (-901.2703, 393.6127),
    "reg": (-1300.645, 349.8259),
    "ipw": (-1021.609, 397.5201),
}


@pytest.mark.parametrize("method", sorted(LALONDE))
def test_lalonde_cps_two_period_estimators(method):
    nsw = pl.read_parquet(checked("lalonde_cps_drdid", "nsw_long.parquet"))
    cov = ["age", "educ", "black", "married", "nodegree", "hisp", "re74"]
    res = drdid_panel(nsw, outcome="re", id_col="id", time_col="year", treat_col="experimental", covariates=cov,
                      method=method)
    att, se = LALONDE[method]
    assert res.att == pytest.approx(att, abs=1e-3)
    assert res.se == pytest.approx(se, abs=1e-3)
    assert res.n_treated == 425 and res.n_control == 15992
    if method == "dr-imp":  # R DRDID README prints 393.6247 = sd(ψ)/√n
        n = res.influence.shape[0]
        assert res.se * np.sqrt(n / (n - 1)) == pytest.approx(393.6247, abs=1e-3)


@pytest.fixture(scope="module")
def nsw_dw():
    return pl.read_csv(checked("nsw_dw_rct", "nsw_dw_long.csv"))


def test_nsw_experiment_difference_in_means_matches_dehejia_wahba(nsw_dw):
    res = rct_effects(nsw_dw, outcome="re", id_col="id", time_col="year", arm_col="treat", start=1976)
    row = res.details.filter(pl.col("event_time") == 2).row(0, named=True)
    assert row["estimate"] == pytest.approx(1794.342, abs=1e-3)  # 1,794 (633): Dehejia & Wahba 1999; Mixtape 1794.34
    assert row["se_classical"] == pytest.approx(633, abs=0.5)
    assert (row["n_treated"], row["n_control"]) == (185, 260)
    y78 = nsw_dw.filter(pl.col("year") == 1978)
    a = y78.filter(pl.col("treat") == 1).get_column("re").to_numpy()
    b = y78.filter(pl.col("treat") == 0).get_column("re").to_numpy()
    neyman = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert row["se_robust"] == pytest.approx(neyman, rel=1e-10)  # HC2 = Neyman/Welch for a difference in means
    pre = res.details.filter(pl.col("event_time") < 0)
    assert pre.height == 2 and (pre.get_column("p_robust") > 0.05).all()  # randomisation balance on earnings


def test_nsw_experiment_ancova_matches_direct_least_squares(nsw_dw):
    res = rct_effects(nsw_dw, outcome="re", id_col="id", time_col="year", arm_col="treat", start=1976,
                      method="ancova", robust="HC3")
    row = res.details.filter(pl.col("event_time") == 2).row(0, named=True)
    wide = nsw_dw.pivot(on="year", index=["id", "treat"], values="re").sort("id")
    x = np.column_stack([np.ones(wide.height), wide.get_column("treat").to_numpy(), wide.get_column("1975").to_numpy()])
    yv = wide.get_column("1978").to_numpy()
    beta, *_ = np.linalg.lstsq(x, yv, rcond=None)
    e = yv - x @ beta
    xtx = np.linalg.inv(x.T @ x)
    h = np.einsum("ij,jk,ik->i", x, xtx, x)
    hc3 = xtx @ (x.T * (e**2 / (1 - h) ** 2)) @ x @ xtx
    assert row["estimate"] == pytest.approx(beta[1], rel=1e-10)
    assert row["estimate"] == pytest.approx(1750.151, abs=1e-3)  # statsmodels 0.15.0: re78 ~ treat + re75
    assert row["se_classical"] == pytest.approx(632.091, abs=1e-3)
    assert row["se_robust"] == pytest.approx(np.sqrt(hc3[1, 1]), rel=1e-10)
    assert row["se_robust"] == pytest.approx(671.974, abs=1e-3)  # statsmodels HC3
