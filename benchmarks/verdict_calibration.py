"""Calibration of the verdict labels on simulated estimate tables (not part of CI; prints figures).

Each simulated evaluation draws the realised estimates of a parameter set with three assumptions — a success
rate and two effect paths of three consequence years each — from a normal distribution with a known
covariance (event times correlated at ``--rho``), builds the tidy estimates table and calls
:func:`som_models.verdicts.judge` with the covariance, as the evaluation does. Two truths:

* **margin**: every realised quantity lies exactly on the equivalence margin, ``(1 + margin) · assumed``;
  the share of ``consistent`` labels per assumption must not exceed α (TOST is a level-α test at the margin;
  Holm only makes it stricter);
* **null**: truth = assumption; the share of evaluations in which *some* assumption is refuted (the
  family-wise error) must not exceed α (+ 1 Monte Carlo SE).

Both at three precisions (the se of each estimate as a share of the margin δ), for the default ``mean`` path
test and for ``joint``. The Monte Carlo SE of a rate p over R runs is ``√(p(1 − p)/R)``.

It also reports the size of the few-cluster test the verdicts can use: the rejection rate at α = 5 % of the
wild cluster bootstrap-t (Webb weights, :func:`som_models.estimators.bootstrap.wild_cluster_bootstrap`) and of
the normal-theory test with the same cluster-robust se, for a difference in means with 8 clusters (4 treated,
30 persons each, cluster shock sd 1, person noise sd 2) under the null.

Usage: ``uv run --frozen python benchmarks/verdict_calibration.py [--reps 2000] [--seed 1]``.
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

from som_models.estimators import ESTIMATES_SCHEMA  # noqa: E402
from som_models.parameters import parse_parameter_set  # noqa: E402
from som_models.verdicts import PathCovariance, VerdictSettings, judge  # noqa: E402

PARAMS = parse_parameter_set({
    "intervention": "sim", "target_group": "tg", "start_year": 2020, "horizon_years": 5, "price_year": 2024,
    "cohorts": [{"year": 2020, "participants": 100}],
    "success_measure": {"name": "ok", "outcome": "nights", "rule": "zero"},
    "success_rate": {"value": 0.3, "se": 0.05},
    "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
    "consequences": {"nights": {"units": [-100, -60, -30]}, "weeks": {"units": [-20, -20, -10]}},
    "prices": {"nights": {"kommune": 1}, "weeks": {"kommune": 1}},
})
ITEMS = ("nights", "weeks")
EVENT_TIMES = (1, 2, 3)  # consequence years 1–3 (course_years = 1)


def assumed() -> dict[str, np.ndarray]:
    """The assumed success rate and effect paths ``a_e = s · units[e]``."""
    s = PARAMS.success_rate.value
    out = {"ok": np.array([s])}
    for c in PARAMS.consequences:
        out[c.item] = s * np.array(c.units[: len(EVENT_TIMES)], dtype=float)
    return out


def _cov(k: int, se: float, rho: float) -> np.ndarray:
    idx = np.arange(k)
    return se**2 * rho ** np.abs(idx[:, None] - idx[None, :])


def simulate(reps: int, truth: str, rel_se: float, *, margin: float = 0.5, rho: float = 0.75, alpha: float = 0.05,
             path_test: str = "mean", seed: int = 1) -> dict[str, float]:
    """Label shares over ``reps`` simulated evaluations.

    ``truth``: ``null`` (truth = assumption) or ``margin`` (truth = (1 + margin) · assumption). ``rel_se``:
    the se of each estimate's *mean over the years* as a share of its margin δ = margin · |mean assumed|.
    Returns the share ``consistent`` and ``refuted`` per assumption and ``any_refuted`` (family-wise).
    """
    rng = np.random.default_rng(seed)
    a = assumed()
    factor = 1.0 if truth == "null" else 1.0 + margin
    covs, truths = {}, {}
    for k, path in a.items():
        delta = margin * abs(path.mean())
        m = len(path)
        base = _cov(m, 1.0, rho)
        # scale so that the se of the mean over the years equals rel_se · δ
        scale = rel_se * delta * m / math.sqrt(base.sum())
        covs[k] = base * scale**2
        truths[k] = factor * path
    settings = VerdictSettings(alpha=alpha, margin=margin, path_test=path_test)
    covariance = {k: PathCovariance.from_array(EVENT_TIMES, covs[k]) for k in ITEMS}
    counts: dict[str, float] = {}
    any_refuted = 0
    for _ in range(reps):
        rows = []
        for k in ("ok", *ITEMS):
            draw = rng.multivariate_normal(truths[k], covs[k])
            ses = np.sqrt(np.diag(covs[k]))
            for e, est, se in zip(EVENT_TIMES[: len(draw)], draw, ses, strict=True):
                rows.append({"outcome": k, "estimand": "event", "event_time": e, "estimate": float(est),
                             "se": float(se), "ci_low": None, "ci_high": None, "group": None, "time": None,
                             "n_treated": 500, "n_control": 1000})
        table = pl.DataFrame(rows, schema=ESTIMATES_SCHEMA)
        verdicts = judge(PARAMS, table, {}, settings, covariance=covariance)
        refuted = False
        for v in verdicts:
            counts[f"{v.assumption}:consistent"] = counts.get(f"{v.assumption}:consistent", 0) + (v.label == "consistent")
            hit = v.label.startswith("refuted")
            counts[f"{v.assumption}:refuted"] = counts.get(f"{v.assumption}:refuted", 0) + hit
            refuted |= hit
        any_refuted += refuted
    out = {k: v / reps for k, v in counts.items()}
    out["any_refuted"] = any_refuted / reps
    return out


def wild_size(reps: int, *, clusters: int = 8, treated: int = 4, draws: int = 999, seed: int = 1) -> tuple[float, float]:
    """Rejection rates at 5 % (wild cluster bootstrap-t, normal theory) under the null, difference in means."""
    from som_models.estimators.bootstrap import wild_cluster_bootstrap

    wild = normal = 0
    for r in range(reps):
        rng = np.random.default_rng(seed * 100003 + r)
        cl = np.repeat(np.arange(clusters), 30)
        d = cl < treated
        y = rng.normal(size=clusters)[cl] + 2 * rng.normal(size=cl.size)
        p = d.mean()
        psi = np.where(d, (y - y[d].mean()) / p, -(y - y[~d].mean()) / (1 - p))
        got = wild_cluster_bootstrap(np.bincount(cl, psi), y[d].mean() - y[~d].mean(), n=cl.size, draws=draws,
                                     seed=r, sizes=np.bincount(cl), groups=np.arange(clusters) < treated)
        wild += got.p_value < 0.05
        normal += abs(got.statistic) > 1.959963984540054
    return wild / reps, normal / reps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    mcse = math.sqrt(0.05 * 0.95 / args.reps)
    print(f"{args.reps} simulated evaluations per row; α = 0.05, margin ±50 %, MC-SE of a 5 % rate = {mcse:.4f}")
    t0 = time.time()
    for path_test in ("mean", "joint"):
        for j, rel_se in enumerate((0.1, 0.25, 0.5)):
            at_margin = simulate(args.reps, "margin", rel_se, path_test=path_test, seed=args.seed + 10 * j)
            null = simulate(args.reps, "null", rel_se, path_test=path_test, seed=args.seed + 10 * j + 1)
            cons = {k.split(":consistent")[0]: v for k, v in at_margin.items() if k.endswith(":consistent")}
            print(f"path_test={path_test:5s} se/δ={rel_se:4.2f} | truth on the margin: consistent "
                  + ", ".join(f"{k} {v:.3f}" for k, v in cons.items())
                  + f" | truth = assumption: some assumption refuted {null['any_refuted']:.3f}, consistent "
                  + ", ".join(f"{k.split(':consistent')[0]} {v:.3f}" for k, v in null.items() if k.endswith(":consistent")))
    for treated in (4, 2):
        w, z = wild_size(args.reps, treated=treated, seed=args.seed)
        print(f"8 clusters, {treated} treated, under the null: wild cluster bootstrap-t rejects {w:.3f}, "
              f"normal theory {z:.3f} (MC-SE {mcse:.4f})")
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
