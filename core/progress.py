"""Long operations in ``core`` are generators of progress objects that *return* their result.

Whoever drives one decides how to show progress (a CLI bar, console messages, nothing), and every
one of them drives it with :func:`run_to_completion`: the CLI's Rich bar, the console's thread
workers, benchmarks and tests.
"""

from __future__ import annotations

from typing import Any, Callable, Generator

__all__ = ["run_to_completion"]


def run_to_completion(gen: Generator[Any, Any, Any], each: Callable[[Any], object] | None = None) -> Any:
    """Exhaust ``gen``, calling ``each(progress)`` on every item it yields; returns its return value."""
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            return stop.value
        if each is not None:
            each(progress)
