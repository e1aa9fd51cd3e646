"""The hostile-input corpus for register ingestion (issue 16, items 1–2): generated untidy or malformed deliveries.

Each case starts from a clean simulated delivery (Parquet, Danish CSV or SAS transport) and changes one thing.
Its outcome is asserted exactly:

* **accepted** — untidy but valid (dashed PNRs, lower-case names, Danish thousands separators, declared integer
  date encodings, a symbolic link inside the folder, …): the panel and treatments equal the clean delivery's;
* **accepted, changed** — a spell crossing the period end: the panel equals the clean one except for the days
  inside the period, computed by hand;
* **refused** — the error names the file, the column and the rule (or check) and, for cell problems, the row
  numbers; it contains no PNR of the delivery and not the hostile value itself; an earlier output folder is
  left byte for byte as it was.

Every ingestion uses the polars engine (``max_gx_rows=0``: same suites, no GX import) to keep the corpus fast.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from pipeline.registers import ConfigError, DeliveryError, ingest, load_column_map
from pipeline.registers.config import parse_column_map
from som_models.simulate import simulate, write_delivery

KEY = b"h" * 32
D = dt.date


# --------------------------------------------------------------------------- the clean deliveries

@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    sim = simulate("small", 120, 5)
    out = {"root": root}
    for fmt, name in (("parquet", "parquet"), ("csv-dk", "csv"), ("sas", "sas")):
        folder = write_delivery(sim, root / name, fmt, truth_panel=False)
        out[name] = folder
        result = ingest(folder, root / f"out-{name}", KEY, max_gx_rows=0)
        out[f"panel-{name}"] = result.build.panel
        out[f"treatments-{name}"] = result.build.treatments
    out["pnrs"] = set(pl.concat([pl.read_parquet(p) for p in out["parquet"].glob("bef*.parquet")])["PNR"])
    out["manifest"] = json.loads((out["parquet"] / "manifest.json").read_text())
    return out


# --------------------------------------------------------------------------- helpers that change a delivery

def _manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


def _save(d: Path, doc: dict) -> None:
    (d / "manifest.json").write_text(json.dumps(doc))


def _rehash(d: Path) -> None:
    doc = _manifest(d)
    doc["sha256"] = {f: hashlib.sha256((d / f).read_bytes()).hexdigest() for f in doc["files"]
                     if (d / f).is_file() and not (d / f).is_symlink()}
    _save(d, doc)


def _no_sha(d: Path) -> None:
    doc = _manifest(d)
    doc.pop("sha256", None)
    _save(d, doc)


def _parquet(file: str, fn: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        fn(pl.read_parquet(d / file)).write_parquet(d / file)
        _rehash(d)
    return mutate


def _set(df: pl.DataFrame, row: int, **values) -> pl.DataFrame:
    """``df`` with row ``row`` changed; a column changes type when the new value needs it (text into dates …)."""
    out = df
    for col, v in values.items():
        cur = out.get_column(col).to_list()
        cur[row] = v
        try:
            s = pl.Series(col, cur, dtype=out.schema[col], strict=True)
        except (TypeError, pl.exceptions.PolarsError):
            s = pl.Series(col, cur, strict=False)
        out = out.with_columns(s)
    return out


def _text(file: str, fn: Callable[[str], str], encoding: str = "latin-1") -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        (d / file).write_bytes(fn((d / file).read_bytes().decode(encoding)).encode(encoding))
        _rehash(d)
    return mutate


def _csv_cell(file: str, row: int, col: int, value: str) -> Callable[[Path], None]:
    def fn(text: str) -> str:
        lines = text.split("\n")
        cells = lines[row + 1].split(";")
        cells[col] = value
        lines[row + 1] = ";".join(cells)
        return "\n".join(lines)
    return _text(file, fn)


def _csv_line(file: str, row: int, fn: Callable[[str], str]) -> Callable[[Path], None]:
    def edit(text: str) -> str:
        lines = text.split("\n")
        lines[row + 1] = fn(lines[row + 1])
        return "\n".join(lines)
    return _text(file, edit)


def _both(*fns: Callable[[Path], None]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        for fn in fns:
            fn(d)
    return mutate


def _manifest_edit(**changes) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        _save(d, {**_manifest(d), **changes})
    return mutate


def _truncate(file: str, share: float) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        raw = (d / file).read_bytes()
        (d / file).write_bytes(raw[:int(len(raw) * share)])
        _no_sha(d)
    return mutate


def _replace_file(file: str, make: Callable[[Path, Path], None]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        (d / file).unlink()
        make(d, d / file)
        _no_sha(d)
    return mutate


def _cut_at_record(raw: bytes, share: float) -> bytes:
    """The first ``share`` of the bytes, cut back to a whole number of 80-byte XPORT records."""
    return raw[:(int(len(raw) * share) // 80) * 80]


def _scramble(raw: bytes) -> bytes:
    """The bytes with a stretch in the middle (data pages, not the footer) overwritten."""
    mid = len(raw) // 3
    return raw[:mid] + bytes((b ^ 0x5A) for b in raw[mid:mid + 64]) + raw[mid + 64:]


def _unlist(file: str, register: str, *, from_registers: bool = True) -> Callable[[Path], None]:
    """``file`` removed from the folder and the manifest (and ``register`` from its registers list)."""
    def mutate(d: Path) -> None:
        (d / file).unlink()
        doc = _manifest(d)
        doc["files"] = [f for f in doc["files"] if f != file]
        doc["sha256"].pop(file, None)
        if from_registers:
            doc["registers"] = [r for r in doc["registers"] if r != register]
        _save(d, doc)
    return mutate


def _without(*columns: str) -> Callable[[pl.DataFrame, pl.DataFrame, dict], None]:
    def check(panel: pl.DataFrame, clean: pl.DataFrame, ctx: dict) -> None:
        want = clean.drop([c for c in clean.columns if c in columns or (columns == ("*_weeks",) and c.endswith("_weeks"))])
        assert panel.equals(want), (panel.columns, want.columns)
    return check


def _dashed(p: str | None) -> str | None:
    return None if p is None else f"{p[:6]}-{p[6:]}"


def _days_since(epoch: dt.date) -> Callable[[pl.Series], pl.Series]:
    return lambda s: (s - pl.lit(epoch)).dt.total_days()



def _add_file(name: str, write: Callable[[Path, Path], None]) -> Callable[[Path], None]:
    """A new file ``name`` written by ``write(delivery, path)`` and listed in the manifest."""
    def mutate(d: Path) -> None:
        write(d, d / name)
        doc = _manifest(d)
        doc["files"] = [*doc["files"], name]
        _save(d, doc)
        _rehash(d)
    return mutate


def _costs(fn: Callable[[pl.DataFrame], pl.DataFrame] = lambda df: df, *, name: str = "costs.parquet"
           ) -> Callable[[Path], None]:
    """A cost file (one row per person of the intervention register: PNR, BELOEB, PRISAAR) changed by ``fn``;
    Parquet, or for ``.csv`` the Danish dialect (``;``, decimal comma) as text."""
    def write(d: Path, path: Path) -> None:
        src = d / "indsats.parquet"
        pnr = (pl.read_parquet(src) if src.exists() else pl.read_csv(d / "indsats.csv", separator=";",
                                                                       infer_schema=False, encoding="latin-1")
                                                           .rename(str.upper))["PNR"]
        df = fn(pl.DataFrame({"PNR": pnr, "BELOEB": [95_000.0 + 10 * i for i in range(pnr.len())],
                              "PRISAAR": [2022] * pnr.len()}))
        if path.suffix == ".csv":
            def dk(v: object) -> str:  # Danish: 95.000,50
                if isinstance(v, float) and v == v and abs(v) != float("inf"):
                    return f"{v:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
                return "" if v is None else str(v)
            cells = [[dk(v) for v in row] for row in df.rows()]
            path.write_text("\n".join([";".join(df.columns), *(";".join(r) for r in cells)]) + "\n", encoding="latin-1")
        else:
            df.write_parquet(path)
    return _add_file(name, write)


def _dream_cell(file: str, row: int, column: str, value: str | None) -> Callable[[Path], None]:
    """One DREAM week cell (Parquet: dictionary-encoded text) set to ``value``."""
    return _parquet(file, lambda df: df.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value, pl.Utf8)).otherwise(pl.col(column).cast(pl.Utf8))
        .cast(pl.Categorical).alias(column)))


def _dream_column(file: str, name: str, like: str) -> Callable[[Path], None]:
    """An extra DREAM column ``name``, a copy of week column ``like``."""
    return _parquet(file, lambda df: df.with_columns(pl.col(like).alias(name)))


# --------------------------------------------------------------------------- the cases

@dataclass(frozen=True)
class Case:
    mutate: Callable[[Path], None]
    #: "same" (the clean panel), a regex the refusal must match, or a check of the accepted panel
    expect: str | Callable[[pl.DataFrame, pl.DataFrame, dict], None]
    fmt: str = "parquet"
    columns: dict | None = None
    #: text that must not appear in a refusal (the hostile value)
    secret: tuple[str, ...] = field(default=())


def _pnr(file: str, value: str, row: int = 0) -> Case:
    return Case(_parquet(file, lambda df: _set(df, row, PNR=value)),
                rf"{re.escape(file)}: column PNR: rule pnr-format: 1 value\(s\) .*\(rows \[{row}\]\)", secret=(value,))


def _float(file: str, value: float) -> Case:
    return Case(_parquet(file, lambda df: _set(df, 2, LOENMV_13=value)),
                rf"{re.escape(file)}: column LOENMV_13: rule finite: 1 value\(s\) are not finite .*\(rows \[2\]\)")


def _dk_amount(value: str) -> Case:
    return Case(_csv_cell("ind2021.csv", 3, 1, value),
                r"ind2021\.csv: column LOENMV_13: rule number-format: 1 value\(s\) are not numbers .*\(rows \[3\]\)",
                fmt="csv", secret=(value,))


def _int_dates(file: str, cols: tuple[str, ...], epoch: dt.date | None, declare: dict | None, expect: str) -> Case:
    def fn(df: pl.DataFrame) -> pl.DataFrame:
        if epoch is None:  # yyyymmdd numbers
            return df.with_columns(pl.col(c).dt.strftime("%Y%m%d").cast(pl.Int64) for c in cols)
        return df.with_columns(_days_since(epoch)(pl.col(c)).cast(pl.Int32).alias(c) for c in cols)
    return Case(_parquet(file, fn), expect, columns=declare)


def _crossing(register: str, file: str, row: dict, outcome: str) -> Case:
    """A spell of ``register`` from 30 December of the last year to 3 January after the period, for a person in
    BEF that year without any ``outcome`` days: the panel gains exactly 2 days (30 and 31 December) there."""
    def mutate(d: Path) -> None:
        bef = pl.read_parquet(sorted(d.glob("bef*12.parquet"))[-1])
        person = sorted(bef.get_column("PNR"))[0]
        df = pl.read_parquet(d / file)
        df = pl.concat([df, pl.DataFrame({**{c: [v] for c, v in row.items()}, "PNR": [person]}).select(df.columns)
                        .cast(dict(df.schema))])
        df.write_parquet(d / file)
        (d / "person.txt").write_text(person)
        _rehash(d)

    def check(panel: pl.DataFrame, clean: pl.DataFrame, ctx: dict) -> None:
        last = int(clean.get_column("year").max())
        from pipeline.registers import pseudonymise

        pid = pseudonymise(pl.Series([ctx["person"]]), KEY)[0]
        key = (pl.col("person_id") == pid) & (pl.col("year") == last)
        before = clean.filter(key).get_column(outcome).item()
        after = panel.filter(key).get_column(outcome).item()
        assert after - before == 2, (before, after)
        others = ~key
        assert panel.filter(others).equals(clean.filter(others))
    return Case(mutate, check)


def _comma_csv_amount(file: str, row: int, value: str) -> Callable[[Path], None]:
    """The Danish income CSV rewritten as a ``,`` CSV with ``.`` decimals, one amount replaced by ``value``."""
    def fn(text: str) -> str:
        lines = [re.sub(r"^(\d{10});(-?\d+),(\d+)$", r"\1,\2.\3", ln) for ln in text.split("\n")]
        lines[0] = lines[0].replace(";", ",")
        cells = lines[row + 1].split(",")
        cells[1] = value
        lines[row + 1] = ",".join(cells)
        return "\n".join(lines)
    return _text(file, fn)


def _ind2021_amount(value: str) -> Callable[[Path], None]:
    """Replace the 2021 income of the first person of ind2021.csv who is in BEF 2021 (kept in person.txt)."""
    def mutate(d: Path) -> None:
        bef = {ln.split(";")[0] for ln in (d / "bef202112.csv").read_bytes().decode("latin-1").split("\n")[1:] if ln}
        lines = (d / "ind2021.csv").read_bytes().decode("latin-1").split("\n")
        i = next(i for i, ln in enumerate(lines) if i and ln.split(";")[0] in bef)
        person = lines[i].split(";")[0]
        lines[i] = f"{person};{value}"
        (d / "ind2021.csv").write_bytes("\n".join(lines).encode("latin-1"))
        (d / "person.txt").write_text(person)
        _rehash(d)
    return mutate


def _income_is(panel: pl.DataFrame, clean: pl.DataFrame, ctx: dict, value: float) -> None:
    from pipeline.registers import pseudonymise

    pid = pseudonymise(pl.Series([ctx["person"]]), KEY)[0]
    key = (pl.col("person_id") == pid) & (pl.col("year") == 2021)
    assert panel.filter(key).get_column("earnings_dkk").item() == value
    assert panel.filter(~key).equals(clean.filter(~key))


LAST, NEXT = 2022, 2023  # the simulated delivery covers 2019–2022, vintage 2023-06
CROSS = {"start": D(LAST, 12, 30), "end": D(NEXT, 1, 3)}

CASES: dict[str, Case] = {
    # ---- spells crossing the period end: clipped, never refused (issue: between__D_UDDTO refused them)
    "LPR admission 30 Dec → 3 Jan after the period": _crossing(
        "lpr", f"lpr_adm{LAST}.parquet", {"RECNUM": "HOSTILE-1", "D_INDDTO": CROSS["start"], "D_UDDTO": CROSS["end"],
                                          "C_PATTYPE": 0, "C_PSYK": 0}, "somatic_bed_days"),
    "psychiatric admission crossing the period end": _crossing(
        "lpr", f"lpr_adm{LAST}.parquet", {"RECNUM": "HOSTILE-2", "D_INDDTO": CROSS["start"], "D_UDDTO": CROSS["end"],
                                          "C_PATTYPE": 0, "C_PSYK": 1}, "psychiatric_bed_days"),
    "shelter stay crossing the period end": _crossing(
        "shelter", "shelter.parquet", {"START_DATO": CROSS["start"], "SLUT_DATO": CROSS["end"]}, "shelter_nights"),
    "prison spell crossing the period end": _crossing(
        "krin", "krin.parquet", {"IND_FGSLDTO": CROSS["start"], "IND_LOESDTO": CROSS["end"]}, "prison_days"),
    "placement crossing the period end": _crossing(
        "bua", "bua.parquet", {"PGF": 150, "SAG_VFRA": CROSS["start"], "SAG_VTIL": CROSS["end"]}, "placement_days"),
    "shelter stay starting after the period (before the extraction)": Case(
        _parquet("shelter.parquet", lambda df: _set(df, 0, START_DATO=D(NEXT, 2, 1), SLUT_DATO=D(NEXT, 3, 1))),
        lambda panel, clean, ctx: None),  # accepted; its days lie outside the period (checked below)
    # ---- dates after the vintage's extraction (end of June 2023): refused with file, column, check and rows
    "LPR discharge after the extraction": Case(
        _parquet(f"lpr_adm{LAST}.parquet", lambda df: _set(df, 1, D_UDDTO=D(NEXT, 7, 1))),
        rf"lpr_adm{LAST}\.parquet: check between__D_UDDTO failed \(blocking\) on column 'D_UDDTO'.*1 of \d+ rows fail"
        rf".*first rows: lpr_adm{LAST}\.parquet row 1"),
    "shelter end after the extraction": Case(
        _parquet("shelter.parquet", lambda df: _set(df, 3, SLUT_DATO=D(NEXT, 7, 1))),
        r"shelter\.parquet: check between__SLUT_DATO .*1 of \d+ rows fail.*first rows: row 3"),
    "prison start after the extraction": Case(
        _parquet("krin.parquet", lambda df: _set(df, 0, IND_FGSLDTO=D(2030, 1, 1), IND_LOESDTO=None)),
        r"krin\.parquet: check between__IND_FGSLDTO .*1 of \d+ rows fail.*first rows: row 0"),
    "manifest extraction date before the period end": Case(
        _manifest_edit(extracted="2022-06-30"), r"manifest\.json: 'extracted' 2022-06-30 must lie between period_end"),
    "manifest extraction date earlier than a discharge": Case(
        _both(_manifest_edit(extracted="2023-01-02"),
              _parquet(f"lpr_adm{LAST}.parquet", lambda df: _set(df, 0, D_INDDTO=CROSS["start"], D_UDDTO=CROSS["end"]))),
        rf"lpr_adm{LAST}\.parquet: check between__D_UDDTO .*1 of \d+ rows fail"),
    # ---- a delivery's cost file (pipeline.registers.costs): finite, not negative, plausible, one file
    "cost file, clean": Case(_costs(), "same"),
    "cost file, clean Danish CSV with thousands separators": Case(
        _costs(lambda df: df, name="costs.csv"), "same", fmt="csv"),
    "cost file, a negative amount": Case(
        _costs(lambda df: _set(df, 3, BELOEB=-95_000.0)),
        r"costs\.parquet: column BELOEB: rule cost-sign: 1 value\(s\) are negative .*\(rows \[3\]\)", secret=("-95000",)),
    "cost file, NaN amount": Case(
        _costs(lambda df: _set(df, 2, BELOEB=float("nan"))),
        r"costs\.parquet: column BELOEB: rule finite: 1 value\(s\) are not finite .*\(rows \[2\]\)"),
    "cost file, infinite amount": Case(
        _costs(lambda df: _set(df, 0, BELOEB=float("-inf"))),
        r"costs\.parquet: column BELOEB: rule finite: 1 value\(s\) .*\(rows \[0\]\)"),
    "cost file, 'inf' as text in a Danish CSV": Case(
        _costs(lambda df: _set(df, 1, BELOEB=float("inf")), name="costs.csv"),
        r"costs\.csv: column BELOEB: rule number-format: 1 value\(s\) are not numbers .*\(rows \[1\]\)", fmt="csv"),
    "cost file, an amount in øre (implausible)": Case(
        _costs(lambda df: _set(df, 4, BELOEB=9_500_000_000.0)),
        r"costs\.parquet: column BELOEB: rule cost-range: 1 value\(s\) exceed 50,000,000 kroner .*\(rows \[4\]\)",
        secret=("9500000000",)),
    "cost file, an empty amount": Case(
        _costs(lambda df: _set(df, 1, BELOEB=None)),
        r"costs\.parquet: column BELOEB: rule cost-missing: 1 value\(s\) are empty \(rows \[1\]\)"),
    "cost file, a two-digit price year": Case(
        _costs(lambda df: _set(df, 2, PRISAAR=22)),
        r"costs\.parquet: column PRISAAR: rule price-year: 1 value\(s\) are not years 1950–2100 \(rows \[2\]\)"),
    "cost file without BELOEB": Case(
        _costs(lambda df: df.rename({"BELOEB": "KR"})), r"costs\.parquet: column BELOEB: rule cost-column"),
    "two cost files": Case(_both(_costs(), _costs(name="COSTS.csv")),
                           r"costs\.parquet, COSTS\.csv: rule cost-file: more than one cost file"),
    # ---- DREAM week columns are ISO weeks; DREAM codes are in a group of dream_codes.csv
    "DREAM week 53 of a 52-week ISO year": Case(
        _dream_column("dream.parquet", "y_1953", "y_1952"),
        r"dream\.parquet: column Y_1953: rule dream-week-columns: 1 column\(s\) .*2019 has 52 ISO weeks"),
    "DREAM week 00": Case(_dream_column("dream.parquet", "Y_2000", "y_2001"),
                          r"dream\.parquet: column Y_2000: rule dream-week-columns"),
    "DREAM week 53 of a 52-week year in the CSV header": Case(
        _text("dream.csv", lambda t: "\n".join(ln + (";y_2153" if i == 0 else ";") if ln else ln
                                              for i, ln in enumerate(t.split("\n")))),
        r"dream\.csv: column Y_2153: rule dream-week-columns: .*2021 has 52 ISO weeks", fmt="csv"),
    "DREAM weeks of years before the period (53-week 2015 included)": Case(
        _both(_dream_column("dream.parquet", "y_1501", "y_1901"), _dream_column("dream.parquet", "y_1553", "y_1901")),
        "same"),
    "DREAM code outside every group": Case(
        _dream_cell("dream.parquet", 0, "y_2010", "300"),
        r"dream\.parquet: check .*CODES_OUTSIDE_GROUPS.*first rows: row 0.*week columns with codes outside every group: "
        r"y_2010", secret=("300",)),
    "DREAM code with a letter": Case(
        _dream_cell("dream.parquet", 5, "y_2130", "7O1"),
        r"dream\.parquet: check .*CODES_OUTSIDE_GROUPS.*first rows: row 5.*y_2130", secret=("7O1",)),
    "DREAM code 0": Case(_dream_cell("dream.parquet", 2, "y_2201", "0"),
                         r"dream\.parquet: check .*CODES_OUTSIDE_GROUPS.*first rows: row 2.*y_2201"),
    "DREAM code above 999": Case(_dream_cell("dream.parquet", 3, "y_1905", "1701"),
                                 r"dream\.parquet: check .*CODES_OUTSIDE_GROUPS.*first rows: row 3.*y_1905"),
    "DREAM code outside every group before the period": Case(_dream_cell("dream.parquet", 0, "y_1810", "300"), "same"),
    "DREAM codes: another code of the same group (739 for 701)": Case(
        _parquet("dream.parquet", lambda df: df.with_columns(
            pl.col(c).cast(pl.Utf8).replace("701", "739").cast(pl.Categorical) for c in df.columns if c != "PNR")), "same"),
    "DREAM codes zero-padded (0701)": Case(
        _parquet("dream.parquet", lambda df: df.with_columns(
            pl.col(c).cast(pl.Utf8).str.zfill(4).cast(pl.Categorical) for c in df.columns if c != "PNR")), "same"),
    "DREAM code with a decimal comma in the CSV": Case(
        _text("dream.csv", lambda t: t.replace(";701;", ";701,5;", 1)),
        r"dream\.csv: check .*CODES_OUTSIDE_GROUPS.*first rows: row \d+", fmt="csv"),
    # ---- a register neither delivered nor listed yields no column (and is no refusal)
    "shelter neither delivered nor listed": Case(_unlist("shelter.parquet", "shelter"), _without("shelter_nights")),
    "DREAM neither delivered nor listed": Case(_unlist("dream.parquet", "dream"), _without("*_weeks")),
    "LPR neither delivered nor listed": Case(
        lambda d: [_unlist(f"lpr_adm{y}.parquet", "lpr")(d) for y in range(2019, 2023)],
        _without("somatic_bed_days", "psychiatric_bed_days", "outpatient_visits", "emergency_visits")),
    "shelter listed but not delivered": Case(_unlist("shelter.parquet", "shelter", from_registers=False),
                                             r"missing register shelter .*listed in the manifest"),
    # ---- PNR: exactly 10 ASCII digits; the dashed form normalised
    "PNR dashed DDMMYY-XXXX in every register": Case(
        lambda d: [_parquet(f.name, lambda df: df.with_columns(pl.col("PNR").map_elements(_dashed, return_dtype=pl.Utf8)))(d)
                   for f in sorted(d.glob("*.parquet"))], "same"),
    "PNR with surrounding blanks": Case(
        _parquet("shelter.parquet", lambda df: df.with_columns(pl.lit(" ") + pl.col("PNR") + pl.lit("\t"))), "same"),
    "PNR with a letter": _pnr("shelter.parquet", "160983A877"),
    "PNR with letter O for a leading zero": _pnr("bef202012.parquet", "O101901234", 4),
    "PNR in full-width digits": _pnr("indsats.parquet", "０１０１９０１２３４"),
    "PNR in Arabic-Indic digits": _pnr("krin.parquet", "٠١٠١٩٠١٢٣٤"),
    "PNR with + for the leading zero": _pnr("ind2020.parquet", "+101901234"),
    "PNR short (9 digits)": _pnr("kraf2021.parquet", "101901234"),
    "PNR long (11 digits)": _pnr("bua.parquet", "01019012345"),
    "PNR dashed short DDMMYY-XXX": _pnr("lpr_adm2019.parquet", "010190-123"),
    "PNR dashed at the wrong place": _pnr("shelter.parquet", "0101-901234", 1),
    "PNR with a space inside": _pnr("shelter.parquet", "010190 1234", 2),
    "PNR with a NUL character": _pnr("shelter.parquet", "010190123\x00"),
    "PNR with a terminal escape": _pnr("bef201912.parquet", "\x1b[31m0101901"),
    "PNR as a float number": Case(_parquet("ind2019.parquet", lambda df: df.with_columns(pl.col("PNR").cast(pl.Float64))),
                                  r"ind2019\.parquet: column PNR: rule pnr-format: PNR has type Float64"),
    "PNR with a letter in DREAM": Case(_parquet("dream.parquet", lambda df: _set(df, 0, PNR="01019O1234")),
                                       r"dream\.parquet: column PNR: rule pnr-format: 1 value\(s\) .*\(rows \[0\]\)",
                                       secret=("01019O1234",)),
    "PNR with a letter in a Danish CSV": Case(_csv_cell("shelter.csv", 2, 0, "12345X7890"),
                                              r"shelter\.csv: column PNR: rule pnr-format: 1 value\(s\) .*\(rows \[2\]\)",
                                              fmt="csv", secret=("12345X7890",)),
    "PNR dashed in a Danish CSV": Case(_text("shelter.csv", lambda t: re.sub(r"(?m)^(\d{6})(\d{4});", r"\1-\2;", t)),
                                       "same", fmt="csv"),
    # ---- amounts: finite, within the plausible range; Danish numbers exact
    "income NaN (Parquet float)": _float("ind2020.parquet", float("nan")),
    "income +inf (Parquet float)": _float("ind2021.parquet", float("inf")),
    "income -inf (Parquet float)": _float("ind2022.parquet", float("-inf")),
    "income 1e308 (Parquet float)": Case(_parquet("ind2019.parquet", lambda df: _set(df, 4, LOENMV_13=1e308)),
                                         r"ind2019\.parquet: check between__LOENMV_13 .*1 of \d+ rows fail.*row 4"),
    "income NaN (CSV text)": _dk_amount("NaN"),
    "income inf (CSV text)": _dk_amount("inf"),
    "income 1e308 (CSV text)": _dk_amount("1e308"),
    "income 1,7976931348623157e308 (CSV text)": _dk_amount("1,7976931348623157e308"),
    "income with point decimal in a Danish CSV": _dk_amount("1234.5"),
    "income with a misplaced thousands dot": _dk_amount("12.34,5"),
    "income with English thousands comma": _dk_amount("1,234.50"),
    "income with a space as thousands separator": _dk_amount("1 234,50"),
    "income with two decimal commas": _dk_amount("1,2,3"),
    "income with a currency": _dk_amount("1234 kr"),
    "income 1e308 in a comma CSV": Case(_comma_csv_amount("ind2020.csv", 1, "1e308"),
                                        r"ind2020\.csv: check between__LOENMV_13 .*1 of \d+ rows fail.*row 1", fmt="csv"),
    "income nan in a comma CSV": Case(_comma_csv_amount("ind2020.csv", 2, "nan"),
                                      r"ind2020\.csv: column LOENMV_13: rule number-format: 1 value\(s\) .*\(rows \[2\]\)",
                                      fmt="csv"),
    "income Infinity in a comma CSV": Case(_comma_csv_amount("ind2020.csv", 2, "Infinity"),
                                           r"ind2020\.csv: column LOENMV_13: rule number-format", fmt="csv"),
    "comma CSV with exponent amounts": Case(_comma_csv_amount("ind2020.csv", 0, "0e0"),
                                            lambda panel, clean, ctx: None, fmt="csv"),
    "Danish thousands dot without decimals": Case(
        _ind2021_amount("12.345"), lambda panel, clean, ctx: _income_is(panel, clean, ctx, 12345.0),
        fmt="csv"),
    "Danish thousands dots and decimal comma": Case(
        _ind2021_amount("1.234.567,50"), lambda panel, clean, ctx: _income_is(panel, clean, ctx, 1234567.5),
        fmt="csv"),
    "Danish amounts all with thousands separators": Case(
        _text("ind2022.csv", lambda t: re.sub(r"(?m);(\d{1,3})(\d{3}),(\d+)$", r";\1.\2,\3", t)), "same", fmt="csv"),
    "sex code as text with a letter": Case(_csv_cell("bef201912.csv", 5, 1, "l"),
                                           r"bef201912\.csv: column KOEN: rule number-format: 1 value\(s\) .*\(rows \[5\]\)",
                                           fmt="csv"),
    # ---- files: regular files inside the folder; truncated and corrupt files refused
    "symlink to a file outside the delivery": Case(
        _replace_file("krin.parquet", lambda d, p: (shutil.copy(d / "krin.parquet.orig", d.parent / "outside.parquet"),
                                                    os.symlink(d.parent / "outside.parquet", p))),
        r"krin\.parquet: the file is a link to a file outside the delivery folder"),
    "symlink to nothing": Case(_replace_file("krin.parquet", lambda d, p: os.symlink(d / "nowhere.parquet", p)),
                               r"1 listed file\(s\) missing|krin\.parquet: the file is a link to nothing"),
    "symlink inside the delivery": Case(
        _replace_file("krin.parquet", lambda d, p: (os.rename(d / "krin.parquet.orig", d / "krin_data.bin"),
                                                    os.symlink("krin_data.bin", p))), "same"),
    "listed file is a folder": Case(_replace_file("krin.parquet", lambda d, p: p.mkdir()),
                                    r"krin\.parquet: the file is not a regular file"),
    "manifest is a link outside": Case(
        lambda d: (shutil.copy(d / "manifest.json", d.parent / "m.json"), (d / "manifest.json").unlink(),
                   os.symlink(d.parent / "m.json", d / "manifest.json")),
        r"manifest\.json is a link to a file outside the delivery folder"),
    "Parquet truncated to 60 %": Case(_truncate("ind2020.parquet", 0.6),
                                      r"ind2020\.parquet: cannot be read as Parquet \(truncated or corrupt file\?\)"),
    "Parquet truncated, checksum in the manifest": Case(
        lambda d: (d / "bua.parquet").write_bytes((d / "bua.parquet").read_bytes()[:-40]),
        r"bua\.parquet: sha256 does not match the manifest"),
    "Parquet with bytes overwritten in the middle": Case(
        lambda d: ((d / "lpr_adm2021.parquet").write_bytes(_scramble((d / "lpr_adm2021.parquet").read_bytes())), _no_sha(d)),
        r"lpr_adm2021\.parquet: cannot be read"),
    "DREAM Parquet truncated": Case(_truncate("dream.parquet", 0.6),
                                    r"dream\.parquet: cannot be read as Parquet \(truncated or corrupt file\?\)"),
    "Parquet with garbage bytes": Case(_replace_file("shelter.parquet", lambda d, p: p.write_bytes(b"PAR1" + os.urandom(300))),
                                       r"shelter\.parquet: cannot be read as Parquet"),
    "SAS transport truncated to 60 %": Case(_truncate("shelter.xpt", 0.6),
                                            r"shelter\.xpt: (rule sas-transport-records|cannot be read)", fmt="sas"),
    "SAS transport truncated mid-record": Case(_truncate("bef202012.xpt", 0.93),
                                               r"bef202012\.xpt: (rule sas-transport-records|cannot be read)", fmt="sas"),
    "SAS transport cut at a record boundary": Case(
        lambda d: ((d / "shelter.xpt").write_bytes(_cut_at_record((d / "shelter.xpt").read_bytes(), 0.6)), _no_sha(d)),
        r"shelter\.xpt: rule sas-transport-records: the file declares \d+ observations but holds \d+", fmt="sas"),
    "SAS transport with garbage bytes": Case(_replace_file("krin.xpt", lambda d, p: p.write_bytes(os.urandom(800))),
                                             r"krin\.xpt: cannot be read", fmt="sas"),
    "empty CSV": Case(_replace_file("krin.csv", lambda d, p: p.write_bytes(b"")), r"krin\.csv: the file is empty",
                      fmt="csv"),
    # ---- names used in paths
    "vintage escaping the folder": Case(_manifest_edit(vintage="x/../../../../ESCAPED"),
                                        r"manifest\.json: vintage 'x/\.\./\.\./\.\./\.\./ESCAPED': use 1–64 letters"),
    "vintage with a terminal escape": Case(_manifest_edit(vintage="2023-06\x1b[2J"), r"manifest\.json: vintage .*\\x1b",
                                           secret=("\x1b",)),
    "vintage not text": Case(_manifest_edit(vintage=202306), r"manifest\.json: 'vintage' must be text"),
    "vintage dot-dot": Case(_manifest_edit(vintage="2023..06"), r"vintage '2023\.\.06'"),
    "file name with a path": Case(_manifest_edit(files=["../parquet/krin.parquet"]), r"file names must be plain names"),
    "file name with a backslash": Case(_manifest_edit(files=["sub\\krin.parquet"]), r"file names must be plain names"),
    "file name with a control character": Case(_manifest_edit(files=["krin\x07.parquet"]), r"file names must be plain names",
                                               secret=("\x07",)),
    "file name hidden": Case(_manifest_edit(files=[".krin.parquet"]), r"file names must be plain names"),
    "column map file pattern with a path": Case(lambda d: None, r"bef\.file must be a file-name stem",
                                                columns={"bef": {"file": "../bef{year}12"}}),
    "column map unknown date encoding": Case(lambda d: None, r"kraf\.dates\.AFG_ADTO: unknown encoding",
                                             columns={"kraf": {"dates": {"AFG_ADTO": "julian"}}}),
    "column map date encoding on a non-date column": Case(lambda d: None, r"lpr\.dates: 'C_PSYK' is not a date column",
                                                          columns={"lpr": {"dates": {"C_PSYK": "sas_days"}}}),
    # ---- column names: case-insensitive; collisions refused
    "lower-case column names (Parquet)": Case(
        lambda d: [_parquet(f.name, lambda df: df.rename(str.lower))(d) for f in sorted(d.glob("*.parquet"))], "same"),
    "mixed-case column names with blanks (Parquet)": Case(
        _parquet("shelter.parquet", lambda df: df.rename({"PNR": " Pnr ", "SLUT_DATO": "Slut_Dato"})), "same"),
    "PNR and pnr in DREAM": Case(_parquet("dream.parquet", lambda df: df.with_columns(pl.col("PNR").reverse().alias("pnr"))),
                                 r"dream\.parquet: column PNR: rule column-names: two columns have this name"),
    "two columns named PNR (Parquet)": Case(
        _replace_file("krin.parquet", lambda d, p: __import__("pyarrow.parquet").parquet.write_table(
            __import__("pyarrow").table([["0101901234"], ["0101901234"], [D(2020, 1, 1)], [None]],
                                        names=["PNR", "PNR", "IND_FGSLDTO", "IND_LOESDTO"]), p)),
        r"krin\.parquet: rule column-names: two columns have the same name"),
    "PNR and pnr in BEF": Case(_parquet("bef201912.parquet", lambda df: df.with_columns(pl.col("PNR").alias("pnr"))),
                               r"bef201912\.parquet: column PNR: rule column-names"),
    "SLUT_DATO and slut_dato in a Danish CSV": Case(
        _text("shelter.csv", lambda t: "\n".join(ln + (";slut_dato" if i == 0 else ";" + ln.split(";")[2]) if ln else ln
                                                   for i, ln in enumerate(t.split("\n")))),
        r"shelter\.csv: column SLUT_DATO: rule column-names", fmt="csv"),
    "pnr and PNR in the DREAM CSV header": Case(_text("dream.csv", lambda t: t.replace("pnr;", "pnr;PNR;", 1)),
                                                r"dream\.csv: column PNR: rule column-names", fmt="csv"),
    # ---- CSV rows: never padded or cut
    "short CSV row (end date missing)": Case(_csv_line("shelter.csv", 4, lambda ln: ";".join(ln.split(";")[:2])),
                                             r"shelter\.csv: rule csv-row-width: 1 row\(s\) have fewer fields than the "
                                             r"header's 3 \(rows \[4\]\)", fmt="csv"),
    "long CSV row": Case(_csv_line("krin.csv", 0, lambda ln: ln + ";extra"),
                         r"krin\.csv: rule csv-row-width: 1 row\(s\) have more fields than the header's 3 \(rows \[0\]\)",
                         fmt="csv"),
    "blank line inside a CSV": Case(_csv_line("bua.csv", 2, lambda ln: "\n" + ln),
                                    r"bua\.csv: rule csv-row-width: 1 row\(s\) have fewer fields .*\(rows \[2\]\)", fmt="csv"),
    "trailing blank lines in a CSV": Case(_text("bua.csv", lambda t: t + "\n\n"), "same", fmt="csv"),
    "CSV with a BOM (UTF-8)": Case(lambda d: ((d / "krin.csv").write_bytes(
        b"\xef\xbb\xbf" + (d / "krin.csv").read_bytes().decode("latin-1").encode("utf-8")), _rehash(d)), "same", fmt="csv"),
    "CSV with CRLF line ends": Case(_text("shelter.csv", lambda t: t.replace("\n", "\r\n")), "same", fmt="csv"),
    "unterminated quote in a CSV": Case(_csv_line("bua.csv", 1, lambda ln: '"' + ln),
                                        r"bua\.csv: (rule csv-quoting|rule csv-row-width)", fmt="csv"),
    # ---- dates: integer dates must declare their encoding
    "SAS day numbers, undeclared": _int_dates(
        "shelter.parquet", ("START_DATO", "SLUT_DATO"), D(1960, 1, 1), None,
        r"shelter\.parquet: column START_DATO: rule date-encoding: \d+ value\(s\) are numbers, but the register "
        r"configuration declares no number encoding"),
    "Unix day numbers, undeclared": _int_dates(
        "krin.parquet", ("IND_FGSLDTO", "IND_LOESDTO"), D(1970, 1, 1), None,
        r"krin\.parquet: column IND_FGSLDTO: rule date-encoding"),
    "SAS day numbers, declared sas_days": _int_dates(
        "shelter.parquet", ("START_DATO", "SLUT_DATO"), D(1960, 1, 1), {"shelter": {"dates": "sas_days"}}, "same"),
    "Unix day numbers, declared unix_days": _int_dates(
        "krin.parquet", ("IND_FGSLDTO", "IND_LOESDTO"), D(1970, 1, 1), {"krin": {"dates": "unix_days"}}, "same"),
    "YYYYMMDD numbers, declared yyyymmdd": _int_dates(
        "bua.parquet", ("SAG_VFRA", "SAG_VTIL"), None, {"bua": {"dates": {"SAG_VFRA": "yyyymmdd", "SAG_VTIL": "yyyymmdd"}}},
        "same"),
    "Unix day numbers declared as SAS days (KRAF)": _int_dates(
        "kraf2020.parquet", ("AFG_ADTO",), D(1970, 1, 1), {"kraf": {"dates": "sas_days"}},
        r"kraf2020\.parquet: check (between__AFG_ADTO|ge__AFG_ADTO__YEAR_START) .*rows fail"),
    "SAS day numbers declared as yyyymmdd": _int_dates(
        "bua.parquet", ("SAG_VFRA",), D(1960, 1, 1), {"bua": {"dates": {"SAG_VFRA": "yyyymmdd"}}},
        r"bua\.parquet: column SAG_VFRA: rule date-encoding: \d+ value\(s\) are not YYYYMMDD numbers"),
    "numbers where ISO text is declared": _int_dates(
        "shelter.parquet", ("START_DATO",), D(1960, 1, 1), {"shelter": {"dates": {"START_DATO": "iso"}}},
        r"shelter\.parquet: column START_DATO: rule date-encoding: \d+ value\(s\) are numbers"),
    "SAS text where ISO is declared": Case(lambda d: None, r"shelter\.csv: column START_DATO: rule date-encoding: \d+ "
                                           r"value\(s\) are not dates in the declared form iso", fmt="csv",
                                           columns={"shelter": {"dates": {"START_DATO": "iso"}}}),
    "SAS day numbers as CSV text, undeclared": Case(
        _text("krin.csv", lambda t: re.sub(r"(?m)^(\d{10});\d{2}[A-Z]{3}\d{4}", r"\1;21915", t)),
        r"krin\.csv: column IND_FGSLDTO: rule date-encoding: \d+ value\(s\) are numbers", fmt="csv"),
    "ISO dates with a time part": Case(
        _parquet("shelter.parquet", lambda df: df.with_columns(pl.col(c).dt.strftime("%Y-%m-%dT00:00:00")
                                                               for c in ("START_DATO", "SLUT_DATO"))), "same"),
    "SAS text dates in lower case": Case(_text("shelter.csv", str.lower), "same", fmt="csv"),
    "impossible calendar date": Case(
        _parquet("shelter.parquet", lambda df: df.with_columns(pl.col("START_DATO").dt.strftime("%Y-%m-%d"))
                 .pipe(_set, 3, START_DATO="2021-02-30")),
        r"shelter\.parquet: column START_DATO: rule date-encoding: 1 value\(s\) are not dates .*\(rows \[3\]\)"),
    "date as a boolean column": Case(_parquet("krin.parquet", lambda df: df.with_columns(pl.lit(True).alias("IND_LOESDTO"))),
                                     r"krin\.parquet: column IND_LOESDTO: rule date-encoding: has type Boolean"),
}


def _snapshot(out: Path) -> dict:
    return {str(p.relative_to(out)): (p.read_bytes() if p.is_file() else None) for p in sorted(out.rglob("*"))}


def test_corpus_size():
    assert len(CASES) >= 90


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_delivery(base, tmp_path, name):
    run_case(CASES[name], base, tmp_path, originals=("krin.parquet",))


def run_case(case: Case, base: dict, tmp_path: Path, *, originals: tuple[str, ...] = ()) -> None:
    """Ingest the clean delivery of ``case.fmt`` changed by ``case.mutate`` over an earlier good output and assert
    the case's outcome (module docstring): refused — the message matches ``case.expect``, names no PNR and no
    hostile value, has no traceback, and the output folder is byte for byte as before — or accepted with exactly
    the clean panel (``"same"``) or the change ``case.expect`` checks, and the clean treatments. ``originals``:
    files copied to ``<name>.orig`` first, for cases that move a file away."""
    d = tmp_path / "delivery"
    shutil.copytree(base[case.fmt], d, symlinks=True)
    for f in d.iterdir():
        if f.name in originals:
            shutil.copy(f, d / f"{f.name}.orig")
    out = tmp_path / "out"
    shutil.copytree(base["root"] / f"out-{case.fmt}", out, symlinks=True)
    before = _snapshot(out)
    ctx: dict = {}
    try:
        case.mutate(d)
        columns = parse_column_map(case.columns) if case.columns else None
        result = ingest(d, out, KEY, columns=columns, max_gx_rows=0)
    except (DeliveryError, ConfigError) as exc:
        lines = getattr(exc, "lines", [str(exc)])
        text = "\n".join([str(exc), *lines])
        assert isinstance(case.expect, str) and case.expect != "same", f"refused but should be accepted: {text}"
        assert re.search(case.expect, text), text
        assert not any(p in text for p in base["pnrs"]), "a PNR in the refusal"
        assert not any(s in text for s in case.secret), "the hostile value in the refusal"
        assert "Traceback" not in text
        assert _snapshot(out) == before, "a refused delivery changed the output folder"
        return
    assert not isinstance(case.expect, str) or case.expect == "same", f"accepted but should be refused: {case.expect}"
    clean, clean_tr = base[f"panel-{case.fmt}"], base[f"treatments-{case.fmt}"]
    panel = pl.read_parquet(result.panel)
    if (d / "person.txt").exists():
        ctx["person"] = (d / "person.txt").read_text()
    if case.expect == "same":
        assert panel.equals(clean), "an untidy but valid delivery changed the panel"
    else:
        case.expect(panel, clean, ctx)
    assert pl.read_parquet(result.treatments).equals(clean_tr)


def test_spell_after_the_period_adds_no_days(base, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(base["parquet"], d)
    CASES["shelter stay starting after the period (before the extraction)"].mutate(d)
    removed = tmp_path / "d2"
    shutil.copytree(base["parquet"], removed)
    _parquet("shelter.parquet", lambda df: df.slice(1))(removed)
    a = ingest(d, tmp_path / "a", KEY, max_gx_rows=0).build.panel
    b = ingest(removed, tmp_path / "b", KEY, max_gx_rows=0).build.panel
    assert a.equals(b)  # the stay after the period counts nowhere, as if its row were absent


def test_period_end_check_passes_for_a_crossing_admission(base, tmp_path):
    """The blocking check of the issue, between__D_UDDTO, passes for an admission 30 Dec → 3 Jan."""
    from pipeline.registers.ingest import build_checked

    d = tmp_path / "d"
    shutil.copytree(base["parquet"], d)
    CASES["LPR admission 30 Dec → 3 Jan after the period"].mutate(d)
    checked = build_checked(d, KEY, max_gx_rows=0)
    outcomes = [o for r in checked.validations if r.suite == "register_lpr" for o in r.outcomes
                if o.check_name == "between__D_UDDTO"]
    assert outcomes and all(o.success for o in outcomes)


def test_cli_refuses_hostile_delivery_with_one_line(base, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipeline.cli import app

    monkeypatch.setenv("SOM_PSEUDONYM_KEY", KEY.hex())
    d = tmp_path / "d"
    shutil.copytree(base["parquet"], d)
    CASES["PNR with a letter"].mutate(d)
    res = CliRunner().invoke(app, ["ingest", str(d), "--out", str(tmp_path / "out"), "--gx-rows", "0"])
    assert res.exit_code == 3, res.output
    assert "delivery refused: shelter.parquet: column PNR: rule pnr-format" in res.output
    assert "Traceback" not in res.output and "160983A877" not in res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_column_map_config_file_is_read(tmp_path):
    path = tmp_path / "cols.yaml"
    path.write_text("kraf:\n  dates: {AFG_ADTO: yyyymmdd}\nlpr:\n  dates: sas_days\n")
    cmap = load_column_map(path)
    assert cmap.date_encoding("kraf", "AFG_ADTO") == "yyyymmdd" and cmap.date_encoding("lpr", "D_UDDTO") == "sas_days"
    assert cmap.date_encoding("bef", "FOED_DAG") == "auto"


# --------------------------------------------------------------------------- som evaluate over the refused corpus

DEMO_SPEC = Path(__file__).resolve().parents[2] / "assets" / "evaluations" / "housing_first_demo.yaml"
#: every refused case that needs no column-mapping config (``som evaluate`` reads deliveries with the defaults)
REFUSED = sorted(n for n, c in CASES.items() if isinstance(c.expect, str) and c.expect != "same" and c.columns is None)


@pytest.fixture(scope="module")
def evaluate_workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluate-workdir")


@pytest.fixture(scope="module")
def ephemeral_runs():
    """``som evaluate`` as the user runs it, but its Dagster runs on an ephemeral instance (no run history is
    needed here; the workdir's SQLite event log spends most of a run waiting on disk syncs)."""
    import functools

    import dagster as dg

    from pipeline import runner

    original = runner.evaluate
    with dg.DagsterInstance.ephemeral() as instance:
        runner.evaluate = functools.partial(original, instance=instance)
        try:
            yield
        finally:
            runner.evaluate = original


def test_the_evaluate_corpus_is_most_of_the_refusals():
    refused = [n for n, c in CASES.items() if isinstance(c.expect, str) and c.expect != "same"]
    assert len(REFUSED) >= 60 and len(REFUSED) >= len(refused) - 15


@pytest.mark.parametrize("name", REFUSED)
def test_evaluate_on_a_refused_delivery_prints_one_line_and_exits_3(base, tmp_path, evaluate_workdir, ephemeral_runs,
                                                                    monkeypatch, name):
    """``som evaluate`` on each refused delivery of the corpus: exit 3, one ``error:`` line on stderr naming the
    problem as ingestion does (file, column, rule or check), no stack trace, no PNR, not the hostile value."""
    evaluate_refused(CASES[name], base, tmp_path, evaluate_workdir, monkeypatch, originals=("krin.parquet",))


def evaluate_refused(case: Case, base: dict, tmp_path: Path, workdir: Path, monkeypatch, *,
                     originals: tuple[str, ...] = ()) -> None:
    """``som evaluate`` on the refused delivery of ``case``: exit 3, one ``error:`` line matching ``case.expect``, no
    stack trace or exception name, no PNR, not the hostile value (``originals`` as in :func:`run_case`)."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    d = tmp_path / "delivery"
    shutil.copytree(base[case.fmt], d, symlinks=True)
    for f in d.iterdir():
        if f.name in originals:
            shutil.copy(f, d / f"{f.name}.orig")
    case.mutate(d)
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", KEY.hex())
    res = CliRunner().invoke(app, ["evaluate", str(DEMO_SPEC), "--workdir", str(workdir), "--delivery", str(d)])
    assert res.exit_code == 3, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert re.search(case.expect, lines[0]), lines[0]
    everything = res.stdout + res.stderr
    for noise in ("Traceback", "Stack Trace", "dagster - ERROR", "DeliveryError", "RefusedDelivery"):
        assert noise not in everything
    assert not any(p in everything for p in base["pnrs"]), "a PNR in the output"
    assert not any(s in everything for s in case.secret), "the hostile value in the output"
