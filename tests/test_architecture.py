"""som_models is pure science: it never imports dagster, SQLAlchemy, Great Expectations or pipeline."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("dagster", "sqlalchemy", "great_expectations", "pipeline", "alembic")


def test_no_forbidden_imports_in_source():
    offenders = []
    for path in (ROOT / "som_models").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders, offenders


def test_importing_every_som_models_module_loads_none_of_them():
    code = (
        "import importlib, pkgutil, sys, som_models\n"
        "for m in pkgutil.walk_packages(som_models.__path__, 'som_models.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
