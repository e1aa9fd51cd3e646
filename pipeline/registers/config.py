"""The registers of a delivery (contract: shared/reference/register-outcomes.md), their columns and code lists.

Each register has a file-name pattern (case-insensitive; ``{year}`` = a 4-digit year for yearly registers),
canonical DST column names with a type, and a GX suite ``expectations/registers/<name>.json``. Real
deliveries differ in naming: a *column-mapping config* (YAML or JSON, ``som ingest --columns FILE``) renames
columns and file patterns per register::

    bef:
      file: "bef{year}12"          # file-name stem pattern (optional)
      columns: {PNR: pnr_krypt, KOM: bopael_kom}
    lpr:
      columns: {C_PSYK: psyk}
      dates: sas_days              # how dates delivered as numbers are encoded (all date columns) …
    kraf:
      dates: {AFG_ADTO: yyyymmdd}  # … or per column

Names are matched case-insensitively; unknown registers or columns in the config are errors. A date column
delivered as numbers is refused unless ``dates`` declares their encoding (``sas_days`` = days since
1960-01-01, ``unix_days`` = days since 1970-01-01, ``yyyymmdd``); ``iso``, ``sas_text`` (``31DEC2019``) and
``dmy`` (``31-12-2019``) restrict text dates to that one form; ``auto`` (the default) accepts date values
and the three text forms (:func:`pipeline.registers.files.as_date`). Amounts must be finite numbers
(:func:`pipeline.registers.files.as_float`); their plausible range is a rule of the register's suite. Code lists
(DREAM benefit groups, KRAF sanction groups, BUA PGF groups, LPR patient types) are CSV files in
``assets/registers/`` (packaged reference data, :mod:`som_reference`) — data, not code; every row has a
``status`` (verified / unverified / illustrative …). The config is read with the strict YAML loader (a
duplicate key is an error).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.registers.files import DATE_ENCODINGS
from som_reference import asset, expectations_dir
from som_reference.strict_yaml import loads_yaml
from som_reference.values import ReferenceDataError, check_status

ASSETS = asset("registers")
SUITES = expectations_dir() / "registers"


class ConfigError(ValueError):
    """A column-mapping config or a code list is invalid; the message names the file and key."""


@dataclass(frozen=True)
class Column:
    """A canonical column: ``kind`` is pnr, text, int, float, date or end (a date whose empty value means open)."""

    name: str
    kind: str
    required: bool = True


@dataclass(frozen=True)
class Register:
    name: str
    title: str
    pattern: str                       # default file stem pattern, ``{year}`` for yearly registers
    columns: tuple[Column, ...]
    outcomes: tuple[str, ...] = ()

    @property
    def yearly(self) -> bool:
        return "{year}" in self.pattern


def _c(name: str, kind: str, required: bool = True) -> Column:
    return Column(name, kind, required)


REGISTERS: dict[str, Register] = {
    r.name: r for r in (
        Register("bef", "population (BEF, status 31 December)", "bef{year}12",
                 (_c("PNR", "pnr"), _c("KOEN", "int"), _c("FOED_DAG", "date"), _c("KOM", "int"))),
        Register("dream", "DREAM weekly benefit codes (wide)", "dream", (_c("PNR", "pnr"),),
                 ("<benefit>_weeks", "self_support_weeks")),
        Register("ind", "income (IND)", "ind{year}", (_c("PNR", "pnr"), _c("LOENMV_13", "float")), ("earnings_dkk",)),
        Register("lpr", "patient register (LPR adm)", "lpr_adm{year}",
                 (_c("PNR", "pnr"), _c("RECNUM", "text"), _c("D_INDDTO", "date"), _c("D_UDDTO", "end"),
                  _c("C_PATTYPE", "int"), _c("C_PSYK", "int")),
                 ("somatic_bed_days", "psychiatric_bed_days", "outpatient_visits", "emergency_visits")),
        Register("kraf", "court decisions (KRAF)", "kraf{year}",
                 (_c("PNR", "pnr"), _c("JOURNR", "text", False), _c("AFG_ADTO", "date"), _c("AFG_AFGTYP3", "int")),
                 ("convictions",)),
        Register("krin", "prison spells (KRIN)", "krin",
                 (_c("PNR", "pnr"), _c("IND_FGSLDTO", "date"), _c("IND_LOESDTO", "end")), ("prison_days",)),
        Register("shelter", "§110 shelter stays", "shelter",
                 (_c("PNR", "pnr"), _c("START_DATO", "date"), _c("SLUT_DATO", "end")), ("shelter_nights",)),
        Register("bua", "children's measures (BUA)", "bua",
                 (_c("PNR", "pnr"), _c("PGF", "int"), _c("SAG_VFRA", "date"), _c("SAG_VTIL", "end")),
                 ("placement_days", "preventive_days")),
        Register("indsats", "intervention register", "indsats",
                 (_c("PNR", "pnr"), _c("INDSATS", "text"), _c("START_DATO", "date"), _c("SLUT_DATO", "end", False),
                  _c("ARM", "text", False))),
    )
}
#: Registers without which no panel can be built.
ALWAYS_REQUIRED = ("bef", "indsats")
FORMATS = {".parquet": "parquet", ".csv": "csv", ".xpt": "sas", ".sas7bdat": "sas"}


@dataclass(frozen=True)
class ColumnMap:
    """Per register: file stem pattern and canonical → delivered column names (upper-cased)."""

    patterns: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: str = "defaults"
    #: per register: canonical date column → encoding (:data:`~pipeline.registers.files.DATE_ENCODINGS`)
    dates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def date_encoding(self, register: str, canonical: str) -> str:
        return self.dates.get(register, {}).get(canonical, "auto")

    def pattern(self, register: str) -> str:
        return self.patterns.get(register, REGISTERS[register].pattern)

    def delivered(self, register: str, canonical: str) -> str:
        return self.columns.get(register, {}).get(canonical, canonical)

    def regex(self, register: str) -> re.Pattern:
        """File-name regex: the stem pattern with ``{year}`` → a 4-digit group, any supported extension."""
        stem = re.escape(self.pattern(register)).replace(r"\{year\}", r"(?P<year>\d{4})")
        return re.compile(rf"{stem}\.(parquet|csv|xpt|sas7bdat)", re.IGNORECASE)


def load_column_map(path: str | Path | None) -> ColumnMap:
    """Read a column-mapping config (YAML or JSON); ``None`` gives the contract's default names."""
    if path is None:
        return ColumnMap()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: column-mapping config not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({type(exc).__name__})") from None
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            doc = loads_yaml(text, str(path))
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise ConfigError(f"{path}: not valid {kind} ({type(exc).__name__})") from None
    return parse_column_map(doc or {}, str(path))


def parse_column_map(doc: Any, source: str = "config") -> ColumnMap:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{source}: expected a mapping of register → {{file, columns}}")
    patterns: dict[str, str] = {}
    columns: dict[str, dict[str, str]] = {}
    dates: dict[str, dict[str, str]] = {}
    for reg, spec in doc.items():
        if reg not in REGISTERS:
            raise ConfigError(f"{source}: unknown register {reg!r} (known: {', '.join(REGISTERS)})")
        if not isinstance(spec, Mapping) or set(spec) - {"file", "columns", "dates"}:
            raise ConfigError(f"{source}: {reg}: expected keys 'file', 'columns' and/or 'dates'")
        if "file" in spec:
            pat = spec["file"]
            if not isinstance(pat, str) or not pat.strip() or (REGISTERS[reg].yearly and "{year}" not in pat) or (
                    not _STEM.fullmatch(pat.strip()) or ".." in pat):
                containing = " containing {year}" if REGISTERS[reg].yearly else ""
                raise ConfigError(f"{source}: {reg}.file must be a file-name stem{containing} (letters, digits, '_', "
                                  f"'-', '.'; no path separators or '..'), got {ascii(pat)[:80]}")
            patterns[reg] = pat.strip()
        if "dates" in spec:
            dates[reg] = _date_encodings(spec["dates"], reg, source)
        cols = spec.get("columns") or {}
        if not isinstance(cols, Mapping):
            raise ConfigError(f"{source}: {reg}.columns must map canonical names to delivered names")
        known = {c.name for c in REGISTERS[reg].columns}
        out = {}
        for canonical, delivered in cols.items():
            if str(canonical).upper() not in known:
                raise ConfigError(f"{source}: {reg}.columns: unknown column {canonical!r} (known: {', '.join(sorted(known))})")
            if not isinstance(delivered, str) or not delivered.strip():
                raise ConfigError(f"{source}: {reg}.columns.{canonical} must be a column name")
            out[str(canonical).upper()] = delivered.strip().upper()
        if len(set(out.values())) != len(out):
            raise ConfigError(f"{source}: {reg}.columns maps two canonical columns to the same delivered name")
        columns[reg] = out
    return ColumnMap(patterns, columns, source, dates)


_STEM = re.compile(r"[A-Za-z0-9_{}][A-Za-z0-9_.{}-]{0,99}")


def _date_encodings(value: Any, reg: str, source: str) -> dict[str, str]:
    """``dates:`` of one register: an encoding for all its date columns, or a mapping column → encoding."""
    date_cols = [c.name for c in REGISTERS[reg].columns if c.kind in ("date", "end")]
    if isinstance(value, str):
        value = {c: value for c in date_cols}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {reg}.dates must be an encoding or map date columns to encodings")
    out = {}
    for col, enc in value.items():
        if str(col).upper() not in date_cols:
            raise ConfigError(f"{source}: {reg}.dates: {col!r} is not a date column (date columns: {', '.join(date_cols)})")
        if enc not in DATE_ENCODINGS:
            raise ConfigError(f"{source}: {reg}.dates.{col}: unknown encoding {enc!r} (known: {', '.join(DATE_ENCODINGS)})")
        out[str(col).upper()] = enc
    return out


# --------------------------------------------------------------------------- which register yields which column

def outcome_registers(folder: Path | None = None) -> dict[str, str]:
    """Panel outcome column → the register that yields it (``<benefit>_weeks`` for every group of
    ``dream_codes.csv``, and ``self_support_weeks``, from DREAM). Covariates come from BEF, which every register
    delivery has."""
    out: dict[str, str] = {}
    for name, reg in REGISTERS.items():
        out.update({col: name for col in reg.outcomes if "<" not in col})
    out.update({f"{g}_weeks": "dream" for g in dream_groups(folder or ASSETS).groups})
    return out


def delivered_registers(files: tuple[str, ...] | list[str], listed: tuple[str, ...] | None,
                        cmap: ColumnMap | None = None) -> set[str]:
    """The registers a delivery has: those with a file in ``files`` (by file-name pattern, any year) and those
    the manifest's ``registers`` list names (a listed register without its file refuses the delivery at ingest).
    A register that is neither yields no panel column."""
    cmap = cmap or ColumnMap()
    found = {name for name in REGISTERS if any(cmap.regex(name).fullmatch(f) for f in files)}
    return found | {r for r in (listed or ()) if r in REGISTERS}


# --------------------------------------------------------------------------- code lists

@dataclass(frozen=True)
class CodeGroups:
    """Integer code ranges → group name (first matching range wins; ranges must not overlap)."""

    name: str
    ranges: tuple[tuple[int, int, str], ...]

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g for _, _, g in self.ranges))

    def lookup(self, size: int = 1000) -> list[str | None]:
        table: list[str | None] = [None] * size
        for lo, hi, g in self.ranges:
            for c in range(max(lo, 0), min(hi, size - 1) + 1):
                table[c] = g
        return table


def _read_codes(path: Path, group_col: str, lo_col: str = "code_from", hi_col: str = "code_to") -> CodeGroups:
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise ConfigError(f"{path}: code list not found") from None
    ranges = []
    for i, row in enumerate(rows, start=2):
        try:
            lo, hi = int(row[lo_col]), int(row[hi_col])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{path}: line {i}: {lo_col}/{hi_col} must be integers") from None
        if lo > hi:
            raise ConfigError(f"{path}: line {i}: {lo_col} > {hi_col}")
        try:  # a code list maps codes to categories (no unit); every row states how far it was checked
            check_status(row.get("status"), f"{path}: line {i}: column status")
        except ReferenceDataError as exc:
            raise ConfigError(str(exc)) from None
        ranges.append((lo, hi, row[group_col].strip()))
    srt = sorted(ranges)
    for a, b in zip(srt, srt[1:], strict=False):
        if b[0] <= a[1]:
            raise ConfigError(f"{path}: code ranges {a[0]}-{a[1]} and {b[0]}-{b[1]} overlap")
    return CodeGroups(path.stem, tuple(ranges))


def dream_groups(folder: Path = ASSETS) -> CodeGroups:
    return _read_codes(folder / "dream_codes.csv", "benefit")


def kraf_groups(folder: Path = ASSETS) -> CodeGroups:
    return _read_codes(folder / "kraf_sanctions.csv", "group")


def bua_groups(folder: Path = ASSETS) -> CodeGroups:
    return _read_codes(folder / "bua_pgf.csv", "group")


def lpr_pattypes(folder: Path = ASSETS) -> CodeGroups:
    return _read_codes(folder / "lpr_pattype.csv", "kind", "code", "code")
