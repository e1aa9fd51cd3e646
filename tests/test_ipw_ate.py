"""Unnormalised (Horvitz–Thompson) IPW DiD and the observational ATE estimators, against references.

* ``ipw-ht`` DiD on the LaLonde NSW-controls-vs-CPS panel (tests/reference/lalonde_cps_drdid): no published
  number for R ``DRDID::ipw_did_panel`` on the full sample was found, so the test recomputes Abadie's (2005)
  estimator independently — a logit fitted by scipy's trust-region Newton on standardised covariates, the ATT
  formula, and the SE from the stacked M-estimation sandwich with complex-step derivatives — and compares.
* ATE on NHEFS (tests/reference/nhefs): Hernán & Robins, *Causal Inference: What If* (2020), chapter 12
  (IP weighting, 3.4 kg, 95 % CI 2.4–4.5) and chapter 13 (standardisation, 3.5 kg, 95 % CI 2.6–4.5), with the
  book's model specification.
"""

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from reference_files import checked
from scipy import optimize
from scipy.special import expit

from som_models.estimators import ATE_METHODS, ESTIMATES_SCHEMA, AteResult, ate, att_gt, drdid_panel
from som_models.estimators.dispatch import DID_METHODS, EstimationSettings, settings_problems
from som_models.results_base import Result

REF = Path(__file__).parent / "reference"
LALONDE_COV = ["age", "educ", "black", "married", "nodegree", "hisp", "re74"]


# ------------------------------------------------------------------------------- ipw-ht DiD (Abadie 2005)

@pytest.fixture(scope="module")
def nsw():
    return pl.read_parquet(checked("lalonde_cps_drdid", "nsw_long.parquet"))


def _abadie_reference(nsw: pl.DataFrame) -> tuple[float, float]:
    """Abadie's unnormalised IPW DiD and its sandwich SE, written from the formulas without the package code."""
    pre = nsw.filter(pl.col("year") == 1975).sort("id")
    post = nsw.filter(pl.col("year") == 1978).sort("id")
    assert pre.get_column("id").to_list() == post.get_column("id").to_list()
    d = pre.get_column("experimental").to_numpy().astype(float)
    dy = post.get_column("re").to_numpy() - pre.get_column("re").to_numpy()
    raw = pre.select(LALONDE_COV).to_numpy().astype(float)
    x = np.column_stack([np.ones(len(d)), (raw - raw.mean(0)) / raw.std(0)])  # same fitted p as the raw scale
    n, k = x.shape

    def negll(b):
        eta = x @ b
        return -np.sum(d * eta - np.logaddexp(0, eta))

    def grad(b):
        return -x.T @ (d - expit(x @ b))

    def hess(b):
        p = expit(x @ b)
        return x.T @ (x * (p * (1 - p))[:, None])

    fit = optimize.minimize(negll, np.zeros(k), jac=grad, hess=hess, method="trust-exact",
                            options={"gtol": 1e-11})
    beta = fit.x
    p = expit(x @ beta)
    assert p[d == 0].max() < 0.995  # no comparison unit is trimmed, so trimming plays no role here
    att = np.mean(d * dy - p * (1 - d) * dy / (1 - p)) / np.mean(d)

    def moments(theta):  # per-unit stacked estimating functions: logit score, then the ATT equation
        b, tau = theta[:k], theta[k]
        pp = 1 / (1 + np.exp(-(x @ b)))
        return np.column_stack([x * (d - pp)[:, None], d * dy - pp * (1 - d) * dy / (1 - pp) - d * tau])

    theta = np.append(beta, att)
    jac = np.empty((k + 1, k + 1))
    h = 1e-20
    for j in range(k + 1):  # complex-step derivative of the mean moments
        step = theta.astype(complex)
        step[j] += 1j * h
        jac[:, j] = moments(step).imag.mean(0) / h
    m = moments(theta)
    meat = m.T @ m / n
    bread = np.linalg.inv(jac)
    vcov = bread @ meat @ bread.T / n
    return float(att), float(np.sqrt(vcov[k, k]))


def test_ipw_ht_did_matches_an_independent_implementation_on_lalonde_cps(nsw):
    res = drdid_panel(nsw, outcome="re", id_col="id", time_col="year", treat_col="experimental",
                      covariates=LALONDE_COV, method="ipw-ht")
    att, se = _abadie_reference(nsw)
    assert res.method == "ipw-ht" and res.n_treated == 425 and res.n_control == 15992 and res.trimmed == 0
    assert res.att == pytest.approx(att, abs=1e-3)
    assert res.se == pytest.approx(se, rel=1e-6)
    # figures seen: ATT −1107.872, SE 408.613 — and not the normalised estimator's −1021.609
    assert res.att == pytest.approx(-1107.872, abs=1e-3)
    assert res.se == pytest.approx(408.6127, abs=1e-3)
    assert abs(np.mean(res.influence)) < 1e-6 * res.se * len(res.influence)


def test_ipw_ht_did_without_covariates_is_the_difference_of_mean_changes(nsw):
    ht = drdid_panel(nsw, outcome="re", id_col="id", time_col="year", treat_col="experimental", method="ipw-ht")
    plain = drdid_panel(nsw, outcome="re", id_col="id", time_col="year", treat_col="experimental",
                        method="unconditional")
    assert ht.att == pytest.approx(plain.att, rel=1e-10)
    assert ht.se == pytest.approx(plain.se, rel=1e-8)


def test_ipw_ht_did_differs_from_the_normalised_ipw_when_a_constant_is_added(nsw):
    # Hájek weights sum to one within the comparison group, so a constant shift of ΔY cancels; HT weights do not
    shifted = nsw.with_columns(pl.when(pl.col("year") == 1978).then(pl.col("re") + 10_000).otherwise(pl.col("re"))
                               .alias("re"))
    kw = dict(outcome="re", id_col="id", time_col="year", treat_col="experimental", covariates=LALONDE_COV)
    assert drdid_panel(shifted, method="ipw", **kw).att == pytest.approx(drdid_panel(nsw, method="ipw", **kw).att,
                                                                         abs=1e-6)
    moved = drdid_panel(shifted, method="ipw-ht", **kw).att - drdid_panel(nsw, method="ipw-ht", **kw).att
    assert abs(moved) > 1.0


def test_ipw_ht_runs_in_att_gt_cells_and_the_dispatcher_accepts_it():
    mpdta = pl.read_csv(checked("mpdta", "mpdta.csv"))
    kw = dict(outcome="lemp", id_col="countyreal", time_col="year", group_col="first.treat", covariates=["lpop"])
    ht = att_gt(mpdta, method="ipw-ht", **kw)
    hajek = att_gt(mpdta, method="ipw", **kw)
    assert ht.method == "ipw-ht" and len(ht.cells) == len(hajek.cells) == 12
    for a, b in zip(ht.cells, hajek.cells, strict=False):
        assert np.isfinite(a.estimate) and a.se > 0
        assert abs(a.estimate - b.estimate) < 0.05  # same logit, different weight normalisation
    assert any(abs(a.estimate - b.estimate) > 1e-6 for a, b in zip(ht.cells, hajek.cells, strict=False))
    assert "ipw-ht" in DID_METHODS and DID_METHODS[:4] == ("reg", "ipw", "dr", "dr-imp")
    ok = EstimationSettings(design="staggered", covariates=("lpop",), method="ipw-ht")
    assert settings_problems(ok) == []
    with pytest.raises(ValueError, match="must be one of reg, ipw, dr, dr-imp, ipw-ht"):
        EstimationSettings(design="staggered", covariates=("lpop",), method="ipw-xx")


# ------------------------------------------------------------------------------------ ATE on NHEFS

BOOK = dict(outcome="wt82_71", treatment="qsmk",
            covariates=["sex", "race", "age", "education", "smokeintensity", "smokeyrs", "exercise", "active", "wt71"],
            categorical=["education", "exercise", "active"], squared=["age", "smokeintensity", "smokeyrs", "wt71"])


@pytest.fixture(scope="module")
def nhefs():
    return pl.read_csv(checked("nhefs", "nhefs.csv"))


@pytest.fixture(scope="module")
def results(nhefs):
    return {m: ate(nhefs, method=m, interactions=["smokeintensity"] if m in ("standardisation", "dr") else (), **BOOK)
            for m in ATE_METHODS}


def test_nhefs_ip_weighted_ate_matches_what_if_chapter_12(results):
    for m in ("ipw", "ipw-ht"):
        r = results[m]
        assert round(r.estimate, 1) == 3.4, m
        assert r.n_treated + r.n_control == 1566 and r.n_treated == 403
        assert r.notes["units_missing_outcome_left_out"] == 63
        lo, hi = r.ci
        # the book's robust interval (2.4, 4.5) treats the weights as known and is a little wider
        assert abs(lo - 2.4) < 0.15 and abs(hi - 4.5) < 0.15, (lo, hi)
    # the stabilised weights are the book's Program 12.x weighted regression: μ0 is E[Y | A=0] reweighted
    assert results["ipw"].estimate == pytest.approx(3.4405, abs=1e-4)
    assert results["ipw-ht"].estimate == pytest.approx(3.4240, abs=1e-4)


def test_nhefs_standardised_ate_matches_what_if_chapter_13(results):
    r = results["standardisation"]
    assert round(r.estimate, 1) == 3.5
    assert r.estimate == pytest.approx(3.5174, abs=1e-4)
    lo, hi = r.ci
    assert abs(lo - 2.6) < 0.15 and abs(hi - 4.5) < 0.15, (lo, hi)
    assert "qsmk×smokeintensity" in r.outcome_terms


def test_nhefs_doubly_robust_ate_lies_with_the_others(results):
    r = results["dr"]
    assert 3.4 <= r.estimate <= 3.55
    assert r.se == pytest.approx(results["ipw"].se, rel=0.1)


@pytest.mark.parametrize("method", ATE_METHODS)
def test_nhefs_influence_function_se_agrees_with_the_bootstrap(nhefs, results, method):
    data = nhefs.filter(pl.col("wt82_71").is_not_null())
    rng = np.random.default_rng(20260101)
    inter = ["smokeintensity"] if method in ("standardisation", "dr") else ()
    draws = [ate(data[rng.integers(0, data.height, data.height)], method=method, interactions=inter, **BOOK).estimate
             for _ in range(150)]
    boot_se = float(np.std(draws, ddof=1))
    # 150 draws: the bootstrap SE has a Monte Carlo error of about 6 %
    assert results[method].se == pytest.approx(boot_se, rel=0.2), (results[method].se, boot_se)


def test_ate_result_follows_the_result_protocol(results):
    r = results["ipw"]
    assert isinstance(r, Result) and isinstance(r, AteResult)
    table = r.to_polars()
    assert dict(table.schema) == ESTIMATES_SCHEMA
    row = table.row(0, named=True)
    assert row["estimand"] == "ate" and row["outcome"] == "wt82_71" and row["n_treated"] == 403
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    text = r.summary()
    assert "Hájek" in text and "3.441" in text and "1163 untreated" in text
    assert repr(r).startswith("AteResult(") and "\n" not in repr(r) and len(repr(r)) <= 160
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.estimate = 0.0  # immutable


# ------------------------------------------------------------------------------- known truth, two periods

def _confounded(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, n)
    p = expit(-0.3 + 0.8 * x1 - 0.7 * x2)
    a = rng.binomial(1, p)
    y0 = 1 + 2 * x1 + 1.5 * x2 + rng.normal(size=n)
    y1 = y0 + 2 + 1.0 * x1  # unit effect 2 + x1, ATE 2 (E[x1] = 0), ATT > 2 (treated have larger x1)
    return pl.DataFrame({"id": np.arange(n), "a": a, "x1": x1, "x2": x2, "y": np.where(a == 1, y1, y0)})


@pytest.mark.parametrize("method", ATE_METHODS)
def test_known_truth_ate_is_recovered_while_the_naive_contrast_is_biased(method):
    data = _confounded(20_000, 7)
    naive = data.filter(pl.col("a") == 1)["y"].mean() - data.filter(pl.col("a") == 0)["y"].mean()
    assert naive > 2.5  # confounding pushes the raw difference up
    r = ate(data, outcome="y", treatment="a", covariates=["x1", "x2"], method=method,
            interactions=["x1"] if method in ("standardisation", "dr") else ())
    assert abs(r.estimate - 2.0) < 3 * r.se, (r.estimate, r.se)
    assert 0.01 < r.se < 0.1


def _stacked_sandwich(data: pl.DataFrame, method: str) -> tuple[float, float]:
    """ATE and its SE from the stacked estimating equations (logit score, least squares, the two means), solved
    and differentiated (complex step) here without the package code."""
    a = data["a"].to_numpy().astype(float)
    y = data["y"].to_numpy()
    x = np.column_stack([np.ones(len(a)), data["x1"].to_numpy(), data["x2"].to_numpy()])
    z = np.column_stack([x, a, a * x[:, 1]])
    z1 = np.column_stack([x, np.ones_like(a), x[:, 1]])
    z0 = np.column_stack([x, np.zeros_like(a), np.zeros_like(a)])
    n, k, q = len(a), x.shape[1], z.shape[1]
    beta = optimize.minimize(lambda b: -np.sum(a * (x @ b) - np.logaddexp(0, x @ b)), np.zeros(k),
                             jac=lambda b: -x.T @ (a - expit(x @ b)), method="BFGS", options={"gtol": 1e-12}).x
    gamma = np.linalg.lstsq(z, y, rcond=None)[0]

    def means(b, g, mu1, mu0):
        p = 1 / (1 + np.exp(-(x @ b)))
        m1, m0 = z1 @ g, z0 @ g
        return {"ipw": (a * (y - mu1) / p, (1 - a) * (y - mu0) / (1 - p)),
                "ipw-ht": (a * y / p - mu1, (1 - a) * y / (1 - p) - mu0),
                "standardisation": (m1 - mu1, m0 - mu0),
                "dr": (m1 + a * (y - m1) / p - mu1, m0 + (1 - a) * (y - m0) / (1 - p) - mu0)}[method]

    def moments(theta):
        b, g, mu1, mu0 = theta[:k], theta[k:k + q], theta[-2], theta[-1]
        p = 1 / (1 + np.exp(-(x @ b)))
        e1, e0 = means(b, g, mu1, mu0)
        return np.column_stack([x * (a - p)[:, None], z * (y - z @ g)[:, None], e1, e0])

    mu = optimize.fsolve(lambda v: np.real(moments(np.concatenate([beta, gamma, v])).mean(0)[-2:]), [0.0, 0.0],
                         xtol=1e-13)
    theta = np.concatenate([beta, gamma, mu])
    jac = np.empty((len(theta), len(theta)))
    for j in range(len(theta)):
        step = theta.astype(complex)
        step[j] += 1e-20j
        jac[:, j] = moments(step).imag.mean(0) / 1e-20
    m = moments(theta)
    vcov = np.linalg.inv(jac) @ (m.T @ m / n) @ np.linalg.inv(jac).T / n
    c = np.zeros(len(theta))
    c[-2], c[-1] = 1, -1
    return float(mu[0] - mu[1]), float(np.sqrt(c @ vcov @ c))


@pytest.mark.parametrize("method", ATE_METHODS)
def test_ate_and_se_equal_the_stacked_m_estimation_sandwich(method):
    data = _confounded(3000, 13)
    r = ate(data, outcome="y", treatment="a", covariates=["x1", "x2"], method=method,
            interactions=["x1"] if method in ("standardisation", "dr") else ())
    est, se = _stacked_sandwich(data, method)
    assert r.estimate == pytest.approx(est, abs=1e-7)
    assert r.se == pytest.approx(se, rel=1e-5)


def test_intercept_only_ipw_estimators_are_the_difference_in_means():
    data = _confounded(500, 3)
    naive = data.filter(pl.col("a") == 1)["y"].mean() - data.filter(pl.col("a") == 0)["y"].mean()
    for m in ("ipw", "ipw-ht", "standardisation", "dr"):
        assert ate(data, outcome="y", treatment="a", method=m).estimate == pytest.approx(naive, abs=1e-9), m


def test_two_period_ate_uses_the_change_and_pre_period_covariates():
    rng = np.random.default_rng(11)
    n = 4000
    x = rng.normal(size=n)
    a = rng.binomial(1, expit(0.9 * x))
    fixed = 5 * x + rng.normal(size=n) * 3  # a unit effect correlated with x, removed by differencing
    y_pre = fixed + rng.normal(size=n)
    y_post = fixed + 0.5 * x + 1.5 * a + rng.normal(size=n)
    long = pl.DataFrame({"id": np.tile(np.arange(n), 2), "year": np.repeat([1975, 1978], n),
                         "a": np.tile(a, 2), "x": np.concatenate([x, x + 10]),  # post-period x is ignored
                         "y": np.concatenate([y_pre, y_post])})
    r = ate(long, outcome="y", treatment="a", covariates=["x"], id_col="id", time_col="year", method="dr")
    assert r.two_period and "change" in r.summary()
    assert abs(r.estimate - 1.5) < 3 * r.se
    wide = pl.DataFrame({"dy": y_post - y_pre, "a": a, "x": x})
    assert r.estimate == pytest.approx(ate(wide, outcome="dy", treatment="a", covariates=["x"], method="dr").estimate,
                                       rel=1e-12)


def test_case_weights_equal_replicated_units():
    data = _confounded(400, 5)
    twice = pl.concat([data, data.filter(pl.col("id") % 3 == 0)])
    weighted = data.with_columns(pl.when(pl.col("id") % 3 == 0).then(2.0).otherwise(1.0).alias("w"))
    for m in ATE_METHODS:
        kw = dict(outcome="y", treatment="a", covariates=["x1", "x2"], method=m)
        assert ate(weighted, weight_col="w", **kw).estimate == pytest.approx(ate(twice, **kw).estimate, rel=1e-9), m


# ------------------------------------------------------------------------------------------ bad input

def test_bad_input_gets_one_line_errors_naming_the_column():
    data = _confounded(200, 1)
    with pytest.raises(ValueError, match="method must be one of ipw, ipw-ht, standardisation, dr"):
        ate(data, outcome="y", treatment="a", method="iptw")
    with pytest.raises(ValueError, match="column 'nope' not found"):
        ate(data, outcome="y", treatment="nope")
    with pytest.raises(ValueError, match="column 'x1' must be 0/1"):
        ate(data, outcome="y", treatment="x1")
    with pytest.raises(ValueError, match=r"column 'x2' has missing values in 1 rows .*first rows: 4"):
        ate(data.with_columns(pl.when(pl.col("id") == 4).then(None).otherwise(pl.col("x2")).alias("x2")),
            outcome="y", treatment="a", covariates=["x1", "x2"])
    with pytest.raises(ValueError, match="needs both treated"):
        ate(data.with_columns(pl.lit(1).alias("a")), outcome="y", treatment="a")
    with pytest.raises(ValueError, match="squared columns must be among the covariates"):
        ate(data, outcome="y", treatment="a", covariates=["x1"], squared=["x2"])
    with pytest.raises(ValueError, match="interactions belong to the outcome model"):
        ate(data, outcome="y", treatment="a", covariates=["x1"], interactions=["x1"], method="ipw")
    with pytest.raises(ValueError, match="exactly two periods"):
        ate(data.with_columns(pl.col("id").alias("t")), outcome="y", treatment="a", id_col="id", time_col="t")
