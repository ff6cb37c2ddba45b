"""The kinds of run the console starts, each with its prepare function (in its screen's module).

The App makes one :class:`~.runs.RunSlot` per entry of :data:`RUN_KINDS` and runs every kind
through the same worker and :func:`~.runs.drive_run`; nothing else about a kind is special-cased.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from keyshift.core.migrate.restore import RestoreCancelled
from keyshift.core.migrate.verify.run import VerifyCancelled
from keyshift.core.plan.planner import PlanCancelled

from .plan_dialog import prepare_plan
from .restore_screen import prepare_restore
from .runs import PLAN, RESTORE, STREAM_SYNC, VERIFY, Launch, RunRequest
from .stream_sync_screen import prepare_stream_sync
from .verify_screen import prepare_verify

__all__ = ["RUN_KINDS", "RunKind"]


@dataclass(frozen=True)
class RunKind:
    """One kind of run: how to prepare it, and how it is cancelled."""

    name: str
    #: The worker's description (shown by Textual's worker tooling and in logs).
    description: str
    prepare: Callable[[RunRequest], Launch | None]
    #: Exceptions that mean the run was cancelled at a clean point (its checkpoint kept).
    cancelled: tuple[type[BaseException], ...] = ()
    #: A long run (hours): only its own screen's Escape stops it, never the console-wide Escape.
    long: bool = True


RUN_KINDS: dict[str, RunKind] = {kind.name: kind for kind in (
    RunKind(PLAN, "plan a dump", prepare_plan, (PlanCancelled,), long=False),
    RunKind(RESTORE, "restore", prepare_restore, (RestoreCancelled,)),
    RunKind(STREAM_SYNC, "stream sync", prepare_stream_sync),  # a stopped replay returns normally
    RunKind(VERIFY, "verify", prepare_verify, (VerifyCancelled,)),
)}
