"""Known truth for `som plan`: planned power vs the realised rate of refutations (and confirmations) in simulated worlds.

For each design — person-level assignment, and a roll-out by municipality (clusters with a cluster-year shock) —
the script

1. simulates a *baseline* world (untreated, its own seed) and estimates the variance components from it
   (:func:`som_models.planning.estimate_components`), as ``som plan --baseline`` does;
2. plans the level test of an effect path (mean of the event-time ATTs over the consequence years observed at the
   vintage) with :func:`som_models.planning.contrast_variance`: the refutation power against a miss of +margin and
   the TOST power at truth = assumption, at the first look of linear alpha spending (the verdicts' default);
3. simulates ``--sims`` worlds with the planted truth, estimates with the project's staggered DiD
   (:func:`som_models.estimators.staggered_did.att_gt` + ``aggregate(dynamic)``, clustered by municipality in the
   roll-out design) and decides as the verdicts do (repeated-look boundary at the estimated information);
4. prints planned vs realised rates with the Monte Carlo standard error. Target: within ±5 points.

Two further worlds check the *simulated* plan of the cost per participant (:func:`run_cost`): planned from a
baseline cost file by resampling, realised by the verdict itself (:func:`som_models.volume_verdicts.judge_volumes`)
on fresh samples from the true (lognormal) distribution.

Outcome model: ``Y_it = a_i + s_{k(i),t} + e_it`` with person effect ``a_i ~ N(0, σ_a²)``, cluster-year shock
``s_kt ~ N(0, σ_s²)`` and AR(1) noise ``e_it`` (ρ = 0.5) — a process the plan does not know; it sees only the
baseline panel. The effect is planted on treated persons from event time K on.

Full run (≈ 2–3 min on one core)::

    uv run --frozen python benchmarks/plan_power.py --sims 1000

Reduced run (the figures in docs/planning.md)::

    uv run --frozen python benchmarks/plan_power.py --sims 300
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from som_models.estimators.staggered_did import aggregate, att_gt
from som_models.planning import RolloutDesign, contrast_variance, estimate_components, refutation_power, tost_power
from som_models.sequential import REFERENCE_POWER, boundaries

ALPHA, MARGIN, K = 0.05, 0.5, 1
YEARS = list(range(2014, 2022))  # vintage 2021
VINTAGE = YEARS[-1]


@dataclass(frozen=True)
class World:
    name: str
    cohorts: dict[int, int]
    controls: int
    clusters_per_cohort: int | None  # None = person-level
    control_clusters: int | None
    sd_person: float = 2.0
    sd_shock: float = 0.0
    sd_noise: float = 3.0
    assumed: float = -1.0  # assumed effect per treated person in every consequence year


def simulate(w: World, rng: np.random.Generator, effect: float, treated: bool = True) -> pl.DataFrame:
    groups, clusters = [], []
    cid = 0
    for g, n in w.cohorts.items():
        groups.append(np.full(n, g if treated else 0))
        if w.clusters_per_cohort:
            clusters.append(cid + np.arange(n) % w.clusters_per_cohort)
            cid += w.clusters_per_cohort
        else:
            clusters.append(np.zeros(n, dtype=int))
    groups.append(np.zeros(w.controls, dtype=int))
    clusters.append(cid + (np.arange(w.controls) % w.control_clusters if w.control_clusters else np.zeros(w.controls, dtype=int)))
    g = np.concatenate(groups)
    cl = np.concatenate(clusters)
    n, T = len(g), len(YEARS)
    e = np.empty((n, T))
    e[:, 0] = rng.normal(0, w.sd_noise, n)
    for t in range(1, T):
        e[:, t] = 0.5 * e[:, t - 1] + rng.normal(0, w.sd_noise * math.sqrt(1 - 0.25), n)
    shock = rng.normal(0, w.sd_shock, (int(cl.max()) + 1, T)) if w.sd_shock else np.zeros((int(cl.max()) + 1, T))
    y = rng.normal(0, w.sd_person, n)[:, None] + shock[cl] + e
    years = np.asarray(YEARS)
    on = (g[:, None] > 0) & (years[None, :] - g[:, None] >= K)
    y = y + effect * on
    return pl.DataFrame({"person_id": np.repeat(np.arange(n), T), "year": np.tile(years, n), "y": y.ravel(),
                         "start_year": np.repeat(g, T), "municipality": np.repeat(cl, T)})


def design_of(w: World) -> RolloutDesign:
    if w.clusters_per_cohort:
        return RolloutDesign(w.cohorts, w.controls, K, "municipality", {g: w.clusters_per_cohort for g in w.cohorts},
                             w.control_clusters)
    return RolloutDesign(w.cohorts, w.controls, K)


def level_test(data: pl.DataFrame, clustered: bool, assumed: float, reference: float) -> tuple[bool, bool]:
    res = att_gt(data, outcome="y", id_col="person_id", time_col="year", group_col="start_year",
                 cluster_col="municipality" if clustered else None)
    agg = aggregate(res, "dynamic", min_e=K)
    r, se = float(agg.overall), float(agg.overall_se)
    c = boundaries([1 / se ** 2], reference, ALPHA)[0]
    ct = boundaries([1 / se ** 2], reference, 2 * ALPHA)[0]
    delta = MARGIN * abs(assumed)
    refute = abs(r - assumed) / se >= c
    confirm = abs(r - assumed) + ct * se < delta
    return bool(refute), bool(confirm)


def run(w: World, sims: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    base = simulate(w, np.random.default_rng(seed + 10_000), 0.0, treated=False)
    comp = estimate_components(base, ["y"], cluster="municipality" if w.clusters_per_cohort else None)["y"]
    times = list(range(K, VINTAGE - min(w.cohorts) + 1))
    var, deff = contrast_variance(design_of(w), comp, VINTAGE, times)
    se = math.sqrt(var)
    delta = MARGIN * abs(w.assumed)
    reference = ((stats.norm.isf(ALPHA / 2) + stats.norm.ppf(REFERENCE_POWER)) / delta) ** 2
    c = boundaries([1 / var], reference, ALPHA)[0]
    ct = boundaries([1 / var], reference, 2 * ALPHA)[0]
    planned_refute, planned_confirm = refutation_power(delta, se, c), tost_power(delta, se, ct)
    refuted = confirmed = 0
    for _ in range(sims):
        refuted += level_test(simulate(w, rng, w.assumed + delta), bool(w.clusters_per_cohort), w.assumed, reference)[0]
        confirmed += level_test(simulate(w, rng, w.assumed), bool(w.clusters_per_cohort), w.assumed, reference)[1]
    return {"world": w.name, "planned_se": se, "design_effect": deff, "planned_refute": planned_refute,
            "realised_refute": refuted / sims, "planned_confirm": planned_confirm, "realised_confirm": confirmed / sims,
            "sims": sims}


WORLDS = (
    World("person-level, 2 cohorts × 150, 1500 controls", {2017: 150, 2018: 150}, 1500, None, None),
    World("person-level, 2 cohorts × 400, 3000 controls", {2017: 400, 2018: 400}, 3000, None, None),
    World("municipality roll-out, 2 × 20 clusters of 15, 60 comparison clusters", {2017: 300, 2018: 300}, 1800, 20, 60,
          sd_shock=1.0),
    World("municipality roll-out, 2 × 12 clusters of 25, 40 comparison clusters", {2017: 300, 2018: 300}, 2000, 12, 40,
          sd_shock=1.2),
)


def run_cost(n: int, sims: int, seed: int, sigma: float = 0.6) -> dict:
    """The simulated plan of the cost per participant (:mod:`som_models.planning.volumes`) against the verdict
    (:func:`som_models.volume_verdicts.judge_volumes`) in a known world: costs are lognormal (σ of the log
    ``sigma``); the plan sees only a baseline cost file of 2,000 persons (resampled), the verdicts see ``n`` fresh
    persons per simulation from the true distribution with mean ``A + 2δ`` (refutation) or ``A`` (confirmation)."""
    import yaml

    from som_models.parameters import parse_parameter_set
    from som_models.planning.volumes import simulate_band_power
    from som_models.volume_verdicts import COST, VolumeSettings, assumed_cost, judge_volumes
    from som_reference import asset

    params = parse_parameter_set(yaml.safe_load(asset("parameters", "housing_first_demo.yaml").read_text()))
    a = assumed_cost(params)
    delta = 0.2 * abs(a)
    rng = np.random.default_rng(seed)

    def draw(mean: float, size: int) -> np.ndarray:
        return rng.lognormal(math.log(mean) - sigma**2 / 2, sigma, size)

    baseline = draw(a, 2000)
    plan = simulate_band_power(n, a, delta, ALPHA, base=baseline, draws=4000, seed=seed + 1)
    refuted = confirmed = 0
    for _ in range(sims):
        (v,) = judge_volumes(params, costs=pl.DataFrame({"amount": draw(a + 2 * delta, n)}), settings=VolumeSettings(),
                             tested=(COST,))
        refuted += v.label.startswith("refuted")
        (v,) = judge_volumes(params, costs=pl.DataFrame({"amount": draw(a, n)}), settings=VolumeSettings(),
                             tested=(COST,))
        confirmed += v.label == "consistent"
    return {"world": f"cost per participant, lognormal σ = {sigma}, {n} persons (simulated plan)",
            "planned_se": plan.expected_se, "design_effect": 1.0, "planned_refute": plan.refute_up,
            "realised_refute": refuted / sims, "planned_confirm": plan.confirm, "realised_confirm": confirmed / sims,
            "sims": sims}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=300)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    print(f"Planned vs realised power, {args.sims} simulations per world and truth, seed {args.seed}; α = {ALPHA}, "
          f"margin ±{MARGIN:.0%}, vintage {VINTAGE}, first look of linear alpha spending")
    worst = 0.0
    for k, w in enumerate(WORLDS):
        t0 = time.perf_counter()
        r = run(w, args.sims, args.seed + 100 * k)
        mc = lambda p: math.sqrt(max(p * (1 - p), 1e-9) / args.sims)  # noqa: E731
        worst = max(worst, abs(r["planned_refute"] - r["realised_refute"]), abs(r["planned_confirm"] - r["realised_confirm"]))
        print(f"- {w.name}: planned se {r['planned_se']:.4g} (design effect {r['design_effect']:.2f}); "
              f"refute a +margin miss: planned {r['planned_refute']:.3f}, realised {r['realised_refute']:.3f} "
              f"(± {mc(r['realised_refute']):.3f}); confirm a true assumption: planned {r['planned_confirm']:.3f}, "
              f"realised {r['realised_confirm']:.3f} (± {mc(r['realised_confirm']):.3f}) [{time.perf_counter() - t0:.0f} s]",
              flush=True)
    for k, n in enumerate((40, 80)):
        t0 = time.perf_counter()
        r = run_cost(n, args.sims, args.seed + 1000 + k)
        mc = lambda p: math.sqrt(max(p * (1 - p), 1e-9) / args.sims)  # noqa: E731
        worst = max(worst, abs(r["planned_refute"] - r["realised_refute"]), abs(r["planned_confirm"] - r["realised_confirm"]))
        print(f"- {r['world']}: planned se {r['planned_se']:.4g}; refute a miss of twice the band: planned "
              f"{r['planned_refute']:.3f}, realised {r['realised_refute']:.3f} (± {mc(r['realised_refute']):.3f}); "
              f"confirm: planned {r['planned_confirm']:.3f}, realised {r['realised_confirm']:.3f} "
              f"(± {mc(r['realised_confirm']):.3f}) [{time.perf_counter() - t0:.0f} s]", flush=True)
    print(f"Largest |planned − realised|: {100 * worst:.1f} percentage points (target ≤ 5)")


if __name__ == "__main__":
    main()
