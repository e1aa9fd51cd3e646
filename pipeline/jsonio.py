"""Strict JSON for every output of the pipeline (CLI ``--json``, stored evidence, summaries).

Strict means: what is written parses with any standard JSON parser. NaN and ±infinity (which Python's
``json`` writes as the non-standard tokens ``NaN``/``Infinity``) become ``null``; numpy scalars and arrays,
polars frames and series, dates, paths, sets and dataclasses are converted to plain JSON values; dumping
uses ``allow_nan=False`` so a non-finite number that slipped through is an error, not bad output.

``write_json(target, doc)`` is the one ``--json PATH|-`` writer: ``-`` writes the JSON (and nothing else) to
standard output; a path is written atomically. :func:`stdout_reserved` sends everything else a command
prints to standard error while JSON goes to standard output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any

from pipeline.atomic import write_text_atomic

STDOUT = "-"

_json_stdout: list[Any] = []  # the real standard output while :func:`stdout_reserved` is active


class NonFiniteError(ValueError):
    """A NaN or infinite number where the caller asked for an error (e.g. inside a parameter document)."""


def to_jsonable(value: Any, *, nonfinite: str = "null", fallback: Callable[[Any], Any] | None = None) -> Any:
    """A copy of ``value`` made only of dict/list/str/int/float/bool/None.

    Non-finite floats become ``None`` (``nonfinite="null"``) or raise :class:`NonFiniteError`
    (``nonfinite="error"``). Mapping keys become strings; tuples and sets become lists (sets sorted by their
    JSON text); numpy scalars/arrays via ``tolist()``; polars frames as a list of row dicts, series as a
    list; datetimes, dates and times in ISO 8601; paths as strings; dataclass instances as dicts. Any other
    type raises ``TypeError`` unless ``fallback`` (e.g. ``str``) converts it.
    """
    if nonfinite not in ("null", "error"):
        raise ValueError("nonfinite must be 'null' or 'error'")

    def conv(v: Any) -> Any:
        if v is None or isinstance(v, (str, bool)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            if math.isfinite(v):
                return float(v)
            if nonfinite == "error":
                raise NonFiniteError(f"non-finite number {v!r}")
            return None
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, (set, frozenset)):
            return sorted((conv(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True))
        if isinstance(v, (datetime, date, time)):
            return v.isoformat()
        if isinstance(v, PurePath):
            return str(v)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return conv({f.name: getattr(v, f.name) for f in dataclasses.fields(v)})
        module = type(v).__module__ or ""
        if module.startswith("polars"):
            if hasattr(v, "to_dicts"):
                return conv(v.to_dicts())
            if hasattr(v, "to_list"):
                return conv(v.to_list())
        if hasattr(v, "tolist") and (module.startswith("numpy") or module.startswith("pandas")):
            return conv(v.tolist())
        if fallback is not None:
            return conv(fallback(v))
        raise TypeError(f"{type(v).__name__} is not JSON-serialisable")

    return conv(value)


def dumps(doc: Any, *, indent: int | None = 2, sort_keys: bool = False, fallback: Callable[[Any], Any] | None = None) -> str:
    """Strict JSON text of ``doc`` (see :func:`to_jsonable`; non-finite numbers become ``null``)."""
    return json.dumps(to_jsonable(doc, fallback=fallback), indent=indent, sort_keys=sort_keys, ensure_ascii=False,
                      allow_nan=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not strict JSON: {name}")


def loads(text: str | bytes) -> Any:
    """Parse strict JSON: the non-standard tokens ``NaN``, ``Infinity`` and ``-Infinity`` are errors."""
    return json.loads(text, parse_constant=_reject_constant)


def write_json(target: str | os.PathLike, doc: Any, *, fallback: Callable[[Any], Any] | None = None) -> str | None:
    """Write ``doc`` as strict JSON to ``target``: ``-`` = standard output (JSON only), else the file, atomically.

    Returns the written path as text (``None`` for standard output). Raises ``OSError`` if the file cannot be
    written and ``TypeError`` for a value with no JSON form.
    """
    text = dumps(doc, fallback=fallback) + "\n"
    if str(target) == STDOUT:
        out = _json_stdout[-1] if _json_stdout else sys.stdout
        out.write(text)
        out.flush()
        return None
    path = os.fspath(target)
    write_text_atomic(os.path.expanduser(path), text)
    return path


@contextlib.contextmanager
def stdout_reserved(target: str | os.PathLike | None) -> Iterator[None]:
    """While active with ``target == "-"``, everything printed to ``sys.stdout`` goes to standard error.

    :func:`write_json` still writes to the real standard output, so a command run with ``--json -`` emits
    exactly one JSON document on stdout and its human output (tables, progress, "wrote …") on stderr.
    With any other target this does nothing.
    """
    if target is None or str(target) != STDOUT:
        yield
        return
    real = sys.stdout
    _json_stdout.append(real)
    try:
        with contextlib.redirect_stdout(sys.stderr if sys.stderr is not None else io.StringIO()):
            yield
    finally:
        _json_stdout.pop()
