"""Coverage of the updated success rate over three cumulative vintages (not part of CI; prints figures).

Each simulation draws a true net success rate ``s`` from the root prior ``N(prior_mean, prior_se²)`` (the
truth must come from the prior for a posterior interval to cover it in 95 % of worlds), plants it in a small
staggered-adoption person-year panel and evaluates three cumulative vintages of that one world — the panel
cut at last years 2019, 2020 and 2022 (each repeats the earlier person-years) — approving every proposal:

* world: ``--persons`` persons over 2015–2022; a quarter start in 2018, a quarter in 2019, half never; the
  success indicator of person ``i`` in year ``t`` without the intervention is Bernoulli(``p_i + λ_t``) with
  ``p_i ~ U(0.2, 0.5)``, ``λ_t`` rising 0 → 0.1 over the period; with it (from the start year on) a person
  without success succeeds with probability ``s / (1 − p_i − λ_t)``, so the net effect is exactly ``s`` in
  every year (SØM's success rate: net of what happens anyway);
* estimate: the staggered estimator of the evaluation (:func:`som_models.estimators.estimate_realised_effects`,
  never-treated comparison, event-time aggregation, ``min_e`` = course years 1), consequence year 1 = event
  time 1;
* update: :func:`som_models.calibration.propose` (precision-weighted) with the root prior chosen by
  :func:`som_models.evidence.choose_root` from the evidence windows of the approved lineage — the method of
  the pipeline — and, for comparison, with the parent as prior (the earlier default that counts the
  earlier vintages again).

Printed per vintage: the share of 95 % intervals ``value ± 1.96 se`` of the updated success rate that cover
``s`` (target 95 ± 2 %; Monte Carlo SE ``√(p(1 − p)/R)``), and the mean posterior SE of both rules.

Usage: ``uv run --frozen python benchmarks/cumulative_vintages.py [--sims 500] [--persons 2000] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from som_models.calibration import propose  # noqa: E402
from som_models.estimators import estimate_realised_effects  # noqa: E402
from som_models.estimators.dispatch import EstimationSettings  # noqa: E402
from som_models.evidence import EvidenceWindow, LineageStep, choose_root, panel_window  # noqa: E402
from som_models.parameters import ParameterSet, parse_parameter_set  # noqa: E402

FIRST, LAST = 2015, 2022
CUTS = (2019, 2020, 2022)
COHORTS = (2018, 2019)
SUCCESS = "no_shelter_stay"
Z = 1.959963984540054


def seed_parameters(prior_mean: float, prior_se: float) -> ParameterSet:
    """The root prior: the demo's shape with the success rate ``N(prior_mean, prior_se²)``."""
    return parse_parameter_set({
        "intervention": "bench", "target_group": "tg", "start_year": 2018, "horizon_years": 5, "price_year": 2024,
        "course_years": 1, "cohorts": [{"year": 2018, "participants": 100}],
        "success_measure": {"name": SUCCESS, "outcome": "shelter_nights", "rule": "zero"},
        "success_rate": {"value": prior_mean, "se": prior_se},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": {"shelter_nights": {"units": [-90, -60, -30], "se": [20, 20, 20]}},
        "prices": {"shelter_nights": {"kommune": 850}},
    })


def world(rng: np.random.Generator, persons: int, s: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The panel (person_id, year, success indicator) and treatments of one world with net success rate ``s``."""
    years = np.arange(FIRST, LAST + 1)
    draw = rng.random(persons)
    start = np.where(draw < 0.25, COHORTS[0], np.where(draw < 0.5, COHORTS[1], 0))
    p = rng.uniform(0.2, 0.5, persons)[:, None] + np.linspace(0.0, 0.1, len(years))[None, :]
    y0 = rng.random(p.shape) < p
    treated = (start[:, None] > 0) & (years[None, :] >= start[:, None])
    lift = rng.random(p.shape) < s / (1.0 - p)
    y = np.where(treated, y0 | lift, y0).astype(float)
    ids = np.arange(persons, dtype=np.int64)
    panel = pl.DataFrame({"person_id": np.repeat(ids, len(years)), "year": np.tile(years, persons),
                          SUCCESS: y.ravel()})
    treatments = pl.DataFrame({"person_id": ids[start > 0], "start_year": start[start > 0]})
    return panel, treatments


def run(sims: int, persons: int, seed: int, prior_mean: float, prior_se: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    root = seed_parameters(prior_mean, prior_se)
    settings = EstimationSettings(aggregations=("dynamic",), min_e=root.course_years)
    cover = {m: np.zeros((sims, len(CUTS)), dtype=bool) for m in ("root", "parent")}
    se = {m: np.zeros((sims, len(CUTS))) for m in ("root", "parent")}
    for k in range(sims):
        s = float(np.clip(rng.normal(prior_mean, prior_se), 0.0, 0.45))
        panel, treatments = world(rng, persons, s)
        versions = {1: root}
        lineage = [LineageStep(1)]
        parent_rule = root
        for j, cut in enumerate(CUTS):
            part = panel.filter(pl.col("year") <= cut)
            table = estimate_realised_effects(part, treatments, outcomes=[SUCCESS], settings=settings).table
            evidence = EvidenceWindow("bench", str(cut), f"{k}-{cut}", **panel_window(part))
            choice = choose_root(lineage, evidence)
            current = versions[lineage[0].version]
            doc = propose(current, table, items=(), prior=None if choice.is_current else versions[choice.version]).document
            updated = parse_parameter_set(doc)
            new = len(versions) + 1
            versions[new] = updated
            lineage = [LineageStep(new, evidence), *lineage]
            parent_rule = parse_parameter_set(propose(parent_rule, table, items=()).document)
            for method, params in (("root", updated), ("parent", parent_rule)):
                value, sd = params.success_rate.value, params.success_rate.se or 0.0
                se[method][k, j] = sd
                cover[method][k, j] = abs(value - s) <= Z * sd
    return {"cover_root": cover["root"], "cover_parent": cover["parent"], "se_root": se["root"],
            "se_parent": se["parent"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=500)
    ap.add_argument("--persons", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prior-mean", type=float, default=0.2)
    ap.add_argument("--prior-se", type=float, default=0.05)
    args = ap.parse_args()
    start = time.process_time()
    out = run(args.sims, args.persons, args.seed, args.prior_mean, args.prior_se)
    cpu = time.process_time() - start
    print(f"{args.sims} simulated worlds × {len(CUTS)} cumulative vintages (last years {', '.join(map(str, CUTS))}), "
          f"{args.persons} persons, root prior N({args.prior_mean}, {args.prior_se}²), truth drawn from it; "
          f"CPU {cpu:.1f} s")
    print(f"{'vintage':>8} {'coverage root':>14} {'MC se':>7} {'coverage parent':>16} {'mean se root':>13} "
          f"{'mean se parent':>15}")
    for j, cut in enumerate(CUTS):
        p = out["cover_root"][:, j].mean()
        q = out["cover_parent"][:, j].mean()
        print(f"{cut:>8} {p:>14.3f} {math.sqrt(p * (1 - p) / args.sims):>7.3f} {q:>16.3f} "
              f"{out['se_root'][:, j].mean():>13.4f} {out['se_parent'][:, j].mean():>15.4f}")
    final = out["cover_root"][:, -1].mean()
    ok = abs(final - 0.95) <= 0.02
    print(f"after the third vintage: the root-prior update covers the planted success rate in {final:.1%} of "
          f"{args.sims} worlds (target 95 ± 2 %: {'met' if ok else 'NOT met'}); counting earlier vintages again "
          f"(parent as prior) covers {out['cover_parent'][:, -1].mean():.1%}")


if __name__ == "__main__":
    main()
