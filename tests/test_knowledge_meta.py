"""Random-effects meta-analysis against published worked examples (DerSimonian–Laird and REML).

1. Normand, S.-L. T. (1999). Meta-analysis: formulating, evaluating, combining, and reporting.
   Statistics in Medicine 18:321–359. Nine trials of specialist stroke-unit care vs routine care, outcome
   length of hospital stay (days). Data: Table VIII (transcribed from the `metadat` package's
   data-raw/dat.normand1999.txt, wviechtb/metadat). Published results, Table IX (p. 352):
       fixed effect   −3.49  (−5.03, −1.96)
       DL             −14.10 (−24.45, −3.75)  τ² = 218.72
       REML           −15.12 (−32.67,  2.43)  τ² = 685.20
   (metafor's test suite, tests/testthat/test_analysis_example_normand1999.r, checks the same numbers.)
   Normand computes the mean differences' variances with the pooled SD: v = s_p² (1/n1 + 1/n2), Table VIII
   lists them rounded: 40.59, 2.05, 15.28, 150.22, 20.19, 1.22, 95.38, 8.03, 20.69.

2. The BCG vaccine trials: Colditz, G. A. et al. (1994). Efficacy of BCG vaccine in the prevention of
   tuberculosis. JAMA 271:698–702 (13 trials, 2×2 tables; metafor's dat.bcg). Log risk ratios:
       DL:   μ = −0.7141 (−1.0644, −0.3638), τ² = 0.3088, I² = 92.1173 %  — Stata `metan ..., randomi rr`
             as quoted in metafor's tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r;
       FE:   μ = −0.4303 (−0.5097, −0.3509), Q = 152.2330 — same source;
       REML: μ = −0.7145, se 0.1798, τ² = 0.3132, I² = 92.22 % — metafor's rma() default
             (Viechtbauer 2010, Journal of Statistical Software 36(3)).
"""

import math

import pytest

from som_models.knowledge import log_risk_ratio, meta_analysis

# study, n1, m1, sd1 (specialist care), n2, m2, sd2 (routine care) — Normand (1999) Table VIII
NORMAND = [
    ("Edinburgh", 155, 55, 47, 156, 75, 64),
    ("Orpington-Mild", 31, 27, 7, 32, 29, 4),
    ("Orpington-Moderate", 75, 64, 17, 71, 119, 29),
    ("Orpington-Severe", 18, 66, 20, 18, 137, 48),
    ("Montreal-Home", 8, 14, 8, 13, 18, 11),
    ("Montreal-Transfer", 57, 19, 7, 52, 18, 4),
    ("Newcastle", 34, 52, 45, 33, 41, 34),
    ("Umea", 110, 21, 16, 183, 31, 27),
    ("Uppsala", 60, 30, 27, 52, 23, 20),
]

# trial, tpos, tneg (vaccinated), cpos, cneg (control) — Colditz et al. (1994), metafor's dat.bcg
BCG = [
    ("Aronson 1948", 4, 119, 11, 128), ("Ferguson & Simes 1949", 6, 300, 29, 274),
    ("Rosenthal 1960", 3, 228, 11, 209), ("Hart & Sutherland 1977", 62, 13536, 248, 12619),
    ("Frimodt-Moller 1973", 33, 5036, 47, 5761), ("Stein & Aronson 1953", 180, 1361, 372, 1079),
    ("Vandiviere 1973", 8, 2537, 10, 619), ("TPT Madras 1980", 505, 87886, 499, 87892),
    ("Coetzee & Berjak 1968", 29, 7470, 45, 7232), ("Rosenthal 1961", 17, 1699, 65, 1600),
    ("Comstock 1974", 186, 50448, 141, 27197), ("Comstock & Webster 1969", 5, 2493, 3, 2338),
    ("Comstock 1976", 27, 16886, 29, 17825),
]


def normand_effects():
    y, v = [], []
    for _, n1, m1, s1, n2, m2, s2 in NORMAND:
        sp2 = ((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2)
        y.append(m1 - m2)
        v.append(sp2 * (1 / n1 + 1 / n2))
    return y, v


def test_normand_table_viii_effects_and_variances():
    y, v = normand_effects()
    assert y == [-20, -2, -55, -71, -4, 1, 11, -10, 7]
    assert [round(x, 2) for x in v] == [40.59, 2.05, 15.28, 150.22, 20.19, 1.22, 95.38, 8.03, 20.69]


@pytest.mark.parametrize("method,estimate,ci,tau2", [
    ("FE", -3.49, (-5.03, -1.96), 0.0),
    ("DL", -14.10, (-24.45, -3.75), 218.72),
    ("REML", -15.12, (-32.67, 2.43), 685.20),
])
def test_normand_table_ix_pooled_estimates(method, estimate, ci, tau2):
    r = meta_analysis(*normand_effects(), method=method)
    assert round(r.estimate, 2) == estimate
    assert (round(r.ci_low, 2), round(r.ci_high, 2)) == ci
    assert round(r.tau2, 2) == tau2
    assert r.k == 9 and r.q_df == 8


def bcg_effects():
    y, v = [], []
    for _, a, b, c, d in BCG:
        e, var = log_risk_ratio(a, a + b, c, c + d)
        y.append(e)
        v.append(var)
    return y, v


def test_bcg_dersimonian_laird_matches_metan():
    r = meta_analysis(*bcg_effects(), method="DL")
    assert round(r.estimate, 4) == -0.7141
    assert (round(r.ci_low, 4), round(r.ci_high, 4)) == (-1.0644, -0.3638)
    assert round(r.tau2, 4) == 0.3088
    assert round(100 * r.i2, 4) == 92.1173
    assert round(r.fixed_estimate, 4) == -0.4303 and round(r.q, 4) == 152.2330
    # For DL, I² = (Q − df)/Q (Higgins & Thompson 2002).
    assert r.i2 == pytest.approx((r.q - 12) / r.q)


def test_bcg_reml_matches_metafor():
    r = meta_analysis(*bcg_effects(), method="REML")
    assert round(r.estimate, 4) == -0.7145
    assert round(r.se, 4) == 0.1798
    assert round(r.tau2, 4) == 0.3132
    assert round(100 * r.i2, 2) == 92.22
    assert r.iterations > 1
    assert r.pi_low < r.ci_low < r.estimate < r.ci_high < r.pi_high
    assert r.predictive_se == pytest.approx(math.sqrt(r.tau2 + r.se**2))


def test_homogeneous_studies_give_zero_tau2_and_one_study_is_its_own_estimate():
    r = meta_analysis([0.5, 0.5, 0.5], [0.1, 0.2, 0.3], method="REML")
    assert r.tau2 == 0 and r.i2 == 0 and r.estimate == pytest.approx(0.5)
    # weights ∝ 1/v: 10, 5, 3.33 → 55 %, 27 %, 18 %
    assert r.weights == pytest.approx((10 / (55 / 3), 5 / (55 / 3), (10 / 3) / (55 / 3)))
    one = meta_analysis([0.3], [0.04], method="DL")
    assert (one.estimate, one.se, one.tau2, one.method, one.q_p) == (0.3, 0.2, 0.0, "FE", None)


def test_bad_meta_analysis_input():
    with pytest.raises(ValueError, match="method must be one of"):
        meta_analysis([1, 2], [1, 1], method="PM")
    with pytest.raises(ValueError, match="variances positive"):
        meta_analysis([1, 2], [1, 0])
    with pytest.raises(ValueError, match="equally long"):
        meta_analysis([1, 2], [1])
