"""Check (not a test): the ingest of this checkout gives exactly the panel and treatments of a reference checkout.

One simulated delivery (the homelessness world, ``--persons`` persons) is written in each format (Parquet, CSV,
Danish CSV, SAS transport) and ingested twice with the same key: by this checkout and by the reference
checkout (``--reference``, e.g. the main branch's worktree; run with that checkout's own ``.venv``). The
two ``panel.parquet`` and ``treatments.parquet`` must be equal — same columns, types, row order and values
(``polars.testing.assert_frame_equal``, exact). Prints one line per format; exits 1 on any difference.

    uv run --frozen python benchmarks/ingest_identity.py --reference /work/main --persons 20000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "ab" * 32
FORMATS = ("parquet", "csv", "csv-dk", "sas")
INGEST = ("import sys; from pathlib import Path; from pipeline.registers import ingest; "
          "ingest(Path(sys.argv[1]), Path(sys.argv[2]), bytes.fromhex(sys.argv[3]))")


def _ingest(checkout: Path, delivery: Path, out: Path) -> None:
    python = checkout / ".venv" / "bin" / "python"  # the checkout's own environment, as it is (nothing synced)
    cmd = [str(python), "-c", INGEST, str(delivery), str(out), KEY]
    proc = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True,
                          env={**os.environ, "GX_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(checkout)})
    if proc.returncode != 0:
        raise SystemExit(f"ingest with {checkout} failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", type=Path, required=True, help="The reference checkout (e.g. /work/main).")
    p.add_argument("--persons", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--formats", nargs="*", default=list(FORMATS))
    args = p.parse_args()
    import polars as pl
    from polars.testing import assert_frame_equal

    from som_models.simulate import simulate, write_delivery

    sim = simulate("homelessness", args.persons, args.seed)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="som-identity-") as tmp:
        for fmt in args.formats:
            delivery = write_delivery(sim, Path(tmp) / fmt / "delivery", fmt, truth_panel=False)
            outs = {}
            for label, checkout in (("this", ROOT), ("reference", args.reference.resolve())):
                outs[label] = Path(tmp) / fmt / label
                _ingest(checkout, delivery, outs[label])
            lines = []
            for name in ("panel.parquet", "treatments.parquet"):
                new, ref = pl.read_parquet(outs["this"] / name), pl.read_parquet(outs["reference"] / name)
                try:
                    assert_frame_equal(new, ref, check_exact=True)
                    lines.append(f"{name} equal ({new.height:,} rows × {new.width} columns)")
                except AssertionError as exc:
                    failed += 1
                    lines.append(f"{name} DIFFERS: {str(exc).splitlines()[0]}")
            print(f"{fmt:>8}: " + "; ".join(lines), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
