"""Plausibility checks on a proposal value: an implausible jump at the data boundary (and the rest) is refused."""

import math

import pytest

from som_models.plausibility import ImplausibleProposal, plausibility_problems, refuse_implausible

PARENT = {"success_rate": {"value": 0.2},
          "consequences": {"k": {"units": [-20, -18, -16, -14, -12, -10]}}}


def _changes(years, realised=None):
    realised = realised or {}
    return [{"parameter": "success_rate", "from": 0.2, "to": 0.2},
            {"parameter": "consequences.k", "years": [
                {"consequence_year": j, **({"realised": realised[j][0], "realised_se": realised[j][1]}
                                           if j in realised else {})} for j in years]}]


def _proposed(units, unverified=None):
    entry = {"units": units}
    if unverified is not None:
        entry["unverified"] = unverified
    return {"success_rate": {"value": 0.2}, "consequences": {"k": entry}}


def test_a_tail_left_at_the_refuted_values_is_a_jump_at_the_data_boundary():
    # the observed years moved by Σv/Σp = 28/68 ≈ 0.41; year 5 (no data) by 1.0: a jump of ≈ 2.4
    proposed = _proposed([-6, -6.5, -7, -8.5, -12, -10], unverified=[5, 6])
    (problem,) = plausibility_problems(PARENT, proposed, _changes([1, 2, 3, 4]))
    assert problem.check == "boundary_jump" and problem.consequence_year == 5
    assert "jump at the data boundary" in problem.message and "factor 1 " in problem.message
    with pytest.raises(ImplausibleProposal, match="refused \\(nothing written\\).*jump at the data boundary") as exc:
        refuse_implausible(PARENT, proposed, _changes([1, 2, 3, 4]), intervention="demo")
    assert exc.value.problems == (problem,)


def test_a_tail_scaled_in_line_with_the_evidence_passes():
    f = 28 / 68
    proposed = _proposed([-6, -6.5, -7, -8.5, round(-12 * f * 1.1, 3), round(-10 * f, 3)], unverified=[5, 6])
    assert plausibility_problems(PARENT, proposed, _changes([1, 2, 3, 4])) == ()
    refuse_implausible(PARENT, proposed, _changes([1, 2, 3, 4]))  # no exception


def _boundary(factor):
    return _proposed([-6, -6.5, -7, -8.5, -12 * factor, -10 * 28 / 68], unverified=[5, 6])


def test_the_jump_rule_by_hand():
    # window factor F_O = 28/68, |ln F_O| = 0.8873; allowed gap = max(ln 1.5, (2/3) · 0.8873) = 0.5915
    f, years = 28 / 68, _changes([1, 2, 3, 4])
    allowed = max(math.log(1.5), 2 / 3 * abs(math.log(f)))
    assert allowed == pytest.approx(0.5915, abs=1e-4)
    for gap in (0.55, -0.55):  # within the gap either way: passes
        assert plausibility_problems(PARENT, _boundary(f * math.exp(gap)), years) == ()
    for gap in (0.65, -0.65):  # beyond it either way: a jump
        checks = [p.check for p in plausibility_problems(PARENT, _boundary(f * math.exp(gap)), years)]
        assert checks == ["boundary_jump"]
    # following only a quarter of the way (in logs) is too little; half the way is enough
    assert [p.check for p in plausibility_problems(PARENT, _boundary(f**0.25), years)] == ["boundary_jump"]
    assert plausibility_problems(PARENT, _boundary(f**0.5), years) == ()
    # a wider max_jump allows more; an opposite sign of the factor is always a jump
    assert plausibility_problems(PARENT, _boundary(f * math.exp(0.65)), years, max_jump=2.0) == ()
    sign = [p.check for p in plausibility_problems(PARENT, _boundary(-0.1), years)]
    assert "boundary_jump" in sign and "sign_flip" in sign


def test_a_small_window_change_tolerates_a_factor_max_jump():
    # the window barely moved (F_O = 0.95): the year after it may differ by up to ×1.5, not more
    parent = {"success_rate": {"value": 0.2}, "consequences": {"k": {"units": [-10, -10, -10]}}}
    ok = {"success_rate": {"value": 0.2}, "consequences": {"k": {"units": [-9.5, -9.5, -10 * 0.95 / 1.45],
                                                                 "unverified": [3]}}}
    bad = {"success_rate": {"value": 0.2}, "consequences": {"k": {"units": [-9.5, -9.5, -10 * 0.95 / 1.6],
                                                                  "unverified": [3]}}}
    changes = [{"parameter": "consequences.k", "years": [{"consequence_year": 1}, {"consequence_year": 2}]}]
    assert plausibility_problems(parent, ok, changes) == ()
    assert [p.check for p in plausibility_problems(parent, bad, changes)] == ["boundary_jump"]


def test_unobserved_years_must_be_marked_unverified():
    f = 28 / 68
    proposed = _proposed([-6, -6.5, -7, -8.5, -12 * f, -10 * f], unverified=[5])
    (problem,) = plausibility_problems(PARENT, proposed, _changes([1, 2, 3, 4]))
    assert problem.check == "unverified_tail" and "year(s) 6 have no data" in problem.message


def test_sign_flips_need_significant_evidence_in_their_own_year():
    f = 28 / 68
    units = [3, -6.5, -7, -8.5, -12 * f, -10 * f]
    flipped = _proposed(units, unverified=[5, 6])
    # year 1 flips to +3; its realised estimate +4 ± 1 shows the new sign significantly: allowed
    assert plausibility_problems(PARENT, flipped, _changes([1, 2, 3, 4], {1: (4.0, 1.0)})) == ()
    # +4 ± 3 is not significant: refused
    (problem,) = plausibility_problems(PARENT, flipped, _changes([1, 2, 3, 4], {1: (4.0, 3.0)}))
    assert problem.check == "sign_flip" and "does not show the new sign" in problem.message
    # a flip in a year without data is always refused
    tail_flip = _proposed([-6, -6.5, -7, -8.5, -12 * f, 1.0], unverified=[5, 6])
    (problem,) = plausibility_problems(PARENT, tail_flip, _changes([1, 2, 3, 4]))
    assert problem.check == "sign_flip" and problem.consequence_year == 6 and "without data" in problem.message


def test_magnitude_and_success_rate():
    proposed = {"success_rate": {"value": 1.3}, "consequences": {"k": {"units": [-250, -18, -16, -14, -12, -10]}}}
    checks = [p.check for p in plausibility_problems(PARENT, proposed)]
    assert checks == ["success_rate", "magnitude"]
