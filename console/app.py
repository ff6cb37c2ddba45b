"""The keyshift console: the App, its bindings, its workers and the one place errors are shown.

The App takes everything it needs through the constructor (a :class:`Context`), so the CLI and the
tests build it the same way with :func:`make_app`. It implements the screens' host protocol
(:class:`~keyshift.screens.host.ConsoleHost`) and hands itself to every screen it builds. Every
blocking call (SQLite, S3, planning) runs in an App-owned thread worker; a failed worker, whatever
screen started it, ends up in :meth:`KeyshiftApp._worker_state_changed`, which shows one error
modal. Runs (plan, restore, verify, stream sync) each have one :class:`~keyshift.screens.runs.RunSlot`,
one generic worker and one message handler.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from textual import on
from textual.actions import ActionParseResult, parse
from textual.app import App
from textual.binding import BindingType
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from keyshift.core.errors import KeyshiftError
from keyshift.screens.actions import MUTATING_ACTIONS, app_bindings, read_only_refusal
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.cutover_screen import CutoverScreen
from keyshift.screens.dump_browser import DumpBrowserScreen
from keyshift.screens.error_modal import ErrorModal
from keyshift.screens.help_screen import HelpScreen
from keyshift.screens.keymap_screen import KeymapScreen
from keyshift.screens.normalize_preview import NormalizePreviewScreen
from keyshift.screens.operator_prompt import OperatorPrompt
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.plan_dialog import PlanDialog
from keyshift.screens.run_notes import finished_note
from keyshift.screens.resolve_queue import DecisionsChanged, ResolveQueueScreen
from keyshift.screens.restore_screen import RestoreScreen
from keyshift.screens.run_kinds import RUN_KINDS, RunKind
from keyshift.screens.runs import RunFinished, RunProgressed, RunRequest, RunSlot, RunStarted, drive_run
from keyshift.screens.stream_sync_screen import StreamSyncScreen
from keyshift.screens.audit_screen import AuditScreen
from keyshift.screens.verify_screen import VerifyScreen
from keyshift.screens.widgets import WorkspaceChanged

from .commands import KeyshiftCommands
from .context import Context
from .watch import POLL_GROUP, ConsoleWatch

__all__ = ["KeyshiftApp", "make_app"]

log = logging.getLogger(__name__)

#: The banner every full screen shows in read-only mode (a sub-title alone is easy to miss).
READ_ONLY_BANNER = "READ-ONLY · audit mode: every screen reads, nothing changes the workspace or AWS"

#: Screens the console can open on (``keyshift audit --console`` opens on the audit screen).
START_SCREENS = ("overview", "audit")

class KeyshiftApp(ConsoleWatch):
    """The operator console for one migration workspace."""

    CSS_PATH: ClassVar[list[str]] = ["app.tcss"]
    #: Every screen gets ``-narrow`` below 100 columns: app.tcss packs the footer there so an 80×24
    #: terminal still shows the keys that apply (the rest are in F1's help and the palette).
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-wide")]
    #: ``-short`` below 40 rows: dialogs drop their blank lines so their buttons stay on a 24-row screen.
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (40, "-tall")]
    TITLE = "keyshift"
    COMMANDS = App.COMMANDS | {KeyshiftCommands}
    #: Quit, help and cancel: the action table's keys that work on every screen.
    BINDINGS: ClassVar[list[BindingType]] = app_bindings()
    #: Actions that change the workspace or AWS: greyed out in read-only (audit) mode.
    MUTATING_ACTIONS: ClassVar[frozenset[str]] = MUTATING_ACTIONS

    def __init__(self, context: Context, *, page_size: int = 100, workspace_label: str | None = None,
                 run_kinds: Mapping[str, RunKind] = RUN_KINDS, quit_warning: str | None = None,
                 ask_operator: bool = False, start_on: str = "overview") -> None:
        """``page_size`` is how many records the browser holds at once; ``workspace_label`` replaces
        the workspace path in the header (tests use it for stable snapshots); ``run_kinds``: how
        each kind of run is prepared (tests replace one with a scripted run); ``quit_warning``:
        ``q`` asks first, saying this (the demo: quitting stops its embedded server);
        ``ask_operator``: first ask who is operating (a browser session of ``console --serve``);
        ``start_on``: one of :data:`START_SCREENS`, opened over the overview (so Escape still
        leads back to it)."""
        super().__init__()
        if start_on not in START_SCREENS:
            raise ValueError(f"start_on must be one of {', '.join(START_SCREENS)}, not {start_on!r}")
        self._start_on = start_on
        self.quit_warning = quit_warning
        self._ask_operator = ask_operator
        self.context = context
        self.page_size = page_size
        self._run_kinds = dict(run_kinds)
        #: One slot per kind of run: running (from start until it reports how it ended), its
        #: newest progress and how the last one ended. Screens read them through :meth:`slot`.
        self._slots = {kind: RunSlot(kind) for kind in self._run_kinds}
        label = workspace_label if workspace_label is not None else str(context.workspace_path)
        self.sub_title = f"{label} · READ-ONLY" if context.read_only else label

    @property
    def read_only(self) -> bool:
        """Audit mode: everything visible, nothing changeable."""
        return self.context.read_only

    def get_default_screen(self) -> Screen:
        return OverviewScreen(self)

    def on_mount(self) -> None:
        # Move what start-up built (Textual's caches, botocore's service models: ~150k objects) out of
        # the collector's reach: every full collection walks them with every thread stopped, the event
        # loop included, and was the worst frame while restore, sync and verify ran (bench/console_bench.py).
        # (No gc.collect() first: it costs a full collection at every start, and start-up garbage is small.)
        gc.freeze()
        self.start_watching()  # presence and other consoles' work (console/watch.py)
        self.screen_change_signal.subscribe(self, self._watch_screens)
        self._watch_screens(self.screen)  # the default screen came before the subscription
        if self._start_on == "audit":
            self.action_open_audit()
        if self._ask_operator:
            self.push_screen(OperatorPrompt(), self._operator_named)

    def _operator_named(self, name: str | None) -> None:
        """The browser session's operator: what its decisions and audit entries record from now on."""
        if name:
            self.context.operator = name
            self.sub_title = f"{self.sub_title} · {name}"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MUTATING_ACTIONS and self.read_only:
            return None  # shown greyed out: the operator sees it exists but is refused here
        return True

    async def run_action(self, action: str | ActionParseResult, default_namespace: Any = None,
                         namespaces: Any = None) -> bool:
        """Every key, footer click and palette command passes here: in read-only mode a mutating
        one is refused *aloud*. Textual alone skips an action ``check_action`` disables and lets
        the key fall through, so the operator pressed ``d`` and saw nothing happen."""
        name = (parse(action) if isinstance(action, str) else action)[1]
        if self.read_only and name in self.MUTATING_ACTIONS:
            self.refuse_read_only(name)
            return True  # handled: the key goes no further (a lower binding must not act on it)
        return await super().run_action(action, default_namespace, namespaces)

    def refuse_read_only(self, action: str) -> None:
        """Say why ``action`` does nothing here (one notification per press)."""
        self.notify(read_only_refusal(action), severity="warning", timeout=4)

    def _watch_screens(self, screen: Screen) -> None:
        """Each screen shown: give a full one its READ-ONLY banner once it has composed."""
        if self.read_only and not isinstance(screen, ModalScreen):
            screen.call_after_refresh(self._add_banner, screen)

    def _add_banner(self, screen: Screen) -> None:
        """Put the banner first on ``screen`` (under its docked header), once."""
        if not screen.is_attached or screen.query("#read-only-banner"):
            return
        banner = Static(READ_ONLY_BANNER, id="read-only-banner", markup=False)
        if screen.children:
            screen.mount(banner, before=0)
        else:
            screen.mount(banner)

    # -- navigation (the action table's actions: keys, palette and help come from it) ---------
    def action_overview(self) -> None:
        """Back to the overview (the bottom screen)."""
        while len(self.screen_stack) > 1 and not isinstance(self.screen, OverviewScreen):
            self.pop_screen()

    def action_open_browser(self) -> None:
        """Open the dump browser."""
        if not isinstance(self.screen, DumpBrowserScreen):
            self.push_screen(DumpBrowserScreen(self))

    def action_open_preview(self, raw: str | None = None) -> None:
        """Open the normalization preview, standalone (``raw`` None) or for one raw identifier."""
        if raw is None and isinstance(self.screen, NormalizePreviewScreen):
            return
        self.push_screen(NormalizePreviewScreen(self, raw))

    def action_open_queue(self) -> None:
        """Open the resolution queue (readable in read-only mode; deciding is refused there)."""
        if not isinstance(self.screen, ResolveQueueScreen):
            self.push_screen(ResolveQueueScreen(self))

    def action_open_keymap(self) -> None:
        """Open the keymap step (readable in read-only mode; building is refused there)."""
        if not isinstance(self.screen, KeymapScreen):
            self.push_screen(KeymapScreen(self))

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

    def action_open_audit(self) -> None:
        """Open the audit screen (it only reads: the same in read-only mode)."""
        if not isinstance(self.screen, AuditScreen):
            self.push_screen(AuditScreen(self))

    def action_open_cutover(self) -> None:
        """Open the cut-over screen (step 6; readable in read-only mode, flipping is refused)."""
        if not isinstance(self.screen, CutoverScreen):
            self._push_installed("cutover", CutoverScreen)

    def _push_installed(self, name: str, factory: Callable[[KeyshiftApp], Screen]) -> None:
        """Push the screen installed as ``name`` (built on first use, kept when closed)."""
        if not self.is_screen_installed(name):
            self.install_screen(factory(self), name)
        if self.get_screen(name) in self.screen_stack:  # under a modal: back to it
            while self.screen is not self.get_screen(name):
                self.pop_screen()
            return
        self.push_screen(name)

    def action_plan(self) -> None:
        """Open the plan dialog (refused in read-only mode by :meth:`check_action`)."""
        if self.read_only:
            self.refuse_read_only("plan")
            return
        if not isinstance(self.screen, PlanDialog):
            self.push_screen(PlanDialog(self))

    def stop_all_runs(self) -> None:
        """Ask every running run of this console to stop at its next step (checkpoints kept)."""
        for slot in self._slots.values():
            slot.stop()

    def on_unmount(self) -> None:
        # A run's thread is not a Textual worker Textual can cancel: without its cancel event a
        # following stream sync would keep the process alive after the console has gone. However the
        # console closes (q, a test's run_test, a closed browser tab), each run stops at its next
        # step and keeps its checkpoint (resumable, as after Escape).
        self.stop_all_runs()

    async def action_quit(self) -> None:
        """Leave the console; with a ``quit_warning`` (the demo) only once the operator confirms."""
        if self.quit_warning is None:
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen):
            return  # asking already

        def answered(leave: bool | None) -> None:
            if leave:
                self.exit()

        # The confirmation itself says "cancelled: still running" when the operator stays.
        self.push_screen(ConfirmScreen("Quit the demo?", self.quit_warning, confirm_label="Quit",
                                       cancelled="still running"), answered)

    def action_help(self) -> None:
        """Show every key of the current screen and of the console (F1, ``?``)."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen.of(self.screen))

    def action_cancel_work(self) -> None:
        """The console-wide Escape: cancel the running queries and a running plan, never a long run."""
        stopped = [self.cancel_run(kind) for kind, spec in self._run_kinds.items() if not spec.long]
        cancelled = [self.cancel_work(group) for group in self._query_groups()]
        if any(stopped) or any(cancelled):
            self.notify("cancelling…", timeout=2)

    def _query_groups(self) -> set[str]:
        """The groups of the running workers that are neither a run nor the background poll."""
        return {w.group for w in self.workers
                if not w.is_finished and w.group not in self._slots and w.group != POLL_GROUP}

    def cancel_work(self, group: str) -> bool:
        """Cancel the running workers of ``group`` (a query: a page, a preview); True when one ran.

        A run's kind as ``group`` stops that run through its cancel event (:meth:`cancel_run`),
        never by cancelling its worker: its thread ends cleanly and reports how it ended.
        """
        if group in self._slots:
            return self.cancel_run(group)
        running = [w for w in self.workers if not w.is_finished and w.group == group]
        for worker in running:
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

    def ask(self, question: ModalScreen[bool]) -> bool:
        """From a thread worker: show ``question`` and wait for the operator's answer."""
        return bool(self.call_from_thread(self.push_screen_wait, question))

    # -- runs: one slot per kind, one worker, one handler -------------------------------------
    def slot(self, kind: str) -> RunSlot:
        """This console's run of ``kind`` (KeyError for an unknown kind)."""
        return self._slots[kind]

    def start_run(self, kind: str, **options: Any) -> Worker | None:
        """Prepare (check, confirm) and run a ``kind`` run in the background; None: one runs already.

        The slot is marked running and its cancel event made before the thread starts, so Escape
        pressed at once still reaches the run (which then stops at its first step). Progress and
        the outcome come back as :class:`RunProgressed` and :class:`RunFinished`.
        """
        slot, spec = self.slot(kind), self._run_kinds[kind]
        if slot.running:
            return None
        cancel = slot.open(options)
        request = RunRequest(kind, self.context, dict(options), cancel, self.ask)
        self.refresh_bindings()

        def run() -> Any:
            try:
                return drive_run(spec.prepare, request, self.post_message, spec.cancelled)
            finally:
                self._close_thread_connection()

        # Never superseded (a second start is refused above) and never cancelled as a worker: the
        # cancel event stops the run cleanly, and the run always reports how it ended.
        return self.run_worker(run, group=kind, description=spec.description, thread=True,
                               exclusive=True, exit_on_error=False)

    def cancel_run(self, kind: str) -> bool:
        """Stop this console's ``kind`` run at its next step, keeping its checkpoint; False: none runs."""
        return self.slot(kind).stop()

    @on(RunStarted)
    @on(RunProgressed)
    @on(RunFinished)
    def _run_news(self, message: RunStarted | RunProgressed | RunFinished) -> None:
        self.slot(message.kind).apply(message)
        if isinstance(message, RunFinished):
            self.refresh_bindings()
            # Every ended run says how, with its counts (a failed one: the error modal instead).
            note = finished_note(message.kind, message.outcome, message.summary)
            if note is not None:
                self.notify(note, timeout=3 if message.outcome == "declined" else 6,
                            severity="warning" if message.outcome == "cancelled" else "information")
        self._forward(message)

    def _forward(self, message: Message) -> None:
        """Post a copy of a run's ``message`` to every screen of the stack (a message is handled once)."""
        for screen in self.screen_stack:
            screen.post_message(dataclasses.replace(message))  # type: ignore[type-var]

    def workspace_changed(self) -> None:
        """Tell every screen that the plan changed."""
        for screen in self.screen_stack:
            screen.post_message(WorkspaceChanged())

    # -- decisions (the poll that notices other consoles' is in console/watch.py) ---------------
    def saw_decisions(self, mark: int) -> None:
        """A screen now shows the decisions up to ``mark``: only a newer mark triggers a reload."""
        self._decisions_seen = mark

    def decisions_changed(self) -> None:
        """A screen of this console recorded decisions: tell every screen, and the other consoles."""
        self.note_action("recorded decisions")
        self._announce_decisions()

    def _announce_decisions(self) -> None:
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
