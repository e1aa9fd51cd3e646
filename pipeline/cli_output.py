"""The ``--json PATH|-`` contract shared by every `som` command that writes a result document.

* ``--json PATH`` writes strict JSON (:mod:`pipeline.jsonio`) to PATH atomically and prints the usual human
  output, ending with ``Wrote PATH``;
* ``--json -`` writes the JSON document, and nothing else, to standard output; everything a command prints
  for people (tables, progress bars, spinners, notes) goes to standard error.

A command opts in with ``json_out: Optional[Path] = JsonOpt`` and the :func:`json_command` decorator, and
writes its document with :func:`emit_json`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from pipeline.jsonio import STDOUT, stdout_reserved, write_json

F = TypeVar("F", bound=Callable[..., Any])

JSON_HELP = ("Write the result as JSON to this file, or '-' for standard output (JSON only; "
             "the human output then goes to standard error).")
JsonOpt = typer.Option(None, "--json", help=JSON_HELP, metavar="PATH|-")


def json_command(func: F) -> F:
    """Wrap a command taking ``json_out`` so that with ``--json -`` its human output goes to standard error."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with stdout_reserved(kwargs.get("json_out")):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def emit_json(target: Path | str | None, doc: Any) -> None:
    """Write ``doc`` per the contract (nothing when ``target`` is None); a write error is one line, exit 2."""
    from pipeline.cli import console, fail

    if target is None:
        return
    try:
        path = write_json(target, doc)
    except OSError as exc:
        fail(f"could not write {target}: {exc.strerror or exc}")
    if path is not None:
        console.print(f"Wrote {path}", soft_wrap=True, highlight=False)


def json_to_stdout(target: Path | str | None) -> bool:
    """True when ``--json -`` was given."""
    return target is not None and str(target) == STDOUT
