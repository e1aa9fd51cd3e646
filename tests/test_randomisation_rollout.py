"""Randomisation inference over a roll-out by cluster: the statistic is the evaluation's estimator, the test has
its level under a true sharp null, and with ≤ 5 treated clusters the evaluation runs it and the verdict uses it."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline import evaluation as ev
from pipeline.registers import build_panel, read_manifest
from som_models.estimators import aggregate, att_gt
from som_models.estimators.randomisation import RolloutNotPermutable, rollout_path_inference
from som_models.simulate import write_delivery
from som_models.simulate.homelessness import simulate_homelessness
from som_reference import asset


def _rollout(seed: int, clusters: int = 10, treated: int = 3, persons: int = 15, effect: float = 1.0) -> pl.DataFrame:
    """Clusters × persons × years 2000–2006; ``treated`` clusters adopt in 2003 (everybody in them), with a
    municipality × year shock and the effect ``effect · (1 + 0.2 e)`` from adoption on."""
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2007)
    adopt = np.zeros(clusters, dtype=int)
    adopt[rng.permutation(clusters)[:treated]] = 2003
    muni = np.repeat(np.arange(clusters), persons)
    g = adopt[muni]
    e = years[None, :] - g[:, None]
    y = (rng.normal(size=muni.size)[:, None] + rng.normal(0, 0.3, (clusters, years.size))[muni]
         + rng.normal(size=(muni.size, years.size)) + np.where((g[:, None] > 0) & (e >= 0), effect * (1 + 0.2 * e), 0))
    n = muni.size
    return pl.DataFrame({"id": np.repeat(np.arange(n), years.size), "year": np.tile(years, n),
                         "g": np.repeat(g, years.size), "muni": np.repeat(muni, years.size), "y": y.ravel()})


KW = dict(outcome="y", id_col="id", time_col="year", group_col="g", cluster_col="muni")


def test_the_statistic_is_the_estimators_mean_path_and_all_assignments_are_enumerated():
    data = _rollout(1)
    dyn = aggregate(att_gt(data, outcome="y", id_col="id", time_col="year", group_col="g", cluster_col="muni"),
                    "dynamic")
    path = {1: 1.2, 2: 1.4}
    ri = rollout_path_inference(data, path=path, nuisance={0: dyn.estimates[0], 3: dyn.estimates[3]}, **KW)
    assert ri.statistic == pytest.approx((dyn.estimates[1] + dyn.estimates[2]) / 2 - 1.3, abs=1e-10)
    assert ri.exact and ri.assignments == math.comb(10, 3) == ri.draws and ri.treated_clusters == 3
    assert ri.tost_p is None and ri.event_times == (1, 2)
    assert "all 120 assignments (exact)" in ri.describe()
    # a far-off assumption is refuted at the smallest p-value the 120 assignments allow
    far = rollout_path_inference(data, path={1: -3.0, 2: -3.0}, **KW)
    assert far.p_value == pytest.approx(1 / 120)


def test_the_test_has_its_level_under_a_true_sharp_null_and_power_against_a_false_one():
    rejections = {"true": 0, "false": 0, "equivalent": 0}
    reps = 100
    for seed in range(reps):
        data = _rollout(seed, clusters=9, treated=3, persons=10)
        truth = {1: 1.2, 2: 1.4}
        ri = rollout_path_inference(data, path=truth, nuisance={0: 1.0, 3: 1.6}, margin=1.3, **KW)
        rejections["true"] += ri.p_value <= 0.05
        rejections["equivalent"] += (ri.tost_p or 1) <= 0.05
        wrong = rollout_path_inference(data, path={1: 0.0, 2: 0.0}, nuisance={0: 0.0, 3: 0.0}, **KW)
        rejections["false"] += wrong.p_value <= 0.05
    # exact test: P(p ≤ 0.05) ≤ 0.05 (84 assignments, so p ≤ 0.05 means at most 4 of them as extreme);
    # 100 replications: allow 3 Monte Carlo SEs
    assert rejections["true"] / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)
    assert rejections["false"] / reps >= 0.8
    assert rejections["equivalent"] / reps >= 0.5  # the margin is wide: equivalence is usually shown


def test_clusters_that_mix_adoption_times_cannot_be_permuted():
    data = _rollout(2).with_columns(pl.when((pl.col("muni") == 0) & (pl.col("id") % 2 == 0)).then(2004)
                                    .otherwise(pl.col("g")).alias("g"))
    with pytest.raises(RolloutNotPermutable, match="clusters mix persons"):
        rollout_path_inference(data, path={1: 1.0}, **KW)


def _world(seed: int = 3):
    sim = simulate_homelessness(3000, seed)
    with tempfile.TemporaryDirectory() as tmp:
        built = build_panel(read_manifest(write_delivery(sim, Path(tmp) / "d")), b"k" * 32, max_gx_rows=0)
    return built, ev.load_spec(asset("evaluations", "housing_first_demo.yaml"))


def _run(panel, treatments, loaded):
    effects = ev.realised_effects(panel, treatments, loaded.spec, loaded.seed, assigned_by="municipality")
    pre = ev.pretrend_frame(effects, ev.rollout_inference(panel, treatments, loaded.spec, loaded.seed, effects,
                                                           assigned_by="municipality"))
    return pre, {v.assumption: v for v in ev.verdicts(loaded.seed, effects.table, pre, loaded.spec)}


def test_four_municipalities_rolled_out_to_everybody_are_judged_by_randomisation_inference():
    built, loaded = _world()
    # everybody living in four municipalities (and never moving) is offered the programme from 2018 / 2019
    stayers = (built.panel.group_by("person_id").agg(pl.col("municipality").n_unique().alias("k"),
                                                    pl.col("municipality").first())
               .filter(pl.col("k") == 1))
    big = stayers.group_by("municipality").len().sort("len", descending=True).get_column("municipality")[:4].to_list()
    panel = built.panel.join(stayers.select("person_id"), on="person_id")
    starts = {m: 2018 + (i % 2) for i, m in enumerate(big)}
    treated = stayers.filter(pl.col("municipality").is_in(big))
    treatments = treated.select("person_id", pl.lit("HOUSING_FIRST").alias("intervention"),
                                pl.col("municipality").replace_strict(starts, return_dtype=pl.Int64).alias("start_year"),
                                (pl.col("municipality").replace_strict(starts, return_dtype=pl.Int64) + 1).alias("end_year"),
                                pl.lit(None, dtype=pl.Utf8).alias("arm"))
    pre, verdicts = _run(panel, treatments, loaded)
    assert set(pre["treated_clusters"]) == {4} and pre["ri_p"].null_count() == 0
    assert all("randomisation inference over the roll-out of 4 of" in d for d in pre["ri_detail"])
    for v in verdicts.values():
        assert v.evidence["gate"] != "too-few-clusters"
        if v.evidence["gate"] is None:
            assert v.evidence["decision_method"] == "randomisation inference"
            assert v.p_value == pytest.approx(pre.filter(pl.col("outcome") == v.outcome)["ri_p"][0])
            assert "4 treated clusters" in v.sentence


def test_a_roll_out_to_some_persons_of_four_municipalities_is_inconclusive_and_says_why():
    from som_models.simulate.homelessness import MUNICIPALITIES, HomelessnessWorld

    rollout = tuple((k, 2018 + (i % 2)) for i, k in enumerate(MUNICIPALITIES[:12:3]))
    sim = simulate_homelessness(3000, 3, HomelessnessWorld(rollout=rollout))
    with tempfile.TemporaryDirectory() as tmp:
        built = build_panel(read_manifest(write_delivery(sim, Path(tmp) / "d")), b"k" * 32, max_gx_rows=0)
    loaded = ev.load_spec(asset("evaluations", "housing_first_demo.yaml"))
    pre, verdicts = _run(built.panel, built.treatments, loaded)
    assert pre["ri_p"].null_count() == pre.height
    for v in verdicts.values():
        assert v.label == "inconclusive" and v.evidence["gate"] == "too-few-clusters"
        assert "could not be given" in v.sentence and "mix persons" in v.sentence
