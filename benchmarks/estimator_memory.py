"""Peak memory of `som estimate` on balanced and unbalanced panels of the same persons, and with DR + 5 covariates.

For each size (persons × years) three Parquet files are written once to a cache folder, shaped like `som ingest`'s
output (DESIGN §3.2): a panel ``person_id, year`` with the outcome ``y``, five covariates ``x1 … x5`` (``x5``
time-varying) and six further outcome columns the estimate does not use, and a treatments file
``person_id, start_year`` (the treated persons only). The *unbalanced* panel has the same persons with births,
deaths and emigration: about a third of them (``--incomplete``, default 0.34) enter after the first year and/or
leave before the last, so ≈ 66 % of the persons are complete, as in an ingested delivery.

Each case runs the command's own code path (``pipeline.cli`` ``estimate … --treatments … --json``) in a fresh
subprocess; its peak resident memory is the child's ``ru_maxrss`` (``os.wait4``), which counts numpy and polars
buffers. A baseline run on a 2,000-person panel measures the interpreter with the command's imports; the
figures per 1,000 persons are ``(peak − baseline) / persons × 1,000``. Cases:

* ``balanced``    — unconditional ATT(g, t), never-treated comparison, all aggregations, pre-trend test;
* ``unbalanced``  — the same on the unbalanced panel;
* ``dr5``         — doubly robust with the five covariates on the balanced panel;
* ``dr5_unbal``   — doubly robust with the five covariates on the unbalanced panel;
* ``matched``     — the matched design (``--design matched``: nearest neighbour on the logit propensity score of
  ``x1 … x4`` and the outcome before treatment, then ATT(g, t) per cohort) on the balanced panel.

Printed per size: peak MiB, MiB per 1,000 persons above the baseline, wall seconds, and the ratios
unbalanced / balanced (target ≤ 1.5), DR-5 / balanced (target ≤ 2) and matched / balanced (no target), on the
peaks and on the increments above the baseline.

Usage: ``uv run --frozen python benchmarks/estimator_memory.py [--sizes 100000x12,300000x12,1000000x12,1000000x20]
[--cases balanced,unbalanced,dr5,dr5_unbal,matched] [--cache /tmp/som_mem_bench] [--repeat 1] [--no-step]``.
Peaks of the same case vary by up to ≈ 30 % between runs on a loaded machine (polars' decoding threads), hence
``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COVS = ["x1", "x2", "x3", "x4", "x5"]
EXTRA = [f"other_{k}" for k in range(6)]
CASES = ("balanced", "unbalanced", "dr5", "dr5_unbal", "matched")
MATCH_ON = COVS[:4]


def case_options(case: str) -> list[str]:
    """The `som estimate` options of a case besides the files and columns."""
    if case.startswith("dr5"):
        return ["--covariates", ",".join(COVS), "--method", "dr"]
    if case == "matched":
        return ["--design", "matched", "--match-on", ",".join(MATCH_ON)]
    return []


def make_files(n: int, years: int, cache: Path, incomplete: float) -> dict[str, Path]:
    """Balanced and unbalanced panels of the same ``n`` persons and their treatments file (written once, by a child
    process: a child forked from a parent holding the generated data would count the parent's pages in its peak)."""
    stem = cache / f"p{n}x{years}_i{int(round(incomplete * 100))}"
    paths = {"balanced": stem.with_name(stem.name + "_balanced.parquet"),
             "unbalanced": stem.with_name(stem.name + "_unbalanced.parquet"),
             "treatments": stem.with_name(stem.name + "_treatments.parquet")}
    if not all(p.exists() for p in paths.values()):
        subprocess.run([sys.executable, __file__, "--generate", f"{n}x{years}", "--cache", str(cache),
                        "--incomplete", str(incomplete)], check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return paths


def _generate(n: int, years: int, paths: dict[str, Path], cache: Path, incomplete: float) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import polars as pl

    from som_models.estimators.synthetic import staggered_panel

    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261129)
    panel = staggered_panel(n, periods=years, n_covariates=5, time_varying=True, seed=2026)
    panel = panel.with_columns(*(pl.lit(rng.poisson(2.0, panel.height).astype(np.float64)).alias(c) for c in EXTRA))
    treat = (panel.filter(pl.col("first_treat") > 0).group_by("person_id")
             .agg(pl.col("first_treat").first().cast(pl.Int64).alias("start_year")).sort("person_id"))
    treat.write_parquet(paths["treatments"])
    panel = panel.drop("first_treat")
    panel.write_parquet(paths["balanced"])
    # births / deaths / emigration: each incomplete person enters late, leaves early, or both
    first_year = int(panel.get_column("year").min())
    kind = rng.random(n)
    inc = rng.random(n) < incomplete
    enter = np.where(inc & (kind < 0.6), rng.integers(1, years, n), 0) + first_year
    leave = np.where(inc & (kind >= 0.4), rng.integers(0, years - 1, n), years - 1) + first_year
    leave = np.maximum(leave, enter)
    span = pl.DataFrame({"person_id": np.arange(n, dtype=np.int64), "_enter": enter, "_leave": leave})
    ids = panel.get_column("person_id").unique().sort()
    span = span.with_columns(pl.Series("person_id", ids.to_numpy()))
    (panel.join(span, on="person_id", how="left", maintain_order="left")
     .filter((pl.col("year") >= pl.col("_enter")) & (pl.col("year") <= pl.col("_leave")))
     .drop("_enter", "_leave").write_parquet(paths["unbalanced"]))


def run_case(panel: Path, treatments: Path, case: str) -> dict:
    """Run ``som estimate`` in a child process; its wall time and peak RSS (MiB)."""
    args = ["estimate", str(panel), "--treatments", str(treatments), "--id", "person_id", "--time", "year",
            "--outcome", "y", "--group", "start_year", "--json", os.devnull, *case_options(case)]
    code = "import sys; from pipeline.cli import main; sys.argv = ['som', *sys.argv[1:]]; main()"
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    t0 = time.perf_counter()
    # cwd=ROOT: ``python -c`` puts the working directory first on sys.path, before PYTHONPATH
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"som estimate failed on {panel.name}: {err.strip().splitlines()[-1] if err.strip() else status}")
    return {"wall": wall, "peak_mib": usage.ru_maxrss / 1024}


STEP = r"""
import json, sys
from pathlib import Path
import pipeline.cli  # the command module is loaded through the CLI, as `som estimate` does
from pipeline.commands.estimate import needed_columns, read_columns, with_treatment_start
from som_models.estimators.dispatch import EstimationSettings, estimate

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
panel, treatments, covs = Path(sys.argv[1]), Path(sys.argv[2]), [c for c in sys.argv[3].split(",") if c]
match_on = tuple(c for c in sys.argv[4].split(",") if c)
settings = (EstimationSettings(design="matched", match_on=match_on) if match_on else
            EstimationSettings(covariates=tuple(covs), method="dr" if covs else None))
data = read_columns(panel, needed_columns(id_col="person_id", time_col="year", outcomes=["y"], group=None,
                                          treatment=None, settings=settings), narrow_floats=not match_on)
data = with_treatment_start(data, treatments, id_col="person_id", group="start_year")
loaded, load_peak = status("VmRSS"), status("VmHWM")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
estimate(data, outcomes=["y"], id_col="person_id", time_col="year", group_col="start_year", settings=settings)
print(json.dumps({"data_mib": loaded, "load_peak_mib": load_peak, "step_mib": status("VmHWM") - loaded}))
"""


def run_step(panel: Path, treatments: Path, case: str) -> dict:
    """The estimation step alone: the same reading functions and dispatcher as the command, in a child that
    resets its peak after the data are loaded; the frame's RSS and the estimation's peak above it (MiB)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", STEP, str(panel), str(treatments),
                           ",".join(COVS) if case.startswith("dr5") else "",
                           ",".join(MATCH_ON) if case == "matched" else ""],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"estimation step failed on {panel.name}: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000x12,300000x12,1000000x12,1000000x20",
                    help="comma-separated PERSONSxYEARS")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    ap.add_argument("--cache", default="/tmp/som_mem_bench")
    ap.add_argument("--incomplete", type=float, default=0.34, help="share of persons not observed in every year")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the lowest peak is reported")
    ap.add_argument("--no-step", dest="step", action="store_false",
                    help="skip the second child per case that measures the estimation step alone")
    ap.add_argument("--generate", default=None, help=argparse.SUPPRESS)  # internal: write one size's files
    ap.add_argument("--json", dest="json_out", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        ap.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    cache = Path(args.cache)
    if args.generate:
        n, years = (int(v) for v in args.generate.lower().split("x"))
        stem = cache / f"p{n}x{years}_i{int(round(args.incomplete * 100))}"
        _generate(n, years, {k: stem.with_name(f"{stem.name}_{k}.parquet") for k in ("balanced", "unbalanced",
                                                                                     "treatments")},
                  cache, args.incomplete)
        return
    base_files = make_files(2000, 12, cache, args.incomplete)
    baseline = run_case(base_files["balanced"], base_files["treatments"], "balanced")["peak_mib"]
    print(f"baseline (2,000 persons, imports and interpreter): {baseline:.0f} MiB peak")
    print(f"{'persons':>9} {'years':>5} {'case':<11} {'complete':>8} {'wall s':>7} {'peak MiB':>9} {'MiB/1k':>7}"
          f" {'data MiB':>9} {'step MiB':>9} {'step/1k':>8}")
    out = {"baseline_mib": baseline, "runs": []}
    for size in args.sizes.split(","):
        n, years = (int(v) for v in size.lower().split("x"))
        files = make_files(n, years, cache, args.incomplete)
        got: dict[str, dict] = {}
        for case in cases:
            unbal = case in ("unbalanced", "dr5_unbal")
            runs = [run_case(files["unbalanced" if unbal else "balanced"], files["treatments"], case)
                    for _ in range(args.repeat)]
            r = min(runs, key=lambda x: x["peak_mib"])  # peaks vary with polars' thread timing; the lowest is the need
            r["per_1k"] = (r["peak_mib"] - baseline) / n * 1000
            if args.step:
                r.update(run_step(files["unbalanced" if unbal else "balanced"], files["treatments"], case))
                r["step_per_1k"] = r["step_mib"] / n * 1000
            got[case] = r
            share = _complete_share(files["unbalanced"], years) if unbal else 1.0
            step = (f" {r['data_mib']:>9.0f} {r['step_mib']:>9.0f} {r['step_per_1k']:>8.3f}" if args.step else "")
            print(f"{n:>9} {years:>5} {case:<11} {share:>8.0%} {r['wall']:>7.1f} {r['peak_mib']:>9.0f} "
                  f"{r['per_1k']:>7.3f}{step}", flush=True)
        bal = got.get("balanced")
        if bal:
            for case, target in (("unbalanced", 1.5), ("dr5", 2.0), ("dr5_unbal", 2.0), ("matched", None)):
                if case in got:
                    r = got[case]
                    peak = r["peak_mib"] / bal["peak_mib"]
                    inc = r["per_1k"] / bal["per_1k"] if bal["per_1k"] > 0 else float("nan")
                    step = ""
                    if args.step and bal["step_mib"] > 0:
                        step = f", estimation step {r['step_mib'] / bal['step_mib']:.2f}x"
                    print(f"{'':>9} {'':>5} {case + ' / balanced':<24} peak {peak:.2f}x, above baseline {inc:.2f}x"
                          f"{step} ({'no target' if target is None else f'target <= {target}x'})")
        out["runs"].append({"persons": n, "years": years, **{c: got[c] for c in got}})
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))


def _complete_share(path: Path, years: int) -> float:
    """Share of persons observed in every year (in a child: the parent stays small, see :func:`make_files`)."""
    code = ("import sys, polars as pl; c = pl.scan_parquet(sys.argv[1]).group_by('person_id').len().collect(); "
            "print(float((c.get_column('len') == int(sys.argv[2])).mean()))")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(years)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


if __name__ == "__main__":
    main()
