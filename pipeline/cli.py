"""The ``som`` command (typer + rich). Heavy libraries are imported inside commands so ``--help`` is fast.

Commands live in ``pipeline/commands/<name>.py``; each module defines ``register(app)`` and is discovered
here, so adding a command means adding a module (import heavy libraries inside the command functions).

Output is plain text: both consoles have rich markup switched off, so a user's text (a reason ``[/x]``, a title,
a file name) is printed as it is and can never be taken for markup; styling is added with :class:`rich.text.Text`.

Exit codes: 0 success; 2 bad input or usage; 3 a delivery or data check refused the run; 1 an unexpected
error (one line; ``som --debug …`` shows the traceback).
"""

from __future__ import annotations

import sys

from pipeline.threads import apply_blas_policy

apply_blas_policy()  # before anything imports numpy (pipeline.threads)

import typer
from rich.console import Console
from rich.text import Text

EPILOG = ("Exit codes: 0 success · 2 bad input or usage · 3 a delivery or data check refused the run · "
          "1 unexpected error (add --debug for the traceback). Workdir: --workdir, else $SOM_HOME, else ./.som.")

app = typer.Typer(help="SØM evaluation pipeline: register data → realised effects → verdicts → parameter versions → projections.",
                  epilog=EPILOG, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
_state = {"debug": False}
# Piped output (CI logs, files) gets a wide fixed width so tables are not cut; terminals use their own width.
console = Console(width=None if sys.stdout.isatty() else 120, markup=False)
err = Console(stderr=True, markup=False)


def error_line(message: str) -> Text:
    """``error: message`` with the prefix in bold red and the message as plain text."""
    return Text.assemble(("error:", "bold red"), " ", message)


EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3

WorkdirOpt = typer.Option(None, "--workdir", "-w", help="Work folder (default: $SOM_HOME, else ./.som).")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print one clear error line (never a traceback) and exit with ``code``."""
    err.print(error_line(message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def debug_enabled() -> bool:
    """``som --debug`` was given (commands then show Dagster's log and tracebacks)."""
    return bool(_state["debug"])


def fail_run(failures: tuple[str, ...] | list[str], what: str) -> None:
    """Report a Dagster run that did not complete and exit 3: each failure is one line (the cause's message:
    file, column, rule, rows for a refused delivery), never a stack trace. One failure makes one error line;
    several are listed first, each on a line."""
    failures = list(failures) or ["a step failed"]
    if len(failures) == 1:
        fail(f"{what} — {failures[0]}", EXIT_REFUSED)
    for line in failures:
        err.print(Text.assemble(("•", "red"), f" {line}"), highlight=False, soft_wrap=True)
    fail(f"{what} (see above)", EXIT_REFUSED)


def _print_version(value: bool) -> None:
    """``som --version``: the package version and the code version recorded with runs (git commit in a checkout)."""
    if not value:
        return
    from pipeline.version import code_version, package_version

    console.print(f"som-evaluation {package_version()} (code version {code_version()})", highlight=False, soft_wrap=True)
    raise typer.Exit(0)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for unexpected errors."),
          version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Show the package version and the code version, then exit.")) -> None:
    _state["debug"] = debug


def _register_commands() -> None:
    import importlib
    import pkgutil

    from pipeline import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"pipeline.commands.{info.name}").register(app)


_register_commands()


def main() -> None:
    """Console entry point: unexpected errors become one line (exit 1) unless ``--debug`` is given."""
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the CLI
        if _state["debug"] or "--debug" in sys.argv:
            raise
        err.print(error_line(f"{type(exc).__name__}: {exc}"), highlight=False, soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
