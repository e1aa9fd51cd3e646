"""An ingest output switches from old to new as a whole: interrupted at any step, the folder shows one complete
output (the previous one until the pointer moves, then the new one), and the next run finishes cleanly."""

import json
import os
import shutil

import polars as pl
import pytest

from pipeline.registers import ingest as _ingest
from pipeline.registers import output
from tests.test_ingest import KEY, _delivery

NAMES = ("panel.parquet", "treatments.parquet", "ingest.json")


class Killed(BaseException):
    """Stands for kill -9: a BaseException, so no ``except Exception`` in the code under test can swallow it."""


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    """Two deliveries whose panels differ (a shelter stay starts a day earlier in the second)."""
    root = tmp_path_factory.mktemp("switch")
    (root / "a").mkdir()
    (root / "b").mkdir()
    old = _delivery(root / "a")
    new = _delivery(root / "b", shelter_start_a="2019-12-29")
    ingest(old, root / "a" / "ref", KEY)
    ingest(new, root / "b" / "ref", KEY)
    return old, new, _state(root / "a" / "ref"), _state(root / "b" / "ref")


def _state(out):
    """(data_hash of ingest.json, panel bytes, treatments bytes) as a reader sees them through the names."""
    doc = json.loads((out / "ingest.json").read_text())
    return doc["data_hash"], (out / "panel.parquet").read_bytes(), (out / "treatments.parquet").read_bytes()


def _make_plain(out):
    """Turn the output folder into plain files with the same bytes (an earlier layout, or a copied folder)."""
    data = {n: (out / n).read_bytes() for n in NAMES}
    shutil.rmtree(out / ".ingest")
    for n in NAMES:
        (out / n).unlink()
        (out / n).write_bytes(data[n])


def ingest(delivery, out, key):
    return _ingest(delivery, out, key, max_gx_rows=0)  # the polars engine: no GX import, same rules


def _versions(out):
    return sorted(p.name for p in (out / ".ingest").iterdir() if p.name not in ("current", "lock"))


@pytest.mark.parametrize("layout", ["pointer", "plain files"])
@pytest.mark.parametrize("step", ["stage", "adopt", "switch", "links"])
def test_interrupted_between_steps_leaves_one_whole_output(deliveries, tmp_path, monkeypatch, step, layout):
    old, new, ref_old, ref_new = deliveries
    assert ref_old[0] != ref_new[0] and ref_old[1] != ref_new[1]
    out = tmp_path / "out"
    ingest(old, out, KEY)
    if layout == "plain files":  # an output written before this layout, or a copy of an output folder
        _make_plain(out)
    before = _state(out)

    def interrupt(name):
        if name == step:
            raise Killed(name)

    monkeypatch.setattr(output, "_step", interrupt)
    with pytest.raises(Killed):
        ingest(new, out, KEY)
    seen = _state(out)
    # Until the pointer moves every name shows the previous output; from then on every name shows the new one.
    want = before if step in ("stage", "adopt") else None
    if want is not None:
        assert seen == want and seen[0] == ref_old[0]
    else:
        assert seen[0] == ref_new[0]
        assert pl.read_parquet(out / "panel.parquet").equals(pl.read_parquet(old.parent.parent / "b" / "ref" / "panel.parquet"))
    # The next (uninterrupted) run completes and prunes what the interrupted one left.
    monkeypatch.setattr(output, "_step", lambda name: None)
    ingest(new, out, KEY)
    assert _state(out)[0] == ref_new[0]
    assert pl.read_parquet(out / "panel.parquet").equals(pl.read_parquet(old.parent.parent / "b" / "ref" / "panel.parquet"))
    assert len(_versions(out)) == 1


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_interrupted_between_the_renames_of_an_adoption(deliveries, tmp_path, monkeypatch, k):
    """Killed at the k-th link replacement (adopting plain files moves each name separately): still old."""
    old, new, _, _ = deliveries
    out = tmp_path / "out"
    ingest(old, out, KEY)
    _make_plain(out)
    before = _state(out)
    real_link, calls = output._link, []

    def link(target, at):
        calls.append(at.name)
        if len(calls) == k:
            raise Killed(at.name)
        real_link(target, at)

    monkeypatch.setattr(output, "_link", link)
    with pytest.raises(Killed):
        ingest(new, out, KEY)
    # links 1–4 belong to the adoption (current → old copy, then the three names), link 5 is the switch (killed
    # before its rename): the old output throughout.
    assert len(calls) == k and _state(out) == before
    monkeypatch.setattr(output, "_link", real_link)
    ingest(new, out, KEY)
    assert _state(out)[0] != before[0] and len(_versions(out)) == 1


def test_fallback_without_symbolic_links_replaces_the_files(deliveries, tmp_path, monkeypatch):
    old = deliveries[0]
    monkeypatch.setattr(output, "_symlinks_work", lambda folder: False)
    result = ingest(old, tmp_path / "out", KEY)
    assert all((tmp_path / "out" / n).is_file() and not (tmp_path / "out" / n).is_symlink() for n in NAMES)
    assert pl.read_parquet(result.panel).height == 3


def test_two_runs_into_one_folder_take_turns(deliveries, tmp_path):
    """Concurrent ingests into the same folder: both succeed, the output is one whole version, none is lost."""
    from concurrent.futures import ThreadPoolExecutor

    old, new, ref_old, ref_new = deliveries
    out = tmp_path / "out"
    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(ingest, d, out, KEY) for d in (old, new, old, new)]:
            f.result()
    seen = _state(out)
    assert seen[0] in (ref_old[0], ref_new[0])
    ref_dir = old.parent / "ref" if seen[0] == ref_old[0] else new.parent / "ref"
    assert pl.read_parquet(out / "panel.parquet").equals(pl.read_parquet(ref_dir / "panel.parquet"))
    assert pl.read_parquet(out / "treatments.parquet").equals(pl.read_parquet(ref_dir / "treatments.parquet"))
    assert len(_versions(out)) == 1
    assert os.readlink(out / ".ingest" / "current") in _versions(out)


_KILLER = """
import os, signal, sys
from pathlib import Path
from pipeline.registers import ingest, output
step, delivery, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
real_link, calls = output._link, []
def link(target, at):
    calls.append(at.name)
    if step == f"link{len(calls)}":
        os.kill(os.getpid(), signal.SIGKILL)
    real_link(target, at)
output._link = link
output._step = lambda name: os.kill(os.getpid(), signal.SIGKILL) if name == step else None
ingest(delivery, out, bytes.fromhex(sys.argv[4]), max_gx_rows=0)
"""


@pytest.mark.parametrize("step", ["link2", "adopt", "switch"])
def test_kill_9_between_the_renames(deliveries, tmp_path, step):
    """A real SIGKILL (no clean-up runs) inside the adoption, before and after the switch."""
    import subprocess
    import sys

    old, new, ref_old, ref_new = deliveries
    out = tmp_path / "out"
    ingest(old, out, KEY)
    _make_plain(out)
    before = _state(out)
    proc = subprocess.run([sys.executable, "-c", _KILLER, step, str(new), str(out), KEY.hex()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    # before the pointer moves: every name shows the old output; after: every name the new one (same bytes)
    assert _state(out) == (before if step != "switch" else ref_new)
    assert before == ref_old
    ingest(new, out, KEY)
    assert _state(out)[0] == ref_new[0] and len(_versions(out)) == 1
