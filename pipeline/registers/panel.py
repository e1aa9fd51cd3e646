"""From a register delivery to the canonical person-year panel and the treatments (DESIGN §3.2).

Rules (shared/reference/register-outcomes.md, to the letter):

* one row per person and calendar year in which the person is in BEF (status 31 December), within the
  delivery period; ``person_id`` = keyed pseudonym of PNR; ``age = year − birth_year``;
* day-based outcomes count the days ``d`` with ``start ≤ d < end`` in each calendar year; an open end
  (missing, 9999-12-31, 31DEC9999) runs to the day after ``period_end``; overlapping spells of one kind count
  each day once; spells are clipped to the period;
* ``shelter_nights`` (§110 stays), ``somatic_bed_days`` / ``psychiatric_bed_days`` (LPR contacts with
  C_PATTYPE of kind *inpatient*, C_PSYK ≠ 1 / = 1), ``prison_days`` (KRIN), ``placement_days`` /
  ``preventive_days`` (BUA PGF groups); ``outpatient_visits`` / ``emergency_visits`` count LPR contacts by
  year of D_INDDTO; ``convictions`` count KRAF decisions whose AFG_AFGTYP3 is in the *conviction* group,
  by year of AFG_ADTO; ``earnings_dkk`` is LOENMV_13 of the year (0 when the person is absent from IND or
  the value is missing); ``<benefit>_weeks`` count DREAM weeks whose code is in the benefit's group, each ISO
  week in its ISO year; ``self_support_weeks`` count blank weeks; a person absent from DREAM has 0 benefit
  weeks and every ISO week of the year self-supporting. Code groups are the CSV files in
  ``assets/registers/``.

Registers: BEF and the intervention register are always required; the others are required when the
manifest's ``registers`` list names them, and their outcome columns are left out of the panel when a
delivery does not contain them (never silently zero). Every register is validated with its GX suite
(``expectations/registers``) before any outcome is computed; a failure raises :class:`DeliveryError`.

Scale: spells are merged with a grouped running maximum and split over the years they touch; DREAM is read one
ISO year's block of week columns at a time and evaluated wide — Parquet text codes through their Arrow
dictionaries (each distinct text mapped to its group once, only the cells present counted), other formats as a
small integer matrix mapped through a lookup table — never as a long person × week frame. Persons are joined on
an integer index; PNRs are pseudonymised once at the end. Counts are held in compact integer types; the panel
stays compact in :class:`PanelBuild` (``frame``) and takes its canonical types when written or asked for.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.registers import config as cfg
from pipeline.registers.files import (
    OPEN_END,
    DeliveryError,
    Manifest,
    Table,
    _check_names,
    as_date,
    as_float,
    as_int,
    as_pnr,
    as_text,
    parquet_names,
    read_table,
)
from pipeline.registers.pseudonym import pseudonymise
from pipeline.registers.validate import (
    check_dream_week_columns,
    check_person_constant,
    describe,
    gx_max_rows,
    register_suite,
    validate,
)
from som_models.simulate.calendar import iso_weeks_in_year, parse_week_column

ASSETS = cfg.ASSETS
COVARIATES = ("person_id", "year", "sex", "birth_year", "age", "municipality")
OTHER_OUTCOMES = {
    "lpr": ("somatic_bed_days", "psychiatric_bed_days", "outpatient_visits", "emergency_visits"),
    "krin": ("prison_days",), "kraf": ("convictions",), "bua": ("placement_days", "preventive_days"),
    "ind": ("earnings_dkk",),
}


@dataclass(frozen=True, eq=False)
class PanelBuild:
    """A built delivery: the panel, the treatments, row counts, ignored files, outcome columns, stage seconds.

    ``frame`` holds the panel's rows and columns, for a register delivery in compact types (integer
    covariates shrunk to the smallest type, day/week/event counts as unsigned integers); ``schema`` gives the
    canonical type of every column that is stored in a smaller one. :attr:`panel` is the canonical panel
    (covariates ``Int64``, outcomes ``Float64``) — the same values, materialised on first use;
    :meth:`write_panel` writes it without ever holding it whole (polars' streaming engine casts batch by batch).
    """

    frame: pl.DataFrame
    treatments: pl.DataFrame
    registers: dict[str, int]
    ignored: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = field(default=())
    seconds: dict[str, float] = field(default_factory=dict)
    schema: dict[str, pl.DataType] = field(default_factory=dict)

    def _canonical(self) -> pl.LazyFrame:
        return self.frame.lazy().with_columns(pl.col(c).cast(t) for c, t in self.schema.items())

    @cached_property
    def panel(self) -> pl.DataFrame:
        """The canonical panel (DESIGN §3.2 types)."""
        return self._canonical().collect() if self.schema else self.frame

    def panel_lazy(self) -> pl.LazyFrame:
        """The canonical panel as a LazyFrame over the compact frame: sinking it (``sink_parquet``) casts batch
        by batch, so the float64 copy is never whole in memory (the panel itself if already materialised)."""
        if not self.schema or "panel" in self.__dict__:
            return self.panel.lazy()
        return self._canonical()

    @property
    def panel_schema(self) -> pl.Schema:
        """The canonical panel's column types, without building it."""
        return pl.Schema({c: self.schema.get(c, t) for c, t in self.frame.schema.items()})

    def write_panel(self, path: Path) -> None:
        """``panel.parquet`` (the canonical panel), streamed from the compact frame."""
        if not self.schema or "panel" in self.__dict__:
            self.panel.write_parquet(path)
        else:
            self._canonical().sink_parquet(path)


def load_code_groups(path: Path = ASSETS / "dream_codes.csv") -> pl.DataFrame:
    """DREAM code groups as a frame (benefit, code_from, code_to, …); kept for callers of earlier versions."""
    groups = pl.read_csv(path, schema_overrides={"code_from": pl.Int64, "code_to": pl.Int64})
    if groups.filter(pl.col("code_from") > pl.col("code_to")).height:
        raise ValueError(f"{path}: code_from > code_to in some rows")
    return groups


@dataclass
class _Ctx:
    """One build: the manifest, column map, row counts and the GX row limit.

    ``gx_rows``: frames up to this many rows are validated by GX itself. Once BEF is larger than the limit
    the whole delivery is population-scale and every frame goes to the polars evaluator (this also spares
    the several seconds it takes to import GX).
    """

    manifest: Manifest
    cmap: cfg.ColumnMap
    gx_rows: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def period_end_next(self) -> dt.date:
        return self.manifest.period_end + dt.timedelta(days=1)

    @property
    def params(self) -> dict:
        """Suite parameters: the period, the day after it, and ``extraction`` — the last valid date of the
        delivery (:attr:`~pipeline.registers.files.Manifest.extraction`): spells may run past the period (they
        are clipped), but no date may lie after the extraction."""
        m = self.manifest
        return {"period_start": m.period_start, "period_end": m.period_end, "period_end_next": self.period_end_next,
                "extraction": m.extraction}


# --------------------------------------------------------------------------- which files are which register

def plan(manifest: Manifest, cmap: cfg.ColumnMap) -> tuple[dict[str, list[tuple[str, int | None]]], list[str]]:
    """Files per register (with their year for yearly registers) and the files ignored (with a reason)."""
    found: dict[str, list[tuple[str, int | None]]] = {}
    ignored = []
    regexes = {name: cmap.regex(name) for name in cfg.REGISTERS}
    for f in manifest.files:
        hits = [(name, m) for name, rx in regexes.items() if (m := rx.fullmatch(f))]
        if not hits:
            ignored.append(f"{f} (no register of the contract)")
            continue
        name, m = hits[0]
        year = int(m.group("year")) if "year" in m.groupdict() else None
        if year is not None and year not in manifest.years:
            ignored.append(f"{f} (year {year} outside the period)")
            continue
        found.setdefault(name, []).append((f, year))
    for name, files in found.items():
        keys = [y for _, y in files]
        dup = sorted({str(k) for k in keys if keys.count(k) > 1})
        if dup:
            which = "year " + ", ".join(dup) if dup != ["None"] else "the register"
            raise DeliveryError(f"register {name}: more than one file for {which} ({', '.join(f for f, _ in files)})")
    required = set(cfg.ALWAYS_REQUIRED) | {r for r in (manifest.registers or ()) if r in cfg.REGISTERS}
    for name in cfg.REGISTERS:
        reg = cfg.REGISTERS[name]
        pattern = cmap.pattern(name)
        if name not in found:
            if name in required:
                listed = " (listed in the manifest's registers)" if name not in cfg.ALWAYS_REQUIRED else ""
                raise DeliveryError(f"missing register {name} ({reg.title}){listed}: no file named {pattern}.* "
                                    f"(.parquet, .csv, .xpt or .sas7bdat) in the manifest")
            continue
        if reg.yearly:
            have = {y for _, y in found[name]}
            missing = [y for y in manifest.years if y not in have]
            if missing:
                raise DeliveryError(f"register {name}: no file for year(s) {', '.join(map(str, missing))} of the period "
                                    f"({pattern.replace('{year}', str(missing[0]))}.*)")
        found[name].sort(key=lambda fy: (fy[1] or 0, fy[0]))
    return found, ignored


# --------------------------------------------------------------------------- typed register frames

def _typed(ctx: _Ctx, name: str, table: Table) -> pl.DataFrame:
    reg = cfg.REGISTERS[name]
    df, file = table.frame, table.file
    out = {}
    missing = []
    for col in reg.columns:
        delivered = ctx.cmap.delivered(name, col.name)
        if delivered not in df.columns:
            if col.required:
                missing.append(col.name + (f" (mapped to {delivered})" if delivered != col.name else ""))
            continue
        s = df.get_column(delivered).alias(col.name)
        if col.kind == "pnr":
            out[col.name] = as_pnr(s, file, delivered)
        elif col.kind == "text":
            out[col.name] = as_text(s, file, delivered)
        elif col.kind == "int":
            out[col.name] = as_int(s, file, delivered, table.decimal_comma)
        elif col.kind == "float":
            out[col.name] = as_float(s, file, delivered, table.decimal_comma)
        else:
            d = as_date(s, file, delivered, ctx.cmap.date_encoding(name, col.name), decimal_comma=table.decimal_comma)
            if col.kind == "end":  # open ends (empty, 9999-12-31, 31DEC9999) become missing
                d = pl.select(pl.when(d >= OPEN_END).then(None).otherwise(d)).to_series().alias(col.name)
            out[col.name] = d.alias(col.name)
    if missing:
        raise DeliveryError(f"{file}: required column(s) {', '.join(missing)} missing (has {', '.join(df.columns[:12])}"
                            f"{', …' if len(df.columns) > 12 else ''})")
    typed = pl.DataFrame(out, height=df.height) if out else pl.DataFrame(height=df.height)
    for col in reg.columns:
        if col.name not in typed.columns:
            kind = {"text": pl.Utf8, "end": pl.Date, "date": pl.Date, "int": pl.Int64, "float": pl.Float64}.get(col.kind, pl.Utf8)
            typed = typed.with_columns(pl.lit(None, kind).alias(col.name))
    return typed.select([c.name for c in reg.columns])


def _read(ctx: _Ctx, name: str, file: str) -> Table:
    cols = [ctx.cmap.delivered(name, c.name) for c in cfg.REGISTERS[name].columns]
    return read_table(ctx.manifest.folder / file, cols)


def _check(ctx: _Ctx, name: str, frame: pl.DataFrame, files: list[tuple[str, int]]) -> None:
    report = validate(frame, register_suite(name, ctx.params), max_gx_rows=ctx.gx_rows)
    lines = describe(report, files)
    if lines:
        raise DeliveryError(lines[0], lines)


def load_register(ctx: _Ctx, name: str, files: list[tuple[str, int | None]], derive=None,
                  keep: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Typed, validated rows of every file of a register (``YEAR`` added for yearly registers; ``derive``, a
    row-by-row addition of columns, applied to each file's rows). ``keep``: the columns returned — the others are
    validated and then released here, before the caller joins or computes (the register's whole typed frame is
    never alive beside the caller's next copy)."""
    frames, sizes = [], []
    for file, year in files:
        typed = _typed(ctx, name, _read(ctx, name, file))
        if year is not None:
            typed = typed.with_columns(pl.lit(year, pl.Int32).alias("YEAR"))
        if derive is not None:  # row by row, so per file: the derived column is chunked like the others
            typed = derive(typed)
        frames.append(typed)
        sizes.append((file, typed.height))
    frame = pl.concat(frames, how="vertical_relaxed", rechunk=False)
    del frames
    _check(ctx, name, frame, sizes)
    ctx.counts[name] = frame.height
    # a lazy projection keeps each column's chunks as read: an eager select first aligns them (the derived columns
    # come in one chunk per file, the read ones in one per row group) — a copy of every kept column (2.8 s for LPR
    # at 6 M persons; the 1 M peak fell from 3.2–3.4 to 2.4 GiB with this projection)
    return frame if keep is None else frame.lazy().select(keep).collect()


def _group_expr(column: str, groups: cfg.CodeGroups) -> pl.Expr:
    expr = pl.lit(None, pl.Utf8)
    for lo, hi, g in reversed(groups.ranges):
        expr = pl.when(pl.col(column).is_between(lo, hi)).then(pl.lit(g)).otherwise(expr)
    return expr


def _group_column(frame: pl.DataFrame, column: str, groups: cfg.CodeGroups, name: str) -> pl.Series:
    """:func:`_group_expr` of ``column`` as a Series, evaluated once per distinct value and joined back.

    The same groups (first matching range wins; null and unmatched values → null), without the chain of
    full-length text temporaries the expression builds on a large frame.
    """
    distinct = frame.select(pl.col(column).unique())
    mapping = distinct.with_columns(_group_expr(column, groups).alias(name))
    joined = frame.select(column).join(mapping, on=column, how="left", maintain_order="left")
    return joined.get_column(name)


# --------------------------------------------------------------------------- outcome computations

def days_per_year(spells: pl.DataFrame, ctx: _Ctx, name: str) -> pl.DataFrame:
    """Days covered by (pid, start, end) spells per calendar year: ``start ≤ d < end``, open end → day after the
    period, clipped to the period, overlaps merged first.

    Merging: after sorting by (pid, start), a spell opens a new block when it starts after the running maximum
    of the earlier ends of the same person. The running maximum is taken over ``end + pid·2⁴⁰`` (days), which
    is a per-person running maximum without a window (ends are far below 2⁴⁰ days).
    """
    lo, hi = ctx.manifest.period_start, ctx.period_end_next
    big = 1 << 40
    s = (spells.lazy()
         .with_columns(pl.col("end").fill_null(pl.lit(hi)))
         .with_columns(pl.max_horizontal(pl.col("start"), pl.lit(lo)).alias("start"),
                       pl.min_horizontal(pl.col("end"), pl.lit(hi)).alias("end"))
         .filter(pl.col("end") > pl.col("start"))
         .sort("pid", "start")
         .with_columns((pl.col("pid").cast(pl.Int64) * big).alias("_off"))
         .with_columns(((pl.col("end").cast(pl.Int64) + pl.col("_off")).cum_max() - pl.col("_off")).alias("_run"))
         .with_columns((pl.col("pid") != pl.col("pid").shift(1)).fill_null(True).alias("_first"))
         .with_columns((pl.col("_first") | (pl.col("start").cast(pl.Int64) > pl.col("_run").shift(1))).cum_sum().alias("_block"))
         .group_by("_block").agg(pl.col("pid").first(), pl.col("start").min(), pl.col("end").max())
         .with_columns(pl.int_ranges(pl.col("start").dt.year(), (pl.col("end") - pl.duration(days=1)).dt.year() + 1,
                                     dtype=pl.Int32).alias("year"))
         .explode("year")
         .with_columns((pl.min_horizontal(pl.col("end"), pl.date(pl.col("year") + 1, 1, 1))
                        - pl.max_horizontal(pl.col("start"), pl.date(pl.col("year"), 1, 1))).dt.total_days().alias(name))
         .pipe(_per_person_year, ctx, pl.col(name).sum().cast(pl.Float64).alias(name)))
    return s.collect()


def _per_person_year(lf: pl.LazyFrame, ctx: _Ctx, *aggs: pl.Expr, by: tuple[str, ...] = ()) -> pl.LazyFrame:
    """``lf.group_by("pid", "year", *by).agg(*aggs)`` for years inside the period, grouped on one 64-bit key
    ``(pid · years + year − first year) · 2 + flag`` (``by``: at most one boolean column, the flag) and decoded
    back into ``pid`` (its own type), ``year`` (Int32) and the flag: the same groups and values, about a third of the
    time of a three-column grouping (LPR visits at 6 M persons: 2.5 s instead of 8.6 s)."""
    y0, ny = ctx.manifest.period_start.year, len(ctx.manifest.years)
    if len(by) > 1:
        raise ValueError("at most one flag column")
    flag = pl.col(by[0]).cast(pl.UInt64) if by else pl.lit(0, pl.UInt64)
    key = (pl.col("pid").cast(pl.UInt64) * ny + (pl.col("year") - y0).cast(pl.UInt64)) * 2 + flag
    out = (lf.filter((pl.col("year") >= y0) & (pl.col("year") < y0 + ny))
           .group_by(key.alias("_key")).agg(*aggs))
    cell = pl.col("_key") // 2
    return out.select((cell // ny).cast(lf.collect_schema()["pid"]).alias("pid"), (cell % ny + y0).cast(pl.Int32).alias("year"),
                      *([(pl.col("_key") % 2 == 1).alias(by[0])] if by else []), pl.all().exclude("_key"))


def _events_per_year(df: pl.DataFrame, date_col: str, ctx: _Ctx, name: str) -> pl.DataFrame:
    return (df.lazy().select("pid", pl.col(date_col).dt.year().cast(pl.Int32).alias("year"))
            .pipe(_per_person_year, ctx, pl.len().cast(pl.Float64).alias(name)).collect())


class _Persons:
    """Every person of the delivery (BEF and the intervention register): PNR → pseudonym and an integer index.

    ``pid`` numbers persons in the order of their pseudonyms (so row order never reveals PNR order). When every
    PNR is 10 digits (validated lengths; no sign), PNRs are handled as 64-bit integers — unique and joins are
    several times faster than on text — and turned back into text (zero-padded) only to be pseudonymised.
    """

    def __init__(self, pnrs: pl.Series, key: bytes) -> None:
        lengths = pnrs.str.len_bytes()
        ints = pnrs.cast(pl.Int64, strict=False)
        self.int_keys = bool(pnrs.len() and lengths.min() == lengths.max() == 10 and ints.null_count() == pnrs.null_count()
                             and not (pnrs.str.starts_with("+") | pnrs.str.starts_with("-")).any())
        if self.int_keys:
            keys = ints.unique()
            text = keys.cast(pl.Utf8).str.zfill(10)
        else:
            keys = text = pnrs.unique()
        frame = pl.DataFrame({"_k": keys, "person_id": pseudonymise(text, key)})
        # Pseudonyms are 16 lower-case hex digits: their text order is the order of their 64-bit values, which sort
        # several times faster (6 M persons: 0.3 s instead of 2.8 s); any other text sorts as text.
        value = frame.get_column("person_id").str.to_integer(base=16, dtype=pl.UInt64, strict=False)
        hex16 = bool(value.null_count() == 0 and (frame.get_column("person_id").str.len_bytes() == 16).all()
                     and not frame.get_column("person_id").str.contains("[^0-9a-f]").any())
        frame = (frame.sort(value) if hex16 else frame.sort("person_id")).with_row_index("pid")
        self.person_id = frame.get_column("person_id")
        self.map = frame.select("_k", "pid")
        self.n = frame.height

    def _key(self, expr: pl.Expr) -> pl.Expr:
        return expr.cast(pl.Int64, strict=False) if self.int_keys else expr

    def attach(self, df: pl.DataFrame, how: str = "inner") -> pl.DataFrame:
        """``df`` with its PNR column replaced by ``pid`` (inner: rows of persons outside BEF/indsats dropped)."""
        # lazily: an eager with_columns first aligns the chunks of every column of ``df`` (a register's columns come
        # in one chunk per row group, derived ones per file) — a copy of the population (4.8 s at 6 M persons)
        return (df.lazy().with_columns(self._key(pl.col("PNR")).alias("_k")).drop("PNR")
                .join(self.map.lazy(), on="_k", how=how, maintain_order="left" if how == "left" else "none")
                .drop("_k").collect())


class _Grid:
    """The panel's rows (person × year in BEF) as a dense lookup ``pid × years → row``, for scattering outcomes."""

    def __init__(self, pid: np.ndarray, year: np.ndarray, n_persons: int, years: range) -> None:
        """``pid``/``year`` of the BEF rows in any order; ``order`` gives those rows sorted by (pid, year)."""
        self.y0, self.ny, self.n = years[0], len(years), len(pid)
        itype = np.int32 if len(pid) < 2**31 else np.int64
        self.lookup = np.full(n_persons * self.ny, -1, dtype=itype)
        cell = pid.astype(np.int64)  # pid · years + year − first year, computed in place (no further temporaries)
        cell *= self.ny
        cell += year
        cell -= self.y0
        self.lookup[cell] = np.arange(len(pid), dtype=itype)
        del cell
        # positions, not a boolean mask: indexing with the filled cells' positions is several times faster
        filled = np.flatnonzero(self.lookup >= 0)
        self.order = self.lookup[filled]
        self.lookup[filled] = np.arange(len(pid), dtype=itype)  # from now on: the row in (pid, year) order

    def rows(self, pid: np.ndarray, year: np.ndarray) -> np.ndarray:
        """The panel row of each (pid, year) pair; −1 where the person has no panel row that year (or the year
        lies outside the period)."""
        year = np.asarray(year)
        ok = (year >= self.y0) & (year < self.y0 + self.ny)
        cell = pid.astype(np.int64)
        cell *= self.ny
        cell += year
        cell -= self.y0
        if ok.all():
            return self.lookup[cell]
        out = np.full(len(pid), -1, dtype=self.lookup.dtype)
        at = np.flatnonzero(ok)
        out[at] = self.lookup[cell[at]]
        return out

    def scatter(self, frame: pl.DataFrame, column: str) -> np.ndarray:
        """Values of ``column`` (one row per pid-year) placed on the panel's rows; 0 where absent.

        Compact: whole non-negative values (day and event counts) are kept in the smallest unsigned integer
        type that holds their maximum (``uint16`` for days); anything else stays ``float64``. The panel turns
        every outcome into ``float64`` when it is assembled, so the values are the same either way.
        """
        values = frame.get_column(column).to_numpy() if frame.height else np.zeros(0)
        dtype = _compact_type(values)
        out = np.zeros(self.n, dtype=dtype)
        if frame.height:
            rows = self.rows(frame.get_column("pid").to_numpy(), frame.get_column("year").to_numpy())
            if rows.min() >= 0:  # every pair has its panel row (the usual case): no selection copies
                out[rows] = values.astype(dtype, copy=False)
            else:
                ok = np.flatnonzero(rows >= 0)
                out[rows[ok]] = values[ok].astype(dtype)
        return out


def _compact_type(values: np.ndarray) -> np.dtype:
    """``uint8``/``uint16``/``uint32`` when every value is a whole number from 0 to that type's maximum, else ``float64``."""
    if not len(values):
        return np.dtype(np.uint8)
    v = np.asarray(values)
    if v.dtype.kind == "f" and not (np.isfinite(v).all() and (v == np.floor(v)).all()):
        return np.dtype(np.float64)
    lo, hi = v.min(), v.max()
    if lo < 0 or hi > np.iinfo(np.uint32).max:
        return np.dtype(np.float64)
    return np.dtype(np.uint8 if hi <= 255 else np.uint16 if hi <= 65_535 else np.uint32)


def _with_pid(df: pl.DataFrame, persons: _Persons) -> pl.DataFrame:
    """``df`` (validated, reduced by :func:`load_register`'s ``keep`` to PNR and the columns an outcome reads)
    with PNR replaced by ``pid`` — the join never carries columns no outcome reads."""
    return persons.attach(df)


def derived(name: str):
    """The row-by-row derivation of the columns register ``name``'s suite also checks (None when it has none),
    applied by :func:`load_register` to each file's typed rows before the register is validated: BEF's status date,
    LPR's contact kind, KRAF's sanction group and year bounds, BUA's measure group (code groups read once)."""
    if name == "bef":
        return lambda f: f.with_columns(pl.date(pl.col("YEAR"), 12, 31).alias("STATUS_DATE"))
    if name == "lpr":
        kinds = cfg.lpr_pattypes()
        kind_type = pl.Enum(list(kinds.groups))
        return lambda f: f.with_columns(_group_column(f, "C_PATTYPE", kinds, "PATTYPE_KIND").cast(kind_type))
    if name == "kraf":
        sanctions = cfg.kraf_groups()
        return lambda f: f.with_columns(_group_column(f, "AFG_AFGTYP3", sanctions, "SANCTION_GROUP"),
                                        pl.date(pl.col("YEAR"), 1, 1).alias("YEAR_START"),
                                        pl.date(pl.col("YEAR"), 12, 31).alias("YEAR_END"))
    if name == "bua":
        measures = cfg.bua_groups()
        return lambda f: f.with_columns(_group_column(f, "PGF", measures, "PGF_GROUP"))
    return None


def population(ctx: _Ctx, files) -> pl.DataFrame:
    """BEF status files → PNR, year, sex, birth_year, municipality and ``_birth`` (the birth date, for
    :func:`person_constant`), validated, in file order."""
    bef = load_register(ctx, "bef", files, derived("bef"), keep=("PNR", "YEAR", "KOEN", "FOED_DAG", "KOM"))
    sizes = bef.group_by("YEAR").len()
    empty = [f for f, y in files if y not in set(sizes.get_column("YEAR").to_list())]
    if empty:
        raise DeliveryError(f"{empty[0]}: BEF file without persons (0 rows); every year of the period needs its population")
    # compact types for the rows held through the build (validated: KOEN in {1, 2}, KOM a municipality code)
    return bef.lazy().select("PNR", pl.col("YEAR").alias("year"), pl.col("KOEN").cast(pl.Int8).alias("sex"),
                             pl.col("FOED_DAG").dt.year().cast(pl.Int16).alias("birth_year"),
                             pl.col("KOM").cast(pl.Int16).alias("municipality"), pl.col("FOED_DAG").alias("_birth")).collect()


def person_constant(base: pl.DataFrame, pop: pl.DataFrame, files) -> None:
    """A PNR fixes sex and birth date (rule ``person-constant``, :func:`pipeline.registers.validate.check_person_constant`).

    Detected on ``base`` — the population sorted by (``pid``, ``year``) — as a change between a person's consecutive
    rows (one pass, no grouping); only then is the file-ordered population ``pop`` searched for the refusal's
    files and rows."""
    same = pl.col("pid") == pl.col("pid").shift(1)
    changed = base.select((same & (pl.col(c) != pl.col(c).shift(1))).any().alias(c) for c in ("sex", "_birth")).row(0)
    if any(changed):
        check_person_constant(pop.select("PNR", pl.col("year").alias("YEAR"), pl.col("sex").alias("KOEN"),
                                         pl.col("_birth").alias("FOED_DAG")), ("KOEN", "FOED_DAG"), files)


def hospital(ctx: _Ctx, files, ids) -> list[pl.DataFrame]:
    keep = ("PNR", "D_INDDTO", "D_UDDTO", "C_PSYK", "PATTYPE_KIND")
    lpr = _with_pid(load_register(ctx, "lpr", files, derived("lpr"), keep=keep), ids)
    inpatient = pl.col("PATTYPE_KIND") == "inpatient"
    psyk = pl.col("C_PSYK").fill_null(0) == 1
    spells = lambda cond: lpr.filter(cond).select("pid", pl.col("D_INDDTO").alias("start"), pl.col("D_UDDTO").alias("end"))  # noqa: E731
    visits = (lpr.lazy().filter(pl.col("PATTYPE_KIND").is_in(["outpatient", "emergency"]))
              .select("pid", (pl.col("PATTYPE_KIND") == "emergency").alias("emergency"),
                      pl.col("D_INDDTO").dt.year().cast(pl.Int32).alias("year"))
              .pipe(_per_person_year, ctx, pl.len().cast(pl.Float64).alias("n"), by=("emergency",)).collect())
    per_kind = lambda kind, name: (visits.filter(pl.col("emergency") == (kind == "emergency"))  # noqa: E731
                                   .select("pid", "year", pl.col("n").alias(name)))
    return [
        days_per_year(spells(inpatient & ~psyk), ctx, "somatic_bed_days"),
        days_per_year(spells(inpatient & psyk), ctx, "psychiatric_bed_days"),
        per_kind("outpatient", "outpatient_visits"),
        per_kind("emergency", "emergency_visits"),
    ]


def crime(ctx: _Ctx, files, ids) -> list[pl.DataFrame]:
    kraf = _with_pid(load_register(ctx, "kraf", files, derived("kraf"), keep=("PNR", "SANCTION_GROUP", "AFG_ADTO")), ids)
    return [_events_per_year(kraf.filter(pl.col("SANCTION_GROUP") == "conviction"), "AFG_ADTO", ctx, "convictions")]


def spell_register(ctx: _Ctx, name: str, files, ids, start: str, end: str, outcome: str) -> list[pl.DataFrame]:
    df = _with_pid(load_register(ctx, name, files, keep=("PNR", start, end)), ids)
    return [days_per_year(df.select("pid", pl.col(start).alias("start"), pl.col(end).alias("end")), ctx, outcome)]


def child_measures(ctx: _Ctx, files, ids) -> list[pl.DataFrame]:
    bua = _with_pid(load_register(ctx, "bua", files, derived("bua"), keep=("PNR", "PGF_GROUP", "SAG_VFRA", "SAG_VTIL")), ids)
    out = []
    for group, outcome in (("placement", "placement_days"), ("preventive", "preventive_days")):
        sp = bua.filter(pl.col("PGF_GROUP") == group).select("pid", pl.col("SAG_VFRA").alias("start"),
                                                             pl.col("SAG_VTIL").alias("end"))
        out.append(days_per_year(sp, ctx, outcome))
    return out


def income(ctx: _Ctx, files, ids) -> list[pl.DataFrame]:
    ind = _with_pid(load_register(ctx, "ind", files, keep=("PNR", "YEAR", "LOENMV_13")), ids)
    return [ind.select("pid", pl.col("YEAR").alias("year"), pl.col("LOENMV_13").fill_null(0.0).alias("earnings_dkk"))]


# --------------------------------------------------------------------------- DREAM, wide

class _DreamSource:
    """DREAM columns on demand: Parquet is read one ISO year's block of week columns at a time (all rows);
    other formats are read whole once (they are small in practice).

    Parquet week columns holding text are read as Arrow dictionary arrays (the footer is parsed once): per
    column chunk, the few distinct texts of its dictionary are mapped to code groups through the text rules
    of :func:`_group_matrix`, and the chunk's indices are turned into groups by one numpy gather — no
    per-cell text is ever materialised. Columns of other types take the polars path of :func:`_group_matrix`.
    """

    def __init__(self, ctx: _Ctx, file: str, pnr_col: str, week_cols: list[str]) -> None:
        self.path = ctx.manifest.folder / file
        self.file = file
        self.parquet = self.path.suffix.lower() == ".parquet"
        if self.parquet:
            self.actual = parquet_names(self.path)
            self._arrow = None
        else:
            self.frame = read_table(self.path, [pnr_col, *week_cols]).frame

    def frame_of(self, names: list[str]) -> pl.DataFrame:
        if not self.parquet:
            return self.frame.select(names)
        try:
            df = pl.read_parquet(self.path, columns=[self.actual[n] for n in names])
        except Exception as exc:
            raise DeliveryError(f"{self.file}: cannot be read ({type(exc).__name__}; truncated or malformed?)") from None
        return df.rename(dict(zip(df.columns, names, strict=False)))

    def counts_of(self, names: list[str], lut: np.ndarray, slot: np.ndarray, width: int) -> tuple[np.ndarray, list[bool]]:
        """Per row (file order) the number of cells of the week columns ``names`` in each group slot
        (``slot[group]``; groups as :func:`_group_matrix` gives them) as a ``uint8`` (rows × ``width``) matrix
        (a year has at most 53 week columns; ``uint16`` beyond 255 columns), and per column whether a cell is
        not a code of any group (255).

        Only cells that are not missing are touched: per column, ``counts[rows, slot[group]] += 1`` (each row
        once per column, so the fancy-indexed addition is exact).
        """
        return self.counts_in(self.block(names), names, lut, slot, width)

    def block(self, names: list[str]):
        """The week columns ``names`` as read from the file (Parquet: an Arrow table, text dictionary-encoded; other
        formats: their frame) — the I/O part of :meth:`counts_of`, which :func:`dream_weeks` runs one block ahead
        in a second thread (reading releases the GIL) while the previous block is counted."""
        if not self.parquet:
            return self.frame.select(names)
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if self._arrow is None:
                schema = pq.read_schema(self.path)
                text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                        or pa.types.is_dictionary(f.type)]
                self._arrow = pq.ParquetFile(self.path, read_dictionary=text)
            return self._arrow.read(columns=[self.actual[n] for n in names], use_threads=True)
        except Exception as exc:
            raise DeliveryError(f"{self.file}: cannot be read ({type(exc).__name__}; truncated or malformed?)") from None

    def counts_in(self, table, names: list[str], lut: np.ndarray, slot: np.ndarray,
                  width: int) -> tuple[np.ndarray, list[bool]]:
        """:meth:`counts_of` on a block already read (:meth:`block`)."""
        bad = [False] * len(names)
        if not self.parquet:
            g = _group_matrix(table, lut)
            counts = np.zeros((g.shape[0], width), dtype=np.uint8 if len(names) < 256 else np.uint16)
            for j in range(g.shape[1]):
                rows = np.flatnonzero(g[:, j] != 254)
                grp = g[rows, j]
                counts[rows, slot[grp]] += 1
                bad[j] = bool((grp == 255).any())
            return counts, bad
        import pyarrow as pa

        counts = np.zeros((table.num_rows, width), dtype=np.uint8 if len(names) < 256 else np.uint16)
        flat = counts.reshape(-1)  # a view: cell (row, slot) is flat[row · width + slot]
        other: list[int] = []
        cache: dict[tuple, np.ndarray] = {}
        for j, column in enumerate(table.columns):
            t = column.type
            if not (pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))):
                other.append(j)
                continue
            row = 0
            for chunk in column.chunks:
                words = tuple(chunk.dictionary.to_pylist())
                table_k = cache.get(words)
                if table_k is None:  # the dictionary's texts through the text rules
                    texts = pl.DataFrame({"c": pl.Series("c", list(words), dtype=pl.Utf8)})
                    table_k = cache[words] = _group_matrix(texts, lut)[:, 0] if words else np.zeros(0, np.uint8)
                rows, codes = _dictionary_cells(chunk.indices)
                grp = table_k[codes]
                at = (rows + row if rows is not None else np.arange(row, row + len(chunk))) * width
                flat[at + slot[grp]] += 1
                bad[j] = bad[j] or bool((grp == 255).any())
                row += len(chunk)
        if other:
            block = pl.from_arrow(table.select(other))
            assert isinstance(block, pl.DataFrame)
            g = _group_matrix(block, lut)
            for jj, j in enumerate(other):
                rows = np.flatnonzero(g[:, jj] != 254)
                grp = g[rows, jj]
                counts[rows, slot[grp]] += 1
                bad[j] = bool((grp == 255).any())
        return counts, bad


def _dictionary_cells(idx) -> tuple[np.ndarray | None, np.ndarray]:
    """The cells of an Arrow dictionary chunk that are not null: their positions (``None`` when every cell is
    present) and their dictionary indices, read from the buffers (validity bitmap and values) without a copy
    of the chunk."""
    n = len(idx)
    validity, data = idx.buffers()[0], idx.buffers()[1]
    width = idx.type.bit_width // 8
    raw = np.frombuffer(data, dtype=f"<i{width}", count=idx.offset + n)[idx.offset:]
    if not idx.null_count or validity is None:
        return None, raw
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=idx.offset + n, bitorder="little")[idx.offset:]
    rows = np.flatnonzero(bits.view(bool))
    return rows, raw[rows]


def _codes_matrix(df: pl.DataFrame) -> np.ndarray:
    """Week codes as an int16 matrix (rows × columns): 0 blank, 1–999 a code, −1 anything else.

    Text is cast to integers in one vectorised pass; only columns where the cast lost values (padding, empty
    strings, non-codes) or produced numbers outside 1–999 are re-examined cell by cell.
    """
    def numeric(c: str, t: pl.DataType) -> pl.Expr:
        x = pl.col(c)
        if t.is_float():
            whole = pl.when(x.is_null()).then(None).when(x == x.floor()).then(x).otherwise(-1.0)
            return whole.cast(pl.Int16, strict=False).alias(c)
        if t in (pl.Utf8, pl.Null) or t.is_integer():
            return x.cast(pl.Int16, strict=False).alias(c)
        return pl.when(x.is_null()).then(None).otherwise(-1).cast(pl.Int16).alias(c)

    cast = df.select(numeric(c, t) for c, t in df.schema.items())
    before = df.null_count().row(0)
    after = cast.null_count().row(0)
    odd = cast.select(((pl.col(c) < 1) | (pl.col(c) > 999)).sum().alias(c) for c in cast.columns).row(0)
    redo = [c for c, b, a, o in zip(df.columns, before, after, odd, strict=False) if b != a or o]
    if redo:
        fixed = []
        for c in redo:
            if df.schema[c].is_float():  # whole floats are codes (701.0), a fraction is none
                x = df.get_column(c)
                fixed.append(pl.select(pl.when(x.is_null()).then(None).when((x == x.floor()) & x.is_between(1, 999))
                                       .then(x).otherwise(-1)).to_series().cast(pl.Int16).alias(c))
                continue
            t = df.get_column(c).cast(pl.Utf8).str.strip_chars()
            v = t.cast(pl.Int32, strict=False)
            blank = t.is_null() | (t == "")
            fixed.append(pl.select(pl.when(blank).then(None).when(v.is_between(1, 999)).then(v).otherwise(-1))
                         .to_series().cast(pl.Int16).alias(c))
        cast = cast.with_columns(fixed)
    return cast.fill_null(0).to_numpy()


_CODE_TEXT = [str(c) for c in range(1, 1000)]


def _group_matrix(df: pl.DataFrame, lut: np.ndarray) -> np.ndarray:
    """Code group per cell (uint8; 254 blank, 255 not a code of any group) for a block of week columns.

    Categorical columns (dictionary-encoded Parquet text arrives so) are mapped without touching any text:
    the texts "1"…"999" are cast to the column's categorical type once, which gives the physical id of every
    code; a lookup table from physical id to group then maps the whole block in one numpy gather. Ids that
    are no plain code (padding, other text) send their column through the text path. Other columns go
    through :func:`_codes_matrix` and the code lookup table.
    """
    lut2 = lut.copy()  # index code + 1: code −1 (not a code) → 255, code 0 (blank) → 254, 1…999 → group
    lut2[0], lut2[1] = 255, 254
    out = None
    text_cols = [c for c, t in df.schema.items() if not (t == pl.Categorical or isinstance(t, pl.Enum))]
    for dtype in {t for t in df.dtypes if t == pl.Categorical or isinstance(t, pl.Enum)}:
        names = [c for c, t in df.schema.items() if t == dtype]
        probe = pl.Series(_CODE_TEXT).cast(dtype, strict=False).to_physical().to_numpy()
        ok = ~np.isnan(probe.astype(float)) if probe.dtype.kind == "f" else np.ones(len(probe), bool)
        code_ids = probe[ok].astype(np.int64)
        phys = df.select(pl.col(names).to_physical())
        top = phys.select(pl.max_horizontal(pl.all().max())).item()
        sentinel = int(max(top if top is not None else 0, code_ids.max(initial=0))) + 1
        table = np.full(sentinel + 1, 253, dtype=np.uint8)  # 253: an id that is not a plain code
        table[code_ids] = lut2[np.arange(1, 1000)[ok] + 1]
        table[sentinel] = 254
        small = pl.UInt16 if sentinel < 65_535 else pl.UInt32
        groups = table[phys.select(pl.all().fill_null(sentinel).cast(small)).to_numpy()]
        odd = (groups == 253).any(axis=0)
        if odd.any():
            text_cols += [c for c, o in zip(names, odd, strict=False) if o]
            keep = [c for c, o in zip(names, odd, strict=False) if not o]
            groups = groups[:, ~odd]
            names = keep
        if out is None and len(names) == df.width:
            return groups
        out = np.empty((df.height, df.width), dtype=np.uint8) if out is None else out
        pos = [df.columns.index(c) for c in names]
        out[:, pos] = groups
    if text_cols:
        out = np.empty((df.height, df.width), dtype=np.uint8) if out is None else out
        pos = [df.columns.index(c) for c in text_cols]
        block = df.select(pl.col(c).cast(pl.Utf8) if df.schema[c] != pl.Utf8 and not df.schema[c].is_numeric() else pl.col(c)
                          for c in text_cols)
        out[:, pos] = lut2[_codes_matrix(block).astype(np.int32) + 1]
    return out


def _dream_columns(ctx: _Ctx, file: str) -> tuple[str, list[str], list[tuple[int, int]]]:
    path = ctx.manifest.folder / file
    if path.suffix.lower() == ".parquet":
        names = list(parquet_names(path))
    else:
        names = read_table(path).frame.columns if path.suffix.lower() != ".csv" else _csv_header(path)
    check_dream_week_columns(names, file)  # y_YYWW names an ISO week (pipeline.registers.validate)
    pnr_col = ctx.cmap.delivered("dream", "PNR")
    if pnr_col not in names:
        raise DeliveryError(f"{file}: required column PNR{' (mapped to ' + pnr_col + ')' if pnr_col != 'PNR' else ''} missing")
    weeks = []
    for n in names:
        yw = parse_week_column(n)
        if yw is not None and yw[0] in ctx.manifest.years:
            weeks.append((n, yw))
    weeks.sort(key=lambda x: x[1])
    have = {yw for _, yw in weeks}
    need = [(y, w) for y in ctx.manifest.years for w in range(1, iso_weeks_in_year(y) + 1)]
    lacking = [f"y_{y % 100:02d}{w:02d}" for y, w in need if (y, w) not in have]
    if lacking:
        raise DeliveryError(f"{file}: {len(lacking)} week column(s) of the period missing (first: {', '.join(lacking[:5])})")
    return pnr_col, [n for n, _ in weeks], [yw for _, yw in weeks]


def _csv_header(path: Path) -> list[str]:
    from pipeline.registers.files import csv_separator, decode_text

    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    text = decode_text(head, path.name)
    first = text.split("\n", 1)[0].split("\r", 1)[0]  # LF, CRLF or CR-only line ends
    if not first.strip():
        raise DeliveryError(f"{path.name}: the file is empty (no header line)")
    sep = csv_separator(first, path.name)
    return list(_check_names([c.strip().strip('"') for c in first.split(sep)], path.name))


def dream_weeks(ctx: _Ctx, file: str, persons: _Persons, grid: _Grid) -> dict[str, np.ndarray]:
    """Weeks per ISO year on each benefit group and blank weeks, as arrays over the panel's rows.

    Wide evaluation, one ISO year at a time: the year's week columns are read (dictionary-encoded for
    Parquet), each distinct code of a column is mapped once to its group through the lookup table of
    ``dream_codes.csv``, and per column only the non-blank cells are added to a (persons × groups) count
    matrix; blank weeks are the ISO year's weeks minus the coded ones. Panel rows of persons absent from
    DREAM keep 0 benefit weeks and every week of the ISO year self-supporting.
    """
    groups = cfg.dream_groups()
    names = list(groups.groups)
    out_cols = [f"{g}_weeks" for g in names]
    pnr_col, week_cols, yws = _dream_columns(ctx, file)
    lut = np.full(1001, 255, dtype=np.uint8)  # index code + 1 (1…999) → group index; 255 = in no group
    for lo, hi, g in groups.ranges:
        lut[max(lo, 1) + 1:min(hi, 999) + 2] = names.index(g)
    src = _DreamSource(ctx, file, pnr_col, week_cols)
    pnr = as_pnr(src.frame_of([pnr_col]).get_column(pnr_col), file, pnr_col)
    n = len(pnr)
    pid = persons.attach(pl.DataFrame({"PNR": pnr}), how="left").get_column("pid")
    known = pid.is_not_null().to_numpy()
    pid_np = pid.fill_null(0).to_numpy()
    outside = np.zeros(n, dtype=np.int32)
    bad_cols: list[str] = []
    years = sorted({y for y, _ in yws})
    arrays = {c: np.zeros(grid.n, dtype=np.uint8) for c in out_cols}  # ≤ 53 weeks per ISO year
    width = 16  # group slots per row in the count key (groups 0…k−1, 254/255 folded into slots 14/15)
    slot = np.arange(256, dtype=np.int32)
    slot[254], slot[255] = 14, 15
    coded = np.ones(width, dtype=bool)
    coded[14] = False  # slot 14: blank
    blocks = [[c for c, (yy, _) in zip(week_cols, yws, strict=False) if yy == y] for y in years]
    from concurrent.futures import ThreadPoolExecutor

    # The next ISO year's block is read in a second thread while this one is counted (one block ahead: at most two
    # blocks in memory); a read error surfaces, as before, when its block is reached.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dream-read") as reader:
        ahead = reader.submit(src.block, blocks[0]) if blocks else None
        for k, y in enumerate(years):
            cols = blocks[k]
            assert ahead is not None
            table = ahead.result()
            ahead = reader.submit(src.block, blocks[k + 1]) if k + 1 < len(blocks) else None
            counts, bad_in = src.counts_in(table, cols, lut, slot, width)
            del table
            _count_year(counts, bad_in, cols, y, arrays, out_cols, outside, bad_cols, grid, pid_np, known, coded)
    if src.parquet:  # Arrow's allocator keeps freed blocks for reuse; nothing later reads through Arrow
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    check = pl.DataFrame({"PNR": pnr, "CODES_OUTSIDE_GROUPS": outside})
    report = validate(check, register_suite("dream", ctx.params), max_gx_rows=ctx.gx_rows)
    lines = describe(report, [(file, check.height)])
    if lines:
        if bad_cols:
            shown = ", ".join(bad_cols[:6]) + (" …" if len(bad_cols) > 6 else "")
            lines = [ln + (f" (week columns with codes outside every group: {shown})" if "CODES_OUTSIDE_GROUPS" in ln else "")
                     for ln in lines]
        raise DeliveryError(lines[0], lines)
    ctx.counts["dream"] = n
    return arrays


def _count_year(counts: np.ndarray, bad_in: list[bool], cols: list[str], year: int, arrays: dict[str, np.ndarray],
                out_cols: list[str], outside: np.ndarray, bad_cols: list[str], grid: _Grid, pid_np: np.ndarray,
                known: np.ndarray, coded: np.ndarray) -> None:
    """One ISO year's counts (rows × group slots, :meth:`_DreamSource.counts_in`) placed on the panel's rows of
    ``year`` (``arrays``), codes outside every group added to ``outside`` and their columns to ``bad_cols``. Only
    rows with at least one non-blank cell in the year are touched."""
    active = np.flatnonzero(_any_coded(counts, coded))
    if not len(active):
        return
    counts = counts[active]
    bad = counts[:, 15]
    if bad.any():
        outside[active] += bad.astype(np.int32)
        bad_cols += [c.lower() for c, b in zip(cols, bad_in, strict=False) if b]
    rows = grid.rows(pid_np[active], np.full(len(active), year))
    ok = np.flatnonzero((rows >= 0) & known[active])
    at, counts = rows[ok], counts[ok]  # selected once for every group
    for k, c in enumerate(out_cols):
        arrays[c][at] = counts[:, k]  # ≤ 53 weeks: uint8


def _any_coded(counts: np.ndarray, coded: np.ndarray) -> np.ndarray:
    """Per row, whether any slot where ``coded`` is true holds a count. For the usual uint8 rows of 16 slots
    (C order) the two 8-byte halves of each row are tested as integers, the blank slot masked out — the same
    answer as ``counts[:, coded].any(axis=1)`` without its copy and its slow reduction."""
    if counts.dtype != np.uint8 or counts.ndim != 2 or counts.shape[1] != 16 or not counts.flags.c_contiguous:
        return counts[:, coded].any(axis=1)
    mask = np.frombuffer(np.where(coded, 0xFF, 0).astype(np.uint8).tobytes(), dtype=np.uint64)  # per half-row
    words = counts.view(np.uint64)  # (rows, 2)
    return ((words[:, 0] & mask[0]) != 0) | ((words[:, 1] & mask[1]) != 0)


# --------------------------------------------------------------------------- treatments and the panel

def treatments_frame(ctx: _Ctx, files) -> pl.DataFrame:
    """The intervention register (validated) → PNR, intervention, start_year, end_year, arm, course_days (days from
    START_DATO to SLUT_DATO; null while the course is ongoing)."""
    df = load_register(ctx, "indsats", files, keep=("PNR", "INDSATS", "START_DATO", "SLUT_DATO", "ARM"))
    return df.select(
        "PNR", pl.col("INDSATS").alias("intervention"), pl.col("START_DATO").dt.year().cast(pl.Int64).alias("start_year"),
        pl.col("SLUT_DATO").dt.year().cast(pl.Int64).alias("end_year"), pl.col("ARM").alias("arm"),
        (pl.col("SLUT_DATO") - pl.col("START_DATO")).dt.total_days().cast(pl.Int64).alias("course_days"))


def build_panel(manifest: Manifest, key: bytes, columns: cfg.ColumnMap | None = None, *,
                max_gx_rows: int | None = None) -> PanelBuild:
    """The canonical panel and treatments of one delivery (validated; raises :class:`DeliveryError`).

    A panel delivery (``kind: panel``, a handed-over panel) is read by
    :func:`pipeline.registers.handover.build_handover` instead of the register readers.
    """
    if manifest.kind == "panel":
        from pipeline.registers.handover import build_handover

        return build_handover(manifest, key)
    ctx = _Ctx(manifest, columns or cfg.ColumnMap(), gx_max_rows(max_gx_rows))
    clock = [time.perf_counter()]
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        now = time.perf_counter()
        seconds[name] = round(now - clock[0], 3)
        clock[0] = now

    files, ignored = plan(manifest, ctx.cmap)
    pop = population(ctx, files["bef"])
    if pop.height > ctx.gx_rows:
        ctx.gx_rows = 0
    lap("bef")
    treat = treatments_frame(ctx, files["indsats"])
    persons = _Persons(pl.concat([pop.get_column("PNR"), treat.get_column("PNR")]), key)
    base = persons.attach(pop).rechunk()  # one chunk per column: the gather into (pid, year) order below is random
    grid = _Grid(base.get_column("pid").to_numpy(), base.get_column("year").to_numpy(), persons.n, manifest.years)
    base = base[grid.order]
    del grid.order  # only needed to sort the population once
    person_constant(base, pop, files["bef"])
    base = base.drop("_birth")
    del pop
    lap("indsats_and_pseudonyms")
    arrays: dict[str, np.ndarray] = {}

    def attach(frames: list[pl.DataFrame]) -> None:
        for fr in frames:
            col = [c for c in fr.columns if c not in ("pid", "year")][0]
            arrays[col] = grid.scatter(fr, col)

    if "shelter" in files:
        attach(spell_register(ctx, "shelter", files["shelter"], persons, "START_DATO", "SLUT_DATO", "shelter_nights"))
        lap("shelter")
    week_cols: list[str] = []
    if "dream" in files:
        weeks = dream_weeks(ctx, files["dream"][0][0], persons, grid)
        week_cols = list(weeks)
        iso = {y: iso_weeks_in_year(y) for y in manifest.years}
        total = base.select(pl.col("year").replace_strict(iso, return_dtype=pl.Int16)).to_series().to_numpy().copy()
        arrays.update(weeks)
        for c in week_cols:
            total -= weeks[c]  # int16: the ISO year's weeks minus the coded ones (each week has one code at most)
        arrays["self_support_weeks"] = total
        lap("dream")
    for name, fn in (("lpr", lambda f: hospital(ctx, f, persons)),
                     ("krin", lambda f: spell_register(ctx, "krin", f, persons, "IND_FGSLDTO", "IND_LOESDTO", "prison_days")),
                     ("kraf", lambda f: crime(ctx, f, persons)), ("bua", lambda f: child_measures(ctx, f, persons)),
                     ("ind", lambda f: income(ctx, f, persons))):
        if name in files:
            attach(fn(files[name]))
            lap(name)

    shelter = ["shelter_nights"] if "shelter_nights" in arrays else []
    order = [*shelter, *week_cols, *(["self_support_weeks"] if week_cols else []),
             *[c for c in arrays if c not in shelter and c not in week_cols and c != "self_support_weeks"]]
    pid = base.get_column("pid")
    # Compact: covariates in the smallest integer type holding them, outcomes as counted; the canonical
    # types (Int64 covariates, Float64 outcomes) are restored by PanelBuild.panel / write_panel.
    panel = pl.DataFrame({
        "person_id": persons.person_id.gather(pid),
        "year": base.get_column("year").cast(pl.Int64).shrink_dtype(),
        "sex": base.get_column("sex").cast(pl.Int64).shrink_dtype(),
        "birth_year": base.get_column("birth_year").cast(pl.Int64).shrink_dtype(),
        "age": (base.get_column("year") - base.get_column("birth_year")).cast(pl.Int64).shrink_dtype(),
        "municipality": base.get_column("municipality").cast(pl.Int64).shrink_dtype(),
    })
    del base
    panel = panel.hstack([pl.Series(c, arrays.pop(c)) for c in order], in_place=True)
    schema: dict[str, pl.DataType] = {**{c: pl.Int64() for c in COVARIATES[1:]}, **{c: pl.Float64() for c in order}}
    tr = persons.attach(treat, how="left")
    treatments = (tr.with_columns(persons.person_id.gather(tr.get_column("pid")).alias("person_id"))
                  .select("person_id", "intervention", "start_year", "end_year", "arm", "course_days")
                  .sort("person_id", "start_year"))
    counts = {"bef": ctx.counts.get("bef", 0), **{k: v for k, v in ctx.counts.items() if k != "bef"},
              "person_years": panel.height, "persons": int(pid.n_unique())}
    lap("assemble")
    return PanelBuild(panel, treatments, counts, tuple(ignored), tuple(order), seconds, schema)
