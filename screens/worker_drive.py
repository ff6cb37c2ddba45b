"""Drive a core progress generator from a console thread worker.

Plan, restore, verify and stream sync run in thread workers the same way: a cancelled worker sets
the run's cancel event (the run then stops cleanly at its next step, with its checkpoint, rather
than being killed mid-write), and every progress object is handed on, as a snapshot message, to
the screens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from textual.worker import get_current_worker

from keyshift.core.progress import run_to_completion

__all__ = ["drive_in_worker"]


def drive_in_worker(gen: Iterator[Any], cancel: threading.Event,
                    on_progress: Callable[[Any], object]) -> Any:
    """Run ``gen`` to its return value in the calling thread worker; ``on_progress`` gets each item.

    Checked before every step: when the worker has been cancelled, ``cancel`` is set.
    """
    worker = get_current_worker()

    def each(progress: Any) -> None:
        on_progress(progress)
        if worker.is_cancelled:
            cancel.set()

    if worker.is_cancelled:
        cancel.set()
    return run_to_completion(gen, each)
