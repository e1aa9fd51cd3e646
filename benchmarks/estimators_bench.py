"""Benchmark of the realised-effect estimators at population scale (not part of CI).

For synthetic staggered-adoption panels of 10 k, 100 k and 1 M persons × 12 years (Parquet files written once
to a cache folder), each case runs in a fresh Python subprocess, which reports its wall time (after imports,
including reading the file) and its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which
counts numpy and polars buffers, unlike tracemalloc):

* ``polars``     — a plain polars group-by over the same file: mean outcome and count by (cohort, year);
* ``ours``       — ``att_gt`` unconditional, never-treated comparison, analytic SEs, all four aggregations and
                   the pre-trend test;
* ``ours_dr5``   — the same with the doubly robust estimator and 5 covariates (one of them time-varying);
* ``moderndid`` / ``csdid`` — the published Python implementations, if installed in a throwaway venv
                   (``python3 -m venv /tmp/bench && /tmp/bench/bin/pip install moderndid csdid``; set
                   ``SOM_BENCH_PYTHON`` to another interpreter); skipped gracefully when absent. Their ATT(g,t)
                   are compared with ours (max absolute difference printed).

Targets at 1 M × 12: unconditional ≤ 3 × the polars group-by and ≤ 2 GB peak; DR with 5 covariates ≤ 60 s.

Usage: ``uv run --frozen python benchmarks/estimators_bench.py [--sizes 10000,100000,1000000]
[--cases polars,ours,dr,reference] [--cache DIR] [--reference-max 100000]``; e.g. only the unconditional target at
1 M: ``--sizes 1000000 --cases polars,ours``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parents[1]
COVS = ["x1", "x2", "x3", "x4", "x5"]

CHILD_OURS = rf"""
import json, resource, sys, time
import polars as pl
from som_models.estimators import aggregate, att_gt, pretrend_test
path, method = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
cols = ["person_id", "year", "y", "first_treat"] + ({COVS} if method == "dr" else [])
data = pl.read_parquet(path, columns=cols)
res = att_gt(data, outcome="y", id_col="person_id", time_col="year", group_col="first_treat",
             covariates={COVS} if method == "dr" else (), method="dr" if method == "dr" else None)
del data
aggs = {{k: aggregate(res, k) for k in ("simple", "dynamic", "group", "calendar")}}
pre = pretrend_test(res)
wall = time.perf_counter() - t0
print(json.dumps({{"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "cells": {{f"{{c.group}},{{c.time}}": c.estimate for c in res.cells}},
                  "simple": aggs["simple"].overall, "dynamic": aggs["dynamic"].overall}}))
"""

CHILD_POLARS = r"""
import json, resource, sys, time
import polars as pl
t0 = time.perf_counter()
out = (pl.read_parquet(sys.argv[1], columns=["year", "y", "first_treat"])
       .group_by("first_treat", "year").agg(pl.col("y").mean(), pl.len()))
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": out.height}))
"""

CHILD_MODERNDID = Template(r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import polars as pl
import moderndid
path, method = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
data = pl.read_parquet(path)
res = moderndid.att_gt(data=data, yname="y", tname="year", gname="first_treat", idname="person_id",
                       xformla="~" + "+".join($covs) if method == "dr" else None, est_method="dr", boot=False, cband=False)
for k in ("simple", "dynamic", "group", "calendar"):
    moderndid.aggte(res, type=k, boot=False, cband=False)
wall = time.perf_counter() - t0
cells = {f"{int(g)},{int(t)}": float(a) for g, t, a in zip(res.groups, res.times, res.att_gt)}
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cells": cells}))
""").substitute(covs=COVS)

CHILD_CSDID = Template(r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from csdid.att_gt import ATTgt
path, method = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
data = pd.read_parquet(path)
xf = "y~" + "+".join($covs) if method == "dr" else None
res = ATTgt(yname="y", gname="first_treat", idname="person_id", tname="year", xformla=xf,
            data=data).fit(est_method="dr", bstrap=False)
for k in ("simple", "dynamic", "group", "calendar"):
    res.aggte(typec=k, bstrap=False)
wall = time.perf_counter() - t0
r = res.results
cells = {f"{int(g)},{int(t)}": float(a) for g, t, a in zip(r["group"], r["year"], r["att"])}
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cells": cells}))
""").substitute(covs=COVS)


def make_panel(n: int, cache: Path) -> Path:
    path = cache / f"staggered_{n}x12.parquet"
    if not path.exists():
        sys.path.insert(0, str(ROOT))
        from som_models.estimators.synthetic import staggered_panel

        cache.mkdir(parents=True, exist_ok=True)
        staggered_panel(n, periods=12, n_covariates=5, time_varying=True, seed=2026).write_parquet(path)
    return path


def run_child(python: str, code: str, *args: str, timeout: int = 3600) -> dict | None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        print(f"    failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def reference_python() -> str | None:
    candidate = os.environ.get("SOM_BENCH_PYTHON", "/tmp/bench/bin/python")
    return candidate if Path(candidate).exists() else None


def has_module(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def max_diff(a: dict, b: dict) -> float:
    common = set(a) & set(b)
    return max((abs(a[k] - b[k]) for k in common), default=float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--cache", default="/tmp/som_bench")
    ap.add_argument("--reference-max", type=int, default=100_000,
                    help="largest panel to run the published implementations on (they are much slower)")
    ap.add_argument("--cases", default="polars,ours,dr,reference",
                    help="comma-separated subset of: polars (group-by), ours (unconditional), dr (5 covariates), "
                         "reference (moderndid/csdid)")
    args = ap.parse_args()
    cases = set(args.cases.split(","))
    unknown = cases - {"polars", "ours", "dr", "reference"}
    if unknown:
        ap.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    cache = Path(args.cache)
    ref_py = reference_python() if "reference" in cases else None
    refs = []
    if ref_py:
        refs = [(name, code) for name, code, mod in (("moderndid", CHILD_MODERNDID, "moderndid"),
                                                     ("csdid", CHILD_CSDID, "csdid")) if has_module(ref_py, mod)]
    if not refs and "reference" in cases:
        print("published implementations not installed (moderndid/csdid in /tmp/bench or $SOM_BENCH_PYTHON): comparison skipped")
    print(f"{'persons':>9} {'case':<18} {'wall s':>8} {'peak MB':>9}  notes")
    for n in [int(s) for s in args.sizes.split(",")]:
        path = make_panel(n, cache)
        pol = run_child(sys.executable, CHILD_POLARS, str(path)) if "polars" in cases else None
        if pol:
            print(f"{n:>9} {'polars group-by':<18} {pol['wall']:>8.2f} {pol['rss_mb']:>9.0f}")
        ours = run_child(sys.executable, CHILD_OURS, str(path), "unconditional") if "ours" in cases else None
        if ours:
            ratio = ours["wall"] / pol["wall"] if pol else float("nan")
            print(f"{n:>9} {'ours unconditional':<18} {ours['wall']:>8.2f} {ours['rss_mb']:>9.0f}  "
                  f"{ratio:.1f}x polars; {len(ours['cells'])} cells")
        dr = run_child(sys.executable, CHILD_OURS, str(path), "dr") if "dr" in cases else None
        if dr:
            print(f"{n:>9} {'ours DR 5 covs':<18} {dr['wall']:>8.2f} {dr['rss_mb']:>9.0f}")
        if n <= args.reference_max:
            for name, code in refs:
                for method, mine in (("unconditional", ours), ("dr", dr)):
                    got = run_child(ref_py, code, str(path), method)
                    if got:
                        agree = max_diff(mine["cells"], got["cells"]) if mine else float("nan")
                        print(f"{n:>9} {name + ' ' + method[:6]:<18} {got['wall']:>8.2f} {got['rss_mb']:>9.0f}  "
                              f"max |ATT(g,t) diff| vs ours {agree:.2e}")
        elif refs:
            print(f"{n:>9} {'published':<18} {'':>8} {'':>9}  skipped above --reference-max")


if __name__ == "__main__":
    main()
