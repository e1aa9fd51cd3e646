"""Benchmark (a script, not a timed test): the Monte Carlo of the SØM calculation frame at scale.

Target (issue 5): 10,000 draws × 50 years × 20 items in under a second. The document has 20 consequence items
with 45-year profiles and SEs, price ranges on every item, three yearly cohorts, two course years, the
refusion staircase on one item, the expensive-case refusion on two, and tax on two — so every part of the
vectorised engine runs. Times the whole ``monte_carlo()`` call (compiling the document, drawing, evaluating,
summarising and the tornado), best and median of several runs, and the peak traced memory of one run.

    uv run --frozen python benchmarks/projection_bench.py [--draws 10000] [--years 50] [--items 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from som_models.parameters import parse_parameter_set
from som_models.projection import monte_carlo, project


def document(years: int, items: int, draws: int, correlation: str) -> dict:
    profile = max(1, years - 5)
    consequences, prices = {}, {}
    for i in range(items):
        name = f"item_{i:02d}"
        consequences[name] = {"units": [-(10 + i) * 0.06 * 0.97**j for j in range(profile)],
                              "se": [(2 + 0.1 * i) * 0.06] * profile}
        prices[name] = {"kommune": 500 + 50 * i, "stat": 100 + 10 * i, "range": [0.8, 1.2]}
        if i % 3 == 0:
            prices[name]["region"] = 200
    prices["item_00"] = {"kommune": 2900, "range": [0.9, 1.1]}          # income support (staircase)
    prices["item_01"] = {"kommune": 3000}                               # placement days (expensive cases)
    prices["item_02"] = {"kommune": 9000}
    return {
        "intervention": "bench", "target_group": "bench", "start_year": 2025, "horizon_years": years,
        "price_year": 2022, "course_years": 2,
        "cohorts": [{"year": 2025 + k, "participants": 200} for k in range(3)],
        "success_rate": {"value": 0.2, "se": 0.05},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -90000, "range": [-120000, -80000]},
                  {"course_year": 2, "payer": "region", "amount": -10000, "range": [-15000, -8000]}],
        "consequences": consequences, "prices": prices,
        "refusion": {"staircase": {"items": ["item_00"], "weeks_before": 10},
                     "expensive_cases": {"items": ["item_01", "item_02"], "case_expense": 1_900_000,
                                         "rule": "serviceloven_176", "version": "2021"}},
        "tax": {"rates": {"kommune": 0.24, "stat": 0.18}, "tilbageloeb": 0.15,
                "taxable": {"item_03": 1000, "item_04": 500}},
        "monte_carlo": {"draws": draws, "seed": 1, "consequence_correlation": correlation},
    }


def run(years: int, items: int, draws: int, repeat: int, correlation: str) -> None:
    params = parse_parameter_set(document(years, items, draws, correlation))
    project(params)  # warm up imports and caches
    monte_carlo(params, draws=min(draws, 500))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = monte_carlo(params)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    monte_carlo(params)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{draws:,} draws × {years} years × {items} items, consequence_correlation={correlation}: "
          f"best {min(times):.3f} s, median {statistics.median(times):.3f} s over {repeat} runs; "
          f"peak traced memory {peak / 2**20:.1f} MiB; P(NPV ≥ 0) = {result.prob_break_even['total']:.3f}; "
          f"{len(result.tornado)} tornado rows")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--years", type=int, default=50)
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for correlation in ("item", "independent"):
        run(args.years, args.items, args.draws, args.repeat, correlation)


if __name__ == "__main__":
    main()
