"""Error over repeated looks: 12 monthly reruns over 3 cumulative register vintages, truth = assumption.

An evaluation is rerun monthly (the schedule) while the register delivery changes once a year: months 1–4 look at
vintage 1, months 5–8 at vintage 2, months 9–12 at vintage 3, each vintage containing the persons and years of
the one before (cumulative deliveries). The truth equals the assumption, so every refutation is a false one. For
each simulated world the benchmark applies

* the rule of the verdicts (:mod:`som_models.sequential`): :func:`plan_look` places each monthly look in the
  hypothesis's sequence (a look on a data hash seen before is the same look again: same boundary, no α spent),
  and the look refutes when ``|z| ≥ c_k(α)``, Lan–DeMets O'Brien–Fleming-type spending over ``t = I/(I + I₀)``;
* the unadjusted rule: every monthly look at the fixed level, ``|z| ≥ z_{1−α/2}`` (reruns on unchanged data
  repeat the same z, so this is the error of three looks; were the monthly reruns counted as new evidence, as
  the history did, the same figure would be shown seven or twelve times).

Two statistics:

* **success rate** — the share of successes among the treated persons observed (Bernoulli, n = 400, 800, 1200
  cumulative), se from p̂; nested data and the same statistic at every look (the canonical case);
* **effect path** — the mean of the event-time effects over the consequence years observed, which grow with the
  vintage (cohorts of 400 enter each year; vintage v observes cohort c for v − c + 1 years); person outcomes
  correlated 0.75 between adjacent years; se from the persons' influence functions. Here the statistic changes
  between looks and the control is approximate.

It reports the share of worlds with a false refutation at any look (Monte Carlo SE ``√(p(1 − p)/R)``), the
share of worlds whose refutation flips between looks, and, for context, the power when the truth deviates from
the assumption by half an equivalence margin (25 %), sequential vs unadjusted at any look.

Optionally (``--judge N``) the first N worlds of the success-rate case also run through
:func:`som_models.verdicts.judge` itself (``looks=`` with the stored records of the earlier looks), which must
give the same refutations as the pure rule.

Usage: ``uv run --frozen python benchmarks/sequential_looks.py [--reps 2000] [--seed 1] [--judge 50]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from som_models.sequential import DEFAULT_RULE, RULES, PriorLook, plan_look  # noqa: E402

ALPHA, MARGIN = 0.05, 0.5
Z = 1.959963984540054
MONTHS = [1] * 4 + [2] * 4 + [3] * 4  # the vintage each monthly look sees
#: the spending rule of this run (set from --rule)
RULE = [DEFAULT_RULE]
SUCCESS_RATE = 0.2
COHORT = 400
PATH = np.array([-20.0, -15.0, -10.0])  # assumed (= true) effect in consequence years 1..3
SD, RHO = 40.0, 0.75


def success_world(rng: np.random.Generator, truth: float) -> list[tuple[float, float]]:
    draws = rng.random(3 * COHORT) < truth
    out = []
    for v in range(3):
        x = draws[: (v + 1) * COHORT]
        p = float(x.mean())
        out.append((p, math.sqrt(max(p * (1 - p), 1e-12) / len(x))))
    return out


def path_world(rng: np.random.Generator, truth: np.ndarray) -> list[tuple[float, float]]:
    """Per vintage: (mean over observed consequence years of the event-time estimates, se)."""
    cov = SD ** 2 * RHO ** np.abs(np.subtract.outer(np.arange(3), np.arange(3)))
    chol = np.linalg.cholesky(cov)
    y = truth + rng.standard_normal((3, COHORT, 3)) @ chol.T  # cohort × person × consequence year
    out = []
    for v in range(1, 4):  # vintage v observes cohort c (0-based) for v − c years
        years = range(v)
        means, psi = [], np.zeros((v, COHORT))
        for e in years:
            cohorts = [c for c in range(v) if v - c > e]
            vals = np.concatenate([y[c, :, e] for c in cohorts])
            m = float(vals.mean())
            means.append(m)
            n = len(vals)
            for c in cohorts:
                psi[c] += (y[c, :, e] - m) / n / v
        out.append((float(np.mean(means)), float(math.sqrt((psi ** 2).sum()))))
    return out


def assumed_path_mean(v: int) -> float:
    return float(PATH[:v].mean())


def monitor(world: list[tuple[float, float]], assumed: list[float], delta: list[float], key: str) -> dict:
    """The 12 monthly looks of one world under both rules: refuted at any look, verdict flips."""
    prior: list[PriorLook] = []
    seq, raw, fractions = [], [], {}
    for v in MONTHS:
        est, se = world[v - 1]
        z = (est - assumed[v - 1]) / se
        plan = plan_look(prior, hypothesis=key, data_hash=f"vintage-{v}", vintage=f"{2020 + v}-06",
                         information=1 / se ** 2, alpha=ALPHA, delta=delta[v - 1], rule=RULE[0])
        if not plan.reused:
            rec = PriorLook.from_record(plan.record(), plan.looks[-1].vintage)
            assert rec is not None
            prior.append(rec)
        fractions[v] = plan.fractions[-1]
        seq.append(abs(z) >= plan.critical(ALPHA))
        raw.append(abs(z) >= Z)

    def flips(xs: list[bool]) -> bool:
        return any(a != b for a, b in zip(xs, xs[1:], strict=False))

    return {"seq": any(seq), "raw": any(raw), "seq_flip": flips(seq), "raw_flip": flips(raw),
            "fraction": [fractions[v] for v in (1, 2, 3)]}


def run_case(name: str, reps: int, rng: np.random.Generator, shift: float) -> dict:
    rows = []
    for _ in range(reps):
        if name == "success rate":
            world = success_world(rng, SUCCESS_RATE * (1 + shift))
            assumed = [SUCCESS_RATE] * 3
        else:
            world = path_world(rng, PATH * (1 + shift))
            assumed = [assumed_path_mean(v) for v in (1, 2, 3)]
        rows.append(monitor(world, assumed, [MARGIN * abs(a) for a in assumed], name))
    out = {k: float(np.mean([r[k] for r in rows])) for k in ("seq", "raw", "seq_flip", "raw_flip")}
    out["fractions"] = np.mean([r["fraction"] for r in rows], axis=0).round(3).tolist()
    return out


def judge_check(n: int, rng: np.random.Generator) -> tuple[int, int]:
    """The success-rate worlds through judge itself: (worlds refuted by judge, worlds where judge and the pure
    rule disagree)."""
    import polars as pl

    from som_models.estimators import ESTIMATES_SCHEMA
    from som_models.parameters import parse_parameter_set
    from som_models.sequential import LookHistory
    from som_models.verdicts import VerdictSettings, judge

    params = parse_parameter_set({
        "intervention": "x", "target_group": "tg", "start_year": 2020, "horizon_years": 5, "price_year": 2024,
        "cohorts": [{"year": 2020, "participants": 100}],
        "success_measure": {"name": "ok", "outcome": "ok", "rule": "zero"},
        "success_rate": {"value": SUCCESS_RATE, "se": 0.05},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": {"nights": {"units": [-100, -50], "se": [10, 10]}},
        "prices": {"nights": {"kommune": 1}},
    })
    refuted = disagree = 0
    for _ in range(n):
        world = success_world(rng, SUCCESS_RATE)
        prior: list[PriorLook] = []
        by_judge = []
        for v in MONTHS:
            est, se = world[v - 1]
            table = pl.DataFrame([{"outcome": "ok", "estimand": "event", "group": None, "time": None, "event_time": 1,
                                   "estimate": est, "se": se, "ci_low": None, "ci_high": None, "n_treated": 500,
                                   "n_control": 500}], schema=ESTIMATES_SCHEMA)
            settings = VerdictSettings(alpha=ALPHA, margin=MARGIN, sequential=RULE[0])
            (verdict,) = judge(params, table, {}, settings, tested=["success_rate"],
                               looks=LookHistory(f"vintage-{v}", f"{2020 + v}-06", tuple(prior)))
            rec = PriorLook.from_record(verdict.evidence["sequential"], f"{2020 + v}-06")
            if rec is not None:
                prior.append(rec)
            by_judge.append(verdict.label.startswith("refuted"))
        pure = monitor(world, [SUCCESS_RATE] * 3, [MARGIN * SUCCESS_RATE] * 3, "judge-check")["seq"]
        refuted += any(by_judge)
        disagree += any(by_judge) != pure
    return refuted, disagree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--judge", type=int, default=0, help="also run this many success-rate worlds through judge")
    ap.add_argument("--rule", default=DEFAULT_RULE, choices=[r for r in RULES if r != "none"],
                    help="the alpha-spending rule (default: the verdicts' default)")
    args = ap.parse_args()
    RULE[0] = args.rule
    rng = np.random.default_rng(args.seed)
    print(f"12 monthly looks over 3 cumulative vintages (looks 1-4: vintage 1, 5-8: vintage 2, 9-12: vintage 3); "
          f"alpha = {ALPHA}, margin = {MARGIN:.0%}, {args.reps} worlds per case, rule {args.rule}")
    for shift, what in ((0.0, "truth = assumption: false refutation at any look"),
                        (-MARGIN / 2, "truth off by half a margin (25 %): power at any look")):
        print(f"\n{what}")
        print(f"{'statistic':<14} {'sequential':>11} {'unadjusted':>11} {'MC SE':>7} {'flips seq':>10} "
              f"{'flips unadj':>12}  mean information fraction t by vintage")
        for name in ("success rate", "effect path"):
            t0 = time.perf_counter()
            r = run_case(name, args.reps, rng, shift)
            se = math.sqrt(max(r["seq"] * (1 - r["seq"]), 1e-12) / args.reps)
            print(f"{name:<14} {r['seq']:>11.4f} {r['raw']:>11.4f} {se:>7.4f} {r['seq_flip']:>10.4f} "
                  f"{r['raw_flip']:>12.4f}  {r['fractions']}  ({time.perf_counter() - t0:.1f} s)")
    if args.judge:
        t0 = time.perf_counter()
        refuted, disagree = judge_check(args.judge, rng)
        print(f"\njudge(looks=...) on {args.judge} success-rate worlds, truth = assumption: refuted in {refuted}, "
              f"disagrees with the pure rule in {disagree} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
