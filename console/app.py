"""The keyshift console: the App, its bindings, its workers and the one place errors are shown.

The App takes everything it needs through the constructor (a :class:`Context`), so the CLI and the
tests build it the same way with :func:`make_app`. Every blocking call (SQLite, S3, planning) runs
in an App-owned thread worker; a failed worker, whatever screen started it, ends up in
:meth:`KeyshiftApp._worker_state_changed`, which shows one error modal.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.message_pump import MessagePump
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from keyshift.core.errors import KeyshiftError
from keyshift.core.migrate.restore import RestoreProgress
from keyshift.core.migrate.stream.sync import SyncProgress
from keyshift.core.migrate.verify.run import VerifyProgress
from keyshift.screens.dump_browser import DumpBrowserScreen
from keyshift.screens.error_modal import ErrorModal
from keyshift.screens.normalize_preview import NormalizePreviewScreen
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.plan_dialog import PlanDialog, drive_plan
from keyshift.core.resolve.decisions import latest_decision_id
from keyshift.screens.resolve_queue import DecisionsChanged, ResolveQueueScreen
from keyshift.screens.restore_screen import (
    RestoreFinished,
    RestoreProgressed,
    RestoreScreen,
    RestoreStarted,
    drive_restore,
)
from keyshift.screens.stream_sync_screen import (
    StreamSyncScreen,
    SyncFinished,
    SyncProgressed,
    SyncStarted,
    drive_stream_sync,
)
from keyshift.screens.verify_screen import (
    VerifyFinished,
    VerifyProgressed,
    VerifyScreen,
    VerifyStarted,
    drive_verify,
)
from keyshift.screens.widgets import WorkspaceChanged

from .commands import KeyshiftCommands
from .context import Context

__all__ = ["KeyshiftApp", "make_app"]

log = logging.getLogger(__name__)

#: How often the console looks for decisions recorded by another console or the CLI.
POLL_SECONDS = 1.0
#: Worker groups stopped through a cancel event, never by cancelling the worker: their thread ends
#: cleanly (a cancelled plan, a resumable checkpoint) and always reports how it ended.
_EVENT_GROUPS = frozenset({"plan", "restore", "verify", "stream-sync"})
#: Long runs that only their own screen's Escape cancels (not the global Escape of other screens).
_LONG_RUNS = frozenset({"restore", "verify", "stream-sync"})


@dataclass
class DecisionsPolled(Message, bubble=False):
    """The newest decision id in the workspace (None: the poll failed, ``error`` says why)."""

    mark: int | None
    error: str = ""


class KeyshiftApp(App[None]):
    """The operator console for one migration workspace."""

    CSS_PATH: ClassVar[list[str]] = ["app.tcss"]
    TITLE = "keyshift"
    COMMANDS = App.COMMANDS | {KeyshiftCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Leave the console"),
        Binding("escape", "cancel_work", "Cancel", id="app.cancel", show=False,
                tooltip="Cancel running work (a plan, a query)"),
    ]
    #: Actions that change the workspace or AWS: greyed out in read-only (audit) mode.
    MUTATING_ACTIONS: ClassVar[frozenset[str]] = frozenset({
        "plan", "decide", "undo_decision", "bulk_resolve",
        "restore_start", "restore_resume", "restore_pause", "restore_rate_up", "restore_rate_down",
        "restore_set_rate", "restore_set_workers", "verify_start", "verify_resume", "sync_once", "sync_follow",
    })

    def __init__(self, context: Context, *, page_size: int = 100, workspace_label: str | None = None) -> None:
        """``page_size`` is how many records the browser holds at once; ``workspace_label`` replaces
        the workspace path in the header (tests use it for stable snapshots)."""
        super().__init__()
        self.context = context
        self.page_size = page_size
        self._cancel_events: dict[threading.Event, str] = {}  # cancel event -> worker group
        #: This console's restore: running (from start until it reports how it ended), its newest
        #: progress and how the last one ended. The restore screen and the overview read these.
        self.restore_running = False
        self.restore_live: RestoreProgress | None = None
        self.restore_outcome: RestoreFinished | None = None
        #: The same for this console's verify.
        self.verify_running = False
        self.verify_live: VerifyProgress | None = None
        self.verify_outcome: VerifyFinished | None = None
        #: The same for this console's stream sync (``sync_follow``: it runs until stopped).
        self.sync_running = False
        self.sync_follow = False
        self.sync_live: SyncProgress | None = None
        self.sync_outcome: SyncFinished | None = None
        self._decisions_seen: int | None = None  # the newest decision id the screens reflect
        self._poll_worker: Worker | None = None
        self._poll_timer: Timer | None = None
        label = workspace_label if workspace_label is not None else str(context.workspace_path)
        self.sub_title = f"{label} · READ-ONLY" if context.read_only else label

    @property
    def read_only(self) -> bool:
        """Audit mode: everything visible, nothing changeable."""
        return self.context.read_only

    def get_default_screen(self) -> Screen:
        return OverviewScreen()

    def on_mount(self) -> None:
        self._poll_timer = self.set_interval(POLL_SECONDS, self._poll_decisions)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MUTATING_ACTIONS and self.read_only:
            return None  # shown greyed out: the operator sees it exists but is refused here
        return True

    # -- navigation -------------------------------------------------------------------------
    def action_overview(self) -> None:
        """Back to the overview (the bottom screen)."""
        while len(self.screen_stack) > 1 and not isinstance(self.screen, OverviewScreen):
            self.pop_screen()

    def action_open_browser(self) -> None:
        """Open the dump browser."""
        if not isinstance(self.screen, DumpBrowserScreen):
            self.push_screen(DumpBrowserScreen(page_size=self.page_size))

    def action_open_preview(self, raw: str | None = None) -> None:
        """Open the normalization preview, standalone (``raw`` None) or for one raw identifier."""
        if raw is None and isinstance(self.screen, NormalizePreviewScreen):
            return
        self.push_screen(NormalizePreviewScreen(raw))

    def action_open_queue(self) -> None:
        """Open the resolution queue (readable in read-only mode; deciding is refused there)."""
        if not isinstance(self.screen, ResolveQueueScreen):
            self.push_screen(ResolveQueueScreen())

    def action_open_restore(self) -> None:
        """Open the restore screen (step 3; readable in read-only mode, starting is refused)."""
        if not isinstance(self.screen, RestoreScreen):
            self._push_installed("restore", RestoreScreen)

    def action_open_verify(self) -> None:
        """Open the verify screen (step 5; readable in read-only mode, starting is refused)."""
        if not isinstance(self.screen, VerifyScreen):
            self._push_installed("verify", VerifyScreen)

    def action_open_stream_sync(self) -> None:
        """Open the stream-sync screen (step 4; readable in read-only mode, starting is refused)."""
        if not isinstance(self.screen, StreamSyncScreen):
            self._push_installed("stream-sync", StreamSyncScreen)

    def _push_installed(self, name: str, factory: Callable[[], Screen]) -> None:
        """Push the screen installed as ``name`` (built on first use, kept when closed)."""
        if not self.is_screen_installed(name):
            self.install_screen(factory(), name)
        if self.get_screen(name) in self.screen_stack:  # under a modal: back to it
            while self.screen is not self.get_screen(name):
                self.pop_screen()
            return
        self.push_screen(name)

    def action_plan(self) -> None:
        """Open the plan dialog (refused in read-only mode by :meth:`check_action`)."""
        if self.read_only:
            self.notify("planning changes the workspace: refused in read-only mode", severity="warning")
            return
        if not isinstance(self.screen, PlanDialog):
            self.push_screen(PlanDialog())

    def action_cancel_work(self) -> None:
        """Cancel every running worker and any running plan."""
        if self.cancel_work():
            self.notify("cancelling…", timeout=2)

    def cancel_work(self, group: str | None = None) -> bool:
        """Cancel running work (of ``group``, or all but a restore or verify); True when something ran.

        A plan, a restore and a verify are stopped through their cancel event, never by cancelling
        their worker: the thread then ends cleanly (``PlanCancelled``, a resumable checkpoint) and
        the screens always hear how it ended. A restore or verify is cancelled only by name (its
        screen's Escape): an Escape elsewhere must not stop a run of hours.
        """
        def wanted(worker_group: str) -> bool:
            return worker_group == group if group is not None else worker_group not in _LONG_RUNS

        running = [w for w in self.workers if not w.is_finished and wanted(w.group)
                   and w.group != "decisions-poll"]  # the background poll is not the operator's work
        for event, event_group in list(self._cancel_events.items()):
            if wanted(event_group):
                event.set()
        for worker in running:
            if worker.group not in _EVENT_GROUPS:
                worker.cancel()
        return bool(running)

    # -- workers ----------------------------------------------------------------------------
    def run_blocking(self, work: Callable[[], Any], *, group: str, description: str = "") -> Worker:
        """Run blocking ``work`` in an App-owned thread worker; a newer run in ``group`` supersedes.

        ``work`` posts its results as messages (thread-safe) and never touches widgets. Failures
        reach the one error modal.
        """
        def run() -> Any:
            try:
                return work()
            finally:
                self._close_thread_connection()

        return self.run_worker(run, group=group, description=description, thread=True,
                               exclusive=True, exit_on_error=False)

    def _close_thread_connection(self) -> None:
        """Close the finishing worker thread's SQLite connection (one per thread, never shared)."""
        workspace = self.context.opened_workspace  # never opens one just to close it
        if workspace is not None:
            workspace.close()

    def start_plan(self, dump_uri: str, fmt: str, reply_to: MessagePump) -> Worker:
        """Plan ``dump_uri`` in the background; progress and the outcome go to ``reply_to``.

        The cancel event is registered before the thread starts, so Escape pressed at once still
        reaches the plan (which stops at its next batch and keeps a ``cancelled`` plan).
        """
        cancel = threading.Event()
        self._cancel_events[cancel] = "plan"
        return self._plan_worker(dump_uri, fmt, cancel, reply_to)

    @work(thread=True, exclusive=True, exit_on_error=False, group="plan", description="plan a dump")
    def _plan_worker(self, dump_uri: str, fmt: str, cancel: threading.Event, reply_to: MessagePump) -> Any:
        try:
            return drive_plan(self.context, dump_uri, fmt, cancel, reply_to)
        finally:
            self._cancel_events.pop(cancel, None)
            self._close_thread_connection()

    def ask(self, question: ModalScreen[bool]) -> bool:
        """From a thread worker: show ``question`` and wait for the operator's answer."""
        return bool(self.call_from_thread(self.push_screen_wait, question))

    def start_restore(self, *, resume: bool) -> Worker | None:
        """Check, confirm and run a restore in the background (None: one runs already).

        Progress and the outcome come to the App (:class:`RestoreProgressed`,
        :class:`RestoreFinished`), which keeps them and forwards them to every screen.
        """
        if self.restore_running:
            return None
        cancel = threading.Event()
        self._cancel_events[cancel] = "restore"
        self.restore_running, self.restore_live, self.restore_outcome = True, None, None
        self.refresh_bindings()
        return self._restore_worker(resume, cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="restore", description="restore")
    def _restore_worker(self, resume: bool, cancel: threading.Event) -> Any:
        try:
            return drive_restore(self.context, resume=resume, cancel=cancel, ask=self.ask,
                                 post=self.post_message)
        finally:
            self._cancel_events.pop(cancel, None)
            self._close_thread_connection()

    def start_verify(self, *, resume: bool) -> Worker | None:
        """Run a verify in the background (None: one runs already); reports like a restore."""
        if self.verify_running:
            return None
        cancel = threading.Event()
        self._cancel_events[cancel] = "verify"
        self.verify_running, self.verify_live, self.verify_outcome = True, None, None
        self.refresh_bindings()
        return self._verify_worker(resume, cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="verify", description="verify")
    def _verify_worker(self, resume: bool, cancel: threading.Event) -> Any:
        try:
            return drive_verify(self.context, resume=resume, cancel=cancel, post=self.post_message)
        finally:
            self._cancel_events.pop(cancel, None)
            self._close_thread_connection()

    def start_stream_sync(self, *, follow: bool) -> Worker | None:
        """Confirm and run a stream-sync in the background (None: one runs already); reports like a restore."""
        if self.sync_running:
            return None
        cancel = threading.Event()
        self._cancel_events[cancel] = "stream-sync"
        self.sync_running, self.sync_follow, self.sync_live, self.sync_outcome = True, follow, None, None
        self.refresh_bindings()
        return self._sync_worker(follow, cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="stream-sync", description="stream sync")
    def _sync_worker(self, follow: bool, cancel: threading.Event) -> Any:
        try:
            return drive_stream_sync(self.context, follow=follow, cancel=cancel, ask=self.ask,
                                     post=self.post_message)
        finally:
            self._cancel_events.pop(cancel, None)
            self._close_thread_connection()

    @on(SyncStarted)
    @on(SyncProgressed)
    @on(SyncFinished)
    def _sync_news(self, message: Message) -> None:
        if isinstance(message, SyncProgressed):
            self.sync_live = message.progress
        elif isinstance(message, SyncFinished):
            self.sync_running, self.sync_outcome = False, message
            if message.outcome == "declined":
                self.notify("nothing started", timeout=3)
        self._forward(message)

    @on(RestoreStarted)
    @on(RestoreProgressed)
    @on(RestoreFinished)
    def _restore_news(self, message: Message) -> None:
        if isinstance(message, RestoreProgressed):
            self.restore_live = message.progress
        elif isinstance(message, RestoreFinished):
            self.restore_running, self.restore_outcome = False, message
            if message.outcome == "declined":
                self.notify("nothing started", timeout=3)
        self._forward(message)

    @on(VerifyStarted)
    @on(VerifyProgressed)
    @on(VerifyFinished)
    def _verify_news(self, message: Message) -> None:
        if isinstance(message, VerifyProgressed):
            self.verify_live = message.progress
        elif isinstance(message, VerifyFinished):
            self.verify_running, self.verify_outcome = False, message
        self._forward(message)

    def _forward(self, message: Message) -> None:
        """Post a copy of a run's ``message`` to every screen of the stack."""
        for screen in self.screen_stack:
            screen.post_message(dataclasses.replace(message))  # type: ignore[type-var]

    def workspace_changed(self) -> None:
        """Tell every screen that the plan changed."""
        for screen in self.screen_stack:
            screen.post_message(WorkspaceChanged())

    # -- decisions made elsewhere ----------------------------------------------------------------
    def _poll_decisions(self) -> None:
        """Every :data:`POLL_SECONDS`: read the newest decision id in a thread (one indexed query).

        Only once a screen has opened the workspace (polling never creates one), and never two
        polls at once.
        """
        workspace = self.context.opened_workspace
        if workspace is None or (self._poll_worker is not None and not self._poll_worker.is_finished):
            return

        def poll() -> None:
            try:
                mark: int | None = latest_decision_id(workspace)
                error = ""
            except (KeyshiftError, sqlite3.Error) as exc:
                mark, error = None, getattr(exc, "message", str(exc))
            self.post_message(DecisionsPolled(mark, error))

        self._poll_worker = self.run_blocking(poll, group="decisions-poll", description="poll decisions")

    @on(DecisionsPolled)
    def _decisions_polled(self, message: DecisionsPolled) -> None:
        if message.mark is None:
            if self._poll_timer is not None:
                self._poll_timer.stop()
            log.warning("decision polling stopped: %s", message.error)
            self.notify(f"stopped watching for other consoles' decisions: {message.error}",
                        severity="warning", timeout=8)
            return
        previous, self._decisions_seen = self._decisions_seen, message.mark
        if previous is not None and previous != message.mark:
            self.decisions_changed()

    def saw_decisions(self, mark: int) -> None:
        """A screen now shows the decisions up to ``mark``: only a newer mark triggers a reload."""
        self._decisions_seen = mark

    def decisions_changed(self) -> None:
        """Tell every screen that decisions changed (here or in another console)."""
        for screen in self.screen_stack:
            screen.post_message(DecisionsChanged())

    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, KeyshiftError):
            self.show_error(error.title, error.message)
        else:
            log.error("worker %r failed", event.worker.name, exc_info=error)
            self.show_error("Unexpected error", f"{type(error).__name__}: {error}")

    def show_error(self, title: str, message: str) -> None:
        """Show an error modal (one at a time: a second error while one is shown is appended)."""
        if isinstance(self.screen, ErrorModal):
            self.screen.add(title, message)
        else:
            self.push_screen(ErrorModal(title, message))


def make_app(context: Context, **options: Any) -> KeyshiftApp:
    """Build the console for ``context`` (the CLI's ``console`` command and the tests use this)."""
    return KeyshiftApp(context, **options)
