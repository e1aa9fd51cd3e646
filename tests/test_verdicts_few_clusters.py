"""Verdicts with treatment assigned by cluster: few treated clusters gate or change the decision."""

import math

import pytest
from scipy import stats

from som_models.verdicts import AssignmentInfo
from tests.test_verdicts import run, table

D = 2.1 * math.sqrt(8) / 2  # moves the path mean by z = 2.1


def test_at_most_five_treated_clusters_without_an_exact_answer_is_inconclusive():
    info = {"effect_path:nights": AssignmentInfo(clusters=12, treated_clusters=4, level="municipality")}
    far = table(nights=((-5, 2), (-5, 2)))  # z ≈ 7: refuted with person-level inference
    got = run(far, inference=info)
    v = got["effect_path:nights"]
    assert v.label == "inconclusive" and v.evidence["gate"] == "too-few-clusters"
    assert "the evidence rests on 4 treated clusters (municipality; 12 in all)" in v.sentence
    assert v.ci_low is None and v.ci_high is None and v.p_adjusted is None
    # it leaves the family: the success rate is tested alone
    assert got["success_rate"].evidence["family_size"] == 1
    # a wild bootstrap p-value does not rescue ≤ 5 treated clusters
    info_wild = {"effect_path:nights": AssignmentInfo(12, 4, "municipality", wild_p=0.001)}
    assert run(far, inference=info_wild)["effect_path:nights"].label == "inconclusive"


def test_an_exact_randomisation_answer_decides_with_very_few_clusters():
    far = table(nights=((-5, 2), (-5, 2)))
    info = {"effect_path:nights": AssignmentInfo(12, 4, "municipality", exact_p=1 / 495)}
    v = run(far, inference=info)["effect_path:nights"]
    assert v.label == "refuted-overestimated" and v.p_value == pytest.approx(1 / 495)
    assert v.evidence["decision_method"] == "randomisation inference" and v.ci_low is None
    assert "rests on 4 treated clusters" in v.sentence and "randomisation inference" in v.sentence
    # not refuted, and without an exact equivalence test it cannot be consistent
    quiet = {"effect_path:nights": AssignmentInfo(12, 4, "municipality", exact_p=0.6)}
    v = run(table(), inference=quiet)["effect_path:nights"]
    assert v.label == "inconclusive" and "without a randomisation inference equivalence test" in v.sentence
    exact_eq = {"effect_path:nights": AssignmentInfo(12, 4, "municipality", exact_p=0.6, exact_tost_p=0.01)}
    assert run(table(), inference=exact_eq)["effect_path:nights"].label == "consistent"


def test_fewer_than_twenty_treated_clusters_uses_the_few_cluster_p_value_and_says_so():
    t = table(nights=((-20 + D, 2), (-10 + D, 2)))
    # normal theory alone would refute (z = 2.1, tested alone) ...
    assert run(t, tested=["effect_path:nights"])["effect_path:nights"].label == "refuted-overestimated"
    # ... the wild cluster bootstrap over 9 treated municipalities does not
    info = {"effect_path:nights": AssignmentInfo(18, 9, "municipality", wild_p=0.09)}
    v = run(t, tested=["effect_path:nights"], inference=info)["effect_path:nights"]
    assert v.label == "inconclusive" and v.p_value == pytest.approx(0.09)
    assert v.evidence["decision_method"] == "wild cluster bootstrap" and v.ci_low is None
    assert "The evidence rests on 9 treated clusters (municipality; 18 in all)" in v.sentence
    # not refuted; the normal TOST alone would show equivalence, but with the bootstrap deciding, `consistent`
    # needs the bootstrap's own equivalence p-value
    assert v.evidence["tost"]["method"] is None and "wild cluster bootstrap equivalence test" in v.sentence
    eq = {"effect_path:nights": AssignmentInfo(18, 9, "municipality", wild_p=0.09, wild_tost_p=0.02)}
    assert run(t, tested=["effect_path:nights"], inference=eq)["effect_path:nights"].label == "consistent"
    # without a few-cluster p-value the cluster-robust t(G − 1) test decides, with a warning in the sentence:
    # z = 2.1 is p = 0.036 under the normal but 0.051 under t(17), so not refuted ...
    plain = {"effect_path:nights": AssignmentInfo(18, 9, "municipality")}
    v = run(t, tested=["effect_path:nights"], inference=plain)["effect_path:nights"]
    assert not v.label.startswith("refuted") and v.p_value == pytest.approx(2 * stats.t.sf(2.1, 17))
    assert "cluster-robust t(17) test was used" in v.sentence and "can overstate the precision" in v.sentence
    assert v.statistic == pytest.approx(2.1) and "t = 2.10" in v.sentence
    # ... while a shift of z = 2.6 is refuted, with the t(17) interval the decision used
    t26 = table(nights=((-20 + D * 2.6 / 2.1, 2), (-10 + D * 2.6 / 2.1, 2)))
    v = run(t26, tested=["effect_path:nights"], inference=plain)["effect_path:nights"]
    assert v.label == "refuted-overestimated"
    half = v.ci_high - v.realised
    assert half == pytest.approx(stats.t.ppf(0.975, 17) * v.evidence["se"])
    # with 20 or more treated clusters nothing changes
    many = {"effect_path:nights": AssignmentInfo(60, 30, "municipality", wild_p=0.09)}
    v = run(t, tested=["effect_path:nights"], inference=many)["effect_path:nights"]
    assert v.label == "refuted-overestimated" and "rests on" not in v.sentence


def test_assignment_info_is_validated():
    with pytest.raises(ValueError, match="treated clusters of only"):
        AssignmentInfo(3, 4, "municipality")
    with pytest.raises(ValueError, match="exact_p must be a p-value"):
        AssignmentInfo(10, 4, "municipality", exact_p=1.5)
    with pytest.raises(ValueError, match="level"):
        AssignmentInfo(10, 4, "")
