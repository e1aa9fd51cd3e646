"""README's two quick-start commands exist, and .ci/run runs exactly the README's test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = "python3 -m pip install uv==0.13.9 && uv run --frozen pytest"
    assert f"```bash\n{test_cmd}\n```" in readme
    assert ci.strip().splitlines()[-1] == test_cmd
    assert "```bash\npython3 -m pip install uv==0.13.9 && uv run --frozen som demo\n```" in readme
