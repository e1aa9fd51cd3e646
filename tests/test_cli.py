"""The `som` command: bad input is one clear line and exit code 2; help answers quickly."""

import subprocess
import sys

from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def test_negative_persons_is_a_clear_error():
    result = runner.invoke(app, ["demo", "--persons", "-5"])
    assert result.exit_code == 2
    assert "--persons must be at least 200" in result.output
    assert "Traceback" not in result.output


def test_unwritable_workdir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["demo", "--workdir", str(blocker / "sub")])
    assert result.exit_code == 2
    assert "is not writable" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_help_lists_commands_without_importing_heavy_libraries():
    code = ("import sys; from pipeline.cli import app; "
            "print(','.join(m for m in ('dagster','great_expectations','polars') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "demo" in result.output and "ui" in result.output


def test_every_command_has_a_purpose_and_an_example():
    import typer.main

    from pipeline.cli import app as root

    group = typer.main.get_group(root)
    expected = {"demo", "generate", "ingest", "estimate", "evaluate", "params", "audit", "project", "kb", "report", "ui"}
    assert expected <= set(group.commands)
    for name, command in group.commands.items():
        text = command.help or ""
        assert text.strip() and "Example:" in text, f"som {name} --help lacks a purpose line or an example"
