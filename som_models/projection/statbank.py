"""Reading a price index from a Statistics Denmark StatBank CSV export, and writing it as reference YAML.

The net price index is StatBank table **PRIS116** ("Nettoprisindeks, hovedtal (2015=100)", monthly; the table
named in ``assets/price_index/nettoprisindeks.yaml``). An analyst downloads it as CSV (semicolon separated) —
on a research server without internet, by carrying the file in — and runs ``som refdata import-price-index FILE``.

Accepted layout (the *long* CSV that StatBank's API and "CSV (semikolonsepareret)" export give): one header row,
``;`` between fields, a column ``TID`` (time, ``2024M06``; case-insensitive) and a column ``INDHOLD`` (the value;
decimal comma or point; ``..`` or empty = not published), and any number of classification columns (e.g.
``VAREGR``, ``ENHED``). Each classification column must hold one value, or be pinned with ``where``
(``{"ENHED": "Indeks"}``). UTF-8 (with or without BOM) or Latin-1.

Checks (each error names the file, and the column or rows): the header, one row per month, months without gaps,
positive values, and that the base year's mean is 100 ± 0.5 when ``base_year`` is given (a wrong table or unit
shows up here). :func:`index_yaml` renders the reference file with source, status, the file's SHA-256 and the
import date; the CLI writes it atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from som_models.parameters.schema import ParameterError
from som_models.projection.prices import PriceIndex, index_from_monthly

_MONTH = re.compile(r"^\s*(\d{4})M(\d{2})\s*$")
_YEAR = re.compile(r"^\s*(\d{4})\s*$")
MISSING = ("", "..", ".", "-")


@dataclass(frozen=True)
class ImportedIndex:
    """Monthly values read from a StatBank file, with the file's name and SHA-256."""

    monthly: Mapping[int, list[float | None]]
    file: str
    sha256: str
    rows: int
    first: tuple[int, int]
    last: tuple[int, int]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_statbank_csv(path: Path, *, where: Mapping[str, str] | None = None, base_year: int | None = 2015) -> ImportedIndex:
    """Monthly index values from the StatBank CSV at ``path`` (layout and checks in the module docstring)."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParameterError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    rows = list(csv.reader(io.StringIO(_decode(data)), delimiter=";"))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ParameterError(f"{name}: the file is empty")
    header = [h.strip().strip('"') for h in rows[0]]
    upper = [h.upper() for h in header]
    if "TID" not in upper or "INDHOLD" not in upper:
        raise ParameterError(f"{name}: the header must have the columns TID and INDHOLD (StatBank's long CSV layout, "
                             f"';'-separated); found {', '.join(header) or 'nothing'}")
    t_col, v_col = upper.index("TID"), upper.index("INDHOLD")
    wanted = {k.upper(): v for k, v in (where or {}).items()}
    for col in wanted:
        if col not in upper:
            raise ParameterError(f"{name}: --where names column {col!r}, which the file does not have "
                                 f"(columns: {', '.join(header)})")
    body = []
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise ParameterError(f"{name}: row {n} has {len(r)} fields, the header {len(header)}")
        if all(r[upper.index(c)].strip() == v for c, v in wanted.items()):
            body.append((n, r))
    class_cols = [k for k, h in enumerate(upper) if k not in (t_col, v_col) and h not in wanted]
    for k in class_cols:
        seen = sorted({r[k].strip() for _, r in body})
        if len(seen) > 1:
            shown = ", ".join(repr(s) for s in seen[:6]) + (" …" if len(seen) > 6 else "")
            raise ParameterError(f"{name}: column {header[k]} holds several values ({shown}); choose one with "
                                 f"--where {header[k]}=VALUE")
    months: dict[tuple[int, int], float] = {}
    line_of: dict[tuple[int, int], int] = {}
    for n, r in body:
        tid = r[t_col].strip()
        m = _MONTH.match(tid)
        if m is None:
            kind = "an annual" if _YEAR.match(tid) else "an unreadable"
            raise ParameterError(f"{name}: row {n}, column TID: {tid!r} is {kind} period; a monthly table is needed "
                                 "(periods like 2024M06)")
        key = (int(m.group(1)), int(m.group(2)))
        if not 1 <= key[1] <= 12:
            raise ParameterError(f"{name}: row {n}, column TID: month {key[1]} in {tid!r}")
        if key in line_of:
            raise ParameterError(f"{name}: rows {line_of[key]} and {n}: two values for {tid} — pin the other columns "
                                 "with --where")
        line_of[key] = n
        raw = r[v_col].strip()
        if raw in MISSING:
            continue
        try:
            value = float(raw.replace(".", "").replace(",", ".") if "," in raw else raw)
        except ValueError:
            raise ParameterError(f"{name}: row {n}, column INDHOLD: {raw!r} is not a number") from None
        if not value > 0:
            raise ParameterError(f"{name}: row {n}, column INDHOLD: index values must be positive (got {raw})")
        months[key] = value
    if not months:
        raise ParameterError(f"{name}: no monthly values (after --where)")
    monthly: dict[int, list[float | None]] = {}
    for (yr, mo), v in months.items():
        monthly.setdefault(yr, [None] * 12)[mo - 1] = v
    monthly = dict(sorted(monthly.items()))
    index_from_monthly("import", monthly, name, "import", where=name)  # gaps inside the series are errors
    if base_year is not None:
        got = [v for v in monthly.get(base_year, []) if v is not None]
        if len(got) != 12:
            raise ParameterError(f"{name}: the base year {base_year} is not complete in the file (found {len(got)} "
                                 "months); export from the base year on, or pass --base-year none")
        mean = sum(got) / 12
        if abs(mean - 100) > 0.5:
            raise ParameterError(f"{name}: the mean of {base_year} is {mean:.2f}, not 100 — not a {base_year}=100 "
                                 "index (wrong table, unit or base?)")
    keys = sorted(months)
    return ImportedIndex(monthly, path.name, hashlib.sha256(data).hexdigest(), len(body), keys[0], keys[-1])


def revisions(old: PriceIndex, new: ImportedIndex) -> tuple[int, float]:
    """Months both hold, and the largest absolute change of a value among them (StatBank revises recent months)."""
    common = [(y, m) for y, vals in new.monthly.items() for m, v in enumerate(vals, start=1)
              if v is not None and (y, m) in old.monthly]
    if not common:
        return 0, 0.0
    return len(common), max(abs(new.monthly[y][m - 1] - old.monthly[(y, m)]) for y, m in common)  # type: ignore[operator]


def index_yaml(imported: ImportedIndex, *, name: str, table: str, base: str, imported_on: str) -> str:
    """The reference file for ``imported`` (same keys as ``assets/price_index/nettoprisindeks.yaml``)."""
    first, last = imported.first, imported.last
    doc = {
        "name": name,
        "base": base,
        "table": table,
        "unit": f"index points, {base} (monthly values; the annual level is their mean)",
        "status": (f"verified — Statistics Denmark StatBank table {table}, imported by `som refdata import-price-index` "
                   f"from {imported.file} (sha256 {imported.sha256[:16]}…) on {imported_on}; the importer checked "
                   "the layout, the months and the base, not where the file came from"),
        "source": f"Statistics Denmark, Statistikbanken table {table}: https://www.statistikbanken.dk/{table}",
        "as_of": f"{last[0]}-{last[1]:02d} (last month in the file; imported {imported_on})",
        "months": f"{first[0]}-{first[1]:02d} … {last[0]}-{last[1]:02d}",
        "extrapolation": ("months after the last one: the twelve-month growth to the last month, continued "
                          "(som_models/projection/prices.py); a warning names every extrapolated year"),
        "monthly": {y: vals for y, vals in imported.monthly.items()},
    }
    header = (f"# {name}: Statistics Denmark StatBank table {table} ({base}), written by `som refdata "
              "import-price-index`.\n# Read by som_models/projection/prices.py. Refresh: download the table as CSV "
              "(semicolon separated) and import it again.\n")
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)
