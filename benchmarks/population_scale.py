"""Benchmark (not a test): ingestion at population scale — wall time and peak memory against a plain polars read.

For each size: a synthetic delivery (the homelessness world, 20 years, Parquet) is generated in person
chunks, ``ingest`` runs in a fresh subprocess, and a second subprocess reads every file of the same
delivery with polars (each file whole; DREAM one block of ~53 week columns at a time, as the ingestion
reads it — a whole DREAM file does not fit in memory at population scale). Each subprocess reports its own
wall time (after its imports), CPU time (user + system, all threads) and peak resident memory
(``ru_maxrss``); the ratio ingest ÷ read comes from the same run. The CPU time bounds what any scheduling
could reach: with every core busy throughout, the ingest still needs its CPU seconds ÷ cores, printed as
a ratio to the read as well. A third subprocess (``floor``) runs alone each part every ingest must do — its reads,
typing and register suites, the panel suites, the panel write — and prints their CPU seconds ÷ cores as a ratio to
the read: the least any ingest built from these parts could take. At the end the peak memory per 1,000 persons
is printed for every size, and the growth per 1,000 persons between the sizes (the slope that extrapolates to 6 M).

Generation in chunks: each chunk of ``--chunk`` persons is one simulated world (seed ``--seed + k``)
written to its own folder; its person numbers are renumbered ``CCCNNNNNNN`` (chunk, running number — ten
digits, unique over the chunks; LPR's RECNUM gets the chunk as a prefix), and the chunks' files are then
concatenated row group by row group into the delivery (pyarrow, never a whole file in memory) with a fresh
manifest (sha256 of every file). A chunk of 250,000 persons needs ≈ 2 GB; generation time grows linearly.

    uv run --frozen python benchmarks/population_scale.py --persons 250000 500000 1000000
    uv run --frozen python benchmarks/population_scale.py --persons 1000000 3000000 6000000 --root /data/bench  # full

Targets (issue 16): ingest ≤ 1.5× the read; 1 M persons ≤ 30 s and ≤ 4 GB; 6 M persons within 24 GB.
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
KEY = "ab" * 32


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


# --------------------------------------------------------------------------- stages (each in its own process)

def _renumber(sim, chunk: int):
    """The chunk's simulated delivery with every person number replaced by ``CCCNNNNNNN`` (same map in all files)."""
    import numpy as np
    import polars as pl

    from som_models.simulate.delivery import SimulatedDelivery, WideCodes

    pnrs = [f.get_column("PNR") for f in sim.frames.values() if "PNR" in f.columns]
    if sim.dream is not None:
        pnrs.append(pl.Series("PNR", sim.dream.pnr.astype(str), dtype=pl.Utf8))
    old = pl.concat(pnrs).unique(maintain_order=False).sort()
    if old.len() >= 10 ** 7:
        raise SystemExit(f"chunk {chunk}: more than 9,999,999 persons; use a smaller --chunk")
    new = pl.Series([f"{chunk:03d}{i:07d}" for i in range(old.len())], dtype=pl.Utf8)
    mapping = pl.DataFrame({"PNR": old, "_new": new})

    def swap(df: pl.DataFrame) -> pl.DataFrame:
        if "PNR" not in df.columns:
            return df
        cols = df.columns
        out = df.with_row_index("_r").join(mapping, on="PNR", how="left").sort("_r")
        return out.drop("PNR", "_r").rename({"_new": "PNR"}).select(cols)

    def recnum(df: pl.DataFrame) -> pl.DataFrame:  # LPR record numbers are unique over the delivery
        return df.with_columns((pl.lit(f"{chunk:03d}") + pl.col("RECNUM")).alias("RECNUM")) if "RECNUM" in df.columns else df

    frames = {k: recnum(swap(v)) for k, v in sim.frames.items()}
    dream = sim.dream
    if dream is not None:
        d = swap(pl.DataFrame({"PNR": dream.pnr.astype(str)}))
        dream = WideCodes(np.asarray(d.get_column("PNR").to_list(), dtype=object), dream.codes, dream.columns)
    return SimulatedDelivery(frames, dict(sim.manifest), dict(sim.truth), dream, None)


def _generate(args) -> dict:
    """Chunked generation into ``args.folder`` (see the module docstring)."""
    import pyarrow.parquet as pq

    from som_models.hashing import file_sha256

    folder = Path(args.folder)
    parts = folder.parent / (folder.name + ".chunks")
    shutil.rmtree(parts, ignore_errors=True)
    sizes = [min(args.chunk, args.persons - lo) for lo in range(0, args.persons, args.chunk)]
    manifest = None
    for k, n in enumerate(sizes):
        spec = {"n": n, "k": k, "seed": args.seed + k, "folder": str(parts / f"c{k:03d}"), "scenario": args.scenario,
                "first_year": args.first_year, "last_year": args.last_year, "target_share": args.target_share}
        proc = subprocess.run([sys.executable, __file__, "--stage", "chunk", "--folder", json.dumps(spec)], cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"generating chunk {k} failed:\n{proc.stderr[-3000:]}")
        chunk_peak = json.loads(proc.stdout.strip().splitlines()[-1])["peak_gib"]
        if manifest is None:
            manifest = json.loads((parts / "c000" / "manifest.json").read_text())
    assert manifest is not None
    folder.mkdir(parents=True, exist_ok=True)
    for name in manifest["files"]:
        writer = None
        # a table without person numbers (e.g. unit costs) is the same in every chunk: taken once
        has_pnr = "PNR" in pq.read_schema(parts / "c000" / name).names
        for k in range(len(sizes) if has_pnr else 1):
            pf = pq.ParquetFile(parts / f"c{k:03d}" / name)
            for g in range(pf.num_row_groups):
                table = pf.read_row_group(g)
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(folder / name, schema)
                writer.write_table(table.cast(schema))
        if writer is not None:
            writer.close()
    manifest["sha256"] = {f: file_sha256(folder / f) for f in manifest["files"]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    shutil.rmtree(parts, ignore_errors=True)
    return {"chunks": len(sizes), "chunk_peak_gib": round(chunk_peak, 2),
            "bytes": sum(p.stat().st_size for p in folder.iterdir())}


def _chunk(spec: dict) -> None:
    from som_models.simulate import simulate, write_delivery

    sim = simulate(spec["scenario"], spec["n"], spec["seed"], first_year=spec["first_year"], last_year=spec["last_year"],
                   target_share=spec["target_share"], keep_expected=False)
    sim = _renumber(sim, spec["k"])
    write_delivery(sim, Path(spec["folder"]), "parquet", truth_panel=False)
    print(json.dumps({"peak_gib": _peak_gib()}), flush=True)


def _read(args) -> dict:
    """Every file of the delivery read with polars (DREAM one block of ~53 week columns at a time)."""
    import polars as pl

    started = time.perf_counter()
    folder = Path(args.folder)
    cells = 0
    for path in sorted(folder.glob("*.parquet")):
        if path.name.startswith("dream"):
            cols = list(pl.read_parquet_schema(path))
            for lo in range(0, len(cols), 53):
                df = pl.read_parquet(path, columns=cols[lo:lo + 53])
                cells += df.height * df.width
                del df
        else:
            df = pl.read_parquet(path)
            cells += df.height * df.width
            del df
    return {"seconds": round(time.perf_counter() - started, 2), "cells": cells}


def _ingest(args) -> dict:
    from pipeline.registers import ingest

    started = time.perf_counter()
    result = ingest(Path(args.folder), Path(args.out), bytes.fromhex(KEY))
    return {"seconds": round(time.perf_counter() - started, 2), "person_years": result.summary["rows"]["person_years"],
            "persons": result.summary["rows"]["persons"], "stage_seconds": result.summary["stage_seconds"]}


def _floor(args) -> dict:
    """CPU seconds of the parts every ingest of this delivery must do, each run alone with the ingest's own functions
    (polars engine, as at population scale): reading every file as the ingest reads it (DREAM one ISO year's block
    at a time, as dictionary indices); reading, typing, deriving and validating every register but DREAM
    (:func:`~pipeline.registers.panel.load_register`); the panel and treatments suites
    (:func:`~pipeline.registers.ingest.check_outputs`); writing the panel (:meth:`PanelBuild.write_panel`). Not
    counted: pseudonyms, joins, outcome counting, DREAM's count and check."""
    from pipeline.registers import config as cfg
    from pipeline.registers import panel as P
    from pipeline.registers.files import read_manifest
    from pipeline.registers.ingest import check_outputs

    manifest = read_manifest(Path(args.folder))
    ctx = P._Ctx(manifest, cfg.ColumnMap(), 0)
    files, _ = P.plan(manifest, ctx.cmap)
    parts: dict[str, float] = {}

    def timed(name: str, fn) -> None:
        cpu = _cpu_s()
        fn()
        parts[name] = round(_cpu_s() - cpu, 2)

    def dream() -> None:
        file = files["dream"][0][0]
        pnr_col, week_cols, yws = P._dream_columns(ctx, file)
        src = P._DreamSource(ctx, file, pnr_col, week_cols)
        src.frame_of([pnr_col])
        for year in sorted({y for y, _ in yws}):
            src.block([c for c, (y, _) in zip(week_cols, yws, strict=True) if y == year])

    def others() -> None:
        for name, fl in files.items():
            if name != "dream":
                for file, _ in fl:
                    P._read(ctx, name, file)

    def registers() -> None:
        for name, fl in files.items():
            if name != "dream":
                P.load_register(ctx, name, fl, P.derived(name))

    if "dream" in files:
        timed("read_dream", dream)
    timed("read_others", others)
    timed("registers", registers)  # their reads again, typing, derived columns, suites
    built = P.build_panel(manifest, bytes.fromhex(KEY))
    timed("panel_checks", lambda: check_outputs(built, max_gx_rows=0))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timed("write", lambda: built.write_panel(out / "floor_panel.parquet"))
    (out / "floor_panel.parquet").unlink()
    return {"parts_cpu_s": parts}


def _stage(args) -> None:
    if args.stage == "chunk":
        _chunk(json.loads(args.folder))
        return
    started, cpu = time.perf_counter(), _cpu_s()
    info = {"generate": _generate, "read": _read, "ingest": _ingest, "floor": _floor}[args.stage](args)
    info["wall_s"] = round(time.perf_counter() - started, 2)
    info["cpu_s"] = round(_cpu_s() - cpu, 2)  # user + system, every thread of the process (not the children)
    info["peak_gib"] = round(_peak_gib(), 3)
    print("RESULT " + json.dumps(info), flush=True)


def _run(stage: str, persons: int, folder: Path, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--persons", str(persons), "--folder", str(folder),
           "--out", str(out), "--scenario", args.scenario, "--seed", str(args.seed), "--chunk", str(args.chunk),
           "--first-year", str(args.first_year), "--last-year", str(args.last_year),
           "--target-share", str(args.target_share)]
    started = time.perf_counter()
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{stage} {persons:,} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    info = json.loads(line[len("RESULT "):])
    info["process_wall_s"] = round(time.perf_counter() - started, 1)
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--persons", type=int, nargs="*", default=[250_000, 500_000, 1_000_000])
    p.add_argument("--chunk", type=int, default=250_000, help="Persons per generated chunk (memory of generation).")
    p.add_argument("--scenario", default="homelessness")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--first-year", type=int, default=2003)
    p.add_argument("--last-year", type=int, default=2022)
    p.add_argument("--target-share", type=float, default=0.05)
    p.add_argument("--root", type=Path, default=None, help="Folder for the deliveries (default: a temporary folder).")
    p.add_argument("--keep", action="store_true", help="Keep the generated deliveries and panels.")
    p.add_argument("--reuse", action="store_true", help="Reuse a delivery already generated under --root.")
    p.add_argument("--stage", choices=("chunk", "generate", "read", "ingest", "floor"), help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stage:
        args.persons = args.persons[0]
        _stage(args)
        return
    root = args.root or Path(tempfile.mkdtemp(prefix="som-popscale-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"{args.scenario}, {args.first_year}-{args.last_year}, target share {args.target_share}, Parquet, chunks of "
          f"{args.chunk:,}; in {root}", flush=True)
    rows = []
    try:
        for n in args.persons:
            folder, out = root / f"delivery_{n}", root / f"panel_{n}"
            shutil.rmtree(out, ignore_errors=True)
            if not (args.reuse and (folder / "manifest.json").exists()):
                shutil.rmtree(folder, ignore_errors=True)
                g = _run("generate", n, folder, out, args)
                print(f"{n:>10,} persons  generate: {g['wall_s']:8.1f} s  {g['chunks']} chunk(s), peak per chunk "
                      f"{g['chunk_peak_gib']:.2f} GiB, {g['bytes'] / 2 ** 30:.2f} GiB on disk", flush=True)
            r = _run("read", n, folder, out, args)
            i = _run("ingest", n, folder, out, args)
            ratio = i["seconds"] / r["seconds"]
            stages = ", ".join(f"{k} {v:.1f}" for k, v in i["stage_seconds"].items())
            cores = os.cpu_count() or 1
            print(f"{n:>10,} persons  read:   {r['seconds']:7.1f} s  peak {r['peak_gib']:6.2f} GiB  CPU {r['cpu_s']:6.1f} s "
                  f"({r['cpu_s'] / r['wall_s']:.2f} of {cores} cores busy)", flush=True)
            print(f"{n:>10,} persons  ingest: {i['seconds']:7.1f} s  peak {i['peak_gib']:6.2f} GiB  CPU {i['cpu_s']:6.1f} s "
                  f"({i['cpu_s'] / i['wall_s']:.2f} of {cores} cores busy)  ratio ingest/read {ratio:.2f}, CPU ratio "
                  f"{i['cpu_s'] / r['cpu_s']:.2f}  ({i['person_years']:,} person-years; {stages})", flush=True)
            # with every core busy the whole time, the ingest could not take less than its CPU ÷ cores
            print(f"{'':>10}          ingest with all {cores} cores busy throughout: ≥ {i['cpu_s'] / cores:.1f} s = "
                  f"{i['cpu_s'] / cores / r['seconds']:.2f}× the read", flush=True)
            # the parts no ingest can skip, by their CPU time: even with every core busy throughout and everything else
            # (pseudonyms, joins, outcome counting) free, the ingest cannot take less than their sum ÷ cores
            f = _run("floor", n, folder, out, args)["parts_cpu_s"]
            reads = f.get("read_dream", 0) + f["read_others"]
            typing = f["registers"] - f["read_others"]  # load_register reads the files again
            must = reads + typing + f["panel_checks"] + f["write"]
            print(f"{'':>10}          parts every ingest does, CPU: reads {reads:.1f} s (DREAM {f.get('read_dream', 0):.1f}), "
                  f"typing and register suites {typing:.1f}, panel suites {f['panel_checks']:.1f}, panel write "
                  f"{f['write']:.1f}; {must:.1f} CPU-s ÷ {cores} cores ≥ {must / cores:.1f} s = "
                  f"{must / cores / r['seconds']:.2f}× the read", flush=True)
            rows.append((n, i["peak_gib"], i["seconds"], r["seconds"], ratio))
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
                shutil.rmtree(out, ignore_errors=True)
        print("\npersons      ingest s   read s  ratio  peak GiB  MiB per 1,000 persons")
        for n, peak, secs, rsecs, ratio in rows:
            print(f"{n:>10,} {secs:9.1f} {rsecs:8.1f} {ratio:6.2f} {peak:9.2f} {peak * 1024 / (n / 1000):10.1f}")
        for (n0, p0, *_), (n1, p1, *_) in zip(rows, rows[1:], strict=False):
            slope = (p1 - p0) * 1024 / ((n1 - n0) / 1000)
            print(f"growth {n0:,} → {n1:,}: {slope:.1f} MiB per 1,000 persons; extrapolated to 6,000,000: "
                  f"{p1 + slope * (6_000_000 - n1) / 1000 / 1024:.1f} GiB")
    finally:
        if not args.keep and args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
