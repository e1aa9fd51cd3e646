"""The in-memory form of a synthetic register delivery and how it is written to a folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import polars as pl


@dataclass(frozen=True)
class SimulatedDelivery:
    """Register frames keyed by file stem (e.g. ``bef201812``), the manifest and the planted truth."""

    frames: Mapping[str, pl.DataFrame]
    manifest: Mapping[str, Any]
    truth: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", MappingProxyType(dict(self.frames)))


def make_pnrs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Synthetic 10-digit CPR-like person numbers (DDMMYY + 4 digits), unique; not real persons."""
    out: set[str] = set()
    while len(out) < n:
        day = rng.integers(1, 29)
        month = rng.integers(1, 13)
        yy = rng.integers(0, 100)
        seq = rng.integers(0, 10000)
        out.add(f"{day:02d}{month:02d}{yy:02d}{seq:04d}")
    return np.array(sorted(out), dtype=object)[rng.permutation(n)]


def write_delivery(delivery: SimulatedDelivery, out_dir: Path, fmt: str = "parquet") -> Path:
    """Write every frame as ``{stem}.{fmt}`` plus ``manifest.json`` and ``truth.json``; returns ``out_dir``.

    ``truth.json`` holds aggregates only (no person numbers).
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unsupported delivery format {fmt!r} (use parquet or csv)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for stem, frame in sorted(delivery.frames.items()):
        name = f"{stem}.{fmt}"
        if fmt == "parquet":
            frame.write_parquet(out_dir / name)
        else:
            frame.write_csv(out_dir / name)
        files.append(name)
    manifest = dict(delivery.manifest)
    manifest["files"] = files
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    (out_dir / "truth.json").write_text(json.dumps(dict(delivery.truth), indent=2), encoding="utf-8")
    return out_dir
