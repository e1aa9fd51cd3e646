"""Reading a register delivery folder: manifest, content hash, and typed tables from Parquet, CSV or SAS.

* Column names are upper-cased on read (DST deliveries vary in case) and mapped to the contract's names by
  the column-mapping config (:mod:`pipeline.registers.config`).
* CSV: separator ``;`` or ``,`` (from the header line), decimal comma with ``;``, UTF-8 (with or without BOM)
  or Latin-1/Windows-1252; UTF-16 and binary files are refused as a wrong encoding.
* SAS: ``.sas7bdat`` and ``.xpt`` through pyreadstat (dates with SAS date formats arrive as dates).
* Dates: date values, ISO text (``2019-12-31``, a time part is dropped), SAS ``DDMMMYYYY`` text
  (``31DEC2019``), ``DD-MM-YYYY`` text, or numbers = SAS date values (days since 1960-01-01). Open ends
  (empty, 9999-12-31, ``31DEC9999``) become missing in end columns.

Every error is a :class:`DeliveryError` naming the file and column, with counts and 0-based data-row
numbers — never a cell value (which could be a person number).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from som_models.hashing import update_from_file

SAS_EPOCH = dt.date(1960, 1, 1)
OPEN_END = dt.date(9999, 12, 31)
_SAMPLE = 5


class DeliveryError(ValueError):
    """A delivery cannot be read or is refused; the message names the file, column and rows, never a value.

    ``lines`` holds one line per problem (the message is the first, with a count of the others).
    """

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        self.lines = list(lines) if lines else [message]
        if lines and len(lines) > 1:
            message = f"{lines[0]} (and {len(lines) - 1} more problem(s))"
        super().__init__(message)


@dataclass(frozen=True)
class Manifest:
    folder: Path
    vintage: str
    period_start: dt.date
    period_end: dt.date
    files: tuple[str, ...]
    registers: tuple[str, ...] | None = None
    sha256: dict = field(default_factory=dict, compare=False, hash=False)
    interventions: tuple[str, ...] | None = None  # intervention codes in the delivery (None: not stated)
    #: ``registers`` (Statistics Denmark extracts) or ``panel`` (a handed-over person-year panel, see
    #: :mod:`pipeline.registers.handover`)
    kind: str = "registers"
    #: for ``kind: panel``: ``{"panel": file, "treatments": file | None, "columns": {canonical: column}}``
    handover: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def years(self) -> range:
        return range(self.period_start.year, self.period_end.year + 1)


def read_manifest(folder: Path) -> Manifest:
    """Parse ``manifest.json`` and check that every listed file exists and is not empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeliveryError(f"{folder}: delivery folder not found")
    path = folder / "manifest.json"
    if not path.is_file():
        raise DeliveryError(f"{path}: manifest.json not found; a delivery folder must contain one")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DeliveryError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise DeliveryError(f"{path}: not UTF-8 text") from None
    if not isinstance(doc, dict):
        raise DeliveryError(f"{path}: must be a JSON object")
    for key in ("vintage", "period_start", "period_end", "files"):
        if key not in doc:
            raise DeliveryError(f"{path}: required key {key!r} missing")
    try:
        start, end = dt.date.fromisoformat(doc["period_start"]), dt.date.fromisoformat(doc["period_end"])
    except (TypeError, ValueError):
        raise DeliveryError(f"{path}: period_start/period_end must be ISO dates (YYYY-MM-DD)") from None
    if end < start:
        raise DeliveryError(f"{path}: period_end {end} is before period_start {start}")
    kind = doc.get("kind", "registers")
    if kind not in ("registers", "panel"):
        raise DeliveryError(f"{path}: 'kind' must be registers or panel (got {kind!r})")
    if kind == "registers" and end > dt.date.today():
        raise DeliveryError(f"{path}: period_end {end} is in the future; a delivery covers a period that has ended")
    if not isinstance(doc["files"], list) or not all(isinstance(f, str) for f in doc["files"]) or not doc["files"]:
        raise DeliveryError(f"{path}: 'files' must be a non-empty list of file names")
    files = tuple(doc["files"])
    if len(set(files)) != len(files):
        raise DeliveryError(f"{path}: 'files' lists a file twice")
    bad = [f for f in files if Path(f).name != f or f.startswith(".")]
    if bad:
        raise DeliveryError(f"{path}: file names must be plain names inside the folder: {', '.join(bad[:3])}")
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DeliveryError(f"{path}: {len(missing)} listed file(s) missing from the folder: {', '.join(missing[:5])}")
    registers = doc.get("registers")
    if registers is not None and (not isinstance(registers, list) or not all(isinstance(r, str) for r in registers)):
        raise DeliveryError(f"{path}: 'registers' must be a list of register names")
    sha = doc.get("sha256") or {}
    if not isinstance(sha, dict):
        raise DeliveryError(f"{path}: 'sha256' must map file names to hex digests")
    handover = doc.get("handover") or {}
    if kind == "panel":
        if not isinstance(handover, dict) or handover.get("panel") not in files or (
                handover.get("treatments") is not None and handover.get("treatments") not in files):
            raise DeliveryError(f"{path}: a panel delivery needs 'handover' naming its panel (and treatments) file "
                                "among 'files'")
        cols = handover.get("columns") or {}
        if not isinstance(cols, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in cols.items()):
            raise DeliveryError(f"{path}: handover.columns must map canonical names to column names")
    interventions = doc.get("interventions")
    if interventions is not None and (not isinstance(interventions, list) or not all(isinstance(i, str) for i in interventions)):
        raise DeliveryError(f"{path}: 'interventions' must be a list of intervention codes")
    return Manifest(folder, str(doc["vintage"]), start, end, files,
                    None if registers is None else tuple(r.lower() for r in registers), dict(sha),
                    None if interventions is None else tuple(interventions), kind, dict(handover))


def delivery_hash(manifest: Manifest, *, verify: bool = False) -> str:
    """sha256 over the manifest and every listed file (name and bytes), in sorted order.

    With ``verify``, each file's own sha256 is compared with the manifest's ``sha256`` entry (when given): a
    mismatch (file changed or truncated after delivery) raises :class:`DeliveryError`.
    """
    h = hashlib.sha256()
    h.update((manifest.folder / "manifest.json").read_bytes())
    for name in sorted(manifest.files):
        h.update(name.encode("utf-8"))
        own = hashlib.sha256()
        update_from_file(manifest.folder / name, h, own)
        want = manifest.sha256.get(name)
        if verify and want and own.hexdigest() != str(want).lower():
            raise DeliveryError(f"{name}: sha256 does not match the manifest (file changed or truncated after delivery)")
    return h.hexdigest()


# --------------------------------------------------------------------------- reading files

@dataclass(frozen=True, eq=False)
class Table:
    """One file's data with upper-case column names; ``decimal_comma`` for Danish-dialect CSV."""

    file: str
    frame: pl.DataFrame
    decimal_comma: bool = False


def _check_names(names: list[str], file: str) -> dict[str, str]:
    upper = {}
    for n in names:
        u = str(n).strip().upper()
        if u in upper:
            raise DeliveryError(f"{file}: column names collide when upper-cased ({u})")
        upper[u] = n
    return upper


def decode_text(raw: bytes, file: str) -> str:
    """UTF-8 (BOM allowed) or Latin-1/Windows-1252 text; UTF-16, NUL bytes and undecodable bytes are refused."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:4096]:
        raise DeliveryError(f"{file}: wrong encoding (looks like UTF-16 or binary); deliver CSV as UTF-8 or Latin-1")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        raise DeliveryError(f"{file}: wrong encoding (neither UTF-8 nor Latin-1/Windows-1252 text)") from None


def read_table(path: Path, columns: list[str] | None = None) -> Table:
    """Read one register file with upper-case column names (only ``columns`` — upper-case — when given)."""
    path = Path(path)
    file = path.name
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise DeliveryError(f"{file}: the file is empty (0 bytes)")
    try:
        if suffix == ".parquet":
            try:
                schema = pl.read_parquet_schema(path)
            except Exception:
                raise DeliveryError(f"{file}: cannot be read as Parquet (truncated or corrupt file?)") from None
            upper = _check_names(list(schema), file)
            want = [upper[c] for c in columns if c in upper] if columns is not None else list(schema)
            df = pl.read_parquet(path, columns=want)
            return Table(file, df.rename({c: c.strip().upper() for c in df.columns}))
        if suffix == ".csv":
            return _read_csv(path, columns)
        if suffix in (".xpt", ".sas7bdat"):
            return _read_sas(path, columns)
    except DeliveryError:
        raise
    except Exception as exc:  # polars/pyarrow/pyreadstat raise many types; report the file, not the data
        raise DeliveryError(f"{file}: cannot be read ({type(exc).__name__}; truncated or malformed?)") from None
    raise DeliveryError(f"{file}: unsupported file type {suffix!r} (supported: .parquet, .csv, .xpt, .sas7bdat)")


def _read_csv(path: Path, columns: list[str] | None) -> Table:
    file = path.name
    text = decode_text(path.read_bytes(), file)
    if not text.strip():
        raise DeliveryError(f"{file}: the file is empty (no header line)")
    first = text.split("\n", 1)[0]
    sep = ";" if first.count(";") > first.count(",") else ","
    try:
        df = pl.read_csv(text.encode("utf-8"), separator=sep, infer_schema=False, truncate_ragged_lines=False)
    except Exception as exc:
        raise DeliveryError(f"{file}: not a well-formed CSV file ({type(exc).__name__}; ragged lines or bad quoting?)") from None
    upper = _check_names(df.columns, file)
    df = df.rename({orig: u for u, orig in upper.items()})
    if columns is not None:
        df = df.select([c for c in columns if c in df.columns])
    return Table(file, df, decimal_comma=(sep == ";"))


def _read_sas(path: Path, columns: list[str] | None) -> Table:
    import pyreadstat

    reader = pyreadstat.read_xport if path.suffix.lower() == ".xpt" else pyreadstat.read_sas7bdat
    _, meta = reader(str(path), metadataonly=True)
    upper = _check_names(list(meta.column_names), path.name)
    use = [upper[c] for c in columns if c in upper] if columns is not None else None
    df, _ = reader(str(path), usecols=use, output_format="polars")
    return Table(path.name, df.rename({c: c.strip().upper() for c in df.columns}))


def require_columns(df: pl.DataFrame, columns: list[str], file: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DeliveryError(f"{file}: required column(s) {', '.join(missing)} missing (has {', '.join(df.columns[:12])})")


# --------------------------------------------------------------------------- typed columns

def _bad(file: str, column: str, mask: pl.Series, what: str) -> DeliveryError:
    rows = mask.arg_true().head(_SAMPLE).to_list()
    return DeliveryError(f"{file}: column {column}: {int(mask.sum())} value(s) {what} (rows {rows})")


def _text(s: pl.Series) -> pl.Series:
    """Text with surrounding white space removed and empty strings missing (copies only when needed)."""
    t = s.cast(pl.Utf8)
    if (t.str.starts_with(" ") | t.str.ends_with(" ") | t.str.starts_with("\t") | t.str.ends_with("\t")).any():
        t = t.str.strip_chars()
    if (t == "").any():
        t = pl.select(pl.when(t == "").then(None).otherwise(t)).to_series()
    return t.alias(s.name)


def as_text(s: pl.Series, file: str, column: str) -> pl.Series:
    if s.dtype in (pl.Utf8, pl.Categorical, pl.Null) or isinstance(s.dtype, pl.Enum):
        return _text(s)
    if s.dtype.is_integer():
        return s.cast(pl.Utf8)
    if s.dtype.is_float():
        whole = (s == s.floor()) | s.is_null()
        if not whole.all():
            raise _bad(file, column, ~whole, "are not whole numbers or text")
        return s.cast(pl.Int64).cast(pl.Utf8)
    raise DeliveryError(f"{file}: column {column}: has type {s.dtype}, expected text")


def as_pnr(s: pl.Series, file: str, column: str) -> pl.Series:
    """PNR must be delivered as text: a numeric PNR has lost its leading zeros."""
    if s.dtype not in (pl.Utf8, pl.Categorical, pl.Null):
        raise DeliveryError(f"{file}: column {column}: PNR has type {s.dtype}; it must be text (numbers lose leading zeros)")
    return _text(s)


def as_float(s: pl.Series, file: str, column: str, decimal_comma: bool = False) -> pl.Series:
    if s.dtype.is_numeric():
        return s.cast(pl.Float64)
    if s.dtype in (pl.Utf8, pl.Null):
        t = _text(s)
        if decimal_comma:
            t = t.str.replace(",", ".", literal=True)  # "1.234,5" becomes "1.234.5" and is refused, never misread
        out = t.cast(pl.Float64, strict=False)
        bad = t.is_not_null() & out.is_null()
        if bad.any():
            raise _bad(file, column, bad, "are not numbers")
        return out
    raise DeliveryError(f"{file}: column {column}: has type {s.dtype}, expected a number")


def as_int(s: pl.Series, file: str, column: str, decimal_comma: bool = False) -> pl.Series:
    if s.dtype.is_integer():
        return s.cast(pl.Int64)
    if s.dtype == pl.Boolean or not (s.dtype.is_numeric() or s.dtype in (pl.Utf8, pl.Null)):
        raise DeliveryError(f"{file}: column {column}: has type {s.dtype}, expected a whole number")
    f = as_float(s, file, column, decimal_comma)
    whole = f.is_null() | ((f == f.floor()) & f.is_finite())
    if not whole.all():
        raise _bad(file, column, ~whole, "are not whole numbers")
    return f.cast(pl.Int64)


def parse_dates(df: pl.DataFrame, column: str, file: str, *, open_end: dt.date | None = None) -> pl.Series:
    """A date column from a date/datetime value, a SAS date number, ISO, ``DDMMMYYYY`` or ``DD-MM-YYYY`` text.

    Missing values and the open-end markers 9999-12-31 / 31DEC9999 become ``open_end`` when given (else stay
    null). Unparseable values raise :class:`DeliveryError` with the count and first row numbers.
    """
    out = as_date(df.get_column(column), file, column)
    if open_end is not None:
        out = pl.select(pl.when(out.is_null() | (out >= OPEN_END)).then(pl.lit(open_end)).otherwise(out)).to_series()
    return out.alias(column)


def as_date(s: pl.Series, file: str, column: str) -> pl.Series:
    if s.dtype == pl.Date:
        return s
    if isinstance(s.dtype, pl.Datetime):
        return s.dt.date()
    if s.dtype.is_numeric() and s.dtype != pl.Boolean:
        days = s.cast(pl.Float64)
        ok = days.is_null() | (days.is_finite() & (days.abs() < 3_000_000))
        if not ok.all():
            raise _bad(file, column, ~ok, "are not SAS date values (days since 1960-01-01)")
        return pl.select(pl.lit(SAS_EPOCH) + pl.duration(days=days.floor().cast(pl.Int64))).to_series().cast(pl.Date)
    if s.dtype not in (pl.Utf8, pl.Null):
        raise DeliveryError(f"{file}: column {column}: has type {s.dtype}, expected dates")
    t = _text(s).str.replace(r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", "")
    iso = t.str.to_date("%Y-%m-%d", strict=False)
    sas = t.str.to_titlecase().str.to_date("%d%b%Y", strict=False)
    dmy = t.str.to_date("%d-%m-%Y", strict=False)
    out = iso.fill_null(sas).fill_null(dmy)
    bad = t.is_not_null() & out.is_null()
    if bad.any():
        raise _bad(file, column, bad, "are not dates")
    return out.alias(s.name)
