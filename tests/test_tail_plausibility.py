"""Plausibility checks on a proposal value: an implausible jump at the data boundary (and the rest) is refused."""

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


def test_the_jump_limit_is_a_factor_either_way_and_a_sign_change_of_the_factor_is_a_jump():
    f = 28 / 68
    up = _proposed([-6, -6.5, -7, -8.5, -12 * f * 1.6, -10 * f], unverified=[5, 6])
    down = _proposed([-6, -6.5, -7, -8.5, -12 * f / 1.6, -10 * f], unverified=[5, 6])
    for proposed in (up, down):
        assert [p.check for p in plausibility_problems(PARENT, proposed, _changes([1, 2, 3, 4]))] == ["boundary_jump"]
    assert plausibility_problems(PARENT, up, _changes([1, 2, 3, 4]), max_jump=1.7) == ()


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
