"""Where a `som` command reads and writes: ``--workdir``, else ``SOM_HOME``, else ``.som/`` in the current folder.

Layout under the workdir: ``som.db`` (SQLite store, unless ``SOM_DATABASE_URL`` is set), ``dagster/``
(the Dagster instance, telemetry off), ``storage/`` (asset values: Parquet for frames), ``deliveries/``,
``reports/`` and ``secrets/`` (the pseudonymisation key).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from som_reference import asset

#: The demo's evaluation spec (packaged reference data, see :mod:`som_reference`).
DEFAULT_SPEC = asset("evaluations", "housing_first_demo.yaml")
#: The one Dagster code location (``workspace.yaml`` in the repository names the same module).
CODE_LOCATION_MODULE = "pipeline.definitions"

DAGSTER_YAML = """\
# Dagster instance for this som workdir (written by `som`); telemetry is off.
telemetry:
  enabled: false
"""


class WorkdirError(ValueError):
    """The workdir cannot be used (not creatable or not writable)."""


def resolve_workdir(workdir: str | os.PathLike | None = None) -> Path:
    """The workdir path (not created): explicit argument, else ``SOM_HOME``, else ``./.som``."""
    if workdir:
        return Path(workdir).expanduser().resolve()
    env = os.environ.get("SOM_HOME", "").strip()
    return Path(env).expanduser().resolve() if env else (Path.cwd() / ".som").resolve()


#: the lock file that serialises the first-time set-up of a workdir across processes (:func:`setup_lock`)
SETUP_LOCK = ".setup.lock"


def setup_lock(workdir: Path):
    """An exclusive cross-process lock on ``{workdir}/.setup.lock`` (:func:`pipeline.atomic.file_lock`): held
    while a workdir is prepared and while its Dagster instance is first opened, so that concurrent starts on a
    fresh workdir do not race on creating files and databases."""
    from pipeline.atomic import file_lock

    return file_lock(Path(workdir) / SETUP_LOCK)


def prepare_workdir(workdir: str | os.PathLike | None = None) -> Path:
    """Create the workdir and its Dagster instance folder; raise :class:`WorkdirError` if not writable.

    Safe under concurrent starts: the write probe is a unique temporary file, ``dagster.yaml`` is written
    atomically, and the whole set-up holds :func:`setup_lock`.
    """
    import tempfile

    from pipeline.atomic import write_text_atomic

    path = resolve_workdir(workdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with setup_lock(path):
            with tempfile.NamedTemporaryFile(prefix=".write-test-", dir=path):
                pass
            dagster_home = path / "dagster"
            dagster_home.mkdir(exist_ok=True)
            cfg = dagster_home / "dagster.yaml"
            if not cfg.exists():
                write_text_atomic(cfg, DAGSTER_YAML)
    except OSError as exc:
        raise WorkdirError(f"workdir {path} is not writable ({exc.strerror or exc})") from None
    return path


def dagster_home(workdir: Path) -> Path:
    return workdir / "dagster"


def dagster_dev_command(port: int) -> list[str]:
    """``dagster dev`` serving the code location by module, so it works from a checkout and an installed wheel alike.

    The repository's ``workspace.yaml`` names the same module; loading it by ``-m`` needs no workspace file on disk.
    """
    return [sys.executable, "-m", "dagster", "dev", "-m", CODE_LOCATION_MODULE, "-p", str(port)]
