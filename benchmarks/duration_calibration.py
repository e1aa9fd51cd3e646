"""Duration assumptions: coverage of the Cox interval and calibration of the verdicts on planted hazard ratios.

Simulates the randomised panel of tests/test_duration_assumptions.py (a yearly event with a grouped-time
proportional hazard, λ = 0.15, follow-up 6 years) and runs the evaluation's duration path
(som_models.duration_assumptions.estimate_durations → pipeline.evaluation.verdicts). Prints, over ``--sims``
simulations: the mean and SD of the log hazard ratio, the mean robust SE, the coverage of the 95 % interval, the
rate of ``refuted-*`` when the assumption equals the truth, and the rate of ``consistent`` when the truth lies
exactly on the equivalence margin (assumed log HR = log HR_true / (1 + margin)).

    uv run --frozen python benchmarks/duration_calibration.py --sims 500 --persons 1000
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import evaluation as ev  # noqa: E402
from som_models.duration_assumptions import DurationAssumption, estimate_durations  # noqa: E402
from som_models.estimators.results import ESTIMATES_SCHEMA  # noqa: E402
from som_models.evaluation_spec import parse_evaluation_spec  # noqa: E402
from tests.test_duration_assumptions import PARAMS, planted_duration_panel  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=500)
    ap.add_argument("--persons", type=int, default=1000)
    ap.add_argument("--hazard-ratio", type=float, default=0.6)
    ap.add_argument("--margin", type=float, default=0.5)
    args = ap.parse_args()
    truth = math.log(args.hazard_ratio)
    on_margin = math.exp(truth / (1 + args.margin))
    a = DurationAssumption("first_conviction", "convictions", "positive", horizon=6, hazard_ratio=args.hazard_ratio,
                           baseline="keep")
    empty, pre = pl.DataFrame(schema=ESTIMATES_SCHEMA), pl.DataFrame(schema=ev.PRETREND_SCHEMA)

    def label(frame: pl.DataFrame, assumed: float) -> str:
        spec = parse_evaluation_spec({
            "evaluation": "e", "intervention": "i", "parameters": "p.yaml", "design": "rct",
            "equivalence_margin": args.margin, "assumptions": ["duration:first_conviction"],
            "durations": [{"name": "first_conviction", "column": "convictions", "event": "positive", "horizon": 6,
                           "baseline": "keep", "hazard_ratio": assumed}]})
        (v,) = ev.verdicts(PARAMS, empty, pre, spec, durations=frame)
        return v.label

    est, se, cover, refuted, consistent = [], [], 0, 0, 0
    for seed in range(args.sims):
        panel, treatments = planted_duration_panel(args.persons, args.hazard_ratio, seed)
        frame = estimate_durations(panel, treatments, [a], design="rct")
        row = frame.filter(pl.col("estimand") == "log_hazard_ratio").row(0, named=True)
        est.append(row["estimate"])
        se.append(row["se"])
        cover += row["ci_low"] <= truth <= row["ci_high"]
        refuted += label(frame, args.hazard_ratio).startswith("refuted")
        consistent += label(frame, on_margin) == "consistent"
    s = args.sims
    mc = math.sqrt(0.05 * 0.95 / s)
    print(f"{s} simulations, {args.persons} persons, HR {args.hazard_ratio} (log {truth:.4f}), margin {args.margin}")
    print(f"log HR: mean {np.mean(est):.4f} (bias {np.mean(est) - truth:+.4f}), SD {np.std(est, ddof=1):.4f}, "
          f"mean robust SE {np.mean(se):.4f}")
    print(f"95 % interval coverage: {cover / s:.3f}")
    print(f"assumed = truth: refuted in {refuted / s:.3f} (target ≤ 0.05 + 1 MC-SE = {0.05 + mc:.3f})")
    print(f"truth on the margin (assumed HR {on_margin:.4f}): consistent in {consistent / s:.3f} (target ≤ 0.05)")


if __name__ == "__main__":
    main()
