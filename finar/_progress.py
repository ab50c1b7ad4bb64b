"""Progress bars for long work, on stderr, off in tests and pipes unless asked."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["progress_bar"]


def progress_bar(items: Iterable[T], *, total: int | None = None, enabled: bool = True,
                 description: str = "") -> Iterator[T]:
    """Iterate over ``items`` with a rich progress bar on stderr when ``enabled``.

    The bar is transient (it disappears when done) and only drawn on a terminal, so logs and
    notebooks run without control characters.
    """
    if not enabled:
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield from items
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(description[:60], total=total)
        for item in items:
            yield item
            bar.advance(task)
