"""With few treated clusters the evaluation's verdicts rest on the wild cluster bootstrap (not on normal theory),
and with at most five they are inconclusive and say why — through the evaluation's own functions."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline import evaluation as ev
from pipeline.registers import build_panel, read_manifest
from som_models.simulate import write_delivery
from som_models.simulate.homelessness import MUNICIPALITIES, HomelessnessWorld, simulate_homelessness
from som_reference import asset


def _verdicts(treated: int, persons: int = 3000, seed: int = 3):
    rollout = tuple((k, 2018 + (i % 2)) for i, k in enumerate(MUNICIPALITIES[: 3 * treated: 3]))
    sim = simulate_homelessness(persons, seed, HomelessnessWorld(rollout=rollout))
    with tempfile.TemporaryDirectory() as tmp:
        built = build_panel(read_manifest(write_delivery(sim, Path(tmp) / "d")), b"k" * 32, max_gx_rows=0)
    loaded = ev.load_spec(asset("evaluations", "housing_first_demo.yaml"))
    effects = ev.realised_effects(built.panel, built.treatments, loaded.spec, loaded.seed, assigned_by="municipality")
    pre = ev.pretrend_frame(effects)
    return pre, {v.assumption: v for v in ev.verdicts(loaded.seed, effects.table, pre, loaded.spec)}


def test_ten_treated_municipalities_are_judged_by_the_wild_cluster_bootstrap():
    pre, verdicts = _verdicts(10)
    assert set(pre["treated_clusters"]) == {10} and pre["cluster_scores"].null_count() == 0
    for v in verdicts.values():
        assert v.evidence["assignment"]["treated_clusters"] == 10
        if v.evidence["gate"] is None:  # decided: by the few-cluster method, and the sentence says on how many
            assert v.evidence["decision_method"] == "wild cluster bootstrap", v.test
            assert "wild cluster bootstrap" in v.test and "10 treated cluster" in v.sentence
    # The planted kontanthjælp effect is far from the assumed one: the bootstrap still refutes it.
    assert verdicts["effect_path:kontanthjaelp_weeks"].label == "refuted-overestimated"


def test_four_treated_municipalities_are_inconclusive_and_say_why():
    pre, verdicts = _verdicts(4)
    assert set(pre["treated_clusters"]) == {4}
    for v in verdicts.values():
        assert v.label == "inconclusive"
        assert "4 treated cluster" in v.sentence


def test_enough_clusters_keep_normal_theory_and_store_no_scores():
    pre, verdicts = _verdicts(30, persons=2000)
    assert pre["cluster_scores"].null_count() == pre.height
    assert all(v.evidence["decision_method"] in (None, "normal", "wald") for v in verdicts.values())
