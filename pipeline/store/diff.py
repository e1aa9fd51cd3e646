"""Differences between two parameter documents (``som params diff``), as a flat list of changed paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def _walk(a: Any, b: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            _walk(a.get(key, _MISSING), b.get(key, _MISSING), f"{path}.{key}" if path else str(key), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for k, (x, y) in enumerate(zip(a, b, strict=False)):
            _walk(x, y, f"{path}[{k}]", out)
    elif a is _MISSING:
        out.append({"path": path, "change": "added", "from": None, "to": b})
    elif b is _MISSING:
        out.append({"path": path, "change": "removed", "from": a, "to": None})
    elif a != b or isinstance(a, bool) != isinstance(b, bool):
        out.append({"path": path or "(document)", "change": "changed", "from": a, "to": b})


def diff_documents(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every leaf that differs between ``a`` and ``b``: ``{path, change (added|removed|changed), from, to}``.

    Paths use dots for keys and ``[k]`` for list positions (lists of equal length are compared element
    by element; otherwise the whole list is one change). Equal numbers of different types (1 vs 1.0)
    are not a change.
    """
    out: list[dict[str, Any]] = []
    _walk(a, b, "", out)
    return out
