"""Ingestion: a small hand-made delivery whose every panel number is computed by hand."""

import datetime as dt
import json

import polars as pl
import pytest

from pipeline.registers import DeliveryError, build_panel, read_manifest
from som_models.simulate.calendar import iso_weeks_in_year, week_column

KEY = b"k" * 32
A, B = "0101901234", "0202855678"


def _delivery(tmp_path, shelter_start_a="2019-12-30"):
    d = tmp_path / "delivery"
    d.mkdir()
    pl.DataFrame({"PNR": [A, B], "KOEN": [1, 2], "FOED_DAG": [dt.date(1990, 1, 1), dt.date(1985, 2, 2)], "KOM": [101, 751]}
                 ).write_parquet(d / "bef201912.parquet")
    # 2020 as a Danish-dialect CSV with lower-case names and SAS date text.
    (d / "bef202012.csv").write_text("pnr;koen;foed_dag;kom\n" + f"{A};1;01JAN1990;101\n", encoding="latin-1")
    pl.DataFrame({
        "PNR": [A, A, A, B],
        "START_DATO": [shelter_start_a, "2019-12-31", "2020-12-25", "2019-03-01"],
        "SLUT_DATO": ["2020-01-03", "2020-01-02", "9999-12-31", None],
    }).write_parquet(d / "shelter.parquet")
    cols = {"PNR": [A]}
    for year in (2019, 2020):
        for w in range(1, iso_weeks_in_year(year) + 1):
            cols[week_column(year, w)] = [None]
    for c in ("y_1901", "y_1902", "y_1903"):
        cols[c] = ["701"]
    cols["y_2053"] = ["783"]
    pl.DataFrame(cols, schema={k: pl.Utf8 for k in cols}).write_parquet(d / "dream.parquet")
    indsats = pl.DataFrame({"PNR": [A], "INDSATS": ["HF"], "START_DATO": [dt.date(2019, 6, 1)], "SLUT_DATO": [None]},
                           schema={"PNR": pl.Utf8, "INDSATS": pl.Utf8, "START_DATO": pl.Date, "SLUT_DATO": pl.Date})
    indsats.write_parquet(d / "indsats.parquet")
    files = ["bef201912.parquet", "bef202012.csv", "shelter.parquet", "dream.parquet", "indsats.parquet"]
    (d / "manifest.json").write_text(json.dumps({"vintage": "2021-06", "period_start": "2019-01-01", "period_end": "2020-12-31",
                                                 "files": files}))
    return d


def test_panel_numbers_by_hand(tmp_path):
    built = build_panel(read_manifest(_delivery(tmp_path)), KEY)
    panel = built.panel
    assert panel.height == 3  # A 2019, A 2020, B 2019 (B left BEF in 2020)
    rows = {(r["year"], r["sex"]): r for r in panel.to_dicts()}
    a19, a20, b19 = rows[(2019, 1)], rows[(2020, 1)], rows[(2019, 2)]
    # A: stays 30 Dec–3 Jan and 31 Dec–2 Jan overlap → 30, 31 Dec in 2019; 1, 2 Jan in 2020; open stay 25–31 Dec 2020.
    assert a19["shelter_nights"] == 2
    assert a20["shelter_nights"] == 2 + 7
    # B: open-ended stay from 1 March 2019 → 306 nights in 2019.
    assert b19["shelter_nights"] == 306
    assert a19["kontanthjaelp_weeks"] == 3 and a19["self_support_weeks"] == 52 - 3
    assert a20["foertidspension_weeks"] == 1 and a20["self_support_weeks"] == 53 - 1
    assert b19["self_support_weeks"] == 52 and b19["kontanthjaelp_weeks"] == 0  # absent from DREAM
    assert a19["birth_year"] == 1990 and a19["age"] == 29 and a19["municipality"] == 101
    assert built.treatments.to_dicts() == [{"person_id": a19["person_id"], "intervention": "HF", "start_year": 2019,
                                            "end_year": None, "arm": None, "course_days": None}]


def test_person_ids_are_keyed_pseudonyms(tmp_path):
    panel = build_panel(read_manifest(_delivery(tmp_path)), KEY).panel
    ids = set(panel.get_column("person_id"))
    assert all(len(i) == 16 for i in ids) and not ids & {A, B}
    other = build_panel(read_manifest(tmp_path / "delivery"), b"x" * 32).panel
    assert set(other.get_column("person_id")).isdisjoint(ids)


def test_bad_date_names_file_column_and_row_not_pnr(tmp_path):
    with pytest.raises(DeliveryError) as exc:
        build_panel(read_manifest(_delivery(tmp_path, shelter_start_a="30-12-2019x")), KEY)
    msg = str(exc.value)
    assert "shelter.parquet" in msg and "START_DATO" in msg and "rows [0]" in msg
    assert A not in msg and B not in msg


def test_manifest_listing_a_missing_file_is_refused(tmp_path):
    d = _delivery(tmp_path)
    (d / "dream.parquet").unlink()
    with pytest.raises(DeliveryError, match="dream.parquet"):
        read_manifest(d)


def _with_checksums(d):
    """The manifest of ``d`` with the sha256 of every listed file."""
    import hashlib

    doc = json.loads((d / "manifest.json").read_text())
    doc["sha256"] = {f: hashlib.sha256((d / f).read_bytes()).hexdigest() for f in doc["files"]}
    (d / "manifest.json").write_text(json.dumps(doc))
    return d


@pytest.mark.parametrize("build_error", ["delivery", "crash", None])
def test_a_checksum_mismatch_decides_although_checksums_run_beside_the_build(tmp_path, monkeypatch, build_error):
    """The checksums run in a second thread while the registers are read; a file that does not match the manifest
    still refuses the delivery with that reason and no check reports — also when the build failed on the changed
    file meanwhile (a refusal of its own, or an unexpected error) or succeeded."""
    from pipeline.registers import ingest as ingest_fn
    from pipeline.registers import panel
    from pipeline.registers.ingest import RefusedDelivery

    d = _with_checksums(_delivery(tmp_path))
    (d / "indsats.parquet").write_bytes((d / "indsats.parquet").read_bytes() + b"\0")  # changed after delivery
    real = panel.build_panel

    def build(*args, **kwargs):
        if build_error == "delivery":
            raise DeliveryError("indsats.parquet: cannot be read")
        if build_error == "crash":
            raise RuntimeError("reader crashed")
        return real(*args, **kwargs)

    import importlib

    monkeypatch.setattr(importlib.import_module("pipeline.registers.ingest"), "build_panel", build)
    with pytest.raises(RefusedDelivery, match=r"^indsats\.parquet: sha256 does not match the manifest") as info:
        ingest_fn(d, tmp_path / "out", KEY)
    assert info.value.validations == ()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_checksums_that_match_give_the_delivery_hash(tmp_path):
    from pipeline.registers import delivery_hash
    from pipeline.registers import ingest as ingest_fn

    d = _with_checksums(_delivery(tmp_path))
    result = ingest_fn(d, tmp_path / "out", KEY)
    assert result.summary["data_hash"] == delivery_hash(read_manifest(d))
    assert "costs_and_checksum_wait" in result.summary["stage_seconds"]


def test_an_interrupt_stops_the_checksums_after_the_current_file(tmp_path, monkeypatch):
    """Ctrl-C during the build: the checksum thread is told to stop (its ``stop`` event is set; ``delivery_hash``
    then ends before its next file), and the interrupt is raised as it came, not turned into a refusal."""
    import importlib
    import threading

    from pipeline.registers import delivery_hash
    from pipeline.registers.files import HashingStopped

    mod = importlib.import_module("pipeline.registers.ingest")
    d = _with_checksums(_delivery(tmp_path))
    seen: dict = {}
    running = threading.Event()

    def hashing(manifest, *, verify, stop):  # stands in for the thread's work until it is told to stop
        seen["stop"] = stop
        running.set()
        seen["stopped"] = stop.wait(5)
        return "x"

    def build(*args, **kwargs):
        running.wait(5)
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "delivery_hash", hashing)
    monkeypatch.setattr(mod, "build_panel", build)
    with pytest.raises(KeyboardInterrupt):
        mod.ingest(d, tmp_path / "out", KEY)
    assert seen["stopped"] is True
    # and a set stop event ends the hashing before the next file
    opened = []
    monkeypatch.setattr("pipeline.registers.files.update_from_file", lambda path, *h: opened.append(path))
    stop = threading.Event()
    stop.set()
    with pytest.raises(HashingStopped):
        delivery_hash(read_manifest(d), verify=True, stop=stop)
    assert opened == []
