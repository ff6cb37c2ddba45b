"""Long operations in ``core`` are generators of progress objects that *return* their result.

Whoever drives one decides how to show progress (a CLI bar, console messages, nothing);
:func:`run_to_completion` is the "nothing" case every driver and test shares.
"""

from __future__ import annotations

from typing import Any, Generator

__all__ = ["run_to_completion"]


def run_to_completion(gen: Generator[Any, Any, Any]) -> Any:
    """Exhaust ``gen``, ignoring what it yields; returns its return value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
