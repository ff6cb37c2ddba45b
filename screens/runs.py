"""Runs the console starts (plan, restore, verify, stream sync): one slot per kind, one message set.

A run goes through the same steps whatever its kind. The App's :meth:`start_run` opens the kind's
:class:`RunSlot` (refused while one runs) and starts one thread worker, which calls
:func:`drive_run`: the kind's *prepare* function (:mod:`.run_kinds`) checks, asks the operator and
returns a :class:`Launch` (or None: declined); the driver posts :class:`RunStarted`, one
:class:`RunProgressed` per progress item (replaceable by the next of the same kind, so a fast run
cannot flood the queue) and always exactly one :class:`RunFinished`. The App applies each message
to the slot and forwards it once to every screen; screens read the slot, never the worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.screen import ModalScreen

from .worker_drive import drive_in_worker

if TYPE_CHECKING:
    from .host import HostContext

__all__ = [
    "Launch",
    "OUTCOMES",
    "PLAN",
    "RESTORE",
    "RunFinished",
    "RunProgressed",
    "RunRequest",
    "RunSlot",
    "RunStarted",
    "STREAM_SYNC",
    "VERIFY",
    "drive_run",
]

#: The kinds of run, each with its slot (also the worker group of its thread).
PLAN, RESTORE, VERIFY, STREAM_SYNC = "plan", "restore", "verify", "stream-sync"

#: How a run ends. ``declined``: the operator said no; ``refused``: a check failed before
#: anything was written; ``stopped``: a following stream sync was stopped (its checkpoint kept).
OUTCOMES = frozenset({"complete", "cancelled", "failed", "declined", "refused", "stopped"})


# -- messages ------------------------------------------------------------------------------------
@dataclass
class RunStarted(Message, bubble=False):
    """The operator confirmed and the ``kind`` run began (``details``: what the kind says of it)."""

    kind: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunProgressed(Message, bubble=False):
    """Where the running ``kind`` run is: a snapshot the worker no longer touches."""

    kind: str
    progress: Any

    def can_replace(self, message: Message) -> bool:
        # Only the same kind's newer progress: a verify's progress must not swallow a restore's.
        return isinstance(message, RunProgressed) and message.kind == self.kind


@dataclass
class RunFinished(Message, bubble=False):
    """How the ``kind`` run ended (one of :data:`OUTCOMES`), its summary when it has one, and the
    error when it failed or was refused."""

    kind: str
    outcome: str
    summary: dict[str, Any] | None = None
    error: str = ""


# -- the slot ------------------------------------------------------------------------------------
@dataclass
class RunSlot:
    """This console's run of one kind: whether it runs, its newest progress, how the last one ended.

    Only the App changes a slot (on the UI thread, from the messages above); screens read it. A
    new run clears the previous one's progress and outcome.
    """

    kind: str
    running: bool = False
    #: The options the run was started with (``resume``, sync's ``follow``, the plan's dump).
    options: dict[str, Any] = field(default_factory=dict)
    #: What :class:`RunStarted` said (None until the run passed its checks and confirmations).
    details: dict[str, Any] | None = None
    #: The newest progress snapshot (None until the first one).
    progress: Any = None
    #: How the last run ended (None while one runs, or before the first).
    outcome: str | None = None
    summary: dict[str, Any] | None = None
    error: str = ""
    #: Set to stop the run at its next step; a fresh event per run.
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def started(self) -> bool:
        """The run passed its checks and confirmations and is doing its work."""
        return self.running and self.details is not None

    def open(self, options: Mapping[str, Any]) -> threading.Event:
        """Mark a new run as running with ``options``; returns its cancel event."""
        self.running, self.options, self.details, self.progress = True, dict(options), None, None
        self.outcome, self.summary, self.error = None, None, ""
        self.cancel = threading.Event()
        return self.cancel

    def apply(self, message: RunStarted | RunProgressed | RunFinished) -> None:
        """Take in one of the run's messages."""
        if isinstance(message, RunStarted):
            self.details = dict(message.details)
        elif isinstance(message, RunProgressed):
            self.progress = message.progress
        else:
            self.running = False
            self.outcome, self.summary, self.error = message.outcome, message.summary, message.error

    def stop(self) -> bool:
        """Ask the running run to stop at its next step (it keeps its checkpoint); False: none runs."""
        if not self.running:
            return False
        self.cancel.set()
        return True


# -- the driver ----------------------------------------------------------------------------------
@dataclass
class RunRequest:
    """What a kind's prepare function gets, in the worker thread."""

    kind: str
    context: HostContext
    options: dict[str, Any]
    cancel: threading.Event
    #: Show a confirmation and wait for the operator's answer (from the worker thread).
    ask: Callable[[ModalScreen[bool]], bool]

    def confirm(self, question: ModalScreen[bool]) -> bool:
        """Ask ``question``; False also when the run was cancelled while the question was open."""
        return self.ask(question) and not self.cancel.is_set()


def _copy(progress: Any) -> Any:
    return progress


@dataclass
class Launch:
    """A run that passed its checks and confirmations: what :func:`drive_run` drives."""

    #: The core's progress generator (it returns the run's result).
    gen: Iterator[Any]
    #: What :class:`RunStarted` tells the screens.
    details: dict[str, Any] = field(default_factory=dict)
    #: A copy of a progress item the generator will not mutate any more (it reuses its object).
    snapshot: Callable[[Any], Any] = _copy
    #: The outcome and summary of the generator's return value.
    result: Callable[[Any], tuple[str, dict[str, Any] | None]] = lambda value: ("complete", value)


def drive_run(prepare: Callable[[RunRequest], Launch | None], request: RunRequest,
              post: Callable[[Message], object],
              cancelled: tuple[type[BaseException], ...] = ()) -> dict[str, Any] | None:
    """Prepare and run one run in the calling (worker) thread, reporting through ``post``.

    Posts exactly one :class:`RunFinished`: ``declined`` when ``prepare`` returns None,
    ``cancelled`` on one of the ``cancelled`` exceptions, ``refused`` on any other error before the
    run began and ``failed`` after; errors are re-raised after it, so the App's error modal shows
    them. Returns the summary (None when the run did not complete).
    """
    kind, started = request.kind, False
    try:
        launch = prepare(request)
        if launch is None:
            post(RunFinished(kind, "declined"))
            return None
        post(RunStarted(kind, launch.details))
        started = True
        value = drive_in_worker(launch.gen, request.cancel,
                                lambda progress: post(RunProgressed(kind, launch.snapshot(progress))))
        outcome, summary = launch.result(value)
    except cancelled:
        post(RunFinished(kind, "cancelled"))
        return None
    except BaseException as exc:
        post(RunFinished(kind, "failed" if started else "refused", error=getattr(exc, "message", str(exc))))
        raise
    post(RunFinished(kind, outcome, summary=summary))
    return summary
