"""`som evaluate`: the documented spec on a panel handed over as Danish CSV, a register delivery through
Dagster, reruns, and bad input (one line, exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.disclosure import suppress_verdict
from pipeline.registers import build_panel, read_manifest
from pipeline.store import ParameterStore
from pipeline.store.testing import SKIP_REASON, postgres_admin_url, temporary_postgres_database

ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = ROOT / "assets" / "evaluations" / "housing_first_demo.yaml"
# the planted verdicts: success rate and shelter nights close to the assumption, kontanthjælp far more optimistic;
# the seed's course-year effects (per participant, event time 0): −14 nights within reach but not shown
# equivalent, −3 kontanthjælp weeks far above the realised ≈ −1
PLANTED = {"success_rate": "consistent", "effect_path:shelter_nights": "consistent",
           "effect_path:kontanthjaelp_weeks": "refuted-overestimated",
           "course_path:shelter_nights": "inconclusive", "course_path:kontanthjaelp_weeks": "refuted-overestimated"}
# the demo world: shelter nights are within the margin, but at this first look (information fraction ≈ 0.5, linear
# alpha spending over repeated looks, Holm over five assumptions) equivalence is not yet shown
FIRST_LOOK_DEMO = {**PLANTED, "effect_path:shelter_nights": "inconclusive"}
runner = CliRunner()


def documented_example() -> str:
    """The YAML example of docs/evaluation-spec.md (the spec format's documentation is run, not just read)."""
    import re

    text = (ROOT / "docs" / "evaluation-spec.md").read_text(encoding="utf-8")
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.S)[0]


def place_spec(tmp_path: Path, text: str) -> Path:
    """The spec at tmp/evaluations/spec.yaml with the demo parameter file at tmp/parameters/ (as in assets/)."""
    import shutil

    (tmp_path / "parameters").mkdir(exist_ok=True)
    shutil.copy(ROOT / "assets" / "parameters" / "housing_first_demo.yaml", tmp_path / "parameters")
    (tmp_path / "evaluations").mkdir(exist_ok=True)
    path = tmp_path / "evaluations" / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _danish_csv(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` as a Danish-dialect CSV: ';' separator and decimal comma."""
    text = df.with_columns(pl.col(pl.Float64).map_elements(lambda x: f"{x}".replace(".", ","), return_dtype=pl.Utf8))
    text.write_csv(path, separator=";")


@pytest.fixture(scope="module")
def handed_over(demo_delivery, tmp_path_factory):
    """The demo world as an analyst might receive it: CSV files with their own column names."""
    folder, _ = demo_delivery
    built = build_panel(read_manifest(folder), b"k" * 32)
    out = tmp_path_factory.mktemp("handover")
    panel = built.panel.select(
        pl.col("person_id").alias("cpr_pseudo"), pl.col("year").alias("aar"),
        pl.col("shelter_nights").cast(pl.Float64).alias("herberg_naetter"),
        pl.col("kontanthjaelp_weeks").cast(pl.Float64).alias("kh_uger"))
    treatments = built.treatments.select(pl.col("person_id").alias("cpr_pseudo"), pl.col("start_year").alias("start_aar"))
    return out, panel, treatments


@pytest.fixture
def spec(tmp_path, handed_over):
    """The documented example spec, next to its panel and treatments files."""
    src, panel, treatments = handed_over
    path = place_spec(tmp_path, documented_example())
    _danish_csv(panel, path.parent / "panel_2023.csv")
    treatments.write_csv(path.parent / "participants_2023.csv")
    return path


def _invoke(args, env=None):
    # SOM_EVALUATIONS_DIR may be set by `som evaluate --delivery`; listing it makes the runner restore it.
    return runner.invoke(app, args, env={"SOM_DATABASE_URL": "", "SOM_EVALUATIONS_DIR": None, **(env or {})})


def test_documented_spec_on_a_danish_csv_panel(spec, tmp_path):
    work = tmp_path / "work"
    out = tmp_path / "result.json"
    result = _invoke(["evaluate", str(spec), "--workdir", str(work), "--vintage", "2023-06", "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    labels = {v["assumption"]: v["label"] for v in doc["verdicts"]}
    # a handed-over panel has no course dates and no cost file: those two volume checks are inconclusive
    assert labels == {**FIRST_LOOK_DEMO, "participants": "refuted-underestimated", "course_years": "inconclusive",
                      "cost_per_participant": "inconclusive"}
    assert doc["proposal"]["version"] == 2 and doc["proposal"]["reused"] is False and doc["tested_version"] == 1
    assert doc["run"]["data_vintage"] == "2023-06" and len(doc["run"]["data_hash"]) == 64
    assert doc["projections"]["before"]["npv"]["total"] != doc["projections"]["after"]["npv"]["total"]
    assert "refuted-overestimated" in result.stdout and "Proposal: new version 2" in result.stdout
    with ParameterStore(f"sqlite:///{work / 'som.db'}") as store:
        v1, v2 = store.versions("housing_first_demo")
        # Only kontanthjælp is re-estimated, as the spec asks; shelter nights keep their profile.
        assert v2.content["consequences"]["shelter_nights"] == v1.content["consequences"]["shelter_nights"]
        weeks = "kontanthjaelp_weeks"
        assert v2.content["consequences"][weeks]["units"] != v1.content["consequences"][weeks]["units"]
        assert len(store.verdicts_for_run(doc["run"]["id"])) == 8  # 5 effect (2 course paths) + 3 volume

    again = _invoke(["evaluate", str(spec), "--workdir", str(work), "--vintage", "2023-06", "--json", "-"])
    assert again.exit_code == 0, again.output
    redo = json.loads(again.stdout)  # nothing but JSON on standard output
    assert redo["proposal"] == {**doc["proposal"], "reused": True}
    assert redo["run"]["id"] != doc["run"]["id"]
    with ParameterStore(f"sqlite:///{work / 'som.db'}") as store:
        assert [v.version for v in store.versions("housing_first_demo")] == [1, 2]
        assert all(len(store.verdicts_for_run(r.id)) == 8 for r in store.runs("housing_first_demo"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_panel_from_the_command_line_and_a_chosen_version(spec, tmp_path, backend):
    src, panel, treatments = handed_over_files(spec)
    env = {}
    if backend == "postgresql":
        admin = postgres_admin_url()
        if admin is None:
            pytest.skip(SKIP_REASON)
        ctx = temporary_postgres_database(admin)
        env["SOM_DATABASE_URL"] = ctx.__enter__()
    try:
        args = ["evaluate", str(spec), "--workdir", str(tmp_path / "w"), "--panel", str(panel),
                "--treatments", str(treatments), "--json", "-"]
        first = _invoke(args, env)
        assert first.exit_code == 0, first.output
        # Approve version 2, then evaluate version 1 again on purpose (parameter_version: 1).
        assert _invoke(["params", "approve", "housing_first_demo", "2", "--reason", "ok", "--by", "t",
                        "--workdir", str(tmp_path / "w")], env).exit_code == 0
        doc = yaml.safe_load(spec.read_text())
        spec.write_text(yaml.safe_dump({**doc, "parameter_version": 1}))
        second = _invoke(args, env)
        assert second.exit_code == 0, second.output
        again = json.loads(second.stdout)
        assert again["tested_version"] == 1 and again["proposal"]["status"] == "approved"  # same content as v2
        spec.write_text(yaml.safe_dump({**doc, "parameter_version": 7}))
        missing = _invoke(args, env)
        assert missing.exit_code == 2 and "no version 7" in missing.stderr
    finally:
        if backend == "postgresql":
            ctx.__exit__(None, None, None)


def handed_over_files(spec: Path) -> tuple[Path, Path, Path]:
    return spec.parent, spec.parent / "panel_2023.csv", spec.parent / "participants_2023.csv"


def test_delivery_runs_through_dagster_and_shows_in_the_audit(demo_delivery, tmp_path):
    folder, _ = demo_delivery
    work = tmp_path / "w"
    result = _invoke(["evaluate", str(DEMO_SPEC), "--delivery", str(folder), "--workdir", str(work), "--json", "-",
                      "--lang", "en"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (report,) = (work / "reports").glob("*.html")  # the run's audit report, in the asked language
    html = report.read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "What was assumed" in html
    assert {v["assumption"]: v["label"] for v in doc["verdicts"]} == {
        **FIRST_LOOK_DEMO, "participants": "refuted-underestimated", "course_years": "consistent",
        "cost_per_participant": "consistent"}
    assert doc["source"] == {"delivery": str(folder.resolve())} and doc["proposal"]["version"] == 2
    # Path-level evidence is kept with every verdict (and small cells would be blanked).
    path = doc["verdicts"][1]["evidence"]["path"]
    assert [p["consequence_year"] for p in path] == [1, 2, 3, 4] and all(p["n_treated"] >= 5 for p in path)
    audit = _invoke(["audit", "housing_first_demo", "--workdir", str(work), "--json", "-"])
    assert audit.exit_code == 0, audit.output
    trail = json.loads(audit.stdout)
    # one point per assumption on the one vintage: the five effect assumptions and the three volume checks
    assert trail["points"] == 8 and trail["vintages"] == 1
    assert trail["assumptions"]["participants"][0]["label"] == "refuted-underestimated"
    assert trail["assumptions"]["effect_path:kontanthjaelp_weeks"][0]["label"] == "refuted-overestimated"


@pytest.mark.parametrize("args, message", [
    (["evaluate", "nope.yaml", "--panel", "p.csv"], "file not found"),
    (["evaluate", "{spec}", "--delivery", "d", "--panel", "p"], "either a delivery (--delivery) or a panel (--panel"),
    (["evaluate", "{spec}", "--treatments", "t.csv"], "(--treatments) needs a panel (--panel)"),
    (["evaluate", "{spec}", "--panel", "missing.csv"], "missing.csv: file not found"),
    (["evaluate", "{spec}", "--panel", "{dir}/notes.txt"], "unsupported file type '.txt'"),
    (["evaluate", "{spec}", "--delivery", "{dir}"], "manifest.json not found"),
    (["evaluate", "{spec}", "--delivery", "{dir}/nowhere"], "delivery folder not found"),
    (["evaluate", "{spec}", "--delivery", "{dir}", "--vintage", "x"], "(--vintage) applies to panels"),
    (["evaluate", "{spec}", "--panel", "{dir}/panel_2023.csv"], "start_aar"),
    (["evaluate", "{spec}", "--panel", "{dir}/panel_2023.csv", "--lang", "xx"], "report language 'xx' is not available"),
])
def test_bad_input_is_one_line_and_exit_2(spec, tmp_path, args, message):
    (spec.parent / "notes.txt").write_text("x")
    args = [a.format(spec=spec, dir=spec.parent) for a in args] + ["--workdir", str(tmp_path / "w")]
    result = _invoke(args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_spec_and_bad_panel_columns(spec, tmp_path):
    doc = yaml.safe_load(spec.read_text())
    for change, message in (
        ({"colour": "red"}, "colour: unknown key"),
        ({"outcomes": {"shelter_nights": "naetter"}}, "panel column 'naetter' (for shelter_nights) not found"),
        ({"data": {**doc["data"], "columns": {"person_id": "cpr", "year": "aar", "start_year": "start_aar"}}},
         "column 'cpr' (person_id) not found"),
    ):
        bad = spec.parent / "bad.yaml"
        bad.write_text(yaml.safe_dump({**doc, **change}))
        result = _invoke(["evaluate", str(bad), "--workdir", str(tmp_path / "w")])
        assert result.exit_code == 2 and message in result.stderr, (change, result.output)
    lines = (spec.parent / "panel_2023.csv").read_text().splitlines()
    header, first = lines[0].split(";"), lines[1].split(";")
    first[header.index("herberg_naetter")] = "mange"  # "many": a word where a number belongs
    (spec.parent / "panel_2023.csv").write_text("\n".join([lines[0], ";".join(first), *lines[2:]]) + "\n")
    result = _invoke(["evaluate", str(spec), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2 and "is not numeric" in result.stderr, result.output
    nodata = spec.parent / "nodata.yaml"
    nodata.write_text(yaml.safe_dump({k: v for k, v in doc.items() if k != "data"}))
    result = _invoke(["evaluate", str(nodata), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2 and "no data" in result.stderr


def test_small_cells_are_blanked_in_output():
    record = {"realised": 1.0, "ci_low": 0.5, "ci_high": 1.5, "statistic": 2.0, "p_value": 0.04, "p_adjusted": 0.05,
              "evidence": {"n_treated": 3, "path": [{"event_time": 1, "realised": 1.0, "se": 0.2, "n_treated": 3},
                                                    {"event_time": 2, "realised": 2.0, "se": 0.2, "n_treated": 30}],
                           "tost": {"p_value": 0.2}}}
    out = suppress_verdict(record, 5)
    assert out["realised"] is None and out["ci_low"] is None and "tost" not in out["evidence"]
    assert out["evidence"]["path"][0] == {"event_time": 1, "realised": None, "se": None, "n_treated": None, "suppressed": True}
    assert out["evidence"]["path"][1]["realised"] == 2.0
    assert record["realised"] == 1.0  # the input is not modified
    kept = suppress_verdict({**record, "evidence": {**record["evidence"], "n_treated": 30}}, 5)
    assert kept["realised"] == 1.0 and kept["evidence"]["path"][0]["suppressed"]


def test_panel_without_a_treatments_file(tmp_path):
    from pipeline.registers import DeliveryError as ParameterError
    from pipeline.registers import handover as ev

    panel = pl.DataFrame({"id": [1, 1, 2, 2, 3, 3], "yr": [2019, 2020] * 3, "first": [2020, 2020, 0, 0, None, None],
                          "nights": [3.0, 0.0, 1.0, 2.0, 0.0, 1.0]})
    path = tmp_path / "panel.parquet"
    panel.write_parquet(path)
    columns = {"person_id": "id", "year": "yr", "start_year": "first"}
    data, treated = ev.read_panel(path, None, columns)
    assert data.columns == ["person_id", "year", "nights"] and data["person_id"].dtype == pl.Utf8
    assert treated.to_dicts() == [{"person_id": "1", "start_year": 2020}]  # 0 and empty: never treated
    panel.with_columns(pl.when(pl.col("yr") == 2019).then(2019).otherwise(pl.col("first")).alias("first")).write_parquet(path)
    with pytest.raises(ParameterError, match="varies within 3 person"):
        ev.read_panel(path, None, columns)
    panel.with_columns(pl.lit("soon").alias("first")).write_parquet(path)
    with pytest.raises(ParameterError, match="not an integer year"):
        ev.read_panel(path, None, columns)
    with pytest.raises(ParameterError, match="no treatments file and no column 'start_year'"):
        ev.read_panel(path, None, {"person_id": "id", "year": "yr"})
