"""The keyshift console: the App, its bindings, its workers and the one place errors are shown.

The App takes everything it needs through the constructor (a :class:`Context`), so the CLI and the
tests build it the same way with :func:`make_app`. Every blocking call (SQLite, S3, planning) runs
in an App-owned thread worker; a failed worker, whatever screen started it, ends up in
:meth:`KeyshiftApp._worker_state_changed`, which shows one error modal.
"""

from __future__ import annotations

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
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from keyshift.core.errors import KeyshiftError
from keyshift.screens.dump_browser import DumpBrowserScreen
from keyshift.screens.error_modal import ErrorModal
from keyshift.screens.normalize_preview import NormalizePreviewScreen
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.plan_dialog import PlanDialog, drive_plan
from keyshift.core.decisions import latest_decision_id
from keyshift.screens.resolve_queue import DecisionsChanged, ResolveQueueScreen
from keyshift.screens.widgets import WorkspaceChanged

from .commands import KeyshiftCommands
from .context import Context

__all__ = ["KeyshiftApp", "make_app"]

log = logging.getLogger(__name__)

#: How often the console looks for decisions recorded by another console or the CLI.
POLL_SECONDS = 1.0


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
    MUTATING_ACTIONS: ClassVar[frozenset[str]] = frozenset({"plan", "decide", "undo_decision", "bulk_resolve"})

    def __init__(self, context: Context, *, page_size: int = 100, workspace_label: str | None = None) -> None:
        """``page_size`` is how many records the browser holds at once; ``workspace_label`` replaces
        the workspace path in the header (tests use it for stable snapshots)."""
        super().__init__()
        self.context = context
        self.page_size = page_size
        self._cancel_events: set[threading.Event] = set()
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
        """Cancel running work (of ``group``, or all); True when something was running.

        A plan is stopped through its cancel event, never by cancelling its worker: the plan
        thread then ends cleanly (``PlanCancelled``) and the dialog always hears how it ended.
        """
        running = [w for w in self.workers if not w.is_finished and (group is None or w.group == group)
                   and w.group != "decisions-poll"]  # the background poll is not the operator's work
        if group in (None, "plan"):
            for event in list(self._cancel_events):
                event.set()
        for worker in running:
            if worker.group != "plan":
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
        workspace = vars(self.context).get("workspace")  # only if the cached property was resolved
        if workspace is not None:
            workspace.close()

    def start_plan(self, dump_uri: str, fmt: str, reply_to: MessagePump) -> Worker:
        """Plan ``dump_uri`` in the background; progress and the outcome go to ``reply_to``.

        The cancel event is registered before the thread starts, so Escape pressed at once still
        reaches the plan (which stops at its next batch and keeps a ``cancelled`` plan).
        """
        cancel = threading.Event()
        self._cancel_events.add(cancel)
        return self._plan_worker(dump_uri, fmt, cancel, reply_to)

    @work(thread=True, exclusive=True, exit_on_error=False, group="plan", description="plan a dump")
    def _plan_worker(self, dump_uri: str, fmt: str, cancel: threading.Event, reply_to: MessagePump) -> Any:
        try:
            return drive_plan(self.context, dump_uri, fmt, cancel, reply_to)
        finally:
            self._cancel_events.discard(cancel)
            self._close_thread_connection()

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
        workspace = vars(self.context).get("workspace")
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
