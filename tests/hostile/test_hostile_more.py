"""More hostile and untidy deliveries (issue 16, items 1–2), beyond ``test_hostile_registers.py``.

Found by reading a delivery as an analyst with a real, untidy extract would hand it over and as an adversary
would: CSV line ends and headers, Danish numbers in date columns, time-zone timestamps, SAS date formats,
manifest quirks, negative wage income, municipality codes, DREAM codes as floats. Same outcomes as the corpus:
accepted with exactly the clean panel, accepted with a change computed by hand, or refused naming file, column,
rule and rows — no PNR, not the hostile value, nothing written (the earlier output byte for byte as it was).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pipeline.registers import DeliveryError, pseudonymise
from pipeline.registers.files import as_date, read_manifest
from tests.hostile.test_hostile_registers import (  # noqa: F401  (base, evaluate_workdir, ephemeral_runs: fixtures)
    DEMO_SPEC,
    KEY,
    Case,
    _income_is,
    _ind2021_amount,
    _manifest,
    _manifest_edit,
    _parquet,
    _rehash,
    _save,
    _set,
    _snapshot,
    _text,
    base,
    ephemeral_runs,
    evaluate_refused,
    evaluate_workdir,
    run_case,
)

D = dt.date
SAS = D(1960, 1, 1)


# --------------------------------------------------------------------------- helpers

def _lines(file: str, fn: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    """The CSV's lines (split on LF, Latin-1) changed by ``fn``."""
    return _text(file, lambda t: "\n".join(fn(t.split("\n"))))


def _sas_numbers(text: str, danish: bool) -> str:
    """Every SAS text date (``19JUN2018``) as its SAS day number; with ``danish`` written with a thousands dot."""
    def conv(m: re.Match) -> str:
        n = (dt.datetime.strptime(m.group(0).title(), "%d%b%Y").date() - SAS).days
        return f"{n:,}".replace(",", ".") if danish else str(n)
    return re.sub(r"\d{2}[A-Z]{3}\d{4}", conv, text)


def _new_shelter_stay(start: str, end: str) -> Callable[[Path], None]:
    """A shelter stay (text cells of the Danish CSV) added for a person in BEF 2019 and 2020 without any stay."""
    def mutate(d: Path) -> None:
        def pnrs(f: str) -> set[str]:
            return {ln.split(";")[0] for ln in (d / f).read_bytes().decode("latin-1").split("\n")[1:] if ln}
        person = sorted((pnrs("bef201912.csv") & pnrs("bef202012.csv")) - pnrs("shelter.csv"))[0]
        raw = (d / "shelter.csv").read_bytes().decode("latin-1").rstrip("\n")
        (d / "shelter.csv").write_bytes(f"{raw}\n{person};{start};{end}\n".encode("latin-1"))
        (d / "person.txt").write_text(person)
        _rehash(d)
    return mutate


def _nights_added(by_year: dict[int, int]) -> Callable[[pl.DataFrame, pl.DataFrame, dict], None]:
    def check(panel: pl.DataFrame, clean: pl.DataFrame, ctx: dict) -> None:
        pid = pseudonymise(pl.Series([ctx["person"]]), KEY)[0]
        for year, nights in by_year.items():
            key = (pl.col("person_id") == pid) & (pl.col("year") == year)
            assert clean.filter(key).get_column("shelter_nights").item() == 0
            assert panel.filter(key).get_column("shelter_nights").item() == nights, year
        mine = pl.col("person_id") == pid
        assert panel.filter(~mine).equals(clean.filter(~mine))
    return check


def _arrow(file: str, fn: Callable, **write) -> Callable[[Path], None]:
    """The Parquet file rewritten through pyarrow (``fn`` on the Arrow table; ``write`` options)."""
    def mutate(d: Path) -> None:
        import pyarrow.parquet as pq

        pq.write_table(fn(pq.read_table(d / file)), d / file, **write)
        _rehash(d)
    return mutate


def _dictionary_pnr(table):
    i = table.schema.get_field_index("PNR")
    return table.set_column(i, "PNR", table.column("PNR").dictionary_encode())


def _large_string_pnr(table):
    import pyarrow as pa

    i = table.schema.get_field_index("PNR")
    return table.set_column(i, "PNR", table.column("PNR").cast(pa.large_string()))


def _utc_of_copenhagen_midnight(*columns: str) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Dates as ``timestamp[ms, UTC]`` instants of Danish local midnight (23:00 or 22:00 UTC the day before)."""
    return lambda df: df.with_columns(
        pl.col(c).cast(pl.Datetime("ms")).dt.replace_time_zone("Europe/Copenhagen").dt.convert_time_zone("UTC")
        for c in columns)


def _xpt(file: str, fn: Callable) -> Callable[[Path], None]:
    """The SAS transport file rewritten by pyreadstat (``fn(pandas frame) -> (frame, write options)``)."""
    def mutate(d: Path) -> None:
        import pyreadstat

        df, _ = pyreadstat.read_xport(str(d / file))
        df, options = fn(df)
        pyreadstat.write_xport(df, str(d / file), table_name=Path(file).stem[:8].upper(), file_format_version=8,
                               **options)
        _rehash(d)
    return mutate


def _as_sas_dates(*columns: str, formats: dict | None = None) -> Callable:
    """Date columns as SAS dates (days) with a date format (DATE9 by default), not DATETIME seconds."""
    def fn(df):
        for c in columns:
            df[c] = df[c].dt.date
        return df, {"variable_format": formats} if formats else {}
    return fn


def _dream_floats(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.Utf8).cast(pl.Float64) for c in df.columns if c != "PNR")


def _registers(fn: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        doc = _manifest(d)
        _save(d, {**doc, "registers": fn(doc["registers"])})
    return mutate


# --------------------------------------------------------------------------- the cases

CASES: dict[str, Case] = {
    # ---- CSV line ends and headers
    "CSV with CR-only line ends (classic Mac)": Case(_text("shelter.csv", lambda t: t.replace("\n", "\r")), "same",
                                                      fmt="csv"),
    "CSV with CR-only line ends, BEF": Case(_text("bef202012.csv", lambda t: t.replace("\n", "\r")), "same", fmt="csv"),
    "CSV ending in a lone CR": Case(_text("shelter.csv", lambda t: t + "\r"), "same", fmt="csv"),
    "CSV with CRLF and LF mixed line by line": Case(
        _lines("shelter.csv", lambda ls: [ln + ("\r" if i % 2 and ln else "") for i, ln in enumerate(ls)]), "same",
        fmt="csv"),
    "CSV with a separator at the end of every line": Case(
        _lines("shelter.csv", lambda ls: [ln + ";" if ln else ln for ln in ls]), "same", fmt="csv"),
    "CSV with every field quoted": Case(
        _lines("shelter.csv", lambda ls: [";".join(f'"{c}"' for c in ln.split(";")) if ln else ln for ln in ls]), "same",
        fmt="csv"),
    "CSV with a quoted newline and separator in an unread column": Case(
        _lines("krin.csv", lambda ls: [(ln + ";note" if i == 0 else ln + ';"a;\nb"') if ln else ln
                                       for i, ln in enumerate(ls)]), "same", fmt="csv"),
    "CSV with a UTF-8 BOM and Latin-1 letters": Case(
        lambda d: ((d / "indsats.csv").write_bytes(b"\xef\xbb\xbf" + b"\n".join(
            ln + (b";bem\xe6rkning" if i == 0 else b";s\xf8ster") if ln else ln
            for i, ln in enumerate((d / "indsats.csv").read_bytes().split(b"\n")))), _rehash(d)), "same", fmt="csv"),
    "CSV without a header line": Case(
        _lines("shelter.csv", lambda ls: ls[1:]),
        r"shelter\.csv: rule csv-header: the first line holds values .* not column names", fmt="csv"),
    "CSV without a header line, BEF": Case(
        _lines("bef201912.csv", lambda ls: ls[1:]), r"bef201912\.csv: rule csv-header", fmt="csv"),
    "CSV with the header repeated in the middle": Case(
        _lines("shelter.csv", lambda ls: [*ls[:5], ls[0], *ls[5:]]),
        r"shelter\.csv: column PNR: rule pnr-format: 1 value\(s\) .*\(rows \[4\]\)", fmt="csv"),
    "tab-separated CSV": Case(_text("shelter.csv", lambda t: t.replace(";", "\t")),
                              r"shelter\.csv: rule csv-separator: .*tab", fmt="csv"),
    "tab-separated CSV with decimal commas": Case(_text("ind2021.csv", lambda t: t.replace(";", "\t")),
                                                  r"ind2021\.csv: rule csv-separator", fmt="csv"),
    # ---- number-encoded dates in a Danish CSV follow the Danish number rules
    "SAS day numbers in a Danish CSV, declared": Case(
        _text("shelter.csv", lambda t: _sas_numbers(t, False)), "same", fmt="csv", columns={"shelter": {"dates": "sas_days"}}),
    "SAS day numbers with a thousands dot in a Danish CSV": Case(
        _text("shelter.csv", lambda t: _sas_numbers(t, True)), "same", fmt="csv", columns={"shelter": {"dates": "sas_days"}}),
    "SAS day number 21.000 in a Danish CSV is 21000, not 21": Case(
        _new_shelter_stay("21.000", "22.000"), _nights_added({2019: 365, 2020: 85}), fmt="csv",
        columns={"shelter": {"dates": "sas_days"}}),
    "SAS day number with a decimal point in a Danish CSV": Case(
        _new_shelter_stay("21915.0", "21920"),
        r"shelter\.csv: column START_DATO: rule number-format: 1 value\(s\) .*\(rows \[180\]\)", fmt="csv",
        columns={"shelter": {"dates": "sas_days"}}, secret=("21915",)),
    "YYYYMMDD with thousands dots in a Danish CSV": Case(
        _new_shelter_stay("20.190.301", "20.190.311"), _nights_added({2019: 10}), fmt="csv",
        columns={"shelter": {"dates": "yyyymmdd"}}),
    "Danish date 01.03.2019 (not a contract form)": Case(
        _new_shelter_stay("01.03.2019", "11.03.2019"),
        r"shelter\.csv: column START_DATO: rule date-encoding: 1 value\(s\) are not dates .*\(rows \[180\]\)", fmt="csv",
        secret=("01.03.2019",)),
    # ---- Parquet types
    "dictionary-encoded PNR (Parquet)": Case(_arrow("bef201912.parquet", _dictionary_pnr), "same"),
    "dictionary-encoded PNR in DREAM": Case(_arrow("dream.parquet", _dictionary_pnr), "same"),
    "large_string PNR (Parquet)": Case(_arrow("ind2020.parquet", _large_string_pnr), "same"),
    "DREAM in many tiny row groups, a dictionary per group": Case(_arrow("dream.parquet", lambda t: t, row_group_size=3),
                                                                  "same"),
    "dates as timestamp[ms, Europe/Copenhagen]": Case(
        _parquet("shelter.parquet", lambda df: df.with_columns(
            pl.col(c).cast(pl.Datetime("ms")).dt.replace_time_zone("Europe/Copenhagen") for c in ("START_DATO", "SLUT_DATO"))),
        "same"),
    "dates as timestamp[ms, UTC] of Danish midnight": Case(
        _parquet("shelter.parquet", _utc_of_copenhagen_midnight("START_DATO", "SLUT_DATO")), "same"),
    "birth dates as timestamp[ms, UTC] of Danish midnight": Case(
        _parquet("bef202112.parquet", _utc_of_copenhagen_midnight("FOED_DAG")), "same"),
    "DREAM codes as Parquet floats (701.0)": Case(_parquet("dream.parquet", _dream_floats), "same"),
    "DREAM codes as Parquet floats, a fraction": Case(
        _parquet("dream.parquet", lambda df: _dream_floats(df).with_columns(
            pl.when(pl.int_range(pl.len()) == 4).then(pl.lit(701.5)).otherwise(pl.col("y_2110")).alias("y_2110"))),
        r"dream\.parquet: check .*CODES_OUTSIDE_GROUPS.*first rows: row 4.*y_2110", secret=("701.5",)),
    "DREAM week columns in upper case (Y_2001)": Case(_parquet("dream.parquet", lambda df: df.rename(str.upper)), "same"),
    "DREAM person delivered twice": Case(_parquet("dream.parquet", lambda df: pl.concat([df, df.slice(3, 1)])),
                                         r"dream\.parquet: check unique__PNR .*first rows: row 3, row 75"),
    # ---- SAS
    "SAS transport with DATE9 and DDMMYY10 date formats": Case(
        _xpt("shelter.xpt", _as_sas_dates("START_DATO", "SLUT_DATO", formats={"SLUT_DATO": "DDMMYY10"})), "same",
        fmt="sas"),
    "SAS transport birth dates with DATE9, open ends": Case(
        _xpt("bua.xpt", _as_sas_dates("SAG_VFRA", "SAG_VTIL")), "same", fmt="sas"),
    "SAS transport with labels": Case(
        _xpt("krin.xpt", lambda df: (df, {"column_labels": ["Personnummer", "Indsat", "Løsladt"]})), "same", fmt="sas"),
    "SAS character PNR with trailing blanks": Case(_xpt("shelter.xpt", lambda df: (df.assign(PNR=df.PNR + "   "), {})),
                                                   "same", fmt="sas"),
    # ---- spells
    "the same spells delivered twice": Case(_parquet("shelter.parquet", lambda df: pl.concat([df, df.slice(10, 5)])),
                                            "same"),
    "spell ending before it starts": Case(
        _parquet("krin.parquet", lambda df: _set(df, 1, IND_FGSLDTO=D(2020, 5, 1), IND_LOESDTO=D(2020, 4, 1))),
        r"krin\.parquet: check ge__IND_LOESDTO__IND_FGSLDTO .*1 of \d+ rows fail.*first rows: row 1"),
    # ---- BEF
    "municipality code outside the kommune codes": Case(
        _parquet("bef201912.parquet", lambda df: _set(df, 3, KOM=999)),
        r"bef201912\.parquet: check between__KOM .*1 of \d+ rows fail.*row 3"),
    "municipality code 100": Case(_parquet("bef202212.parquet", lambda df: _set(df, 7, KOM=100)),
                                  r"bef202212\.parquet: check between__KOM .*row 7"),
    "KOEN as float 1.0/2.0": Case(_parquet("bef201912.parquet", lambda df: df.with_columns(pl.col("KOEN").cast(pl.Float64))),
                                  "same"),
    "birth after the status date": Case(_parquet("bef201912.parquet", lambda df: _set(df, 3, FOED_DAG=D(2020, 3, 1))),
                                        r"bef201912\.parquet: check ge__STATUS_DATE__FOED_DAG .*row 3"),
    "birth date differing between BEF years": Case(
        _parquet("bef202012.parquet", lambda df: _set(df, 3, FOED_DAG=D(1950, 3, 1))),
        r"bef202012\.parquet: column FOED_DAG: rule person-constant: 1 person\(s\) .*first rows: bef202012\.parquet row 3\)"),
    "sex differing between BEF years": Case(
        _parquet("bef202212.parquet", lambda df: df.with_columns(
            pl.when(pl.int_range(pl.len()) == 5).then(3 - pl.col("KOEN")).otherwise(pl.col("KOEN")).alias("KOEN"))),
        r"bef202212\.parquet: column KOEN: rule person-constant: 1 person\(s\) .*first rows: bef202212\.parquet row 5\)"),
    "birth date and sex differing in the earliest BEF year": Case(
        _parquet("bef201912.parquet", lambda df: _set(df, 0, FOED_DAG=D(1950, 3, 1), KOEN=3 - df["KOEN"][0])),
        r"bef20\d\d12\.parquet: column KOEN: rule person-constant: 1 person\(s\)"),
    # ---- IND: negative wage income is valid
    "negative wage income (Danish CSV)": Case(
        _ind2021_amount("-5.000,50"), lambda panel, clean, ctx: _income_is(panel, clean, ctx, -5000.5), fmt="csv"),
    "negative wage income (Parquet)": Case(
        _parquet("ind2021.parquet", lambda df: df.with_columns(
            pl.when(pl.col("LOENMV_13") > 0).then(-pl.col("LOENMV_13")).otherwise(pl.col("LOENMV_13")).alias("LOENMV_13"))),
        lambda panel, clean, ctx: _all_income_negated(panel, clean)),
    "wage income below minus one billion": Case(
        _parquet("ind2020.parquet", lambda df: _set(df, 4, LOENMV_13=-2e9)),
        r"ind2020\.parquet: check between__LOENMV_13 .*1 of \d+ rows fail.*row 4"),
    # ---- manifest
    "manifest with a UTF-8 BOM": Case(
        lambda d: (d / "manifest.json").write_bytes(b"\xef\xbb\xbf" + (d / "manifest.json").read_bytes()), "same"),
    "manifest with a key twice": Case(
        lambda d: (d / "manifest.json").write_text((d / "manifest.json").read_text().replace(
            '"vintage": "2023-06"', '"vintage": "2023-06", "vintage": "2024-06"')),
        r"manifest\.json: key 'vintage' appears more than once"),
    "vintage month not a month": Case(_manifest_edit(vintage="2023-13"), r"manifest\.json: vintage 2023-13: month 13"),
    "registers list naming an unknown register": Case(
        _registers(lambda rs: [*rs, "shleter"]), r"manifest\.json: 'registers' names unknown register\(s\) 'shleter'"),
    "registers list in upper case": Case(_registers(lambda rs: [r.upper() for r in rs]), "same"),
    "file listed in another case than on disk": Case(
        lambda d: _save(d, {**_manifest(d), "files": [f.replace("krin.parquet", "KRIN.parquet") for f in _manifest(d)["files"]]}),
        r"1 listed file\(s\) missing from the folder: KRIN\.parquet"),
}


def _all_income_negated(panel: pl.DataFrame, clean: pl.DataFrame) -> None:
    """Every positive 2021 income negated; the other years and columns unchanged."""
    y = pl.col("year") == 2021
    assert panel.filter(~y).equals(clean.filter(~y))
    got, want = panel.filter(y), clean.filter(y)
    assert got.drop("earnings_dkk").equals(want.drop("earnings_dkk"))
    assert got.get_column("earnings_dkk").to_list() == [-v if v > 0 else v for v in want.get_column("earnings_dkk")]
    assert (got.get_column("earnings_dkk") < 0).sum() > 10


def test_more_corpus_size():
    assert len(CASES) >= 45


@pytest.mark.parametrize("name", sorted(CASES))
def test_more_hostile_delivery(base, tmp_path, name):  # noqa: F811
    run_case(CASES[name], base, tmp_path)


# --------------------------------------------------------------------------- the field rules directly

@pytest.mark.parametrize(("text", "decimal_comma", "encoding", "want"), [
    ("22.000", True, "sas_days", SAS + dt.timedelta(days=22000)),   # Danish: a thousands dot
    ("22.000", False, "sas_days", SAS + dt.timedelta(days=22)),     # ',' file: a decimal point
    ("21.915", True, "sas_days", D(2020, 1, 1)),
    ("21915,0", True, "sas_days", D(2020, 1, 1)),
    ("21915.0", False, "sas_days", D(2020, 1, 1)),
    ("3.652", True, "unix_days", D(1980, 1, 1)),
    ("20.191.231", True, "yyyymmdd", D(2019, 12, 31)),
    ("31DEC2019", True, "sas_days", D(2019, 12, 31)),
])
def test_number_dates_follow_the_files_number_rules(text, decimal_comma, encoding, want):
    got = as_date(pl.Series("C", [text]), "f.csv", "C", encoding, decimal_comma=decimal_comma)
    assert got.to_list() == [want]


@pytest.mark.parametrize(("text", "decimal_comma", "encoding"), [
    ("21915.0", True, "sas_days"),    # not a Danish number
    ("21.9150", True, "sas_days"),    # thousands groups are three digits
    ("21915,5", True, "sas_days"),    # not a whole day
    ("21915.5", False, "sas_days"),
    ("21.915", True, "auto"),         # numbers need a declared encoding
])
def test_number_dates_that_do_not_parse_exactly_are_refused(text, decimal_comma, encoding):
    with pytest.raises(DeliveryError, match=r"f\.csv: column C: rule (number-format|date-encoding|type): 1 value\(s\)"):
        as_date(pl.Series("C", [text]), "f.csv", "C", encoding, decimal_comma=decimal_comma)


def test_timestamps_with_a_time_zone_are_danish_calendar_dates():
    instants = pl.Series("C", [dt.datetime(2018, 12, 31, 23, 0), dt.datetime(2019, 6, 30, 22, 0),
                               dt.datetime(2019, 7, 1, 0, 0)]).dt.replace_time_zone("UTC")
    assert as_date(instants, "f.parquet", "C").to_list() == [D(2019, 1, 1), D(2019, 7, 1), D(2019, 7, 1)]
    naive = pl.Series("C", [dt.datetime(2018, 12, 31, 23, 0)])
    assert as_date(naive, "f.parquet", "C").to_list() == [D(2018, 12, 31)]  # no zone: the date part


def test_a_manifest_with_a_bom_reads_like_one_without(base, tmp_path):  # noqa: F811
    d = tmp_path / "d"
    shutil.copytree(base["parquet"], d)
    plain = read_manifest(d)
    (d / "manifest.json").write_bytes(b"\xef\xbb\xbf" + (d / "manifest.json").read_bytes())
    assert read_manifest(d) == plain


# --------------------------------------------------------------------------- som evaluate over the refused cases

#: every refused case that needs no column-mapping config (``som evaluate`` reads deliveries with the defaults)
REFUSED = sorted(n for n, c in CASES.items() if isinstance(c.expect, str) and c.expect != "same" and c.columns is None)


def test_the_evaluate_corpus_covers_the_refusals():
    assert len(REFUSED) >= 15


@pytest.mark.parametrize("name", REFUSED)
def test_evaluate_on_a_refused_delivery_prints_one_line_and_exits_3(base, tmp_path, evaluate_workdir,  # noqa: F811
                                                                    ephemeral_runs, monkeypatch, name):  # noqa: F811
    """``som evaluate`` on each refused delivery: exit 3, one ``error:`` line naming file, column, rule or check
    as ingestion does, no stack trace, no PNR, not the hostile value."""
    evaluate_refused(CASES[name], base, tmp_path, evaluate_workdir, monkeypatch)
