"""Reference data: located through som_reference, read with the strict YAML loader, every value with status and unit."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from pipeline.evaluation import read_yaml
from pipeline.registers.config import ConfigError, dream_groups, load_column_map
from som_models.knowledge.base import KnowledgeBase, KnowledgeError
from som_models.parameters import ParameterError
from som_models.projection.prices import load_price_index
from som_models.projection.rules import load_rule
from som_reference import asset, assets_dir, expectations_dir
from som_reference.strict_yaml import DuplicateKeyError, load_yaml, loads_yaml
from som_reference.values import ReferenceDataError, check_status, check_status_unit

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------- locator

def test_locator_finds_the_repository_folders_in_a_checkout():
    assert assets_dir() == (ROOT / "assets").resolve()
    assert expectations_dir() == (ROOT / "expectations").resolve()
    assert asset("evaluations", "housing_first_demo.yaml").is_file()
    assert (expectations_dir() / "registers" / "bef.json").is_file()


def test_no_module_locates_data_from_the_source_tree():
    offenders = []
    for package in ("pipeline", "som_models"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "REPO_ROOT" in text or ('parents[' in text and ('"assets"' in text or '"expectations"' in text)):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_module_reads_yaml_without_the_strict_loader():
    offenders = [str(p.relative_to(ROOT)) for pkg in ("pipeline", "som_models", "som_reference")
                 for p in (ROOT / pkg).rglob("*.py")
                 if "yaml.safe_load(" in p.read_text(encoding="utf-8") or "yaml.load(" in p.read_text(encoding="utf-8")]
    assert offenders == []


# ------------------------------------------------------------------------------------ duplicate keys

def test_duplicate_key_is_refused_naming_file_key_and_line(tmp_path):
    f = tmp_path / "prices.yaml"
    f.write_text("prices:\n  shelter_night:\n    kommune: 850\n    stat: 850\n    kommune: 900\n", encoding="utf-8")
    with pytest.raises(DuplicateKeyError) as info:
        load_yaml(f)
    msg = str(info.value)
    assert str(f) in msg and "'kommune'" in msg and "line 5" in msg and "line 3" in msg
    assert info.value.line == 5 and info.value.first_line == 3 and info.value.key == "kommune"


def test_duplicate_year_keys_after_conversion_are_refused():
    with pytest.raises(DuplicateKeyError, match=r"doc\.yaml: line 3: duplicate key 2020"):
        loads_yaml("levels:\n  2020: [1]\n  2020: [2]\n", "doc.yaml")


def test_inline_merge_keys_may_be_overridden_and_plain_yaml_is_unchanged():
    text = "item:\n  <<: {a: 1, b: 2}\n  b: 3\nlist: [1, 2]\n"
    assert loads_yaml(text) == yaml.safe_load(text) == {"item": {"a": 1, "b": 3}, "list": [1, 2]}


def test_every_shipped_yaml_file_loads_strictly():
    files = sorted(assets_dir().rglob("*.y*ml"))
    assert len(files) >= 15
    for path in files:
        assert load_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8")), path


def test_callers_refuse_duplicate_keys(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("evaluation: a\nevaluation: b\n", encoding="utf-8")
    with pytest.raises(ParameterError, match=r"spec\.yaml: not valid YAML .*line 2: duplicate key 'evaluation'"):
        read_yaml(spec)
    cfg = tmp_path / "columns.yaml"
    cfg.write_text("bef:\n  columns: {PNR: a}\nbef:\n  columns: {PNR: b}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"columns\.yaml"):
        load_column_map(cfg)


# ------------------------------------------------------------------------------------ status and unit

def test_check_status_unit():
    assert check_status_unit({"status": "verified (one centre's rate)", "unit": "kr per night"}, "x")
    with pytest.raises(ReferenceDataError, match=r"f\.yaml: p: no unit"):
        check_status_unit({"status": "verified"}, "f.yaml: p")
    with pytest.raises(ReferenceDataError, match=r"no status and no unit"):
        check_status_unit({"value": 3}, "p")
    with pytest.raises(ReferenceDataError, match=r"must start with one of"):
        check_status("probably fine", "p")


def _copy_assets(tmp_path: Path) -> Path:
    root = tmp_path / "assets"
    shutil.copytree(assets_dir(), root)
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_price_index_without_unit_is_refused(tmp_path):
    root = _copy_assets(tmp_path)
    _edit(root / "price_index" / "nettoprisindeks.yaml", "unit: index points", "note: index points")
    with pytest.raises(ParameterError, match=r"nettoprisindeks\.yaml: no unit"):
        load_price_index(assets_dir=root)


def test_refusion_version_without_status_is_refused(tmp_path):
    root = _copy_assets(tmp_path)
    _edit(root / "refusion" / "refusionstrappe.yaml", "    status: verified (rates and week bands)\n", "")
    with pytest.raises(ParameterError, match=r"refusionstrappe\.yaml: versions\[0\]: no status"):
        load_rule("staircase", "refusionstrappe", assets_dir=root)


@pytest.mark.parametrize("file, old, new, message", [
    ("knowledge/target_groups/voksne_i_hjemloeshed.yaml",
     "    unit: nights at a §110 shelter per successful person and consequence year\n", "",
     r"consequences\.shelter_nights\.unit: required key missing"),
    ("knowledge/target_groups/voksne_i_hjemloeshed.yaml", "    status: placeholder\n", "    status: guess\n",
     r"consequences\.shelter_nights: status 'guess' must start with one of"),
    ("prices/unit_prices.yaml", "    status: placeholder\n", "    status: ''\n", r"unit_prices\.gp_contact_adult: no status"),
    ("prices/tax_rates.yaml", "unit: share of the change in income (rates on income after AM-bidrag; am_bidrag on "
     "earned income; tilbageloeb of the net income change), 0-1\n", "", r"tax_rates\.yaml\.unit: required key missing"),
    ("prices/tax_rates.yaml", "am_bidrag_status: >-\n", "am_bidrag_note: >-\n", r"tax_rates\.yaml\.am_bidrag_note: unknown key"),
])
def test_knowledge_base_refuses_values_without_status_or_unit(tmp_path, file, old, new, message):
    root = _copy_assets(tmp_path)
    _edit(root / file, old, new)
    with pytest.raises(KnowledgeError, match=message):
        KnowledgeBase.load(root)


def test_code_list_row_without_status_is_refused(tmp_path):
    shutil.copy(asset("registers", "dream_codes.csv"), tmp_path / "dream_codes.csv")
    _edit(tmp_path / "dream_codes.csv", "kontanthjaelp,701,739,unverified,", "kontanthjaelp,701,739,,")
    with pytest.raises(ConfigError, match=r"dream_codes\.csv: line 3: column status: no status"):
        dream_groups(tmp_path)


def test_the_shipped_reference_tables_pass():
    kb = KnowledgeBase.load()
    assert all(c.unit for tg in kb.target_groups.values() for c in tg.consequences)
    assert load_price_index().status.startswith("verified")
    assert load_rule("expensive_cases", "serviceloven_176").status == "verified"


# --------------------------------------------------------------------------------------------- wheel

def test_the_wheel_ships_assets_and_expectations(tmp_path):
    """Build the wheel (about a second) and check the reference data are inside the som_reference package."""
    uv = shutil.which("uv")
    cmd = [uv, "build", "--wheel", "--out-dir", str(tmp_path)] if uv else [sys.executable, "-m", "uv", "build", "--wheel",
                                                                        "--out-dir", str(tmp_path)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=120)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in sorted(assets_dir().rglob("*")):
        if path.is_file():
            assert f"som_reference/assets/{path.relative_to(assets_dir()).as_posix()}" in names
    for path in sorted(expectations_dir().rglob("*.json")):
        assert f"som_reference/expectations/{path.relative_to(expectations_dir()).as_posix()}" in names
    assert {"som_reference/__init__.py", "pipeline/cli.py", "som_models/__init__.py"} <= names
