"""Writing to a device or a pipe (``--json /dev/null``, a FIFO) writes into it and never replaces it: an atomic
rename onto ``/dev/null`` had put a regular file in its place (as root, for the whole machine)."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

from typer.testing import CliRunner

from pipeline.atomic import _special, write_text_atomic
from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]


def _read_fifo(path: Path, out: list[bytes]) -> threading.Thread:
    def run() -> None:
        with open(path, "rb") as f:
            out.append(f.read())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    write_text_atomic(fifo, "hello")
    reader.join(10)
    assert got == [b"hello"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary file left beside it


def test_devices_and_pipes_are_special_files_and_regular_files_are_not(tmp_path):
    assert _special(Path("/dev/null"))
    regular = tmp_path / "f.json"
    assert not _special(regular)  # absent
    regular.write_text("{}")
    assert not _special(regular) and not _special(tmp_path)


def test_som_project_json_to_a_pipe(tmp_path):
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    result = CliRunner().invoke(app, ["project", str(ROOT / "assets" / "parameters" / "housing_first_demo.yaml"),
                                      "--json", str(fifo)])
    reader.join(30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert "total" in json.loads(got[0])["npv"]  # the whole JSON document came through the pipe


def test_a_descriptor_link_is_written_into(tmp_path):
    """/dev/fd/N (like /dev/stdout redirected to a file) resolves to a regular file: written into, the link kept."""
    target = tmp_path / "redirected.txt"
    with open(target, "w") as f:
        link = Path(f"/dev/fd/{f.fileno()}")
        assert _special(link)
        write_text_atomic(link, "through the descriptor")
    assert target.read_text() == "through the descriptor"
    assert Path("/dev/fd").exists()
