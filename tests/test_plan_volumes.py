"""Simulated plans of the course-length and cost assumptions: the simulated test is the verdicts' own test, and
its power agrees with the normal-theory power where that holds."""

import numpy as np
import polars as pl
import pytest
import yaml
from scipy import stats

from som_models.parameters import parse_parameter_set
from som_models.planning.volumes import band_decisions, simulate_band_power
from som_models.volume_verdicts import COST, VolumeSettings, assumed_cost, judge_volumes
from som_reference import asset


def test_simulated_band_test_decides_as_the_cost_verdict():
    params = parse_parameter_set(yaml.safe_load(asset("parameters", "housing_first_demo.yaml").read_text()))
    a = assumed_cost(params)
    delta = 0.2 * abs(a)
    rng = np.random.default_rng(11)
    seen = set()
    for truth in (a, 1.15 * a, 1.3 * a, 1.5 * a, 0.6 * a, 0.85 * a) * 3:
        sample = rng.gamma(4.0, truth / 4.0, size=60)
        refuted, consistent = band_decisions(sample[None, :], a, delta, 0.05)
        (v,) = judge_volumes(params, costs=pl.DataFrame({"amount": sample}), settings=VolumeSettings(),
                             tested=(COST,))
        label = "refuted" if refuted[0] else "consistent" if consistent[0] else "inconclusive"
        assert v.label.split("-")[0] == label
        seen.add(label)
    assert seen == {"refuted", "consistent", "inconclusive"}  # every branch compared


def test_simulated_power_matches_normal_theory_for_a_large_sample():
    # normal values with sd 1, n = 400: the mean test's power against A + 2δ is Φ(δ/se − z) (far tail negligible)
    a, delta, n = 10.0, 0.1, 400
    sim = simulate_band_power(n, a, delta, 0.05, base=np.random.default_rng(1).normal(a, 1.0, 20_000), draws=4000,
                              seed=3)
    se = 1.0 / np.sqrt(n)
    z = stats.norm.isf(0.025)
    assert sim.refute_up == pytest.approx(stats.norm.cdf(delta / se - z), abs=0.03)
    assert sim.confirm == pytest.approx(max(0.0, 2 * stats.norm.cdf(delta / se - stats.norm.isf(0.05)) - 1), abs=0.03)
