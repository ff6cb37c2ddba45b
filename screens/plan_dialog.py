"""Planning a dump from the console: a dump URI and format in, live progress, Escape cancels.

:func:`prepare_plan` runs in the App's ``plan`` run worker (``host.start_run("plan", …)``,
:mod:`.runs`) and hands :func:`keyshift.core.plan.planner.run_plan` to the run's driver; the App keeps
the run's progress and outcome in its ``plan`` slot and forwards the run's messages (progress
replaceable, so a fast plan cannot flood the queue) to every screen, this dialog among them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from keyshift.core.errors import WorkspaceMissing
from keyshift.core.dumps.model import FORMATS
from keyshift.core.text.escape import escape
from keyshift.core.plan.planner import PlanCancelled, PlanProgress, PlanResult, run_plan
from keyshift.core.plan.queries import PlanRow, latest_plan

from .confirm import ConfirmScreen, say_cancelled
from .host import ConsoleHost
from .runs import PLAN, Launch, RunFinished, RunProgressed, RunRequest
from .widgets import ProgressPanel

__all__ = ["PlanDialog", "prepare_plan"]


@dataclass
class CurrentPlan(Message, bubble=False):
    """The workspace's latest plan (None: never planned), read when the dialog opens."""

    plan: PlanRow | None


def prepare_plan(request: RunRequest) -> Launch:
    """The :class:`Launch` that plans ``options["dump_uri"]`` (format ``options["fmt"]``), in the
    worker thread. A plan cancelled before it began raises :class:`PlanCancelled` (and creates no
    workspace); the dialog asks before a plan replaces a complete one."""
    context = request.context
    if request.cancel.is_set():
        raise PlanCancelled("cancelled before it started")
    context.require_writable("plan")
    spec = context.spec  # a missing spec is said before any workspace is created
    ws = context.create_workspace()
    dump_uri, fmt = str(request.options["dump_uri"]), str(request.options.get("fmt", "auto"))
    reference_in_s3 = bool(spec.reference and spec.reference.uri.startswith("s3://"))
    needs_s3 = dump_uri.startswith("s3://") or reference_in_s3
    gen = run_plan(ws, spec, dump_uri, fmt=fmt, s3=context.s3() if needs_s3 else None,
                   operator=context.operator, cancel=request.cancel)

    def result(plan: PlanResult) -> tuple[str, dict[str, Any] | None]:
        return "complete", plan.summary

    return Launch(gen, details={"dump_uri": dump_uri}, snapshot=dataclasses.replace, result=result)


class PlanDialog(ModalScreen[None]):
    """Enter a dump and a format, plan it, watch it; Escape cancels a running plan, else closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel / close", id="plan.cancel",
                tooltip="Cancel the running plan (the workspace keeps a cancelled plan), or close"),
    ]

    def __init__(self, host: ConsoleHost, dump_uri: str = "") -> None:
        """``dump_uri`` prefills the dump field (else the latest plan's dump does)."""
        super().__init__()
        self.host = host
        self.dump_uri = dump_uri
        self.running = False  # a plan started here runs (the dialog stays open until it ends)
        self.planned = False  # a plan was started here (closing then is not cancelling)
        self.current: PlanRow | None = None  # the workspace's latest plan, read on mount

    def compose(self) -> ComposeResult:
        with Vertical(id="plan-dialog", classes="dialog") as box:
            box.border_title = "Plan a dump"
            yield Label("Dump: a local file or directory, or s3://bucket/prefix")
            yield Input(self.dump_uri, placeholder="/path/to/dump or s3://bucket/prefix", id="dump-uri")
            yield Label("Format")
            yield Select([(f, f) for f in ("auto", *FORMATS)], value="auto", allow_blank=False,
                         id="dump-format")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Plan", id="plan-start", variant="primary", disabled=self.host.read_only)
                yield Button("Close", id="plan-close")
            yield ProgressPanel(id="plan-progress")
            yield Static("", id="plan-outcome")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#dump-uri", Input).focus()
        if self.host.read_only:
            self._outcome(Text("read-only mode: planning is refused", style="yellow"))
        self._read_current()

    def _read_current(self) -> None:
        context = self.host.context

        def load() -> None:
            try:
                current = latest_plan(context.workspace)
            except WorkspaceMissing:
                current = None  # planning here creates it
            self.post_message(CurrentPlan(current))

        self.host.run_blocking(load, group="plan-dialog", description="read the latest plan")

    @on(CurrentPlan)
    def _current_plan(self, message: CurrentPlan) -> None:
        self.current = message.plan
        field = self.query_one("#dump-uri", Input)
        if message.plan is not None and not field.value:
            field.value = message.plan.dump_uri
            if message.plan.format in FORMATS:
                self.query_one("#dump-format", Select).value = message.plan.format

    @on(Input.Submitted, "#dump-uri")
    @on(Button.Pressed, "#plan-start")
    def _start(self) -> None:
        """Start planning the entered dump, after a confirmation when it replaces a complete plan."""
        if self.running or self.host.read_only:
            return
        uri = self.query_one("#dump-uri", Input).value.strip()
        if not uri:
            self._outcome(Text("enter a dump location first", style="yellow"))
            return
        fmt = str(self.query_one("#dump-format", Select).value)
        current = self.current
        if current is None or current.state != "complete":
            self._run(uri, fmt)
            return
        records = (current.summary or {}).get("records", 0)
        question = ConfirmScreen(
            "Replace the current plan?",
            f"The workspace holds a complete plan of {escape(current.dump_uri)} ({records:,} records). "
            "Planning again replaces it, even if the new plan is cancelled.",
            confirm_label="Plan again", cancelled="the current plan is kept",
        )
        self.app.push_screen(question, lambda yes: self._run(uri, fmt) if yes else None)

    def _run(self, uri: str, fmt: str) -> None:
        self.planned = True
        self._set_running(True)
        self.query_one(ProgressPanel).show(phase="starting", done=0, fraction=None, rate=0.0, eta=None)
        self._outcome(Text(""))
        if self.host.start_run(PLAN, dump_uri=uri, fmt=fmt) is None:  # the plan slot is busy
            self._set_running(False)
            self._outcome(Text("a plan is still running", style="yellow"))

    @on(Button.Pressed, "#plan-close")
    def _close(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        """Cancel the running plan, or close the dialog when nothing runs."""
        if self.running:
            self.host.cancel_run(PLAN)
            self._outcome(Text("cancelling…", style="yellow"))
        else:
            if not self.planned:
                say_cancelled(self, "nothing planned")
            self.dismiss()

    @on(RunProgressed)
    def _progressed(self, message: RunProgressed) -> None:
        if message.kind != PLAN or not self.running:
            return
        p: PlanProgress = message.progress
        self.query_one(ProgressPanel).show(phase=p.phase, done=p.lines, fraction=p.fraction, rate=p.rate,
                                           eta=p.eta)

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        if message.kind != PLAN or not self.running:
            return
        self._set_running(False)
        panel = self.query_one(ProgressPanel)
        panel.finish(message.outcome)
        self._read_current()  # the workspace's plan changed
        if message.outcome == "complete" and message.summary is not None:
            s = message.summary
            panel.done = s.get("lines", 0)
            recon = "reconciled" if s.get("reconciled") else "DOES NOT RECONCILE"
            self._outcome(Text(
                f"complete: {s['lines']:,} lines = {s['records']:,} records + {s['quarantined']:,} "
                f"quarantined ({recon}) in {s.get('seconds', 0):.1f} s", style="green"))
        elif message.outcome == "cancelled":
            self._outcome(Text("cancelled: plan again to get a complete plan", style="yellow"))
        elif message.outcome == "refused":
            self._outcome(Text(f"not started: {message.error}", style="red"))
        else:
            self._outcome(Text(f"failed: {message.error}", style="red"))
        self.host.workspace_changed()

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#plan-start", Button).disabled = running or self.host.read_only
        self.query_one("#dump-uri", Input).disabled = running
        self.query_one("#dump-format", Select).disabled = running
        self.query_one("#plan-close", Button).label = "Cancel" if running else "Close"

    def _outcome(self, text: Text) -> None:
        self.query_one("#plan-outcome", Static).update(text)
