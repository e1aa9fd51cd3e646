"""docs/notebook.md cannot rot: its ```python blocks run in order, in a temporary directory, as a notebook would.

Each block runs in one shared namespace; when a block ends in an expression, its value is displayed (``repr``),
as a notebook cell shows its last value.
"""

import ast
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "notebook.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def run_cell(source: str, namespace: dict, name: str) -> str | None:
    """Execute one cell; return the repr of its last expression (None when it ends in a statement)."""
    tree = ast.parse(source, filename=name)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body = tree.body[:-1]
    exec(compile(tree, name, "exec"), namespace)
    if last is None:
        return None
    return repr(eval(compile(ast.Expression(last.value), name, "eval"), namespace))


def test_notebook_quick_start_runs(tmp_path, monkeypatch, capsys):
    cells = blocks()
    assert len(cells) >= 8, "the quick start lost its code blocks"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__notebook__"}
    shown = [run_cell(src, namespace, f"{DOC.name}[block {k}]") for k, src in enumerate(cells, start=1)]
    printed = capsys.readouterr().out
    # The walk-through did what it says: a delivery in the temporary folder, summaries, verdicts, a Monte Carlo.
    assert (tmp_path / "delivery" / "manifest.json").exists()
    assert "Realised effects by year since start" in printed and "Monte Carlo — housing_first_demo" in printed
    labels = {v.assumption: v.label for v in namespace["verdicts"]}
    assert set(labels) == {"success_rate", "effect_path:shelter_nights", "effect_path:kontanthjaelp_weeks",
                           "course_path:shelter_nights", "course_path:kontanthjaelp_weeks"}
    assert all(f"{a:32} {label}" in printed for a, label in labels.items())
    assert namespace["mc"].draws == 2000 and shown[-1].startswith("shape: (4, 5)")
