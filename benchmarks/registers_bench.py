"""Benchmark (not a test): generate and ingest population-scale deliveries, wall time and peak memory per stage.

Each stage runs in a fresh subprocess (this script with ``--stage``), which reports its own wall time and
peak resident memory (``ru_maxrss`` of ``RUSAGE_SELF``), so the figures of one stage are not polluted by
another. Default: the homelessness world over 20 years (2003–2022, 1 096 DREAM week columns with the
look-back year) with 5 % of persons in the target group, 100 000 and 1 000 000 persons, Parquet.

    uv run --frozen python benchmarks/registers_bench.py                    # 100k and 1M
    uv run --frozen python benchmarks/registers_bench.py --persons 100000   # one size
    uv run --frozen python benchmarks/registers_bench.py --keep             # keep the folders under --root

Target (issue 3): ingest 1 M persons in ≤ 60 s with ≤ 8 GB peak on 2 cores.
Generation here is one piece (≈ 7 GB at 1 M persons); ``benchmarks/population_scale.py`` generates in person
chunks and compares ingest with a plain polars read of the same files (issue 16).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stage(args) -> None:
    started = time.perf_counter()
    info: dict = {}
    if args.stage == "generate":
        from som_models.simulate import simulate, write_delivery

        sim = simulate(args.scenario, args.persons, args.seed, first_year=args.first_year, last_year=args.last_year,
                       target_share=args.target_share, keep_expected=False)
        t_sim = time.perf_counter()
        write_delivery(sim, Path(args.folder), args.format, truth_panel=False)
        info = {"simulate_s": round(t_sim - started, 1), "write_s": round(time.perf_counter() - t_sim, 1),
                "dream_persons": int(len(sim.dream.pnr)), "dream_columns": len(sim.dream.columns),
                "bytes": sum(p.stat().st_size for p in Path(args.folder).iterdir())}
    else:
        from pipeline.registers import ingest

        result = ingest(Path(args.folder), Path(args.out), bytes.fromhex("ab" * 32))
        info = {"person_years": result.summary["rows"]["person_years"], "persons": result.summary["rows"]["persons"],
                "stage_seconds": result.summary["stage_seconds"]}
    info["wall_s"] = round(time.perf_counter() - started, 1)
    info["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2)
    print("RESULT " + json.dumps(info), flush=True)


def _run(stage: str, persons: int, folder: Path, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--persons", str(persons), "--folder", str(folder), "--out", str(out),
           "--scenario", args.scenario, "--seed", str(args.seed), "--format", args.format,
           "--first-year", str(args.first_year), "--last-year", str(args.last_year), "--target-share", str(args.target_share)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "GX_ANALYTICS_ENABLED": "False"})
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{stage} {persons:,} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    info = json.loads(line[len("RESULT "):])
    info["process_wall_s"] = round(wall, 1)
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--persons", type=int, nargs="*", default=[100_000, 1_000_000])
    p.add_argument("--scenario", default="homelessness")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--format", default="parquet")
    p.add_argument("--first-year", type=int, default=2003)
    p.add_argument("--last-year", type=int, default=2022)
    p.add_argument("--target-share", type=float, default=0.05)
    p.add_argument("--root", type=Path, default=None, help="Folder for the deliveries (default: a temporary folder).")
    p.add_argument("--keep", action="store_true", help="Keep the generated deliveries and panels.")
    p.add_argument("--stage", choices=("generate", "ingest"), help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stage:
        args.persons = args.persons[0]
        _stage(args)
        return
    root = args.root or Path(tempfile.mkdtemp(prefix="som-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"{args.scenario}, {args.first_year}-{args.last_year}, target share {args.target_share}, {args.format}; in {root}")
    try:
        for n in args.persons:
            folder, out = root / f"delivery_{n}", root / f"panel_{n}"
            for d in (folder, out):
                shutil.rmtree(d, ignore_errors=True)
            g = _run("generate", n, folder, out, args)
            print(f"{n:>9,} persons  generate: {g['wall_s']:7.1f} s  peak {g['peak_rss_gb']:5.2f} GB  "
                  f"(simulate {g['simulate_s']} s, write {g['write_s']} s; DREAM {g['dream_persons']:,} persons × "
                  f"{g['dream_columns']} weeks; {g['bytes'] / 1e9:.2f} GB on disk)", flush=True)
            i = _run("ingest", n, folder, out, args)
            stages = ", ".join(f"{k} {v:.1f}" for k, v in i["stage_seconds"].items())
            print(f"{n:>9,} persons  ingest:   {i['wall_s']:7.1f} s  peak {i['peak_rss_gb']:5.2f} GB  "
                  f"({i['person_years']:,} person-years; {stages})", flush=True)
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.keep and args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
