"""From a register delivery to the canonical person-year panel and the treatments (DESIGN §3.2).

Rules (shared/reference/register-outcomes.md): one row per person and year in which the person is in BEF
on 31 December, within the delivery period; ``person_id`` = keyed pseudonym of PNR; day-based outcomes
count days ``start ≤ d < end`` in each calendar year, open ends run to the day after ``period_end``, and
overlapping spells count each day once; DREAM weeks are counted per ISO year by code group
(``assets/registers/dream_codes.csv``), blank = self-supporting, persons absent from DREAM are
self-supporting every week.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.registers.files import DeliveryError, Manifest, parse_dates, read_table, require_columns
from pipeline.registers.pseudonym import pseudonymise
from som_models.simulate.calendar import iso_weeks_in_year, parse_week_column

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "registers"


@dataclass(frozen=True, eq=False)
class PanelBuild:
    panel: pl.DataFrame
    treatments: pl.DataFrame
    registers: dict[str, int]


def load_code_groups(path: Path = ASSETS / "dream_codes.csv") -> pl.DataFrame:
    groups = pl.read_csv(path, schema_overrides={"code_from": pl.Int64, "code_to": pl.Int64})
    if groups.filter(pl.col("code_from") > pl.col("code_to")).height:
        raise ValueError(f"{path}: code_from > code_to in some rows")
    return groups


def _files(manifest: Manifest, pattern: str) -> list[str]:
    rx = re.compile(pattern, re.IGNORECASE)
    return [f for f in manifest.files if rx.fullmatch(f)]


def _person_ids(df: pl.DataFrame, key: bytes, file: str) -> pl.DataFrame:
    require_columns(df, ["PNR"], file)
    pnr = df.get_column("PNR").cast(pl.Utf8).str.strip_chars()
    bad = pnr.is_null() | (pnr == "")
    if bad.any():
        raise DeliveryError(f"{file}: column PNR: {int(bad.sum())} row(s) without a person number (rows {bad.arg_true().head(5).to_list()})")
    return df.with_columns(pseudonymise(pnr, key).alias("person_id")).drop("PNR")


def population(manifest: Manifest, key: bytes) -> pl.DataFrame:
    """BEF status files → person_id, year, sex, birth_year, age, municipality."""
    frames = []
    for name in _files(manifest, r"bef(\d{4})12\.\w+"):
        year = int(re.search(r"(\d{4})12", name).group(1))
        if year not in manifest.years:
            continue
        df = read_table(manifest.folder / name)
        require_columns(df, ["PNR", "KOEN", "FOED_DAG", "KOM"], name)
        born = parse_dates(df, "FOED_DAG", name)
        df = _person_ids(df.with_columns(born), key, name)
        frames.append(df.select(
            "person_id", pl.lit(year, pl.Int64).alias("year"), pl.col("KOEN").cast(pl.Int64).alias("sex"),
            pl.col("FOED_DAG").dt.year().cast(pl.Int64).alias("birth_year"), pl.col("KOM").cast(pl.Int64).alias("municipality"),
        ))
    if not frames:
        raise DeliveryError(f"{manifest.folder}: no BEF files (bef{{YYYY}}12.*) for the period {manifest.period_start}–{manifest.period_end}")
    pop = pl.concat(frames).with_columns((pl.col("year") - pl.col("birth_year")).alias("age"))
    dup = pop.group_by("person_id", "year").len().filter(pl.col("len") > 1).height
    if dup:
        raise DeliveryError(f"BEF: {dup} person-year(s) appear more than once in one year's file")
    return pop


def days_per_year(spells: pl.DataFrame, manifest: Manifest, name: str) -> pl.DataFrame:
    """Days covered by (person_id, start, end) spells per calendar year; overlaps merged first."""
    day_after = manifest.period_end + dt.timedelta(days=1)
    s = spells.with_columns(
        pl.max_horizontal(pl.col("start"), pl.lit(manifest.period_start)).alias("start"),
        pl.min_horizontal(pl.col("end"), pl.lit(day_after)).alias("end"),
    ).filter(pl.col("end") > pl.col("start")).sort("person_id", "start")
    # Merge overlapping spells: a new block starts when start > the running max end of earlier spells.
    s = s.with_columns(pl.col("end").cum_max().shift(1).over("person_id").alias("_prev_end"))
    s = s.with_columns((pl.col("_prev_end").is_null() | (pl.col("start") > pl.col("_prev_end"))).cum_sum().over("person_id").alias("_block"))
    blocks = s.group_by("person_id", "_block").agg(pl.col("start").min(), pl.col("end").max())
    out = []
    for year in manifest.years:
        lo, hi = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
        days = (pl.min_horizontal(pl.col("end"), pl.lit(hi)) - pl.max_horizontal(pl.col("start"), pl.lit(lo))).dt.total_days()
        out.append(blocks.select("person_id", pl.lit(year, pl.Int64).alias("year"), days.clip(lower_bound=0).alias(name)))
    return pl.concat(out).group_by("person_id", "year").agg(pl.col(name).sum().cast(pl.Float64))


def shelter_nights(manifest: Manifest, key: bytes) -> pl.DataFrame | None:
    files = _files(manifest, r"shelter\.\w+")
    if not files:
        return None
    name = files[0]
    df = read_table(manifest.folder / name)
    require_columns(df, ["PNR", "START_DATO", "SLUT_DATO"], name)
    open_end = manifest.period_end + dt.timedelta(days=1)
    start = parse_dates(df, "START_DATO", name)
    if start.is_null().any():
        raise DeliveryError(f"{name}: column START_DATO: {int(start.is_null().sum())} row(s) without a start date (rows {start.is_null().arg_true().head(5).to_list()})")
    end = parse_dates(df, "SLUT_DATO", name, open_end=open_end)
    bad = end < start
    if bad.any():
        raise DeliveryError(f"{name}: column SLUT_DATO: {int(bad.sum())} row(s) end before START_DATO (rows {bad.arg_true().head(5).to_list()})")
    df = _person_ids(df.with_columns(start.alias("start"), end.alias("end")), key, name)
    return days_per_year(df.select("person_id", "start", "end"), manifest, "shelter_nights")


def dream_weeks(manifest: Manifest, key: bytes, groups: pl.DataFrame) -> tuple[pl.DataFrame | None, list[str]]:
    """Weeks per ISO year on each benefit group and blank (self-support) weeks, for persons in DREAM."""
    columns = [f"{b}_weeks" for b in groups.get_column("benefit").unique(maintain_order=True)]
    files = _files(manifest, r"dream\.\w+")
    if not files:
        return None, columns
    name = files[0]
    df = read_table(manifest.folder / name)
    weeks = {c: parse_week_column(c) for c in df.columns}
    weeks = {c: yw for c, yw in weeks.items() if yw is not None and yw[0] in manifest.years}
    if not weeks:
        raise DeliveryError(f"{name}: no y_YYWW week columns for the period {manifest.period_start}–{manifest.period_end}")
    df = _person_ids(df.select(["PNR", *weeks]).with_columns(pl.col(list(weeks)).cast(pl.Utf8)), key, name)
    long = df.unpivot(index="person_id", on=list(weeks), variable_name="col", value_name="code")
    colmap = pl.DataFrame({"col": list(weeks), "year": [yw[0] for yw in weeks.values()]}, schema={"col": pl.Utf8, "year": pl.Int64})
    long = long.join(colmap, on="col").with_columns(pl.col("code").str.strip_chars())
    blank = pl.col("code").is_null() | (pl.col("code") == "")
    code = pl.col("code").cast(pl.Int64, strict=False)
    bad = long.filter(~blank & code.is_null())
    if bad.height:
        raise DeliveryError(f"{name}: {bad.height} week value(s) are not numeric benefit codes (columns {bad.get_column('col').unique().head(5).to_list()})")
    self_support = long.group_by("person_id", "year").agg(blank.sum().cast(pl.Float64).alias("self_support_weeks"))
    coded = long.filter(~blank).with_columns(code.alias("code"))
    counted = []
    for benefit, lo, hi in groups.select("benefit", "code_from", "code_to").iter_rows():
        counted.append(coded.filter(pl.col("code").is_between(lo, hi)).group_by("person_id", "year")
                       .agg(pl.len().cast(pl.Float64).alias("n")).with_columns(pl.lit(f"{benefit}_weeks").alias("benefit")))
    long_counts = pl.concat(counted)
    wide = long_counts.pivot(on="benefit", index=["person_id", "year"], values="n", aggregate_function="sum") if long_counts.height else None
    out = self_support if wide is None else self_support.join(wide, on=["person_id", "year"], how="left")
    for c in columns:
        if c not in out.columns:
            out = out.with_columns(pl.lit(0.0).alias(c))
    return out.select("person_id", "year", *columns, "self_support_weeks").with_columns(pl.col(columns).fill_null(0.0)), columns


def treatments(manifest: Manifest, key: bytes) -> pl.DataFrame:
    files = _files(manifest, r"indsats\.\w+")
    if not files:
        raise DeliveryError(f"{manifest.folder}: no intervention register (indsats.*) in the delivery")
    name = files[0]
    df = read_table(manifest.folder / name)
    require_columns(df, ["PNR", "INDSATS", "START_DATO"], name)
    start = parse_dates(df, "START_DATO", name)
    if start.is_null().any():
        raise DeliveryError(f"{name}: column START_DATO: {int(start.is_null().sum())} row(s) without a start date (rows {start.is_null().arg_true().head(5).to_list()})")
    end = parse_dates(df, "SLUT_DATO", name) if "SLUT_DATO" in df.columns else pl.Series("SLUT_DATO", [None] * df.height, pl.Date)
    arm = df.get_column("ARM").cast(pl.Utf8) if "ARM" in df.columns else pl.Series("ARM", [None] * df.height, pl.Utf8)
    df = _person_ids(df.with_columns(start.alias("START_DATO"), end.alias("SLUT_DATO"), arm.alias("ARM")), key, name)
    out = df.select(
        "person_id", pl.col("INDSATS").cast(pl.Utf8).alias("intervention"),
        pl.col("START_DATO").dt.year().cast(pl.Int64).alias("start_year"),
        pl.col("SLUT_DATO").dt.year().cast(pl.Int64).alias("end_year"), pl.col("ARM").alias("arm"),
    ).sort("person_id", "start_year")
    dup = out.group_by("person_id").len().filter(pl.col("len") > 1).height
    if dup:
        raise DeliveryError(f"{name}: {dup} person(s) have more than one intervention record; the first start is used only when deduplicated upstream")
    return out


def build_panel(manifest: Manifest, key: bytes) -> PanelBuild:
    """The canonical panel and treatments of one delivery."""
    pop = population(manifest, key)
    groups = load_code_groups()
    panel = pop
    counts = {"bef": pop.height}
    shelter = shelter_nights(manifest, key)
    panel = panel.join(shelter, on=["person_id", "year"], how="left") if shelter is not None else panel.with_columns(pl.lit(None, pl.Float64).alias("shelter_nights"))
    panel = panel.with_columns(pl.col("shelter_nights").fill_null(0.0))
    dream, week_cols = dream_weeks(manifest, key, groups)
    if dream is not None:
        panel = panel.join(dream, on=["person_id", "year"], how="left")
        counts["dream_person_years"] = dream.height
    else:
        panel = panel.with_columns([pl.lit(None, pl.Float64).alias(c) for c in [*week_cols, "self_support_weeks"]])
    iso = pl.DataFrame({"year": list(manifest.years), "_weeks": [float(iso_weeks_in_year(y)) for y in manifest.years]},
                       schema={"year": pl.Int64, "_weeks": pl.Float64})
    panel = panel.join(iso, on="year", how="left").with_columns(
        [pl.col(c).fill_null(0.0) for c in week_cols] + [pl.col("self_support_weeks").fill_null(pl.col("_weeks"))]
    ).drop("_weeks")
    panel = panel.select("person_id", "year", "sex", "birth_year", "age", "municipality", "shelter_nights",
                         *week_cols, "self_support_weeks").sort("person_id", "year")
    treat = treatments(manifest, key)
    counts["indsats"] = treat.height
    return PanelBuild(panel, treat, counts)
