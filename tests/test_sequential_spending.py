"""Alpha spending over repeated looks (som_models.sequential): hand-computed values, a published reference, the
exact two-look formula, a simulation of the error over looks, the look identity, and judge(looks=...)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import integrate, stats

from som_models.sequential import (
    LookHistory,
    PriorLook,
    boundaries,
    critical_values,
    information_fraction,
    obf_spending,
    plan_look,
    pocock_spending,
    reference_information,
    repeated_p,
    spending,
)

Z975 = 1.959963984540054  # z_{0.975}


def test_hand_computed_spending_values():
    # α*(t) = 2 − 2Φ(z_{0.975}/√t): t = 1/2 → 2 − 2Φ(2.7718076) = 2 · 0.0027873 = 0.0055746
    assert obf_spending(0.5, 0.05) == pytest.approx(0.0055746, abs=1e-7)
    # t = 1/4 → 2 − 2Φ(3.9199280) = 2 · 4.4287e-5 = 8.857e-5; t = 1 → α
    assert obf_spending(0.25, 0.05) == pytest.approx(8.857e-5, rel=1e-3)
    assert obf_spending(1.0, 0.05) == pytest.approx(0.05, abs=1e-15) and obf_spending(0.0, 0.05) == 0.0
    # t = I / (I + I₀): I = 3, I₀ = 1 → 3/4
    assert information_fraction(3.0, 1.0) == 0.75
    # I₀ = ((z_{0.975} + z_{0.8}) / δ)² with δ = 0.5: (2.8015852 / 0.5)² = 5.6031704² = 31.395519
    assert reference_information(0.05, 0.5, 123.0) == pytest.approx(31.395519, abs=1e-5)
    assert reference_information(0.05, 0.0, 123.0) == 123.0  # a zero assumption: the first look's information


def test_first_boundary_is_z_over_root_t():
    # at look 1, P(|Z| ≥ c₁) = α*(t₁) = 2 − 2Φ(z/√t₁), so c₁ = z_{0.975}/√t₁: I = 1, I₀ = 3 → t = 1/4 → c₁ = 3.91993
    assert boundaries([1.0], 3.0, 0.05, "lan-demets-obf")[0] == pytest.approx(2 * Z975, abs=1e-9)


def test_published_lan_demets_obf_bounds():
    """gsDesign sfLDOF, one-sided α = 2.5 %, three equally spaced looks: 3.7103, 2.5114, 1.9930 (Jennison &
    Turnbull 2000 ch. 7; the gsDesign manual's default design). Two-sided with per-side spending α*(t; 0.025): the
    crossing of the opposite boundary changes the third decimal by less than 1e-4."""
    spent = [2 * obf_spending(t, 0.025) for t in (1 / 3, 2 / 3, 1)]  # per side α*(t; 2.5 %), both sides
    c = critical_values([1.0, 2.0, 3.0], spent)
    assert c == pytest.approx((3.7103, 2.5114, 1.9930), abs=2e-4)


def test_two_looks_match_the_exact_bivariate_formula():
    infos, ref = [1.0, 2.5], 2.0
    c1, c2 = boundaries(infos, ref, 0.05, "lan-demets-obf")
    r = math.sqrt(infos[0] / infos[1])
    s = math.sqrt(1 - r * r)

    def crossing(z):
        return stats.norm.pdf(z) * (stats.norm.cdf((-c2 - r * z) / s) + stats.norm.sf((c2 - r * z) / s))

    exact = integrate.quad(crossing, -c1, c1, epsabs=1e-13, epsrel=1e-12)[0]
    t1, t2 = (information_fraction(i, ref) for i in infos)
    assert exact == pytest.approx(obf_spending(t2, 0.05) - obf_spending(t1, 0.05), abs=1e-9)
    assert c1 == pytest.approx(Z975 / math.sqrt(t1), abs=1e-9)


def test_error_over_five_looks_by_simulation():
    """Brownian motion in information time (cumulative data): the share of paths crossing a boundary at any of
    five looks equals α*(t₅) (< α), within Monte Carlo error; the unadjusted rule exceeds α."""
    rng = np.random.default_rng(1)
    infos, ref = np.array([1.0, 2.0, 3.5, 5.0, 8.0]), 2.0
    c = np.array(boundaries(infos, ref, 0.05, "lan-demets-obf"))
    increments = rng.standard_normal((200_000, 5)) * np.sqrt(np.diff(infos, prepend=0.0))
    z = np.cumsum(increments, axis=1) / np.sqrt(infos)
    crossed = (np.abs(z) >= c).any(axis=1).mean()
    target = obf_spending(information_fraction(8.0, ref), 0.05)
    assert abs(crossed - target) < 4 * math.sqrt(target * (1 - target) / 200_000)
    assert crossed < 0.05 < (np.abs(z) >= Z975).any(axis=1).mean()


def test_linear_and_pocock_spending_hand_computed_and_by_simulation():
    # linear: α*(t) = α t; Pocock-type: α ln(1 + (e − 1) t) — t = 1/2: 0.025 and 0.05 · ln(1.8591409) = 0.0310057
    assert spending("lan-demets-linear", 0.5, 0.05) == pytest.approx(0.025, abs=1e-15)
    assert pocock_spending(0.5, 0.05) == pytest.approx(0.0310057, abs=1e-7)
    assert pocock_spending(1.0, 0.05) == pytest.approx(0.05, abs=1e-15) and pocock_spending(0.0, 0.05) == 0.0
    # first boundary: P(|Z| ≥ c₁) = α*(t₁) → c₁ = z_{1 − α*/2}; I = 1, I₀ = 1 → t = 1/2 → linear c₁ = z_{0.9875}
    assert boundaries([1.0], 1.0, 0.05)[0] == pytest.approx(2.2414027, abs=1e-6)
    assert boundaries([1.0], 1.0, 0.05, "lan-demets-pocock")[0] == pytest.approx(stats.norm.isf(0.0310057 / 2), abs=1e-5)
    # five looks of a Brownian motion: the share crossing at any look is α*(t₅) under each rule
    rng = np.random.default_rng(2)
    infos, ref = np.array([1.0, 2.0, 3.5, 5.0, 8.0]), 2.0
    increments = rng.standard_normal((200_000, 5)) * np.sqrt(np.diff(infos, prepend=0.0))
    z = np.cumsum(increments, axis=1) / np.sqrt(infos)
    for rule in ("lan-demets-linear", "lan-demets-pocock"):
        c = np.array(boundaries(infos, ref, 0.05, rule))
        target = spending(rule, information_fraction(8.0, ref), 0.05)
        crossed = (np.abs(z) >= c).any(axis=1).mean()
        assert abs(crossed - target) < 4 * math.sqrt(target * (1 - target) / 200_000), rule


def test_repeated_p_is_below_alpha_exactly_when_the_boundary_is_crossed():
    infos, ref = [1.0, 2.0, 3.0], 2.0
    c = boundaries(infos, ref, 0.05)[-1]
    assert repeated_p(c * 1.001, infos, ref) < 0.05 < repeated_p(c * 0.999, infos, ref)
    assert repeated_p(c, infos, ref) == pytest.approx(0.05, rel=1e-6)
    assert repeated_p(1.0, infos, ref) > 2 * stats.norm.sf(1.0)  # never smaller than the fixed-sample p here


def _prior(plan, vintage):
    rec = plan.record()
    return PriorLook.from_record(rec, vintage)


def test_a_look_on_unchanged_data_is_the_same_look_and_spends_nothing():
    kw = dict(hypothesis="h", alpha=0.05, delta=0.1)
    first = plan_look((), data_hash="a" * 64, vintage="2021-06", information=400.0, **kw)
    second = plan_look((_prior(first, "2021-06"),), data_hash="b" * 64, vintage="2022-06", information=800.0, **kw)
    assert (first.look, second.look, second.reused) == (1, 2, False)
    prior = (_prior(first, "2021-06"), _prior(first, "2021-06"), _prior(second, "2022-06"))  # a rerun stored twice
    again = plan_look(prior, data_hash="a" * 64, vintage="2021-06", information=400.0, **kw)
    assert (again.look, again.reused) == (1, True) and again.critical(0.05) == first.critical(0.05)
    third = plan_look(prior, data_hash="c" * 64, vintage="2023-06", information=1200.0, **kw)
    assert third.look == 3 and third.informations == (400.0, 800.0, 1200.0)
    assert third.reference_information == first.reference_information == reference_information(0.05, 0.1, 0)
    other = plan_look(prior, hypothesis="another", data_hash="c" * 64, vintage="2023-06", information=1200.0,
                      alpha=0.05, delta=0.1)
    assert other.look == 1  # looks at another hypothesis (a changed assumption) do not count
    # a look with no more information than an earlier one (a backfill of an older vintage) gets no α
    older = plan_look(prior, data_hash="d" * 64, vintage="2020-06", information=300.0, **kw)
    assert older.look == 3 and not older.adds_information and math.isinf(older.critical(0.05))
    assert older.repeated_p(50.0) == 1.0 and older.alpha_spent() == second.alpha_spent()


# ---- judge(looks=...) -------------------------------------------------------------------------------------

def _params():
    from tests.test_verdicts import PARAMS  # success rate 0.2 on outcome "ok", event time 1

    return PARAMS


def _estimates(success: float, se: float) -> pl.DataFrame:
    from tests.test_verdicts import table

    return table(sr=(success, se))


def test_judge_records_the_look_and_uses_the_repeated_interval():
    from som_models.verdicts import VerdictSettings, judge

    params = _params()
    st = VerdictSettings()
    est = _estimates(params.success_rate.value - 0.08, 0.03)  # z ≈ −2.67: refuted by a single analysis
    single = judge(params, est, {}, st, tested=["success_rate"])[0]
    (v1,) = judge(params, est, {}, st, tested=["success_rate"], looks=LookHistory("a" * 64, "2021-06"))
    seq = v1.evidence["sequential"]
    assert single.label == "refuted-overestimated"
    assert seq["look"] == 1 and seq["reused"] is False and 0 < seq["information_fraction"] < 1
    assert seq["information"] == pytest.approx(1 / 0.03 ** 2)
    assert seq["decision_nominal_level"] == pytest.approx(2 * stats.norm.sf(seq["decision_boundary"]))
    # the printed interval is the repeated confidence interval at the decision boundary
    assert v1.ci_high - v1.ci_low == pytest.approx(2 * seq["decision_boundary"] * 0.03)
    refuted = v1.label.startswith("refuted")
    assert refuted == (not v1.ci_low <= params.success_rate.value <= v1.ci_high)
    assert refuted == (abs(-0.08 / 0.03) >= seq["decision_boundary"])
    assert "Look 1 of this assumption on vintage 2021-06" in v1.sentence and "repeated p-value" in v1.test
    # the same data again: the same look, the same verdict
    prior = (PriorLook.from_record(seq, "2021-06"),)
    (again,) = judge(params, est, {}, st, tested=["success_rate"], looks=LookHistory("a" * 64, "2021-06", prior))
    assert (again.label, again.ci_low, again.p_adjusted) == (v1.label, v1.ci_low, v1.p_adjusted)
    assert again.evidence["sequential"]["reused"] is True and "no new α spent" in again.sentence
    # a new vintage with more information is look 2
    (v2,) = judge(params, _estimates(params.success_rate.value - 0.08, 0.02), {}, st, tested=["success_rate"],
                  looks=LookHistory("b" * 64, "2022-06", prior))
    assert v2.evidence["sequential"]["look"] == 2 and v2.label == "refuted-overestimated"
    assert v2.evidence["sequential"]["alpha_spent"] > seq["alpha_spent"]
    # switched off: the fixed-sample verdict
    off = judge(params, est, {}, VerdictSettings(sequential="none"), tested=["success_rate"],
                looks=LookHistory("a" * 64))[0]
    assert off.to_record() == single.to_record()


def test_the_spec_chooses_the_rule():
    from som_models.evaluation_spec import parse_evaluation_spec
    from som_models.parameters import ParameterError

    doc = {"evaluation": "e", "intervention": "x", "parameters": "p.yaml"}
    assert parse_evaluation_spec(doc).verdict.sequential == "lan-demets-linear"
    assert parse_evaluation_spec({**doc, "sequential": "none"}).verdict.sequential == "none"
    assert parse_evaluation_spec({**doc, "sequential": "lan-demets-obf"}).verdict.sequential == "lan-demets-obf"
    with pytest.raises(ParameterError, match="sequential: 'pocock' is not one of lan-demets-linear, lan-demets-pocock"):
        parse_evaluation_spec({**doc, "sequential": "pocock"})
