"""Malformed deliveries: each is refused with a clear message (file, column, count, rows — never a PNR),
nothing is written, and an earlier good panel is left intact."""

import datetime as dt
import hashlib
import json
import re
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.registers import DeliveryError, ingest
from som_models.simulate import simulate, write_delivery

KEY = b"m" * 32
runner = CliRunner()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A good delivery (small world, Parquet), a Danish-dialect CSV copy, and a good earlier output folder."""
    root = tmp_path_factory.mktemp("malformed")
    sim = simulate("small", 200, 13)
    good = write_delivery(sim, root / "good", truth_panel=False)
    csv = write_delivery(sim, root / "good_csv", "csv-dk", truth_panel=False)
    out = root / "earlier"
    ingest(good, out, KEY, max_gx_rows=0)
    pnrs = set(pl.concat([pl.read_parquet(p) for p in good.glob("bef*.parquet")])["PNR"])
    return {"good": good, "csv": csv, "out": out, "pnrs": pnrs}


def _manifest(d):
    return json.loads((d / "manifest.json").read_text())


def _save_manifest(d, doc):
    (d / "manifest.json").write_text(json.dumps(doc))


def _rehash(d):
    doc = _manifest(d)
    doc["sha256"] = {f: hashlib.sha256((d / f).read_bytes()).hexdigest() for f in doc["files"] if (d / f).exists()}
    _save_manifest(d, doc)


def _edit(d, file, fn):
    df = pl.read_parquet(d / file)
    fn(df).write_parquet(d / file)
    _rehash(d)


def _drop(d, file):
    (d / file).unlink()
    doc = _manifest(d)
    doc["files"] = [f for f in doc["files"] if f != file]
    doc["sha256"].pop(file, None)
    _save_manifest(d, doc)


def _row(df, i, **values):
    """``df`` with row ``i`` changed (column → new value)."""
    return df.with_row_index("_i").with_columns([
        pl.when(pl.col("_i") == i).then(pl.lit(v, dtype=df.schema[c] if v is not None else df.schema[c]))
        .otherwise(pl.col(c)).alias(c)
        for c, v in values.items()]).drop("_i")


CASES = {
    "missing manifest": (lambda d: (d / "manifest.json").unlink(), r"manifest\.json not found"),
    "manifest not JSON": (lambda d: (d / "manifest.json").write_text("{vintage: "), r"not valid JSON"),
    "manifest period in the future": (
        lambda d: _save_manifest(d, {**_manifest(d), "period_end": (dt.date.today() + dt.timedelta(days=400)).isoformat()}),
        r"period_end .* is in the future"),
    "manifest period reversed": (lambda d: _save_manifest(d, {**_manifest(d), "period_end": "2018-12-31"}),
                                 r"before period_start"),
    "listed file missing": (lambda d: (d / "krin.parquet").unlink(),
                            r"1 listed file\(s\) missing from the folder: krin\.parquet"),
    "missing register (always required)": (lambda d: _drop(d, "indsats.parquet"), r"missing register indsats"),
    "missing register listed in the manifest": (lambda d: _drop(d, "bua.parquet"),
                                                r"missing register bua .*listed in the manifest"),
    "missing year of a yearly register": (lambda d: _drop(d, "lpr_adm2021.parquet"), r"register lpr: no file for year\(s\) 2021"),
    "two files for one register year": (
        lambda d: (shutil.copy(d / "ind2020.parquet", d / "ind2020.csv") and None,
                   _save_manifest(d, {**_manifest(d), "files": _manifest(d)["files"] + ["ind2020.csv"]})),
        r"register ind: more than one file for year 2020"),
    "missing column": (lambda d: _edit(d, "bef202012.parquet", lambda df: df.drop("KOM")),
                       r"bef202012\.parquet: required column\(s\) KOM missing"),
    "wrong type (text in a number column)": (
        lambda d: _edit(d, "bef202012.parquet",
                        lambda df: df.with_columns(pl.col("KOEN").cast(pl.Utf8)).pipe(_row, 3, KOEN="mand")),
        r"bef202012\.parquet: column KOEN: rule number-format: 1 value\(s\) are not numbers \(rows \[3\]\)"),
    "numeric PNR": (lambda d: _edit(d, "ind2019.parquet", lambda df: df.with_columns(pl.col("PNR").cast(pl.Int64))),
                    r"ind2019\.parquet: column PNR: rule pnr-format: PNR has type Int64; it must be text"),
    "PNR not 10 characters": (lambda d: _edit(d, "shelter.parquet", lambda df: _row(df, 2, PNR="12345")),
                              (r"shelter\.parquet: column PNR: rule pnr-format: 1 value\(s\) are not a PNR of exactly 10 ASCII "
                               r"digits.*\(rows \[2\]\)")),
    "missing PNR": (lambda d: _edit(d, "kraf2020.parquet", lambda df: _row(df, 0, PNR=None)),
                    r"kraf2020\.parquet: check not_null__PNR .*1 of \d+ rows fail"),
    "duplicate person-years in BEF": (
        lambda d: _edit(d, "bef202112.parquet", lambda df: pl.concat([df, df.slice(5, 1)])),
        r"bef202112\.parquet: check unique__PNR__YEAR .*2 of \d+ rows fail.*bef202112\.parquet row 5"),
    "sex code outside 1/2": (lambda d: _edit(d, "bef201912.parquet", lambda df: _row(df, 7, KOEN=3)),
                             r"check in_set__KOEN .*1 of \d+ rows fail.*row 7"),
    "born after the status date": (
        lambda d: _edit(d, "bef201912.parquet", lambda df: _row(df, 1, FOED_DAG=dt.date(2020, 5, 1))),
        r"check ge__STATUS_DATE__FOED_DAG .*1 of \d+ rows fail"),
    "end before start": (
        lambda d: _edit(d, "shelter.parquet", lambda df: df.with_columns(pl.lit(dt.date(2019, 1, 1)).alias("START_DATO"),
                                                                         pl.lit(dt.date(2018, 6, 1)).alias("SLUT_DATO"))
                        .head(4).vstack(df.slice(4))),
        r"shelter\.parquet: check ge__SLUT_DATO__START_DATO .*4 of \d+ rows fail.*first rows: row 0, row 1, row 2, row 3"),
    "date in the future (after the vintage 2023-06)": (
        lambda d: _edit(d, "lpr_adm2022.parquet", lambda df: _row(df, 0, D_INDDTO=dt.date(2023, 7, 1), D_UDDTO=None)),
        r"lpr_adm2022\.parquet: check between__D_INDDTO .*1 of \d+ rows fail"),
    "end date after the period": (
        lambda d: _edit(d, "krin.parquet", lambda df: _row(df, 0, IND_LOESDTO=dt.date(2030, 1, 1))),
        r"krin\.parquet: check between__IND_LOESDTO .*1 of \d+ rows fail"),
    "decision outside its file's year": (
        lambda d: _edit(d, "kraf2021.parquet", lambda df: _row(df, 1, AFG_ADTO=dt.date(2020, 3, 3))),
        r"kraf2021\.parquet: check ge__AFG_ADTO__YEAR_START .*1 of \d+ rows fail"),
    "unparseable date text": (
        lambda d: _edit(d, "bua.parquet",
                        lambda df: df.with_columns(pl.col("SAG_VFRA").cast(pl.Utf8)).pipe(_row, 2, SAG_VFRA="2019-13-45")),
        r"bua\.parquet: column SAG_VFRA: rule date-encoding: 1 value\(s\) are not dates .*\(rows \[2\]\)"),
    "DREAM code outside every group": (
        lambda d: _edit(d, "dream.parquet", lambda df: _row(df, 4, y_2003="555", y_2004="555")),
        r"dream\.parquet: check between__CODES_OUTSIDE_GROUPS .*1 of \d+ rows fail.*row 4.*y_2003, y_2004"),
    "DREAM week code not a number": (lambda d: _edit(d, "dream.parquet", lambda df: _row(df, 0, y_2110="7O1")),
                                     r"CODES_OUTSIDE_GROUPS .*week columns with codes outside every group: y_2110"),
    "DREAM week columns missing": (lambda d: _edit(d, "dream.parquet", lambda df: df.drop("y_2052", "y_2053")),
                                   r"dream\.parquet: 2 week column\(s\) of the period missing \(first: y_2052, y_2053\)"),
    "sanction code outside every group": (lambda d: _edit(d, "kraf2019.parquet", lambda df: _row(df, 0, AFG_AFGTYP3=50)),
                                          r"kraf2019\.parquet: check not_null__SANCTION_GROUP .*1 of \d+ rows fail"),
    "PGF outside every group": (lambda d: _edit(d, "bua.parquet", lambda df: _row(df, 0, PGF=350)),
                                r"bua\.parquet: check not_null__PGF_GROUP .* — PGF codes outside the code list"),
    "patient type outside the code list": (lambda d: _edit(d, "lpr_adm2019.parquet", lambda df: _row(df, 0, C_PATTYPE=7)),
                                           r"lpr_adm2019\.parquet: check not_null__PATTYPE_KIND .* — C_PATTYPE codes outside the "
                                           r"code list \(C_PATTYPE is a patient type"),
    "duplicate LPR record number": (
        lambda d: _edit(d, "lpr_adm2020.parquet", lambda df: _row(df, 1, RECNUM=df["RECNUM"][0])),
        r"check unique__RECNUM .*2 of \d+ rows fail.*lpr_adm2020\.parquet row 0, lpr_adm2020\.parquet row 1"),
    "amount below the plausible range": (lambda d: _edit(d, "ind2021.parquet", lambda df: _row(df, 3, LOENMV_13=-1.5e9)),
                        r"ind2021\.parquet: check between__LOENMV_13 .*1 of \d+ rows fail"),
    "arm not T or C": (lambda d: _edit(d, "indsats.parquet", lambda df: _row(df, 0, ARM="X")),
                       r"indsats\.parquet: check in_set__ARM"),
    "person twice in the intervention register": (
        lambda d: _edit(d, "indsats.parquet", lambda df: pl.concat([df, df.head(1)])),
        r"indsats\.parquet: check unique__PNR .*2 of \d+ rows fail"),
    "truncated Parquet (no checksum)": (
        lambda d: ((d / "ind2020.parquet").write_bytes((d / "ind2020.parquet").read_bytes()[:300]),
                   _save_manifest(d, {**_manifest(d), "sha256": {}})),
        r"ind2020\.parquet: cannot be read as Parquet \(truncated or corrupt file\?\)"),
    "truncated file (checksum mismatch)": (
        lambda d: (d / "dream.parquet").write_bytes((d / "dream.parquet").read_bytes()[:1000]),
        r"dream\.parquet: sha256 does not match the manifest"),
    "empty file": (lambda d: ((d / "krin.parquet").write_bytes(b""), _rehash(d)), r"krin\.parquet: the file is empty"),
    "unsupported file type listed": (
        lambda d: ((d / "shelter.parquet").rename(d / "shelter.xlsx"),
                   _save_manifest(d, {**_manifest(d), "sha256": {},
                                      "files": [f.replace("shelter.parquet", "shelter.xlsx") for f in _manifest(d)["files"]]})),
        r"missing register shelter"),
    "column names collide": (lambda d: _edit(d, "krin.parquet", lambda df: df.with_columns(pl.col("PNR").alias("pnr"))),
                             r"krin\.parquet: column PNR: rule column-names: two columns have this name when case is ignored"),
}


def _snapshot(out):
    """Every path under ``out`` (hidden version folders included) with the bytes of its files."""
    return {str(p.relative_to(out)): p.read_bytes() if p.is_file() else None for p in sorted(out.rglob("*"))}


def _assert_refused(base, tmp_path, mutate, pattern, *, max_gx_rows, folder="good"):
    d = tmp_path / "delivery"
    shutil.copytree(base[folder], d)
    out = tmp_path / "out"
    shutil.copytree(base["out"], out)
    before = _snapshot(out)
    mutate(d)
    with pytest.raises(DeliveryError) as exc:
        ingest(d, out, KEY, max_gx_rows=max_gx_rows)
    text = "\n".join(exc.value.lines) + str(exc.value)
    assert re.search(pattern, text), text
    assert not any(p in text for p in base["pnrs"]), "a PNR leaked into the message"
    assert _snapshot(out) == before  # earlier outputs intact, no temp folder left
    return text


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_delivery_is_refused(base, tmp_path, case):
    mutate, pattern = CASES[case]
    _assert_refused(base, tmp_path, mutate, pattern, max_gx_rows=0)


@pytest.mark.parametrize("case", ["duplicate person-years in BEF", "end before start", "DREAM code outside every group",
                                  "amount below the plausible range", "PNR not 10 characters",
                                  "date in the future (after the vintage 2023-06)"])
def test_malformed_delivery_is_refused_by_great_expectations_too(base, tmp_path, case):
    mutate, pattern = CASES[case]
    _assert_refused(base, tmp_path, mutate, pattern, max_gx_rows=10**9)


def _recode_csv(d, file, encoding):
    path = d / file
    path.write_bytes(path.read_bytes().decode("latin-1").encode(encoding))
    _rehash(d)


CSV_CASES = {
    "wrong encoding (UTF-16)": (lambda d: _recode_csv(d, "bef202012.csv", "utf-16"), r"bef202012\.csv: wrong encoding"),
    "header only BEF (no persons)": (
        lambda d: ((d / "bef202012.csv").write_text((d / "bef202012.csv").read_text(encoding="latin-1").split("\n")[0] + "\n",
                                                   encoding="latin-1"), _rehash(d)),
        r"bef202012\.csv: BEF file without persons \(0 rows\)"),
    "ragged CSV line": (
        lambda d: ((d / "krin.csv").write_text((d / "krin.csv").read_text(encoding="latin-1") + "1;2;3;4;5;6\n",
                                               encoding="latin-1"),
                   _rehash(d)),
        r"krin\.csv: rule csv-row-width: 1 row\(s\) have more fields than the header's 3"),
    "point decimal mark in a Danish number": (
        lambda d: ((d / "ind2019.csv").write_text(_first_amount(d / "ind2019.csv", "1234.50"), encoding="latin-1"),
                   _rehash(d)),
        r"ind2019\.csv: column LOENMV_13: rule number-format: 1 value\(s\) are not numbers \(Danish format.*\(rows \[0\]\)"),
}


def _first_amount(path, amount):
    lines = path.read_text(encoding="latin-1").split("\n")
    cells = lines[1].split(";")
    cells[-1] = amount
    lines[1] = ";".join(cells)
    return "\n".join(lines)


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_malformed_csv_delivery_is_refused(base, tmp_path, case):
    mutate, pattern = CSV_CASES[case]
    _assert_refused(base, tmp_path, mutate, pattern, max_gx_rows=0, folder="csv")


def test_at_least_twenty_kinds_of_malformed_delivery():
    assert len(CASES) + len(CSV_CASES) >= 20


def test_cli_refusal_exit_code_3_and_earlier_panel_intact(base, tmp_path, monkeypatch):
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", KEY.hex())
    d = tmp_path / "d"
    shutil.copytree(base["good"], d)
    out = tmp_path / "out"
    shutil.copytree(base["out"], out)
    before = (out / "panel.parquet").read_bytes()
    CASES["end before start"][0](d)
    CASES["amount below the plausible range"][0](d)
    res = runner.invoke(app, ["ingest", str(d), "--out", str(out), "--gx-rows", "0"])
    assert res.exit_code == 3, res.output
    assert "delivery refused: shelter.parquet" in res.output and "Traceback" not in res.output
    assert not any(p in res.output for p in base["pnrs"])
    assert (out / "panel.parquet").read_bytes() == before
