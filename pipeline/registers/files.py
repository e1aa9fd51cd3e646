"""Reading a register delivery folder: manifest, content hash, and one table per file (Parquet or CSV).

Column names are upper-cased on read (DST deliveries vary in case). CSV files may use the Danish dialect
(``;`` separator, decimal comma) and UTF-8 or Latin-1. Errors name the file and the column, never a PNR.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl


class DeliveryError(ValueError):
    """A delivery cannot be read or is refused; the message names the file, column and rows."""


@dataclass(frozen=True)
class Manifest:
    folder: Path
    vintage: str
    period_start: dt.date
    period_end: dt.date
    files: tuple[str, ...]

    @property
    def years(self) -> range:
        return range(self.period_start.year, self.period_end.year + 1)


def read_manifest(folder: Path) -> Manifest:
    """Parse ``manifest.json`` and check that every listed file exists."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise DeliveryError(f"{path}: manifest.json not found; a delivery folder must contain one")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DeliveryError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    for key in ("vintage", "period_start", "period_end", "files"):
        if key not in doc:
            raise DeliveryError(f"{path}: required key {key!r} missing")
    try:
        start, end = dt.date.fromisoformat(doc["period_start"]), dt.date.fromisoformat(doc["period_end"])
    except (TypeError, ValueError):
        raise DeliveryError(f"{path}: period_start/period_end must be ISO dates (YYYY-MM-DD)") from None
    if end < start:
        raise DeliveryError(f"{path}: period_end {end} is before period_start {start}")
    files = tuple(doc["files"])
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DeliveryError(f"{path}: {len(missing)} listed file(s) missing from the folder: {', '.join(missing[:5])}")
    return Manifest(folder, str(doc["vintage"]), start, end, files)


def delivery_hash(manifest: Manifest) -> str:
    """sha256 over the manifest and every listed file (name and bytes), in sorted order."""
    h = hashlib.sha256()
    h.update((manifest.folder / "manifest.json").read_bytes())
    for name in sorted(manifest.files):
        h.update(name.encode("utf-8"))
        with open(manifest.folder / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def read_table(path: Path) -> pl.DataFrame:
    """Read one register file (Parquet or CSV) with upper-case column names."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pl.read_parquet(path)
        elif suffix == ".csv":
            df = _read_csv(path)
        else:
            raise DeliveryError(f"{path.name}: unsupported file type {suffix!r} (supported: .parquet, .csv)")
    except DeliveryError:
        raise
    except Exception as exc:  # polars raises several error types; report the file, not the data
        raise DeliveryError(f"{path.name}: cannot be read ({type(exc).__name__})") from None
    upper = [c.upper() for c in df.columns]
    if len(set(upper)) != len(upper):
        raise DeliveryError(f"{path.name}: column names collide when upper-cased")
    return df.rename(dict(zip(df.columns, upper)))


def _read_csv(path: Path) -> pl.DataFrame:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    first = text.split("\n", 1)[0]
    sep = ";" if first.count(";") > first.count(",") else ","
    return pl.read_csv(text.encode("utf-8"), separator=sep, infer_schema=False, decimal_comma=(sep == ";"))


def require_columns(df: pl.DataFrame, columns: list[str], file: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DeliveryError(f"{file}: required column(s) {', '.join(missing)} missing (has {', '.join(df.columns[:12])})")


def parse_dates(df: pl.DataFrame, column: str, file: str, *, open_end: dt.date | None = None) -> pl.Series:
    """A date column from ISO text, SAS ``DDMMMYYYY`` text or a date/datetime value.

    Missing values and the open-end markers 9999-12-31 / 31DEC9999 become ``open_end`` when given (else
    stay null). Unparseable values raise :class:`DeliveryError` with the count and first row numbers.
    """
    s = df.get_column(column)
    if s.dtype == pl.Date:
        out = s
    elif s.dtype == pl.Datetime:
        out = s.dt.date()
    else:
        text = s.cast(pl.Utf8).str.strip_chars()
        text = pl.when(text == "").then(None).otherwise(text)
        frame = pl.DataFrame({"t": s.cast(pl.Utf8).str.strip_chars()}).with_columns(
            pl.when(pl.col("t") == "").then(None).otherwise(pl.col("t")).alias("t"))
        iso = frame.get_column("t").str.to_date("%Y-%m-%d", strict=False)
        sas = frame.get_column("t").str.to_titlecase().str.to_date("%d%b%Y", strict=False)
        out = iso.fill_null(sas)
        bad = frame.get_column("t").is_not_null() & out.is_null()
        if bad.any():
            rows = bad.arg_true().head(5).to_list()
            raise DeliveryError(f"{file}: column {column}: {int(bad.sum())} value(s) are not dates (rows {rows})")
    if open_end is not None:
        out = pl.when(out.is_null() | (out >= dt.date(9999, 12, 31))).then(pl.lit(open_end)).otherwise(out)
        out = pl.select(out).to_series()
    return out.alias(column)
