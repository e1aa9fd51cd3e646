"""The in-memory form of a synthetic register delivery and how it is written to a folder.

Formats (``write_delivery(..., fmt=...)``):

* ``parquet`` — one Parquet file per register (per year where yearly), upper-case DST names, date columns as
  Parquet dates, DREAM codes as text (``"701"``; null = blank);
* ``csv`` — UTF-8, ``,`` separator, ISO dates, ``.`` decimals;
* ``csv-dk`` — the Danish dialect: ``;`` separator, decimal comma, Latin-1, lower-case column names, dates as
  SAS ``DDMMMYYYY`` text (open ends ``31DEC9999``);
* ``sas`` — SAS transport files (``.xpt``, XPORT version 8 via pyreadstat: names up to 32 characters). pyreadstat
  1.3.7 cannot write ``.sas7bdat`` (its writer supports only sav/dta/xport/por), so SAS deliveries are written
  as ``.xpt``; the ingestion reads both.

Beside the register files: ``manifest.json`` (vintage, period, files, registers, sha256 per file; ``assigned_by:
municipality`` when the world rolls the intervention out by municipality),
``truth.json`` (what was planted, and per-year fingerprints of the expected panel; no person numbers) and,
when the world kept it, ``truth_panel.parquet`` (the expected panel row by row, keyed by PNR — synthetic
numbers — for exact ingestion tests; it is not part of the delivery and not listed in the manifest).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import polars as pl

from som_models.hashing import file_sha256

FORMATS = ("parquet", "csv", "csv-dk", "sas")
_EXT = {"parquet": "parquet", "csv": "csv", "csv-dk": "csv", "sas": "xpt"}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True, eq=False)
class WideCodes:
    """DREAM in compact form: ``codes[r, w]`` (int16, 0 = blank) for person ``pnr[r]`` and week ``columns[w]``."""

    pnr: np.ndarray
    codes: np.ndarray
    columns: tuple[str, ...]

    def blocks(self, rows: int = 50_000) -> Iterator[pl.DataFrame]:
        """The DREAM table in row blocks as DST delivers it: PNR + text codes, null = blank."""
        for lo in range(0, len(self.pnr), rows):
            hi = min(len(self.pnr), lo + rows)
            df = pl.from_numpy(self.codes[lo:hi], schema=list(self.columns), orient="row")
            df = df.select(pl.when(pl.col(c) != 0).then(pl.col(c).cast(pl.Utf8)).alias(c) for c in self.columns)
            yield df.insert_column(0, pl.Series("PNR", self.pnr[lo:hi], dtype=pl.Utf8))

    def arrow_blocks(self, rows: int = 100_000):
        """Row blocks as Arrow tables with dictionary-encoded text codes (cheap in memory, fast to write)."""
        import pyarrow as pa

        for lo in range(0, len(self.pnr), rows):
            hi = min(len(self.pnr), lo + rows)
            arrays = [pa.array(self.pnr[lo:hi].tolist(), type=pa.string())]
            for j in range(len(self.columns)):
                vals = self.codes[lo:hi, j]
                uniq = np.unique(vals)
                uniq = uniq[uniq != 0]
                idx = np.searchsorted(uniq, vals).astype(np.int16)
                arrays.append(pa.DictionaryArray.from_arrays(pa.array(idx, mask=vals == 0),
                                                             pa.array([str(int(u)) for u in uniq], type=pa.string())))
            yield pa.Table.from_arrays(arrays, names=["PNR", *self.columns])

    def frame(self) -> pl.DataFrame:
        parts = list(self.blocks())
        if parts:
            return pl.concat(parts)
        return pl.DataFrame(schema={"PNR": pl.Utf8, **{c: pl.Utf8 for c in self.columns}})


@dataclass(frozen=True)
class SimulatedDelivery:
    """Register frames keyed by file stem (e.g. ``bef201812``), DREAM (compact), the manifest and the truth.

    ``expected`` is the panel the delivery must ingest to, row by row (``pnr``, ``year``, covariates and every
    outcome), when the world kept it; ``truth["expected_panel"]`` always holds per-year fingerprints.
    """

    frames: Mapping[str, pl.DataFrame]
    manifest: Mapping[str, Any]
    truth: Mapping[str, Any]
    dream: WideCodes | None = None
    expected: pl.DataFrame | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", MappingProxyType(dict(self.frames)))
        object.__setattr__(self, "manifest", MappingProxyType(dict(self.manifest)))

    def table(self, stem: str) -> pl.DataFrame:
        """A register table by file stem, DREAM included (``table("dream")`` materialises the wide table)."""
        if stem == "dream" and self.dream is not None:
            return self.dream.frame()
        return self.frames[stem]

    @property
    def stems(self) -> list[str]:
        return sorted([*self.frames, *(["dream"] if self.dream is not None else [])])


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


def register_of(stem: str) -> str:
    """The register a file stem belongs to (``bef201912`` → ``bef``, ``lpr_adm2019`` → ``lpr``)."""
    for prefix, name in (("lpr_adm", "lpr"), ("bef", "bef"), ("indsats", "indsats"), ("ind", "ind"), ("kraf", "kraf"),
                         ("krin", "krin"), ("shelter", "shelter"), ("bua", "bua"), ("dream", "dream")):
        if stem.startswith(prefix):
            return name
    return stem


def _date_text(df: pl.DataFrame) -> pl.DataFrame:
    """Date columns as SAS ``DDMMMYYYY`` text; 9999-12-31 becomes ``31DEC9999``."""
    exprs = []
    for c, t in df.schema.items():
        if t == pl.Date:
            m = pl.col(c).dt.month().replace_strict(list(range(1, 13)), list(_MONTHS), return_dtype=pl.Utf8)
            exprs.append(pl.concat_str([pl.col(c).dt.day().cast(pl.Utf8).str.zfill(2), m,
                                        pl.col(c).dt.year().cast(pl.Utf8)]).alias(c))
    return df.with_columns(exprs) if exprs else df


def _write_frame(df: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        df.write_parquet(path)
    elif fmt == "csv":
        df.write_csv(path)
    elif fmt == "csv-dk":
        text = _date_text(df).rename(str.lower).write_csv(separator=";", decimal_comma=True)
        path.write_bytes(text.encode("latin-1"))
    elif fmt == "sas":
        import pyreadstat

        pdf = df.to_pandas()
        pyreadstat.write_xport(pdf, str(path), table_name=path.stem[:32].upper(), file_format_version=8)
    else:  # pragma: no cover - guarded by write_delivery
        raise ValueError(fmt)


def _write_dream(wide: WideCodes, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        writer = None
        try:
            for table in wide.arrow_blocks():
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
            if writer is None:
                wide.frame().write_parquet(path)
        finally:
            if writer is not None:
                writer.close()
    elif fmt in ("csv", "csv-dk"):
        with open(path, "wb") as fh:
            for i, block in enumerate(wide.blocks()):
                if fmt == "csv":
                    fh.write(block.write_csv(include_header=(i == 0)).encode("utf-8"))
                else:
                    fh.write(block.rename(str.lower).write_csv(separator=";", include_header=(i == 0)).encode("latin-1"))
            if fh.tell() == 0:
                frame = wide.frame()
                text = frame.write_csv() if fmt == "csv" else frame.rename(str.lower).write_csv(separator=";")
                fh.write(text.encode("latin-1"))
    else:
        _write_frame(wide.frame(), path, fmt)


def write_delivery(delivery: SimulatedDelivery, out_dir: Path, fmt: str = "parquet", *, truth_panel: bool = True) -> Path:
    """Write every register file as ``{stem}.{ext}`` plus ``manifest.json`` and ``truth.json``; returns ``out_dir``.

    ``fmt`` is one of ``parquet``, ``csv``, ``csv-dk`` (``;``, decimal comma, Latin-1) or ``sas`` (``.xpt``).
    ``truth.json`` holds what was planted and aggregates only (no person numbers); ``truth_panel.parquet`` (only
    when ``truth_panel`` and the world kept its expected panel) holds the expected panel row by row.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unsupported delivery format {fmt!r} (use one of {', '.join(FORMATS)})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = _EXT[fmt]
    files, registers = [], set()
    for stem, frame in sorted(delivery.frames.items()):
        name = f"{stem}.{ext}"
        _write_frame(frame, out_dir / name, fmt)
        files.append(name)
        registers.add(register_of(stem))
    if delivery.dream is not None:
        name = f"dream.{ext}"
        _write_dream(delivery.dream, out_dir / name, fmt)
        files.append(name)
        registers.add("dream")
    manifest = dict(delivery.manifest)
    manifest["files"] = sorted(files)
    manifest["registers"] = sorted(registers)
    manifest["format"] = fmt
    manifest["sha256"] = {f: file_sha256(out_dir / f) for f in sorted(files)}
    if delivery.truth.get("design") == "staggered" and delivery.truth.get("rollout"):
        manifest.setdefault("assigned_by", "municipality")  # a roll-out by municipality: the level of assignment
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    (out_dir / "truth.json").write_text(json.dumps(dict(delivery.truth), indent=2, default=_json_default), encoding="utf-8")
    if truth_panel and delivery.expected is not None:
        delivery.expected.write_parquet(out_dir / "truth_panel.parquet")
    return out_dir


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
