"""Verdict labels are calibrated: few draws of benchmarks/verdict_calibration.py (the benchmark prints more)."""

import importlib.util
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "verdict_calibration.py"


def _bench():
    spec = importlib.util.spec_from_file_location("verdict_calibration", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_truth_on_the_margin_is_rarely_called_consistent():
    # se of each mean = 0.1 δ: TOST has full power away from the margin, so on it the rejection rate is ≈ α
    # (Holm over three assumptions makes it smaller); the former `precision` rule said consistent far more often.
    reps = 300
    got = _bench().simulate(reps, "margin", 0.1, seed=3)
    limit = 0.05 + math.sqrt(0.05 * 0.95 / reps)
    for name in ("success_rate", "effect_path:nights", "effect_path:weeks"):
        assert got[f"{name}:consistent"] <= limit, (name, got)


def test_truth_equal_to_the_assumption_is_rarely_refuted_and_usually_confirmed():
    reps = 300
    got = _bench().simulate(reps, "null", 0.1, seed=4)
    assert got["any_refuted"] <= 0.05 + math.sqrt(0.05 * 0.95 / reps), got
    # with this precision equivalence is shown in nearly every run (the test has power, not just size)
    assert min(got[f"{k}:consistent"] for k in ("success_rate", "effect_path:nights", "effect_path:weeks")) > 0.9
