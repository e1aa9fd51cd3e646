"""README's "A real evaluation, step by step" works verbatim after the quick start.

The fenced bash block of that section is run as written by bash (``set -euo pipefail``) in a temporary
folder holding the repository's ``assets/``, with two documented substitutions: ``uv run --frozen som`` is
the ``som`` entry point of the test environment (the same program), and ``--persons 20000`` becomes
``--persons 3000`` (time). A ``.som/`` left by a quick start (``som demo``) is placed beside it first, so the
walk-through must not depend on, or be confused by, the quick start's parameter versions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## A real evaluation, step by step"
SUBSTITUTIONS = {"--persons 20000": "--persons 3000"}


def walkthrough_script(readme: str) -> str:
    """The bash blocks of the walk-through section, joined (the section ends at the next ``## `` heading)."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start:end if end > 0 else None]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert blocks, "the walk-through section has no bash block"
    return "\n".join(blocks)


def test_walkthrough_script_is_what_the_readme_shows():
    script = walkthrough_script((ROOT / "README.md").read_text(encoding="utf-8"))
    commands = [line for line in script.splitlines() if line.startswith("uv run --frozen som ")]
    assert len(commands) >= 10 and all(s in script for s in SUBSTITUTIONS)
    # the version approved and projected is the one the walk-through's own evaluation proposes
    assert "params approve housing_first_demo 2" in script and "--version 2" in script


def test_readme_walkthrough_runs_verbatim(tmp_path):
    som = shutil.which("som", path=str(Path(sys.executable).parent))
    assert som, "the som entry point is installed in the test environment"
    script = walkthrough_script((ROOT / "README.md").read_text(encoding="utf-8"))
    script = script.replace("uv run --frozen som ", f"{som} ")
    for old, new in SUBSTITUTIONS.items():
        script = script.replace(old, new)
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    env = {k: v for k, v in os.environ.items() if k not in ("SOM_HOME", "SOM_DATABASE_URL")}
    # a quick start's store in ./.som (the default workdir) must be left alone
    from pipeline.store import ParameterStore

    quick = tmp_path / ".som"
    quick.mkdir()
    with ParameterStore(f"sqlite:///{quick / 'som.db'}") as store:
        store.ensure_parameter_set("housing_first_demo", {"success_rate": {"value": 0.5}}, source="quick start")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert "to approve: som params approve housing_first_demo 2 " in result.stdout
    assert "Approved version 2 of housing_first_demo" in result.stdout
    work = tmp_path / "walkthrough"
    ingest = json.loads((tmp_path / "panels" / "hf" / "ingest.json").read_text(encoding="utf-8"))
    with ParameterStore(f"sqlite:///{work / 'som.db'}") as store:
        approved = store.latest_approved("housing_first_demo")
        assert approved.version == 2 and approved.data_vintage == ingest["vintage"]
        run = store.get_run(approved.evaluation_run_id)
        assert run.data_vintage == ingest["vintage"] and run.tested_version == 1
    assert json.loads((tmp_path / "effects.json").read_text(encoding="utf-8"))["estimates"]
    assert list((work / "reports").glob("*.html"))
    with ParameterStore(f"sqlite:///{quick / 'som.db'}") as store:  # the quick start's store is untouched
        assert [v.version for v in store.versions("housing_first_demo")] == [1]
