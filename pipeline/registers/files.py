"""Reading a register delivery folder: manifest, content hash, and typed tables from Parquet, CSV or SAS.

The field rules (contract: shared/reference/register-outcomes.md; ``docs/registers.md`` section 3):

* Manifest: a safe vintage label (:func:`check_vintage`), plain file names (no separator, ``..``, control
  character, not hidden), each a regular file inside the delivery folder (a symbolic link only to a file in
  the same folder); the extraction day (:func:`extraction_date`) bounds every date of the delivery.
* Column names are matched case-insensitively (upper-cased on read) and mapped to the contract's names by the
  column-mapping config (:mod:`pipeline.registers.config`); two names that collide that way are refused.
* CSV: separator ``;`` or ``,`` (from the header line), decimal comma with ``;``, UTF-8 (with or without BOM)
  or Latin-1/Windows-1252; UTF-16 and binary files are refused as a wrong encoding; every row has exactly the
  header's number of fields (:func:`check_row_widths`).
* SAS: ``.sas7bdat`` and ``.xpt`` through pyreadstat (dates with SAS date formats arrive as dates); a transport
  file must consist of whole 80-byte records and hold the observations its OBSV8 header states.
* PNR: exactly 10 ASCII digits, ``DDMMYY-XXXX`` normalised (:func:`as_pnr`); numbers finite and, as text,
  parsed exactly — Danish ``1.234,5`` included (:func:`as_float`).
* Dates: date values, ISO text (``2019-12-31``, a time part is dropped), SAS ``DDMMMYYYY`` text
  (``31DEC2019``) or ``DD-MM-YYYY`` text; numbers only in the encoding the register configuration declares
  (:func:`as_date`). Open ends (empty, 9999-12-31, ``31DEC9999``) become missing in end columns.

Every error is a :class:`DeliveryError` naming the file, the column and the rule, with counts and 0-based
data-row numbers — never a cell value (which could be a person number).
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import hashlib
import io
import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from som_models.hashing import update_from_file

SAS_EPOCH = dt.date(1960, 1, 1)
UNIX_EPOCH = dt.date(1970, 1, 1)
OPEN_END = dt.date(9999, 12, 31)
_SAMPLE = 5
#: a vintage is a label used in partition keys and file names: letters, digits and ``._-`` (no path parts)
VINTAGE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: a name used as a path part (manifest file names, column-map file patterns): no separators, no control
#: characters, no ``..``, not hidden
_NAME_PATTERN = re.compile(r"[A-Za-z0-9ÆØÅæøå_{}][A-Za-z0-9ÆØÅæøå_.{}() -]{0,199}")
_VINTAGE_MONTH = re.compile(r"(\d{4})-(\d{2})")
#: PNR: exactly ten ASCII digits, or the dashed form DDMMYY-XXXX (the dash is removed)
_PNR = re.compile(r"^[0-9]{10}$")
_PNR_DASHED = re.compile(r"^[0-9]{6}-[0-9]{4}$")
#: number text: ``.`` decimal mark (``,`` CSV, Parquet text) or Danish ``,`` decimal mark with optional ``.``
#: thousands separators in groups of three (``;`` CSV). Anything else is refused, never truncated.
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_NUMBER_DK = re.compile(r"^[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)(,[0-9]+)?$")
#: a number without exponent, ``.`` decimal mark (number-encoded dates as text outside a Danish CSV)
_NUMBER_PLAIN = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
#: integer date encodings a register configuration may declare (``dates:`` in the column-mapping config)
DATE_ENCODINGS = ("auto", "sas_days", "unix_days", "yyyymmdd", "iso", "sas_text", "dmy")


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
    #: the day of extraction: no date in the delivery may lie after it (see :func:`extraction_date`)
    extracted: dt.date | None = None
    interventions: tuple[str, ...] | None = None  # intervention codes in the delivery (None: not stated)
    #: ``registers`` (Statistics Denmark extracts) or ``panel`` (a handed-over person-year panel, see
    #: :mod:`pipeline.registers.handover`)
    kind: str = "registers"
    #: for ``kind: panel``: ``{"panel": file, "treatments": file | None, "columns": {canonical: column}}``
    handover: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def years(self) -> range:
        return range(self.period_start.year, self.period_end.year + 1)

    @property
    def extraction(self) -> dt.date:
        """The last valid date of the delivery (see :func:`extraction_date`)."""
        return self.extracted if self.extracted is not None else extraction_date(self.vintage, self.period_end)


def check_vintage(vintage: str) -> str:
    """``vintage`` if it is a safe label (see :data:`VINTAGE_PATTERN`), else :class:`DeliveryError`."""
    if not isinstance(vintage, str) or not VINTAGE_PATTERN.fullmatch(vintage) or ".." in vintage:
        raise DeliveryError(f"vintage {ascii(vintage)[:80]}: use 1–64 letters, digits, '.', '_' or '-', starting with a letter "
                            "or digit")
    return vintage


def check_vintage_month(vintage: str) -> None:
    """A vintage that begins ``YYYY-MM`` names the month of extraction: ``MM`` must be a month (01–12) — ``2023-13``
    is a typo, not a label, and would silently let dates run up to today (:func:`extraction_date`)."""
    m = _VINTAGE_MONTH.match(vintage)
    if m and int(m.group(1)) == 0:
        raise DeliveryError(f"vintage {vintage}: year 0000 is no year (a vintage YYYY-MM names the month of extraction)")
    if m and not 1 <= int(m.group(2)) <= 12:
        raise DeliveryError(f"vintage {vintage}: month {int(m.group(2))} is no month (a vintage YYYY-MM names the "
                            "month of extraction)")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """``json`` object hook: a key that appears twice in one object is an error (never the last one silently)."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def vintage_month_end(vintage: str) -> dt.date | None:
    """The last day of the month a ``YYYY-MM…`` vintage names (None when it names no valid month)."""
    m = _VINTAGE_MONTH.match(vintage)
    if not m or int(m.group(1)) == 0 or not 1 <= int(m.group(2)) <= 12:
        return None
    y, mo = int(m.group(1)), int(m.group(2))
    return dt.date(y, mo, calendar.monthrange(y, mo)[1])


def extraction_date(vintage: str, period_end: dt.date, today: dt.date | None = None) -> dt.date:
    """The last valid date of a delivery: the end of the vintage month for a ``YYYY-MM…`` vintage (DST names
    research extracts by the month they were drawn), capped at ``today`` (no date lies in the future); for a
    vintage that names no month, ``today``. Never before ``period_end`` (:func:`read_manifest` refuses a vintage
    month that ends before the period does)."""
    today = today or dt.date.today()
    month_end = vintage_month_end(vintage)
    end = today if month_end is None else min(month_end, today)
    return max(end, period_end)


def _inside(folder: Path, name: str, manifest_path: Path) -> str | None:
    """Why ``folder/name`` is not a regular file inside ``folder`` (None when it is)."""
    path = folder / name
    try:
        real = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):  # missing, dangling link or a link loop
        return "missing" if not path.is_symlink() else "a link to nothing"
    except OSError:
        return "missing"
    if real.parent != folder.resolve():
        return "a link to a file outside the delivery folder"
    try:
        mode = real.stat().st_mode
    except OSError:
        return "missing"
    return None if stat.S_ISREG(mode) else "not a regular file"


def read_manifest(folder: Path) -> Manifest:
    """Parse ``manifest.json`` and check that every listed file exists and is not empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeliveryError(f"{folder}: delivery folder not found")
    path = folder / "manifest.json"
    if not path.is_file():
        raise DeliveryError(f"{path}: manifest.json not found; a delivery folder must contain one")
    why = _inside(folder, "manifest.json", path)
    if why:
        raise DeliveryError(f"{path}: manifest.json is {why}; it must be a regular file inside the delivery folder")
    try:  # a UTF-8 byte-order mark (as Windows editors write it) is allowed
        doc = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise DeliveryError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise DeliveryError(f"{path}: not UTF-8 text") from None
    except _DuplicateKey as exc:
        raise DeliveryError(f"{path}: key {ascii(exc.key)[:80]} appears more than once in one object (which one "
                            "holds is not guessed)") from None
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
    if not isinstance(doc["vintage"], str):
        raise DeliveryError(f"{path}: 'vintage' must be text such as \"2022-06\"")
    try:
        check_vintage(doc["vintage"])
        check_vintage_month(doc["vintage"])
    except DeliveryError as exc:
        raise DeliveryError(f"{path}: {exc}") from None
    extracted = None
    if doc.get("extracted") is not None:
        try:
            extracted = dt.date.fromisoformat(doc["extracted"])
        except (TypeError, ValueError):
            raise DeliveryError(f"{path}: 'extracted' must be an ISO date (YYYY-MM-DD)") from None
        if extracted < end or extracted > dt.date.today():
            raise DeliveryError(f"{path}: 'extracted' {extracted} must lie between period_end and today")
    if kind == "registers" and end > dt.date.today():
        raise DeliveryError(f"{path}: period_end {end} is in the future; a delivery covers a period that has ended")
    drawn = vintage_month_end(doc["vintage"])
    if kind == "registers" and extracted is None and drawn is not None:  # (a handed-over panel's period is its years)
        if drawn < end:  # the rest of the period would read as zero days, weeks and kroner
            raise DeliveryError(f"{path}: vintage {doc['vintage']} names an extraction in {drawn:%Y-%m}, before period_end "
                                f"{end}; a delivery cannot hold a period that was not over when it was drawn (give "
                                "'extracted' if the vintage does not name the month of extraction)")
    if not isinstance(doc["files"], list) or not all(isinstance(f, str) for f in doc["files"]) or not doc["files"]:
        raise DeliveryError(f"{path}: 'files' must be a non-empty list of file names")
    files = tuple(doc["files"])
    if len(set(files)) != len(files):
        raise DeliveryError(f"{path}: 'files' lists a file twice")
    bad = [f for f in files if Path(f).name != f or f.startswith(".") or not _NAME_PATTERN.fullmatch(f) or ".." in f]
    if bad:
        shown = ", ".join(ascii(b)[:80] for b in bad[:3])
        raise DeliveryError(f"{path}: file names must be plain names inside the folder (letters, digits, '_', '-', '.', "
                            f"space; no separators, '..' or control characters): {shown}")
    missing = [f for f in files if _inside(folder, f, path) == "missing"]
    if missing:
        raise DeliveryError(f"{path}: {len(missing)} listed file(s) missing from the folder: {', '.join(missing[:5])}")
    for f in files:
        why = _inside(folder, f, path)
        if why:
            raise DeliveryError(f"{f}: the file is {why}; every file of a delivery must be a regular file inside the "
                                "delivery folder")
    registers = doc.get("registers")
    if registers is not None and (not isinstance(registers, list) or not all(isinstance(r, str) for r in registers)):
        raise DeliveryError(f"{path}: 'registers' must be a list of register names")
    if registers is not None and kind == "registers":
        from pipeline.registers.config import REGISTERS
        from pipeline.registers.costs import COST_FILE_STEM

        unknown = [r for r in registers if r.lower() not in REGISTERS and r.lower() != COST_FILE_STEM]
        if unknown:
            shown = ", ".join(ascii(u)[:40] for u in unknown[:5])
            raise DeliveryError(f"{path}: 'registers' names unknown register(s) {shown}; the list names the registers of "
                                f"the contract the delivery holds ({', '.join(REGISTERS)}, and {COST_FILE_STEM} for its cost "
                                "file); other files need no entry")
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
                    None if registers is None else tuple(r.lower() for r in registers), dict(sha), extracted,
                    None if interventions is None else tuple(interventions), kind, dict(handover))


class HashingStopped(Exception):
    """:func:`delivery_hash` ended early on request (its ``stop`` event)."""


def delivery_hash(manifest: Manifest, *, verify: bool = False, stop=None) -> str:
    """sha256 over the manifest and every listed file (name and bytes), in sorted order.

    With ``verify``, each file's own sha256 is compared with the manifest's ``sha256`` entry (when given): a
    mismatch (file changed or truncated after delivery) raises :class:`DeliveryError`. ``stop`` (a
    ``threading.Event``), when set, ends the hashing before the next file (:class:`HashingStopped`): an interrupted
    ingest does not wait for the rest of a large delivery.
    """
    h = hashlib.sha256()
    h.update((manifest.folder / "manifest.json").read_bytes())
    for name in sorted(manifest.files):
        if stop is not None and stop.is_set():
            raise HashingStopped(f"hashing of {manifest.folder.name} stopped")
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


#: a column name that is a value: a person number (10 digits, or dashed) or a date (ISO, SAS text, DD-MM-YYYY,
#: DD.MM.YYYY) — a file without its header line; such names are never repeated in a message
_VALUE_NAME = re.compile(r"^\s*([0-9]{6}-?[0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2}.*|[0-9]{1,2}[A-Za-z]{3}[0-9]{4}"
                         r"|[0-9]{1,2}[-./][0-9]{1,2}[-./][0-9]{4})\s*$")
#: a CSV header field that is a value: the above, or a number (``12``, ``-3,5``, ``1.234``)
_VALUE_FIELD = re.compile(_VALUE_NAME.pattern + r"|^\s*[+-]?[0-9][0-9.,]*\s*$")


def _check_names(names: list[str], file: str) -> dict[str, str]:
    """Upper-cased column name → the file's name (rule ``column-names``): names are matched case-insensitively,
    so two names that differ only in case (or surrounding blanks) are an error, never a silent choice. A name
    that is a person number or a date means the file has lost its header (refused without repeating it)."""
    values = sum(bool(_VALUE_NAME.match(str(n))) for n in names)
    if values:
        raise DeliveryError(f"{file}: rule column-names: {values} column name(s) are values (a person number or a "
                            "date), not names; is the header line missing?")
    upper: dict[str, str] = {}
    for n in names:
        u = str(n).strip().upper()
        if u in upper:
            raise DeliveryError(f"{file}: column {u or '(without a name)'}: rule column-names: two columns have this "
                                "name when case is ignored (names are matched case-insensitively); deliver one")
        upper[u] = n
    return upper


def parquet_names(path: Path) -> dict[str, str]:
    """Upper-cased column name → the Parquet file's name (rule ``column-names``; a file whose footer cannot be read
    — truncated or corrupt — is refused)."""
    try:
        schema = pl.read_parquet_schema(path)
    except pl.exceptions.DuplicateError:
        raise DeliveryError(f"{path.name}: rule column-names: two columns have the same name; deliver one") from None
    except Exception:
        raise DeliveryError(f"{path.name}: cannot be read as Parquet (truncated or corrupt file?)") from None
    return _check_names(list(schema), path.name)


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
            upper = parquet_names(path)
            want = [upper[c] for c in columns if c in upper] if columns is not None else list(upper.values())
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
    if "\n" not in text and "\r" in text:  # classic Mac line ends (CR only): the same lines, exactly
        text = text.replace("\r", "\n")
    first = text.split("\n", 1)[0]
    sep = csv_separator(first, file)
    check_header(check_row_widths(text, sep, file), file)
    text = text.rstrip() + "\n"  # blank lines at the end are no rows (blank lines inside were refused)
    try:
        df = pl.read_csv(text.encode("utf-8"), separator=sep, infer_schema=False, truncate_ragged_lines=False)
    except Exception as exc:
        raise DeliveryError(f"{file}: not a well-formed CSV file ({type(exc).__name__}; ragged lines or bad quoting?)") from None
    upper = _check_names(df.columns, file)
    df = df.rename({orig: u for u, orig in upper.items()})
    if columns is not None:
        df = df.select([c for c in columns if c in df.columns])
    return Table(file, df, decimal_comma=(sep == ";"))


def csv_separator(first: str, file: str) -> str:
    """The separator of a CSV file from its header line: ``;`` (the Danish dialect, decimal comma) or ``,``.

    A header separated by tabs (or with more tabs than either) is refused (rule ``csv-separator``): which decimal
    mark a tab-separated file uses is not stated, and it is not guessed."""
    semi, comma, tab = first.count(";"), first.count(","), first.count("\t")
    if tab and tab >= max(semi, comma):
        raise DeliveryError(f"{file}: rule csv-separator: the header line is separated by tabs; deliver ';' (Danish: "
                            "decimal comma) or ',' (decimal point) as separator")
    return ";" if semi > comma else ","


def check_header(header: list[str], file: str) -> dict[str, str]:
    """The CSV header's names (:func:`_check_names`), refused as a whole when a field of the first line is a value
    — a person number, a number or a date (rule ``csv-header``): the file has no header line, and its first data
    row would be taken for column names. The message never repeats the line."""
    values = sum(bool(_VALUE_FIELD.match(str(n))) for n in header)
    if values:
        raise DeliveryError(f"{file}: rule csv-header: the first line holds values ({values} field(s) are a person "
                            "number, a number or a date), not column names; every CSV file needs a header line")
    return _check_names(header, file)


def check_row_widths(text: str, sep: str, file: str) -> list[str]:
    """Every data row of a CSV text has exactly as many fields as the header (rule ``csv-row-width``).

    A short row is never padded with empty values (a missing end date would become an open spell) and a long
    row never truncated; blank lines count as short rows except at the end of the file. Row numbers are
    0-based data rows (the header is not counted), as everywhere in refusals. Returns the header's names.
    """
    if '"' not in text:  # no quoting (the usual export): count separators per line, vectorised
        return _row_widths_unquoted(text, sep, file)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error:
        raise DeliveryError(f"{file}: rule csv-quoting: the header line is not well-formed CSV") from None
    width = len(header)
    short: list[int] = []
    long: list[int] = []
    blank: list[int] = []
    row = -1
    try:
        for row, fields in enumerate(reader):
            if not fields:
                blank.append(row)
            elif len(fields) < width:
                short.append(row)
            elif len(fields) > width:
                long.append(row)
    except csv.Error:
        raise DeliveryError(f"{file}: rule csv-quoting: data row {row + 1} is not well-formed CSV (bad quoting)") from None
    last = row
    while blank and blank[-1] == last:  # blank lines at the end of the file are no rows
        blank.pop()
        last -= 1
    short = sorted(short + blank)
    problems = []
    if short:
        problems.append(f"{file}: rule csv-row-width: {len(short)} row(s) have fewer fields than the header's {width} "
                        f"(rows {short[:_SAMPLE]})")
    if long:
        problems.append(f"{file}: rule csv-row-width: {len(long)} row(s) have more fields than the header's {width} "
                        f"(rows {long[:_SAMPLE]})")
    if problems:
        raise DeliveryError(problems[0], problems)
    return header


def _row_widths_unquoted(text: str, sep: str, file: str) -> list[str]:
    """:func:`check_row_widths` for a text without quote characters (same rules and messages, in polars)."""
    lines = pl.Series(text.replace("\r\n", "\n").split("\n"))
    n = len(lines)
    while n > 1 and not lines[n - 1].strip():  # blank lines at the end of the file (a lone CR too) are no rows
        n -= 1
    header = lines[0].split(sep) if n else []
    data = lines.slice(1, n - 1)
    width = len(header)
    fields = pl.select(pl.when(data == "").then(0).otherwise(data.str.count_matches(sep, literal=True) + 1)).to_series()
    problems = []
    for mask, what in ((fields < width, "fewer"), (fields > width, "more")):
        if mask.any():
            rows = mask.arg_true().head(_SAMPLE).to_list()
            problems.append(f"{file}: rule csv-row-width: {int(mask.sum())} row(s) have {what} fields than the header's "
                            f"{width} (rows {rows})")
    if problems:
        raise DeliveryError(problems[0], problems)
    return header


_OBSV8 = b"HEADER RECORD*******OBSV8   HEADER RECORD!!!!!!!"


def _xport_declared_rows(path: Path, limit: int = 1 << 22) -> int | None:
    """The observation count an XPORT version 8/9 file states in its OBSV8 header record (None for version 5,
    which states none, or when the header is not within the first ``limit`` bytes)."""
    with open(path, "rb") as fh:
        head = fh.read(limit)
    i = head.find(_OBSV8)
    if i < 0:
        return None
    count = head[i + len(_OBSV8):i + 80].strip()
    return int(count) if count.isdigit() else None


def _read_sas(path: Path, columns: list[str] | None) -> Table:
    import pyreadstat

    if path.suffix.lower() == ".sas7bdat":
        from pipeline.registers.integrity import check_sas7bdat

        check_sas7bdat(path)  # a file cut short is refused before ReadStat reads what is left
    if path.suffix.lower() == ".xpt" and path.stat().st_size % 80:
        raise DeliveryError(f"{path.name}: rule sas-transport-records: the file is not a whole number of 80-byte "
                            "records (truncated or corrupt SAS transport file)")

    reader = pyreadstat.read_xport if path.suffix.lower() == ".xpt" else pyreadstat.read_sas7bdat
    _, meta = reader(str(path), metadataonly=True)
    upper = _check_names(list(meta.column_names), path.name)
    use = [upper[c] for c in columns if c in upper] if columns is not None else None
    df, _ = reader(str(path), usecols=use, output_format="polars")
    declared = _xport_declared_rows(path) if path.suffix.lower() == ".xpt" else None
    if declared is not None and declared != df.height:
        raise DeliveryError(f"{path.name}: rule sas-transport-records: the file declares {declared} observations but "
                            f"holds {df.height} (truncated or corrupt SAS transport file)")
    return Table(path.name, df.rename({c: c.strip().upper() for c in df.columns}))


def require_columns(df: pl.DataFrame, columns: list[str], file: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DeliveryError(f"{file}: required column(s) {', '.join(missing)} missing (has {', '.join(df.columns[:12])})")


# --------------------------------------------------------------------------- typed columns

def _bad(file: str, column: str, mask: pl.Series, what: str, rule: str = "type") -> DeliveryError:
    rows = mask.arg_true().head(_SAMPLE).to_list()
    return DeliveryError(f"{file}: column {column}: rule {rule}: {int(mask.sum())} value(s) {what} (rows {rows})")


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


def _ten_digits(t: pl.Series) -> bool:
    """Whether every present value of the text column ``t`` is exactly ten ASCII digits (and one is present)."""
    present = t.len() - t.null_count()
    return bool(present and (t.str.len_bytes() == 10).sum() == present and not t.str.starts_with("+").any()
                and t.cast(pl.UInt64, strict=False).null_count() == t.null_count())


def as_pnr(s: pl.Series, file: str, column: str) -> pl.Series:
    """PNR as exactly 10 ASCII digits (rule ``pnr-format``).

    PNR must be delivered as text (a numeric PNR has lost its leading zeros); surrounding blanks are removed;
    the dashed form ``DDMMYY-XXXX`` is normalised by removing the dash. Anything else — a letter, Unicode
    (e.g. full-width) digits, a sign, 9 or 11 digits, ``DDMMYY-XXX`` — is refused, never guessed; missing
    values stay missing (the register suites refuse them).
    """
    if s.dtype not in (pl.Utf8, pl.Categorical, pl.Null):
        raise DeliveryError(f"{file}: column {column}: rule pnr-format: PNR has type {s.dtype}; it must be text "
                            "(numbers lose leading zeros)")
    # Fast path (exact), before any trimming: ten bytes each, no sign, and all parse as unsigned integers ⇔ ten
    # ASCII digits each (the integer parser takes only ASCII digits after an optional '+') — then there is no
    # blank or empty value to trim either; otherwise the patterns decide on the trimmed text.
    if s.dtype == pl.Utf8 and _ten_digits(s):
        return s
    t = _text(s)
    if _ten_digits(t):
        return t
    dashed = t.str.contains(_PNR_DASHED.pattern).fill_null(False)
    if dashed.any():
        t = pl.select(pl.when(dashed).then(t.str.replace("-", "", literal=True)).otherwise(t)).to_series().alias(s.name)
    bad = t.is_not_null() & ~t.str.contains(_PNR.pattern).fill_null(False)
    if bad.any():
        raise _bad(file, column, bad, "are not a PNR of exactly 10 ASCII digits (or DDMMYY-XXXX)", "pnr-format")
    return t


def as_float(s: pl.Series, file: str, column: str, decimal_comma: bool = False) -> pl.Series:
    """A finite number column (rules ``number-format``, ``finite``; plausible ranges are suite rules).

    Numbers: finite values only (NaN and ±inf are refused).
    Text: ``.`` as decimal mark, optional exponent (``-12``, ``3.5``, ``1e3``); in a Danish CSV
    (``decimal_comma``) ``,`` is the decimal mark and ``.`` may only group thousands in threes (``1.234``,
    ``1.234.567,5``, ``-12,5``). Text such as ``NaN``, ``inf``, ``1,5`` in a ``,`` file or ``1.5`` / ``1.23,4``
    in a Danish file does not parse exactly and is refused, never truncated or guessed.
    """
    if s.dtype.is_numeric() and s.dtype != pl.Boolean:
        out = s.cast(pl.Float64)
    elif s.dtype in (pl.Utf8, pl.Null):
        t = _text(s)
        pattern = _NUMBER_DK if decimal_comma else _NUMBER
        bad = t.is_not_null() & ~t.str.contains(pattern.pattern).fill_null(False)
        if bad.any():
            how = " (Danish format: ',' decimal mark, '.' thousands in groups of three)" if decimal_comma else ""
            raise _bad(file, column, bad, f"are not numbers{how}", "number-format")
        if decimal_comma:
            t = t.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
        out = t.cast(pl.Float64, strict=False)
    else:
        raise DeliveryError(f"{file}: column {column}: rule type: has type {s.dtype}, expected a number")
    finite = out.is_null() | out.is_finite()
    if not finite.all():
        raise _bad(file, column, ~finite, "are not finite numbers (NaN or infinite)", "finite")
    return out.alias(s.name)


def as_int(s: pl.Series, file: str, column: str, decimal_comma: bool = False) -> pl.Series:
    if s.dtype.is_integer():
        return s.cast(pl.Int64)
    if s.dtype == pl.Boolean or not (s.dtype.is_numeric() or s.dtype in (pl.Utf8, pl.Null)):
        raise DeliveryError(f"{file}: column {column}: has type {s.dtype}, expected a whole number")
    f = as_float(s, file, column, decimal_comma)
    whole = f.is_null() | ((f == f.floor()) & (f.abs() < 2.0**53))
    if not whole.all():
        raise _bad(file, column, ~whole, "are not whole numbers")
    return f.cast(pl.Int64)


def parse_dates(df: pl.DataFrame, column: str, file: str, *, open_end: dt.date | None = None,
                encoding: str = "auto") -> pl.Series:
    """A date column from a date/datetime value, a SAS date number, ISO, ``DDMMMYYYY`` or ``DD-MM-YYYY`` text.

    Missing values and the open-end markers 9999-12-31 / 31DEC9999 become ``open_end`` when given (else stay
    null). Unparseable values raise :class:`DeliveryError` with the count and first row numbers.
    """
    out = as_date(df.get_column(column), file, column, encoding)
    if open_end is not None:
        out = pl.select(pl.when(out.is_null() | (out >= OPEN_END)).then(pl.lit(open_end)).otherwise(out)).to_series()
    return out.alias(column)


_NUMBER_ENCODINGS = ("sas_days", "unix_days", "yyyymmdd")


def _number_dates(f: pl.Series, file: str, column: str, encoding: str) -> pl.Series:
    """Dates from numbers (Float64, nulls allowed) in a declared number encoding."""
    if encoding == "yyyymmdd":
        ok = f.is_null() | ((f == f.floor()) & (f >= 10_000_101) & (f <= 99_991_231))
        if not ok.all():
            raise _bad(file, column, ~ok, "are not YYYYMMDD numbers", "date-encoding")
        out = f.cast(pl.Int64).cast(pl.Utf8).str.to_date("%Y%m%d", strict=False)
        bad = f.is_not_null() & out.is_null()
        if bad.any():
            raise _bad(file, column, bad, "are not YYYYMMDD dates", "date-encoding")
        return out
    ok = f.is_null() | (f.is_finite() & (f == f.floor()) & (f.abs() < 3_000_000))
    if not ok.all():
        raise _bad(file, column, ~ok, f"are not whole day numbers ({encoding})", "date-encoding")
    epoch = SAS_EPOCH if encoding == "sas_days" else UNIX_EPOCH
    return pl.select(pl.lit(epoch) + pl.duration(days=f.cast(pl.Int64))).to_series().cast(pl.Date)


def as_date(s: pl.Series, file: str, column: str, encoding: str = "auto", *, decimal_comma: bool = False) -> pl.Series:
    """A date column (rule ``date-encoding``; ``encoding`` from the register configuration, :data:`DATE_ENCODINGS`).

    * date and datetime values (Parquet, SAS columns with a date format) are dates under every encoding; a
      timestamp with a time zone is an instant, read as its calendar date in Denmark (Europe/Copenhagen): Danish
      midnight stored as UTC (23:00 the day before) is the Danish day, never the day before;
    * ``auto`` (the default): text as ISO ``2019-12-31`` (a time part is dropped), SAS ``31DEC2019`` or
      ``31-12-2019``; **numbers are refused** — their meaning must be declared;
    * ``sas_days`` / ``unix_days``: numbers (or whole-number text, as in a CSV) are days since 1960-01-01 /
      1970-01-01; ``yyyymmdd``: numbers are ``20191231``; text in the three forms above is still read; number
      text follows the file's number rules (:func:`as_float`): in a Danish CSV (``decimal_comma``) ``21.915`` is
      21915 and ``21915.0`` is refused, in a ``,`` CSV ``21915.0`` is 21915 — never a guess;
    * ``iso`` / ``sas_text`` / ``dmy``: text in that one form only; numbers refused.
    """
    if encoding not in DATE_ENCODINGS:
        raise DeliveryError(f"{file}: column {column}: rule date-encoding: unknown encoding {encoding!r} "
                            f"(known: {', '.join(DATE_ENCODINGS)})")
    if s.dtype == pl.Date:
        return s
    if isinstance(s.dtype, pl.Datetime):
        if s.dtype.time_zone is not None:
            s = s.dt.convert_time_zone("Europe/Copenhagen")
        return s.dt.date()
    if s.dtype.is_numeric() and s.dtype != pl.Boolean:
        f = s.cast(pl.Float64)
        if encoding in _NUMBER_ENCODINGS:
            return _number_dates(f, file, column, encoding).alias(s.name)
        if f.is_not_null().any():
            raise _bad(file, column, f.is_not_null(), "are numbers, but the register configuration declares no number "
                       "encoding for this date column (dates: sas_days, unix_days or yyyymmdd)", "date-encoding")
        return pl.Series(s.name, [None] * s.len(), dtype=pl.Date)
    if s.dtype not in (pl.Utf8, pl.Null):
        raise DeliveryError(f"{file}: column {column}: rule date-encoding: has type {s.dtype}, expected dates")
    t = _text(s)
    # a number written as text (CSV), by the file's number rules (Danish: '.' groups thousands, ',' decimals)
    number = (_NUMBER_DK if decimal_comma else _NUMBER_PLAIN).pattern
    digits = t.str.contains(number).fill_null(False)
    out = pl.Series(s.name, [None] * s.len(), dtype=pl.Date)
    if encoding in _NUMBER_ENCODINGS:
        odd = t.str.contains(r"^[+-]?[0-9][0-9.,]*$").fill_null(False) & ~digits
        if odd.any():
            how = " (Danish format: ',' decimal mark, '.' thousands in groups of three)" if decimal_comma else ""
            raise _bad(file, column, odd, f"are not numbers{how}", "number-format")
    if digits.any():
        if encoding not in _NUMBER_ENCODINGS:
            raise _bad(file, column, digits, "are numbers, but the register configuration declares no number encoding "
                       "for this date column (dates: sas_days, unix_days or yyyymmdd)", "date-encoding")
        nums = as_float(pl.select(pl.when(digits).then(t).otherwise(None)).to_series(), file, column, decimal_comma)
        out = _number_dates(nums, file, column, encoding)
    text = pl.select(pl.when(digits).then(None).otherwise(t)).to_series().str.replace(
        r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", "")
    forms = {"iso": lambda: text.str.to_date("%Y-%m-%d", strict=False),
             "sas_text": lambda: text.str.to_titlecase().str.to_date("%d%b%Y", strict=False),
             "dmy": lambda: text.str.to_date("%d-%m-%Y", strict=False)}
    if encoding in forms:
        parsed = forms[encoding]()
    else:  # auto and the number encodings: the three self-describing text forms
        parsed = forms["iso"]().fill_null(forms["sas_text"]()).fill_null(forms["dmy"]())
    bad = text.is_not_null() & parsed.is_null()
    if bad.any():
        form = f" in the declared form {encoding}" if encoding in forms else " (ISO 2019-12-31, 31DEC2019 or 31-12-2019)"
        raise _bad(file, column, bad, f"are not dates{form}", "date-encoding")
    return out.fill_null(parsed).alias(s.name)
