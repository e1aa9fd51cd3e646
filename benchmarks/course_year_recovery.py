"""Recovery of the course-year effects in simulated demo worlds (not part of CI; prints figures).

For each seed the homelessness world (:mod:`som_models.simulate.homelessness`, roll-out by municipality) is written
as a delivery, built into a panel and evaluated with the demo spec's own functions (``pipeline.evaluation``). The
planted course-year effects (``truth["course_effects"]``: the sample ATT at event time 0, per participant) are
compared with the estimates at ``e = 0``:

* **coverage**: the share of worlds whose pointwise 95 % interval at ``e = 0`` covers the planted value, per outcome
  (nominal 95 %; the Monte Carlo SE of a rate p over R worlds is ``√(p(1 − p)/R)``);
* **verdicts** on ``course_path:<item>`` with the assumption at the planted value (share ``consistent``), at 3× it
  (share ``refuted-overestimated``) and at a quarter of it (share ``refuted-underestimated``); ``inconclusive``
  counts include worlds gated by a failed pre-trend test.

Usage: ``uv run --frozen python benchmarks/course_year_recovery.py [--worlds 40] [--persons 12000] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import evaluation as ev  # noqa: E402
from pipeline.registers import build_panel, read_manifest  # noqa: E402
from som_models.parameters import parse_parameter_set  # noqa: E402
from som_models.simulate import write_delivery  # noqa: E402
from som_models.simulate.homelessness import simulate_homelessness  # noqa: E402
from som_reference import asset  # noqa: E402

ITEMS = ("shelter_nights", "kontanthjaelp_weeks")
OUTCOMES = (*ITEMS, "no_shelter_stay")


def _with_course(params, values):
    doc = copy.deepcopy(params.to_dict())
    for item, v in values.items():
        doc["consequences"][item]["course"] = {"kind": "causal", "units": [v], "se": [abs(v) / 2]}
    return parse_parameter_set(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", type=int, default=40)
    ap.add_argument("--persons", type=int, default=12000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    loaded = ev.load_spec(asset("evaluations", "housing_first_demo.yaml"))
    cover: Counter = Counter()
    labels: dict[tuple[str, str], Counter] = {}
    t0 = time.perf_counter()
    for w in range(a.worlds):
        sim = simulate_homelessness(a.persons, a.seed + w)
        with tempfile.TemporaryDirectory() as tmp:
            built = build_panel(read_manifest(write_delivery(sim, Path(tmp) / "d")), b"k" * 32, max_gx_rows=0)
        effects = ev.realised_effects(built.panel, built.treatments, loaded.spec, loaded.seed, assigned_by="municipality")
        pre = ev.pretrend_frame(effects)
        truth = sim.truth["course_effects"]
        rows = {r["outcome"]: r for r in effects.table.filter((effects.table["estimand"] == "event")
                                                              & (effects.table["event_time"] == 0)).to_dicts()}
        for o in OUTCOMES:
            cover[o] += rows[o]["ci_low"] <= truth[o][0] <= rows[o]["ci_high"]
        planted = {i: truth[i][0] for i in ITEMS}
        for name, factor in (("at truth", 1.0), ("3x truth", 3.0), ("truth/4", 0.25)):
            params = _with_course(loaded.seed, {i: factor * v for i, v in planted.items()})
            for v in ev.verdicts(params, effects.table, pre, loaded.spec):
                if v.assumption.startswith("course_path:"):
                    labels.setdefault((v.assumption, name), Counter())[v.label] += 1
    r = a.worlds
    print(f"{r} worlds of {a.persons} persons (seeds {a.seed}–{a.seed + r - 1}), {time.perf_counter() - t0:.0f} s")
    print("coverage of the planted course-year effect by the 95 % interval at e = 0:")
    for o in OUTCOMES:
        p = cover[o] / r
        print(f"  {o:22s} {p:.3f} (MC se {math.sqrt(p * (1 - p) / r):.3f})")
    print("course_path verdicts:")
    for (assumption, name), c in sorted(labels.items()):
        print(f"  {assumption:34s} {name:9s} " + ", ".join(f"{k} {n / r:.2f}" for k, n in sorted(c.items())))


if __name__ == "__main__":
    main()
