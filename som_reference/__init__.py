"""The project's reference data — ``assets/`` and ``expectations/`` — located through :mod:`importlib.resources`.

In the repository both are top-level folders, and this package holds two relative links to them
(``som_reference/assets`` → ``../assets``, ``som_reference/expectations`` → ``../expectations``). The wheel build
follows the links and stores the files inside the package, so one lookup serves every installation:
``importlib.resources.files("som_reference") / "assets"`` is the repository's folder in a development checkout
(uv's editable install imports the package from the source tree) and the packaged copy in an installed wheel.

``som_models`` and ``pipeline`` both locate data here (``som_models`` never imports ``pipeline``); the strict YAML
loader every reference file goes through is :mod:`som_reference.strict_yaml`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["ReferenceDataMissing", "asset", "assets_dir", "data_root", "expectations_dir"]


class ReferenceDataMissing(FileNotFoundError):
    """The packaged reference data cannot be found (a broken installation or a checkout without its links)."""


def data_root() -> Path:
    """The folder holding ``assets/`` and ``expectations/`` (this package's resource directory)."""
    root = resources.files(__name__)
    if not isinstance(root, Path):  # e.g. imported from a zip archive: the code base reads data as files
        raise ReferenceDataMissing(f"som_reference is not installed as files on disk ({root!r}); install the wheel unzipped")
    return root


def _folder(name: str) -> Path:
    path = data_root() / name
    if not path.is_dir():
        raise ReferenceDataMissing(
            f"{path}: reference data folder not found — reinstall the package, or in a checkout restore the link "
            f"som_reference/{name} → ../{name} (git with core.symlinks)")
    return path.resolve()  # in a checkout: the top-level folder itself, so paths in messages read assets/…


def assets_dir() -> Path:
    """``assets/``: unit prices, price index, refusion rules, knowledge base, parameter seeds, code lists, specs."""
    return _folder("assets")


def expectations_dir() -> Path:
    """``expectations/``: the Great Expectations suites (native GX Core 1.x JSON)."""
    return _folder("expectations")


def asset(*parts: str) -> Path:
    """A path under ``assets/`` (not checked for existence), e.g. ``asset("evaluations", "housing_first_demo.yaml")``."""
    return assets_dir().joinpath(*parts)
