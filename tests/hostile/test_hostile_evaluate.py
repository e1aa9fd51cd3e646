"""Evaluations against deliveries that lack a register, and whole-file checks of SAS data files (issue 16, item 1).

A register that is neither delivered nor listed yields no panel column; an evaluation whose spec needs such a
column is refused before anything runs or is written — by ``som evaluate`` (one line, exit 2: the spec asks
for what the data cannot give, as for a handed-over panel without the column) and by the notebook API
(:func:`pipeline.runner.evaluate`, :class:`~pipeline.runner.EvaluationRefused`) — naming the register, the item
that needs it and the delivery. An evaluation that does not need the missing register is not refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline import evaluation as ev
from pipeline.cli import app
from pipeline.registers import read_manifest
from pipeline.registers.config import delivered_registers, outcome_registers
from pipeline.registers.files import DeliveryError, read_table
from pipeline.registers.integrity import SAS7BDAT_MAGIC, check_sas7bdat, sas7bdat_declared_size
from pipeline.runner import DeliveryRefused, EvaluationRefused, evaluate
from som_models.simulate import simulate, write_delivery

ROOT = Path(__file__).resolve().parents[2]
DEMO_SPEC = ROOT / "assets" / "evaluations" / "housing_first_demo.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return write_delivery(simulate("small", 80, 3), tmp_path_factory.mktemp("clean") / "d", truth_panel=False)


def _without(clean: Path, dest: Path, register: str, *, unlist: bool = True) -> Path:
    """A copy of ``clean`` without ``register``'s files (and, with ``unlist``, without it in ``registers``)."""
    shutil.copytree(clean, dest)
    doc = json.loads((dest / "manifest.json").read_text())
    gone = [f for f in doc["files"] if f.split(".")[0].rstrip("0123456789") in (register, f"{register}_adm")]
    assert gone, register
    for f in gone:
        (dest / f).unlink()
    doc["files"] = [f for f in doc["files"] if f not in gone]
    doc["sha256"] = {f: hashlib.sha256((dest / f).read_bytes()).hexdigest() for f in doc["files"]}
    if unlist:
        doc["registers"] = [r for r in doc["registers"] if r != register]
    (dest / "manifest.json").write_text(json.dumps(doc))
    return dest


def _demo_spec_copy(tmp_path: Path, name: str, **changes) -> Path:
    """The demo spec with ``changes`` as ``{tmp_path}/evaluations/{name}``, the seed parameter files beside it."""
    spec = {**yaml.safe_load(DEMO_SPEC.read_text(encoding="utf-8")), **changes}
    (tmp_path / "evaluations").mkdir()
    shutil.copytree(ROOT / "assets" / "parameters", tmp_path / "parameters")
    path = tmp_path / "evaluations" / name
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


WANT = (r"housing_first_demo\.yaml: register dream \(DREAM weekly benefit codes \(wide\)\) is needed by the consequence "
        r"item kontanthjaelp_weeks, but delivery nodream \(vintage 2023-06\) neither delivers nor lists it")


def test_som_evaluate_refuses_in_one_line_when_a_needed_register_is_left_out(clean, tmp_path):
    d = _without(clean, tmp_path / "nodream", "dream")
    work = tmp_path / "w"
    res = runner.invoke(app, ["evaluate", str(DEMO_SPEC), "--workdir", str(work), "--delivery", str(d)])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    import re

    assert re.search(WANT, lines[0]), lines[0]
    assert "Traceback" not in res.output
    assert not work.exists(), "refused before the run: nothing written"


def test_the_notebook_api_refuses_the_same_way(clean, tmp_path):
    d = _without(clean, tmp_path / "nodream", "dream")
    with pytest.raises(EvaluationRefused, match=WANT) as info:
        evaluate(DEMO_SPEC, workdir=tmp_path / "w", delivery=d)
    assert info.value.exit_code == 2 and not isinstance(info.value, DeliveryRefused)
    assert not (tmp_path / "w").exists()


def test_a_register_the_spec_does_not_need_may_be_left_out(clean, tmp_path):
    """LPR, KRAF and BUA are not needed by the demo spec (shelter_nights, kontanthjaelp_weeks): no refusal."""
    loaded = ev.load_spec(DEMO_SPEC)
    d = _without(clean, tmp_path / "nolpr", "lpr")
    ev.check_delivery_registers(loaded, read_manifest(d))  # does not raise
    ev.check_delivery_registers(loaded, read_manifest(clean))


def test_a_listed_register_counts_as_delivered_and_refuses_at_ingest(clean, tmp_path):
    """Listed but not delivered: not this check's business (the delivery itself is refused by ingestion)."""
    loaded = ev.load_spec(DEMO_SPEC)
    d = _without(clean, tmp_path / "listed", "dream", unlist=False)
    assert "dream" in delivered_registers(read_manifest(d).files, read_manifest(d).registers)
    ev.check_delivery_registers(loaded, read_manifest(d))


def test_a_mapped_outcome_names_its_register_and_every_item(clean, tmp_path):
    """The spec's outcomes: mapping decides the column, hence the register; two missing registers in one line."""
    path = _demo_spec_copy(tmp_path, "mapped.yaml", outcomes={"shelter_nights": "prison_days"})
    d = _without(_without(clean, tmp_path / "a", "krin"), tmp_path / "b", "dream")
    with pytest.raises(Exception, match=r"register dream .* needed by the consequence item kontanthjaelp_weeks; register "
                                        r"krin \(prison spells \(KRIN\)\) is needed by the success measure's outcome "
                                        r"shelter_nights \(prison_days\), the consequence item shelter_nights \(prison_days\),"
                                        r" but delivery b"):
        ev.check_delivery_registers(ev.load_spec(path), read_manifest(d))


def test_outcome_registers_cover_every_register_outcome():
    source = outcome_registers()
    assert source["shelter_nights"] == "shelter" and source["kontanthjaelp_weeks"] == "dream"
    assert source["self_support_weeks"] == "dream" and source["earnings_dkk"] == "ind"
    assert source["psychiatric_bed_days"] == "lpr" and "<benefit>_weeks" not in source


def test_a_refused_manifest_exits_3_before_the_run(clean, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(clean, d)
    doc = json.loads((d / "manifest.json").read_text())
    doc["vintage"] = "x/../../ESCAPED"
    (d / "manifest.json").write_text(json.dumps(doc))
    res = runner.invoke(app, ["evaluate", str(DEMO_SPEC), "--workdir", str(tmp_path / "w"), "--delivery", str(d)])
    assert res.exit_code == 3, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: delivery refused: ") and "vintage" in lines[0]
    with pytest.raises(DeliveryRefused) as info:
        evaluate(DEMO_SPEC, workdir=tmp_path / "w", delivery=d)
    assert info.value.exit_code == 3


def test_a_bad_cost_file_named_by_the_spec_is_refused_before_the_run(clean, tmp_path):
    path = _demo_spec_copy(tmp_path, "with_costs.yaml", data={"costs": "costs.csv"})
    (tmp_path / "evaluations" / "costs.csv").write_text("PNR;BELOEB\n0101011234;95.000,5\n0101015678;nan\n",
                                                         encoding="utf-8")
    res = runner.invoke(app, ["evaluate", str(path), "--workdir", str(tmp_path / "w"), "--delivery", str(clean)])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "costs.csv: column BELOEB: rule number-format: 1 value(s) are not numbers" in lines[0]
    assert lines[0].endswith("(rows [1])") and "0101015678" not in res.stderr
    assert not (tmp_path / "w").exists()


# --------------------------------------------------------------------------- SAS7BDAT: a file cut short

def _sas7bdat_header(header: int, page: int, pages: int, *, wide: bool = True, little: bool = True) -> bytes:
    """The first bytes of a SAS7BDAT file as its format documents them (magic number, alignment flags, byte order,
    header length, page size, page count) — not a readable file, only what the size check reads."""
    a = 4 if wide else 0
    head = bytearray(1024)
    head[:32] = SAS7BDAT_MAGIC
    head[32] = head[35] = 0x33 if wide else 0x22
    head[37] = 0x01 if little else 0x00
    order = "<" if little else ">"
    head[196 + a:204 + a] = struct.pack(order + "ii", header, page)
    head[204 + a:208 + a + a] = struct.pack(order + ("q" if wide else "i"), pages)
    return bytes(head)


@pytest.mark.parametrize(("wide", "little"), [(True, True), (False, True), (True, False), (False, False)])
def test_the_sas7bdat_header_states_the_file_size(wide, little):
    assert sas7bdat_declared_size(_sas7bdat_header(65536, 65536, 3, wide=wide, little=little)) == 65536 * 4
    assert sas7bdat_declared_size(b"\0" * 1024) is None


@pytest.mark.parametrize("share", [0.9, 0.6, 0.1])
def test_a_truncated_sas7bdat_is_refused_before_it_is_parsed(tmp_path, share):
    whole = _sas7bdat_header(1024, 4096, 5) + bytes(1024 - 1024) + b"\x01" * (4096 * 5)
    path = tmp_path / "bef202212.sas7bdat"
    path.write_bytes(whole)
    check_sas7bdat(path)  # whole: passes the size check
    path.write_bytes(whole[:int(len(whole) * share)])
    with pytest.raises(DeliveryError, match=rf"bef202212\.sas7bdat: rule sas-file-size: the file has "
                                            rf"{int(len(whole) * share)} bytes but its header declares {len(whole)} "
                                            r"\(header \+ pages × page size\); truncated or corrupt"):
        read_table(path)


def test_a_file_that_is_no_sas7bdat_is_refused(tmp_path):
    path = tmp_path / "bua.sas7bdat"
    path.write_bytes(b"PNR,PGF\n0101011234,150\n")
    with pytest.raises(DeliveryError, match=r"bua\.sas7bdat: rule sas-file-header: not a SAS data file"):
        read_table(path)


def test_a_run_started_in_dagster_refuses_at_the_delivery_asset(clean, tmp_path, monkeypatch):
    """Runs the sensor, the schedule or a backfill start do not pass through `som evaluate`: the ``delivery`` asset
    makes the same check, so the run stops before ingestion with the same one-line reason."""
    import re

    import dagster as dg

    from pipeline.runner import run_evaluation
    from pipeline.workdir import prepare_workdir

    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    d = _without(clean, tmp_path / "nodream", "dream")
    home = prepare_workdir(tmp_path / "w")
    outcome = run_evaluation(home, delivery=d, evaluation_spec=str(DEMO_SPEC), instance=dg.DagsterInstance.ephemeral())
    assert not outcome.success and len(outcome.failures) == 1
    assert outcome.failures[0].startswith("delivery: ") and re.search(WANT, outcome.failures[0]), outcome.failures
    assert not (home / "storage" / "registers").exists() and not (home / "storage" / "panel").exists()


def _approve_without_dream_item(work: Path) -> None:
    """Seed ``work``'s store with the demo's parameter file and approve a version 2 whose consequences no longer
    include the DREAM item ``kontanthjaelp_weeks``."""
    from pipeline.store import ParameterStore, database_url
    from pipeline.workdir import prepare_workdir

    loaded = ev.load_spec(DEMO_SPEC)
    with ParameterStore(database_url(prepare_workdir(work))) as store:
        ev.assumptions_version(store, loaded)
        doc = loaded.seed.to_dict()
        doc["consequences"] = {k: v for k, v in doc["consequences"].items() if k != "kontanthjaelp_weeks"}
        doc["prices"] = {k: v for k, v in doc["prices"].items() if k != "kontanthjaelp_weeks"}
        run = store.record_run(evaluation_id="manual_review", intervention=loaded.spec.intervention, data_vintage=None,
                               data_hash=None, code_version=None, spec={}, tested_version=1)
        v2 = store.propose_version(intervention=loaded.spec.intervention, parent_version=1, content=doc,
                                   reason="drop the benefit item", run_id=run.id, data_vintage=None, data_hash=None,
                                   code_version=None, evidence={}, estimates=[], verdicts=[])
        store.decide(loaded.spec.intervention, v2.version, approve=True, actor="analyst", reason="test")


def test_the_register_check_uses_the_parameter_version_under_test(clean, tmp_path):
    """The registers an evaluation needs are those of the version it tests (latest approved, or the spec's
    ``parameter_version``), not of the seed file: after version 2 drops the DREAM item, a delivery without DREAM
    passes the check; the same spec pinned to version 1 (the seed's items) is refused naming the register."""
    from pipeline.runner import _check_delivery

    d = _without(clean, tmp_path / "nodream", "dream")
    with pytest.raises(EvaluationRefused, match=WANT):  # no store yet: the seed's items
        _check_delivery(ev.load_spec(DEMO_SPEC), d, tmp_path / "w")
    assert not (tmp_path / "w").exists(), "the read-only lookup creates no store"
    _approve_without_dream_item(tmp_path / "w")
    _check_delivery(ev.load_spec(DEMO_SPEC), d, tmp_path / "w")  # version 2 needs no DREAM column
    pinned = _demo_spec_copy(tmp_path, "housing_first_demo.yaml", parameter_version=1)
    with pytest.raises(EvaluationRefused, match=WANT):
        _check_delivery(ev.load_spec(pinned), d, tmp_path / "w")


def test_the_read_only_lookup_never_migrates_a_store(clean, tmp_path):
    """A store whose schema is not current (here: an empty SQLite database) is neither migrated nor read by the
    register check before a run: the seed's items decide, and the database keeps no table."""
    import sqlite3

    from pipeline.runner import _check_delivery

    d = _without(clean, tmp_path / "nodream", "dream")
    (tmp_path / "w").mkdir()
    sqlite3.connect(tmp_path / "w" / "som.db").close()
    with pytest.raises(EvaluationRefused, match=WANT):
        _check_delivery(ev.load_spec(DEMO_SPEC), d, tmp_path / "w")
    with sqlite3.connect(tmp_path / "w" / "som.db") as con:
        assert con.execute("SELECT name FROM sqlite_master").fetchall() == []
