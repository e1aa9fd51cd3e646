"""scipy's statistics and optimisation modules, imported on first use.

``import scipy.stats`` takes about a second (scipy.optimize a third of that); most commands (``som --help``,
``som params``, ``som kb search``, loading the Dagster code location) never compute a p-value. The modules that do
take ``stats`` / ``optimize`` from here: the real module is imported when the first attribute is looked up
(``stats.norm``), once per process.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A module imported when one of its attributes is first looked up."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name} ({state})>"


stats = LazyModule("scipy.stats")
optimize = LazyModule("scipy.optimize")
