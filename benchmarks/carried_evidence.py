"""Coverage of the updated success rate when another evaluation's evidence lies between the root prior and the
version under test (carried evidence, :mod:`som_models.evidence`; not part of CI; prints figures).

Each simulation draws a true net success rate ``s`` from the root prior ``N(0.30, 0.10²)`` (the truth must come
from the prior for a posterior interval to cover it in 95 % of worlds) and the estimates of three looks at it:

* A-2021: evaluation A on vintage 2021, ``a21 ~ N(s, 0.06²)``;
* B: evaluation B on another population, ``b ~ N(s, 0.05²)``, independent of A;
* A-2023: A's cumulative vintage 2023, which repeats A-2021's person-years: ``a23 = (w21·a21 + wn·an)/(w21 + wn)``
  with the new years' ``an ~ N(s, 1/wn)``, ``w21 = 1/0.06²`` and ``w21 + wn = 1/0.04²`` (SE 0.04).

The estimates are drawn from their sampling distributions (the estimators' own calibration is measured by the
other benchmarks); what is measured here is the accounting. The lineage is v1 (seed) → v2 (A-2021) → v3 (B on
v2), both approved, then A-2023 tests v3. The update's prior is chosen and carried by the pipeline's functions
— :func:`som_models.evidence.choose_root` (root v1, B carried), :func:`som_models.evidence.carry_evidence` and
:func:`pipeline.evaluation.proposal_document` — and compared with the behaviour before carrying (root v1 alone:
B dropped) and with the parent as prior (A-2021 counted twice).

Printed: the share of 95 % intervals ``value ± 1.96 se`` that cover ``s`` (target 95 ± 2 %; Monte Carlo SE
``√(p(1 − p)/R)``) and the mean posterior SE of each rule, with the SE of one analysis of all the information
(``(1/0.10² + 1/0.05² + 1/0.04²)^(−1/2) = 0.02981``).

Usage: ``uv run --frozen python benchmarks/carried_evidence.py [--sims 2000] [--seed 1]``.
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

from pipeline import evaluation as ev  # noqa: E402
from som_models.calibration import propose  # noqa: E402
from som_models.estimators.results import ESTIMATES_SCHEMA  # noqa: E402
from som_models.evaluation_spec import parse_evaluation_spec  # noqa: E402
from som_models.evidence import CarryStep, EvidenceWindow, LineageStep, carry_evidence, choose_root  # noqa: E402
from som_models.parameters import parse_parameter_set  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "assets" / "evaluations" / "housing_first_demo.yaml"
PRIOR, PRIOR_SE, SE_B, SE_21, SE_23 = 0.30, 0.10, 0.05, 0.06, 0.04
Z = 1.959963984540054
A21 = EvidenceWindow("a", "2021", "a21", 2015, 2021, 900)
B = EvidenceWindow("b", "2022", "b", 2016, 2022, 400)
A23 = EvidenceWindow("a", "2023", "a23", 2015, 2023, 950)


def estimates(value: float, se: float) -> pl.DataFrame:
    """The success indicator's event-time estimate in consequence year 1 (event time 1; course_years = 1)."""
    return pl.DataFrame([{"outcome": "no_shelter_stay", "estimand": "event", "group": None, "time": None,
                          "event_time": 1, "estimate": value, "se": se, "ci_low": None, "ci_high": None,
                          "n_treated": 400, "n_control": 4000}], schema=ESTIMATES_SCHEMA)


def run(sims: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    loaded = ev.load_spec(SPEC)
    doc = loaded.seed.to_dict()
    doc["success_rate"] = {**doc["success_rate"], "value": PRIOR, "se": PRIOR_SE}
    root = parse_parameter_set(doc)
    spec_a = parse_evaluation_spec({**loaded.spec.document, "evaluation": "a", "reestimate_consequences": False})
    spec_b = parse_evaluation_spec({**loaded.spec.document, "evaluation": "b", "reestimate_consequences": False})
    w21, w23 = SE_21 ** -2, SE_23 ** -2
    wn = w23 - w21
    rules = ("carried", "dropped", "parent")
    cover = {r: np.zeros(sims, dtype=bool) for r in rules}
    se = {r: np.zeros(sims) for r in rules}
    for k in range(sims):
        s = float(rng.normal(PRIOR, PRIOR_SE))
        a21 = float(rng.normal(s, SE_21))
        b = float(rng.normal(s, SE_B))
        a23 = (w21 * a21 + wn * float(rng.normal(s, wn ** -0.5))) / w23
        est21, est_b, est23 = estimates(a21, SE_21), estimates(b, SE_B), estimates(a23, SE_23)
        v2 = parse_parameter_set(ev.proposal_document(root, est21, spec_a, run_label="A-2021")[0])
        v3_doc, _, _ = ev.proposal_document(v2, est_b, spec_b, run_label="B")
        v3 = parse_parameter_set(v3_doc)
        choice = choose_root([LineageStep(3, B), LineageStep(2, A21), LineageStep(1)], A23)
        step = CarryStep(version=3, evidence=B, estimates=est_b, changes=tuple(v3_doc["provenance"]["changes"]),
                         content=v3_doc, rule=ev._update_rule(spec_b))
        carried = carry_evidence(root, [step])
        assert [c["version"] for c in carried.carried] == [3], carried.not_carried
        settled = choice.with_carry([3], [])
        out = {
            "carried": ev.proposal_document(v3, est23, spec_a, run_label="A-2023", prior=carried.prior, root=settled)[0],
            "dropped": ev.proposal_document(v3, est23, spec_a, run_label="A-2023", prior=root, root=choice.with_carry([], []))[0],
            "parent": propose(v3, est23, items=()).document,
        }
        for rule in rules:
            value, sd = out[rule]["success_rate"]["value"], out[rule]["success_rate"]["se"]
            se[rule][k] = sd
            cover[rule][k] = abs(value - s) <= Z * sd
    return {**{f"cover_{r}": cover[r] for r in rules}, **{f"se_{r}": se[r] for r in rules}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    start = time.process_time()
    out = run(args.sims, args.seed)
    cpu = time.process_time() - start
    full = (PRIOR_SE ** -2 + SE_B ** -2 + SE_23 ** -2) ** -0.5
    print(f"{args.sims} simulated truths from the root prior N({PRIOR}, {PRIOR_SE}²); B ± {SE_B}, A-2021 ± {SE_21}, "
          f"A-2023 ± {SE_23} (cumulative); CPU {cpu:.1f} s")
    print(f"{'prior of the update':<34} {'coverage':>9} {'MC se':>7} {'mean se':>9}")
    names = {"carried": "root v1 with B carried (now)", "dropped": "root v1 alone (B dropped, before)",
             "parent": "parent v3 (A-2021 twice)"}
    for rule, name in names.items():
        p = out[f"cover_{rule}"].mean()
        print(f"{name:<34} {p:>9.3f} {math.sqrt(p * (1 - p) / args.sims):>7.3f} {out[f'se_{rule}'].mean():>9.5f}")
    print(f"SE of one analysis of all the information: {full:.5f}")


if __name__ == "__main__":
    main()
