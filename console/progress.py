"""One way for every CLI command to drive a core progress generator to its result.

Core long operations (plan, restore, verify) are generators of progress objects that return their
result; the CLI runs them to the end, with a transient Rich progress bar on a terminal (and no
output at all for scripts, ``--json`` or a pipe).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from keyshift.core.progress import run_to_completion
from rich.console import Console

__all__ = ["drive"]

#: ``describe(progress) -> (description, total, completed, detail)`` for the bar.
Describe = Callable[[Any], tuple[str, float | None, float, str]]


def drive(gen: Iterator[Any], *, show: bool, console: Console, describe: Describe) -> Any:
    """Run ``gen`` to its return value; with ``show``, update a progress bar from each item."""
    if not show:
        return run_to_completion(gen)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("", total=None, detail="")

        def show_progress(p: Any) -> None:
            description, total, completed, detail = describe(p)
            bar.update(task, description=description, total=total, completed=completed, detail=detail)

        return run_to_completion(gen, show_progress)
