"""Two kinds of consequence profile (issue 11, item 5): schema, explicit conversion, seeds, display."""

from pathlib import Path

import pytest
import yaml

from som_models.parameters import (
    CONSEQUENCE_KINDS,
    ParameterError,
    check_kinds_kept,
    convert_profile,
    parse_parameter_set,
)
from som_models.projection import project

ROOT = Path(__file__).resolve().parents[1]


def doc(**consequences):
    return {
        "intervention": "x", "target_group": "tg", "start_year": 2020, "horizon_years": 6, "price_year": 2024,
        "cohorts": [{"year": 2020, "participants": 100}],
        "success_measure": {"name": "ok", "outcome": "nights", "rule": "zero"},
        "success_rate": {"value": 0.2, "se": 0.05},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": consequences or {"weeks": {"kind": "descriptive", "units": [-10, -8], "se": [2, 2]}},
        "prices": {"weeks": {"kommune": 100}, "nights": {"kommune": 10}},
    }


def test_kind_is_parsed_validated_and_defaults_to_causal_when_not_stated():
    p = parse_parameter_set(doc(weeks={"kind": "descriptive", "units": [-10]}, nights={"units": [-5]}, beds=[-1]) | {
        "prices": {"weeks": {"kommune": 1}, "nights": {"kommune": 1}, "beds": {"region": 1}}})
    assert p.kinds() == {"weeks": "descriptive", "nights": "causal", "beds": "causal"}
    assert [c.kind_stated for c in p.consequences] == [True, False, False]
    assert "weeks descriptive, nights causal (not stated; assumed)" in p.describe_kinds()
    with pytest.raises(ParameterError, match=r"consequences\.weeks\.kind: 'causl' is not a kind of consequence "
                                             r"profile \(allowed: causal, descriptive\)"):
        parse_parameter_set(doc(weeks={"kind": "causl", "units": [-10]}))
    assert CONSEQUENCE_KINDS == ("causal", "descriptive")


def test_kind_is_required_for_new_documents():
    with pytest.raises(ParameterError, match=r"consequences\.weeks\.kind: required key missing"):
        parse_parameter_set(doc(weeks={"units": [-10]}), require_kind=True)
    with pytest.raises(ParameterError, match=r"consequences\.weeks\.kind: required key missing — write the item as a mapping"):
        parse_parameter_set(doc(weeks=[-10]), require_kind=True)
    assert parse_parameter_set(doc(), require_kind=True).kinds() == {"weeks": "descriptive"}


@pytest.mark.parametrize("name, kind", [("housing_first_demo", "causal"), ("youth_crime_demo", "causal"),
                                        ("ips_employment_demo", "descriptive"),
                                        ("children_placement_demo", "descriptive")])
def test_every_seed_states_the_kind_of_each_item(name, kind):
    raw = yaml.safe_load((ROOT / "assets" / "parameters" / f"{name}.yaml").read_text(encoding="utf-8"))
    p = parse_parameter_set(raw, require_kind=True)
    assert set(p.kinds().values()) == {kind}
    assert all(c.kind_stated for c in p.consequences)


def test_the_projection_is_the_same_arithmetic_for_both_kinds_and_names_them():
    causal = parse_parameter_set(doc(weeks={"kind": "causal", "units": [-10, -8]}))
    descriptive = parse_parameter_set(doc(weeks={"kind": "descriptive", "units": [-10, -8]}))
    a, b = project(causal), project(descriptive)
    # 100 participants × 0.2 × (10 + 8) weeks × 100 kr, before discounting
    assert a.rows.filter(a.rows["item"] == "weeks")["amount"].sum() == pytest.approx(36_000)
    assert a.npv == b.npv
    assert "weeks causal" in a.notes[0] and "weeks descriptive" in b.notes[0]


def test_convert_profile_is_explicit_and_recorded():
    p = parse_parameter_set(doc(weeks={"kind": "causal", "units": [-10, -8], "se": [2, 2]}) | {"provenance": {"note": "seed"}})
    q = convert_profile(p, "weeks", to="descriptive", reason="the numbers are SØM's knowledge-base contrast", by="analyst")
    assert q.kinds() == {"weeks": "descriptive"} and q.consequence("weeks").units == (-10, -8)
    (rec,) = q.document["provenance"]["conversions"]
    assert rec == {"item": "weeks", "from": "causal", "to": "descriptive",
                   "reason": "the numbers are SØM's knowledge-base contrast", "units_before": [-10.0, -8.0],
                   "units_after": [-10, -8], "relabel": True, "parent_content_hash": p.content_hash, "by": "analyst"}
    assert q.document["provenance"]["note"] == "seed"  # the rest of the provenance is kept
    assert p.kinds() == {"weeks": "causal"} and "conversions" not in p.document["provenance"]  # input untouched
    check_kinds_kept(p, q)  # recorded: allowed
    back = convert_profile(q, "weeks", to="causal", reason="re-estimated causally", units=[-4, -3], se=[1, 1])
    assert back.consequence("weeks").units == (-4, -3) and back.consequence("weeks").se == (1, 1)
    assert [c["to"] for c in back.document["provenance"]["conversions"]] == ["descriptive", "causal"]
    assert back.document["provenance"]["conversions"][1]["relabel"] is False


@pytest.mark.parametrize("kwargs, message", [
    ({"to": "causal", "reason": "x"}, r"already causal; nothing to convert"),
    ({"to": "descriptive", "reason": "  "}, r"converting causal → descriptive needs a reason"),
    ({"to": "effect", "reason": "x"}, r"cannot convert to 'effect'"),
    ({"to": "descriptive", "reason": "x", "se": [1, 1]}, r"new standard errors need new units"),
    ({"to": "descriptive", "reason": "x", "units": [-1, -2, -3]}, r"se: give se for the 3 new units"),
])
def test_convert_profile_refuses_silent_or_unclear_conversion(kwargs, message):
    p = parse_parameter_set(doc(weeks={"kind": "causal", "units": [-10, -8], "se": [2, 2]}))
    with pytest.raises(ParameterError, match=message):
        convert_profile(p, "weeks", **kwargs)
    with pytest.raises(ParameterError, match=r"consequences\.beds: not a consequence item"):
        convert_profile(p, "beds", to="descriptive", reason="x")


def test_a_kind_changed_without_a_recorded_conversion_is_refused():
    p = parse_parameter_set(doc(weeks={"kind": "causal", "units": [-10, -8]}))
    silently = parse_parameter_set(doc(weeks={"kind": "descriptive", "units": [-10, -8]}))
    with pytest.raises(ParameterError, match=r"consequences\.weeks\.kind: changed from causal to descriptive without a "
                                             r"recorded conversion"):
        check_kinds_kept(p, silently)
    implicit = parse_parameter_set(doc(weeks={"units": [-10, -8]}))  # not stated = causal: the same kind
    check_kinds_kept(implicit, p)
