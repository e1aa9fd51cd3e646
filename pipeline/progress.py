"""Progress bars for long CLI work (rich, on stderr, transient; quiet when stderr is not a terminal)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

T = TypeVar("T")
_err = Console(stderr=True, markup=False)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=_err, transient=True)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (one step per item)."""
    items = list(items) if total is None else items
    with _progress() as bar:
        task = bar.add_task(description, total=total if total is not None else len(items))
        for item in items:
            yield item
            bar.advance(task)


@contextmanager
def stages(names: list[str]):
    """A bar over named stages: ``with stages([...]) as step: step("…")`` — call ``step`` as each stage starts."""
    with _progress() as bar:
        task = bar.add_task(names[0], total=len(names))
        started = [False]

        def step(name: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=name)

        yield step
        bar.update(task, completed=len(names))
