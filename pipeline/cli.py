"""The ``som`` command (typer + rich). Heavy libraries are imported inside commands so ``--help`` is fast.

Commands live in ``pipeline/commands/<name>.py``; each module defines ``register(app)`` and is discovered
here, so adding a command means adding a module (import heavy libraries inside the command functions).

Exit codes: 0 success; 2 bad input or usage; 3 a delivery or data check refused the run; 1 anything else.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(help="SØM evaluation pipeline: register data → realised effects → verdicts → parameter versions → projections.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
# Piped output (CI logs, files) gets a wide fixed width so tables are not cut; terminals use their own width.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)

EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3

WorkdirOpt = typer.Option(None, "--workdir", "-w", help="Work folder (default: $SOM_HOME, else ./.som).")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print one clear error line (never a traceback) and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _register_commands() -> None:
    import importlib
    import pkgutil

    from pipeline import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"pipeline.commands.{info.name}").register(app)


_register_commands()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
