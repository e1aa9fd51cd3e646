"""Every outcome rule of the contract on a hand-made delivery in mixed formats, with numbers computed by hand."""

import datetime as dt
import json

import polars as pl
import pytest

from pipeline.registers import build_panel, pseudonymise, read_manifest
from pipeline.registers.config import parse_column_map
from som_models.simulate.calendar import iso_weeks_in_year, week_column

KEY = b"r" * 32
A, B, C = "0101901234", "0202855678", "0106104321"
D = dt.date


def _sas_days(d: dt.date) -> int:
    return (d - dt.date(1960, 1, 1)).days


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("rules")
    files = []

    def parquet(name, df):
        df.write_parquet(d / name)
        files.append(name)

    def text(name, body, encoding="utf-8"):
        (d / name).write_bytes(body.encode(encoding))
        files.append(name)

    parquet("bef201912.parquet", pl.DataFrame({"PNR": [A, B, C], "KOEN": [1, 2, 2],
                                               "FOED_DAG": [D(1990, 1, 1), D(1985, 2, 2), D(2010, 6, 1)],
                                               "KOM": [101, 751, 101]}))
    import pyreadstat  # BEF 2020 as a SAS transport file with SAS dates

    pyreadstat.write_xport(pl.DataFrame({"pnr": [A, C], "koen": [1.0, 2.0], "foed_dag": [D(1990, 1, 1), D(2010, 6, 1)],
                                         "kom": [101.0, 147.0]}).to_pandas(), str(d / "bef202012.xpt"), file_format_version=8)
    files.append("bef202012.xpt")
    lpr = pl.DataFrame({
        "PNR": [A, A, A, A, A, B, B],
        "RECNUM": ["1", "2", "3", "4", "5", "6", "7"],
        "D_INDDTO": [D(2019, 12, 28), D(2019, 12, 30), D(2020, 3, 1), D(2019, 11, 15), D(2020, 5, 5), D(2019, 1, 10),
                     D(2019, 2, 1)],
        "D_UDDTO": [D(2020, 1, 3), D(2020, 1, 2), None, D(2020, 2, 1), D(2020, 5, 5), D(2019, 1, 15), D(2019, 2, 3)],
        "C_PATTYPE": [0, 0, 0, 2, 3, 0, 0],
        "C_PSYK": [0, 0, 1, 0, 0, 0, None],
    })
    parquet("lpr_adm2019.parquet", pl.concat([lpr.filter(pl.col("RECNUM").is_in(["6", "7"])),
                                              pl.DataFrame({"PNR": [A], "RECNUM": ["8"], "D_INDDTO": [D(2019, 4, 4)],
                                                            "D_UDDTO": [D(2019, 4, 4)], "C_PATTYPE": [1], "C_PSYK": [0]})]))
    parquet("lpr_adm2020.parquet", lpr.filter(~pl.col("RECNUM").is_in(["6", "7"])))
    # KRAF: dates as SAS date numbers (days since 1960-01-01).
    parquet("kraf2019.parquet", pl.DataFrame({"PNR": [A, A, B], "JOURNR": ["j1", "j2", "j3"],
                                              "AFG_ADTO": [_sas_days(D(2019, 3, 3)), _sas_days(D(2019, 4, 4)),
                                                           _sas_days(D(2019, 5, 5))],
                                              "AFG_AFGTYP3": [100, 950, 300]}))
    text("kraf2020.csv", f"PNR,JOURNR,AFG_ADTO,AFG_AFGTYP3\n{A},j4,2020-01-01,899\n")
    # KRIN in the Danish dialect: ';', Latin-1, lower-case names, an empty release date = still inside.
    text("krin.csv", ("pnr;ind_fgsldto;ind_loesdto;anstalt\n"
                      f"{A};01DEC2019;10JAN2020;Horserød\n{A};20DEC2020;;Vestre Fængsel\n"), "latin-1")
    # BUA with SAS text dates and 31DEC9999 = ongoing; two overlapping preventive measures.
    text("bua.csv", ("PNR,PGF,SAG_VFRA,SAG_VTIL\n"
                     f"{C},111,15MAR2018,31DEC9999\n{C},211,01JAN2019,01JUL2019\n{C},430,01JUN2019,01AUG2019\n"))
    parquet("ind2019.parquet", pl.DataFrame({"PNR": [A, C], "LOENMV_13": [250000.5, None]}))
    text("ind2020.csv", f"PNR;LOENMV_13\n{A};260000,25\n{B};1000,00\n", "latin-1")  # B left BEF: ignored
    cols = {"PNR": [A]}
    for year in (2018, 2019, 2020):
        for w in range(1, iso_weeks_in_year(year) + 1):
            cols[week_column(year, w)] = [None]
    cols.update({"y_1901": ["701"], "y_1902": ["701"], "y_1903": ["730"], "y_1952": [" 111 "], "y_2001": ["890"],
                 "y_2053": ["783"], "y_1850": ["701"]})  # 2018 is before the period: ignored
    parquet("dream.parquet", pl.DataFrame(cols, schema={k: pl.Utf8 for k in cols}))
    parquet("shelter.parquet", pl.DataFrame({"PNR": [A, A, A, B],
                                             "START_DATO": ["2019-12-30", "2019-12-31", "2020-12-25", "2019-03-01"],
                                             "SLUT_DATO": ["2020-01-03", "2020-01-02", "9999-12-31", None]}))
    parquet("indsats.parquet", pl.DataFrame({"PNR": [A, C], "INDSATS": ["HF", "HF"], "START_DATO": [D(2019, 6, 1), D(2020, 2, 2)],
                                             "SLUT_DATO": [None, D(2020, 9, 1)], "ARM": ["T", "C"]}))
    parquet("udda2019.parquet", pl.DataFrame({"PNR": [A], "HFAUDD": [1000]}))  # not a register of the contract: ignored
    (d / "manifest.json").write_text(json.dumps({"vintage": "2021-06", "period_start": "2019-01-01", "period_end": "2020-12-31",
                                                 "files": files, "registers": ["bef", "lpr", "kraf", "krin", "bua", "ind",
                                                                               "dream", "shelter", "indsats"]}))
    # KRAF's dates are plain numbers: their encoding is declared in the register configuration (an undeclared
    # number date is refused, see tests/hostile).
    b = build_panel(read_manifest(d), KEY, parse_column_map({"kraf": {"dates": "sas_days"}}))
    ids = dict(zip([A, B, C], pseudonymise(pl.Series([A, B, C]), KEY).to_list(), strict=False))
    rows = {(r["person_id"], r["year"]): r for r in b.panel.to_dicts()}
    return b, {(p, y): rows.get((ids[p], y)) for p in (A, B, C) for y in (2019, 2020)}, ids


def test_population_and_covariates(built):
    b, rows, _ = built
    assert b.panel.height == 5 and rows[(B, 2020)] is None  # B left BEF
    assert rows[(C, 2020)]["municipality"] == 147 and rows[(C, 2019)]["municipality"] == 101  # moved
    assert rows[(A, 2020)]["age"] == 30 and rows[(C, 2019)]["birth_year"] == 2010
    assert "udda2019.parquet (no register of the contract)" in b.ignored


def test_hospital_rules(built):
    _, r, _ = built
    # Stay 28 Dec–3 Jan (+ a contained duplicate): 28–31 Dec in 2019, 1–2 Jan in 2020.
    assert r[(A, 2019)]["somatic_bed_days"] == 4 and r[(A, 2020)]["somatic_bed_days"] == 2
    # Open psychiatric stay from 1 March 2020 to the end of the period.
    assert r[(A, 2020)]["psychiatric_bed_days"] == 306 and r[(A, 2019)]["psychiatric_bed_days"] == 0
    # C_PSYK missing counts as somatic (≠ 1): 5 + 2 days.
    assert r[(B, 2019)]["somatic_bed_days"] == 7
    # Outpatient course 15 Nov 2019–1 Feb 2020: one visit, in the year of D_INDDTO; emergency in 2020; part-day nowhere.
    assert (r[(A, 2019)]["outpatient_visits"], r[(A, 2020)]["outpatient_visits"]) == (1, 0)
    assert (r[(A, 2019)]["emergency_visits"], r[(A, 2020)]["emergency_visits"]) == (0, 1)


def test_crime_rules(built):
    _, r, _ = built
    assert r[(A, 2019)]["convictions"] == 1  # 100 conviction, 950 acquittal
    assert r[(A, 2020)]["convictions"] == 1 and r[(B, 2019)]["convictions"] == 1
    # KRIN: 1 Dec 2019–10 Jan 2020 → 31 + 9 days; 20 Dec 2020, still inside → 12 days.
    assert r[(A, 2019)]["prison_days"] == 31 and r[(A, 2020)]["prison_days"] == 9 + 12


def test_children_and_income_rules(built):
    _, r, _ = built
    assert r[(C, 2019)]["placement_days"] == 365 and r[(C, 2020)]["placement_days"] == 366
    assert r[(C, 2019)]["preventive_days"] == 212  # [1 Jan, 1 Jul) ∪ [1 Jun, 1 Aug) = [1 Jan, 1 Aug)
    assert r[(A, 2019)]["earnings_dkk"] == 250000.5 and r[(A, 2020)]["earnings_dkk"] == 260000.25
    assert r[(B, 2019)]["earnings_dkk"] == 0 and r[(C, 2019)]["earnings_dkk"] == 0  # absent / missing → 0


def test_dream_and_shelter_rules(built):
    _, r, _ = built
    a19, a20 = r[(A, 2019)], r[(A, 2020)]
    assert (a19["kontanthjaelp_weeks"], a19["dagpenge_weeks"], a19["self_support_weeks"]) == (3, 1, 52 - 4)
    assert (a20["sygedagpenge_weeks"], a20["foertidspension_weeks"], a20["self_support_weeks"]) == (1, 1, 53 - 2)
    assert r[(C, 2020)]["self_support_weeks"] == 53 and r[(C, 2020)]["kontanthjaelp_weeks"] == 0
    assert a19["shelter_nights"] == 2 and a20["shelter_nights"] == 2 + 7 and r[(B, 2019)]["shelter_nights"] == 306


def test_treatments(built):
    b, _, ids = built
    t = {row["person_id"]: row for row in b.treatments.to_dicts()}
    assert t[ids[A]] == {"person_id": ids[A], "intervention": "HF", "start_year": 2019, "end_year": None, "arm": "T",
                        "course_days": None}
    assert t[ids[C]]["arm"] == "C" and t[ids[C]]["end_year"] == 2020
