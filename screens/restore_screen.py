"""The restore screen: start, watch and steer the write of transform(dump) into the new table.

:func:`prepare_restore` runs in the App's ``restore`` run worker (``host.start_run("restore")``,
:mod:`.runs`): it checks the plan, the keymap and the target table and asks the operator (a
:class:`ConfirmScreen` awaited from the worker; a non-empty table needs its name typed, a missing
one is offered to be created); the run's driver then drives
:func:`keyshift.core.migrate.restore.run_restore`. The App keeps the run's newest progress and outcome
in its ``restore`` slot and forwards the run's messages to every screen, so the screen can be closed
and opened again while a restore runs.

``p``, ``+``/``-``, ``l`` and ``w`` write the workspace's control file (:func:`write_control`),
which any running restore polls every second, this console's or the CLI's alike. Escape cancels
this console's run (it stops at its next batch with a resumable checkpoint); ``r`` resumes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Input, ProgressBar, Static
from textual.worker import get_current_worker

from keyshift.core.errors import KeyshiftError
from keyshift.core.text.escape import visible
from keyshift.core.text.plural import count
from keyshift.core.plan.queries import PlanRow, latest_plan
from keyshift.core.migrate.restore import (
    RestoreError,
    RestoreProgress,
    latest_restore,
    plan_to_restore_args,
    run_restore,
)
from keyshift.core.migrate.restore_control import RestoreControl, read_control, write_control
from keyshift.core.migrate.preflight import restore_preflight
from keyshift.core.store.runs import Run
from keyshift.core.migrate.tables import create_target_table, new_table_schema

from .confirm import ConfirmScreen, say_cancelled
from .host import ConsoleHost
from .news import RunsChanged
from .runs import RESTORE, Launch, RunFinished, RunProgressed, RunRequest, RunSlot, RunStarted
from .widgets import format_eta, format_rate, visible_text

__all__ = [
    "DEFAULT_WORKERS",
    "NumberDialog",
    "RestoreScreen",
    "prepare_restore",
    "restore_label",
]

#: Workers of a restore started here when the control file names none (the CLI's default).
DEFAULT_WORKERS = 4
#: ``+`` and ``-`` multiply and divide the rate limit by this.
RATE_STEP = 1.5
#: How often the idle screen re-reads the latest run and the control file (a CLI run moves them).
REFRESH_SECONDS = 2.0
_RUN_STATES = {
    "complete": ("green", "complete"),
    "running": ("yellow", "running"),
    "paused": ("yellow", "paused"),
    "cancelled": ("yellow", "cancelled — resumable"),
    "failed": ("red", "failed — resumable"),
}


@dataclass
class RestoreInfo(Message, bubble=False):
    """The latest run, the control file and the plan, read in a thread."""

    run: Run | None
    control_file: RestoreControl | None
    plan: PlanRow | None
    table: str | None  # the spec's target table (None: the spec cannot be read)


@dataclass
class ControlWritten(Message, bubble=False):
    """The control file now says ``control_file`` (``note`` tells the operator what changed)."""

    control_file: RestoreControl
    note: str


def restore_label(run: Run | None) -> tuple[str, str]:
    """(style, label) of a restore run's state, for the overview and this screen."""
    if run is None:
        return "dim", "not started"
    if run.state in ("running", "paused") and not run.alive():
        return "red", "not responding — killed? resumable (r)"
    return _RUN_STATES.get(run.state, ("red", run.state))


# -- the run -----------------------------------------------------------------------------------
def prepare_restore(request: RunRequest) -> Launch | None:
    """Check and confirm a restore in the worker thread; the :class:`Launch` that writes it, or None
    when the operator declined.

    The same checks as ``keyshift restore``; the blockers an operator can lift here (open cases, a
    non-empty table, a missing one) become questions. Options: ``resume``.
    """
    context, resume = request.context, bool(request.options.get("resume"))
    context.require_writable("restore")
    ws, spec = context.workspace, context.spec
    table = spec.target.table
    ddb = context.aws.client("dynamodb")
    pre = restore_preflight(ws, spec, ddb, context.aws.client("dynamodbstreams"), resume=resume)
    askable = {"open-cases", "not-empty"} | (set() if resume else {"no-table"})
    hard = [b for b in pre.blockers if b.code not in askable]
    if hard:
        raise RestoreError("; ".join(b.message for b in hard), title="Restore not started")
    open_cases = pre.blocked("open-cases")
    if open_cases is not None and not request.ask(ConfirmScreen(
            "Skip the open cases?", f"{open_cases.message}.\n\nRestore anyway, leaving their items out of "
            "the new table? (Or decide them first in the resolution queue.)", confirm_label="Skip them")):
        return None
    plan, build = pre.plan, pre.build
    assert plan is not None and build is not None
    args = plan_to_restore_args(plan)
    s3 = context.s3() if args["dump_uri"].startswith("s3://") else None
    control = read_control(ws) or RestoreControl()
    workers, rate = control.workers or DEFAULT_WORKERS, control.rate
    lines = f"{args['total_lines']:,}" if args["total_lines"] is not None else "all"
    what = (f"transform({args['dump_uri']}): {lines} lines, keymap {build.keymap.version}, "
            f"{workers} workers, rate {format_rate(rate, 'items') if rate else 'not limited'}")
    if control.paused:
        what += ".\n\nThe control file says paused: the restore pauses at once (p resumes it)"
    for warning in pre.warnings:
        if not warning.startswith(f"{len(build.open_cases):,} case(s) are still open"):
            what += f".\n\n⚠ {warning}"
    exists = bool(pre.target_exists)
    if resume:
        run = pre.resume_run
        question = ConfirmScreen(
            "Resume the restore?",
            f"Resume restore run {run.id if run else '?'} into {table}: lines its checkpoint holds are "
            f"skipped, the rest are put again (puts are idempotent).\n\n{what}.", confirm_label="Resume")
    elif not exists:
        question = ConfirmScreen(
            "Create the target table?",
            f"Table {table} does not exist. Create it (on-demand billing, a NEW_AND_OLD_IMAGES stream, "
            f"key {spec.target.partition_key}"
            f"{' + ' + spec.source.sort_key if spec.source.sort_key else ''}) and write {what}?",
            confirm_label="Create table and restore")
    elif pre.blocked("not-empty") is not None:
        question = ConfirmScreen(
            "Restore into a non-empty table?",
            f"Table {table} already holds {_held_items(ddb, table)}. Restoring writes {what} over them: "
            "items with the same key are replaced, every other item stays.", confirm_label="Restore",
            type_to_confirm=table, cancelled="nothing written")
    else:
        question = ConfirmScreen("Start the restore?", f"Write {what} into {table}.", confirm_label="Restore")
    if not request.confirm(question):
        return None
    if not exists and not resume:
        create_target_table(ddb, spec, new_table_schema(ddb, spec))
    gen = run_restore(ws, spec, build.keymap, ddb=context.aws.writer_client(), s3=s3, **args,
                      operator=context.operator, workers=workers, rate=rate, resume=resume, cancel=request.cancel)
    return Launch(gen, details={"table": table, "total_lines": args["total_lines"]},
                  snapshot=lambda p: dataclasses.replace(p, errors=list(p.errors)))


def _held_items(ddb: Any, table: str) -> str:
    """How many items ``table`` holds, as DynamoDB estimates it (refreshed about every six hours)."""
    try:
        n = ddb.describe_table(TableName=table)["Table"].get("ItemCount")
    except ClientError:  # the question is still worth asking without the number
        return "items"
    return "items" if n is None else f"about {count(int(n), 'item')} (DynamoDB's estimate)"


# -- a small number dialog -----------------------------------------------------------------------
class NumberDialog(ModalScreen[float | None]):
    """Ask for one number between ``minimum`` and ``maximum``; dismisses with it, None on Escape.

    ``blank_means`` (e.g. ``"no limit"``) lets the operator leave the field empty or type 0:
    the dialog then dismisses with 0.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="number.cancel", tooltip="Change nothing and go back"),
    ]

    def __init__(self, title: str, prompt: str, value: float | None, *, minimum: float, maximum: float,
                 blank_means: str | None = None) -> None:
        super().__init__()
        self.dialog_title, self.prompt = title, prompt
        self.value = "" if value is None else f"{value:g}"
        self.minimum, self.maximum, self.blank_means = minimum, maximum, blank_means

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog number-dialog") as box:
            box.border_title = self.dialog_title
            yield Static(self.prompt, markup=False)
            yield Input(self.value, type="number", id="number-value")
            yield Static("", id="number-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Set", id="number-set", variant="primary")
                yield Button("Cancel", id="number-cancel")

    def on_mount(self) -> None:
        self.query_one("#number-value", Input).focus()

    @on(Input.Submitted, "#number-value")
    @on(Button.Pressed, "#number-set")
    def _set(self) -> None:
        text = self.query_one("#number-value", Input).value.strip()
        try:
            value = float(text) if text else 0.0
        except ValueError:
            value = -1.0
        if value == 0 and self.blank_means is not None:
            self.dismiss(0.0)
        elif self.minimum <= value <= self.maximum:
            self.dismiss(value)
        else:
            allowed = f"{self.minimum:g} to {self.maximum:g}" + (f", or 0 for {self.blank_means}"
                                                                 if self.blank_means else "")
            self.query_one("#number-problem", Static).update(Text(f"enter {allowed}", style="red"))

    @on(Button.Pressed, "#number-cancel")
    def action_cancel(self) -> None:
        """Dismiss without a value, and say so."""
        say_cancelled(self, "nothing changed")
        self.dismiss(None)


# -- the screen --------------------------------------------------------------------------------
class RestoreScreen(Screen[None]):
    """Step 3: the running (or latest) restore, its counters, and the keys that steer it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back_or_cancel", "Back/cancel", id="restore.cancel",
                tooltip="Cancel this console's running restore (resumable with r), or go back"),
        Binding("s", "restore_start", "Start", id="restore.start",
                tooltip="Write transform(dump) into the new table (asks first; offers to create the table)"),
        Binding("r", "restore_resume", "Resume", id="restore.resume",
                tooltip="Continue the interrupted restore from its checkpoint"),
        Binding("p", "restore_pause", "Pause", id="restore.pause",
                tooltip="Pause or resume the running restore, this console's or the CLI's (control file)"),
        Binding("plus", "restore_rate_up", "Rate ×1.5", key_display="+", id="restore.rate-up",
                tooltip="Raise the rate limit by half (the control file; no limit stays no limit)"),
        Binding("minus", "restore_rate_down", "Rate ÷1.5", key_display="-", id="restore.rate-down",
                tooltip="Lower the rate limit (from the observed rate when there is no limit)"),
        Binding("l", "restore_set_rate", "Set rate", id="restore.rate", show=False,  # 80 columns: F1 lists it
                tooltip="Type a rate limit in items per second (0: no limit)"),
        Binding("w", "restore_set_workers", "Workers", id="restore.workers", show=False,  # 80 columns: F1 lists it
                tooltip="Set how many parallel writers the running restore uses"),
    ]

    def __init__(self, host: ConsoleHost) -> None:
        super().__init__()
        self.host = host
        self.run: Run | None = None  # the latest run in the workspace
        self.control: RestoreControl | None = None
        self.plan: PlanRow | None = None
        self.loaded = False

    @property
    def slot(self) -> RunSlot:
        """This console's restore (running, its newest progress, how the last one ended)."""
        return self.host.slot(RESTORE)

    @property
    def live(self) -> RestoreProgress | None:
        """The running (or last) restore's newest progress."""
        progress: RestoreProgress | None = self.slot.progress
        return progress

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="restore"):
            with Vertical(id="restore-run", classes="box") as box:
                box.border_title = "Restore"
                yield Static("reading the workspace…", id="restore-state")
                yield ProgressBar(total=None, show_eta=False, id="restore-bar")
                yield Static("", id="restore-stats")
                yield Static("", id="restore-errors")
            with Vertical(id="restore-side"):
                with Vertical(id="restore-control-box", classes="box") as control:
                    control.border_title = "Control file"
                    yield Static("", id="restore-control")
                with Vertical(id="restore-last-box", classes="box") as last:
                    last.border_title = "Latest run"
                    yield Static("", id="restore-last")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._refresh_if_idle)

    def on_screen_resume(self) -> None:
        self.reload()
        self._render_live()

    # -- reading ---------------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the latest run, the control file and the plan (in a thread)."""
        context = self.host.context

        def load() -> None:
            ws = context.workspace
            try:
                table: str | None = context.spec.target.table
            except KeyshiftError:
                table = None  # starting a restore reports the spec's problem
            info = RestoreInfo(latest_restore(ws), read_control(ws), latest_plan(ws), table)
            if not get_current_worker().is_cancelled:
                self.post_message(info)

        self.host.run_blocking(load, group="restore-info", description="read the latest restore")

    @on(RunsChanged)  # another console's restore moved: show it now, not at the next tick
    def _refresh_if_idle(self) -> None:
        if self.is_current and not self.slot.running:
            self.reload()

    @on(RestoreInfo)
    def _info(self, message: RestoreInfo) -> None:
        changed = (message.run.state if message.run else None) != (self.run.state if self.run else None) \
            or not self.loaded
        self.run, self.control, self.plan, self.loaded = message.run, message.control_file, message.plan, True
        self.query_one("#restore-run", Vertical).border_title = \
            f"Restore into {message.table}" if message.table else "Restore"
        self.query_one("#restore-control", Static).update(_control(message.control_file))
        self.query_one("#restore-last", Static).update(_last_run(message.run))
        self._render_live()
        if changed:
            self.refresh_bindings()

    # -- live state --------------------------------------------------------------------------------
    @on(RunStarted)
    @on(RunProgressed)
    @on(RunFinished)
    def _news(self, message: RunStarted | RunProgressed | RunFinished) -> None:
        if message.kind != RESTORE:
            return
        self._render_live()
        if not isinstance(message, RunProgressed):
            self.refresh_bindings()
            self.reload()

    def _render_live(self) -> None:
        """Show the App's view of this console's run, else the latest run of the workspace."""
        slot = self.slot
        running, live = slot.running, self.live
        bar = self.query_one("#restore-bar", ProgressBar)
        total_lines = (self.plan.summary or {}).get("lines") if self.plan else None
        if live is None and not running and self.run is not None:
            # A finished run's summary, or an unfinished run's last checkpoint counters.
            done = self.run.totals
            if done:
                live = _from_summary(done, total_lines)
        if live is not None:
            total = live.total_lines or total_lines
            if total:
                bar.update(total=total, progress=min(_done(live), total))
            else:
                bar.update(total=None if running else 100, progress=0 if running else 100)
            self.query_one("#restore-stats", Static).update(_stats(live, total, running))
        else:
            bar.update(total=None if running else 100, progress=0)
            self.query_one("#restore-stats", Static).update("")
        self.query_one("#restore-state", Static).update(self._state_line(live))
        errors = list(live.errors[-5:]) if live is not None and slot.progress is not None else []
        if slot.outcome == "failed" and slot.error:
            errors.append(slot.error)
        self.query_one("#restore-errors", Static).update(
            Group(Text("last errors", style="bold red"), *(visible_text(e) for e in errors[-5:]))
            if errors else "")

    def _state_line(self, live: RestoreProgress | None) -> Text:
        slot = self.slot
        if slot.running:
            if live is None or slot.progress is None:
                return Text("starting… (checking the plan, the keymap and the table)", style="yellow")
            if live.paused:
                return Text("⏸ PAUSED — p resumes", style="bold yellow")
            return Text("◐ running — Escape cancels (resumable), p pauses", style="yellow")
        if slot.outcome == "complete" and slot.summary is not None:
            s = slot.summary
            return Text(f"✔ complete: {s['written']:,} items written into {s['table']} in "
                        f"{s['seconds']:.1f} s", style="green")
        if slot.outcome == "cancelled":
            return Text("✘ cancelled — resumable (r resumes from the checkpoint)", style="yellow")
        if slot.outcome == "failed":
            return Text("✘ failed — resumable once the cause is fixed (r)", style="red")
        if slot.outcome == "refused":
            return Text(f"✘ not started: {visible(slot.error)}", style="red")
        if not self.loaded:
            return Text("reading the workspace…", style="dim")
        if self.run is None:
            if self.plan is None or self.plan.state != "complete":
                return Text("No restore yet, and no complete plan: plan a dump first (p on the overview).")
            return Text("No restore yet. Press s to write transform(dump) into the new table: the console "
                        "checks the table first, offers to create it, and asks before writing.")
        style, label = restore_label(self.run)
        text = Text(f"latest run #{self.run.id}: ", style="bold").append(label, style=style)
        if self.run.state in ("running", "paused"):
            text.append("\nrunning elsewhere (the CLI?) or killed: p, +, -, l and w steer it through the "
                        "control file; r resumes it only if nothing runs it any more", style="dim")
        return text

    # -- actions -----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        host = self.host
        if action in host.MUTATING_ACTIONS and host.read_only:
            return None  # greyed out: audit mode changes nothing
        running = self.slot.running
        if action == "restore_start":
            return None if running else True
        if action == "restore_resume":
            resumable = self.run is not None and self.run.state != "complete"
            return True if resumable and not running else None
        if action == "restore_pause":
            # A pause exists only while a restore does: this console's, or one running elsewhere
            # (the CLI) that still answers. On a finished restore it would leave a stray request.
            elsewhere = self.run is not None and self.run.state in ("running", "paused") and self.run.alive()
            return True if running or elsewhere else None
        return True

    def action_back_or_cancel(self) -> None:
        """Cancel this console's running restore (only it), or go back when none runs."""
        if self.host.cancel_run(RESTORE):
            self.query_one("#restore-state", Static).update(
                Text("cancelling… (stops at the next batch; the checkpoint is kept)", style="yellow"))
        else:
            self.dismiss()

    def action_restore_start(self) -> None:
        """Start a new restore (the worker checks the table and asks first)."""
        if self.check_action("restore_start", ()) is True:
            self.host.start_run(RESTORE, resume=False)

    def action_restore_resume(self) -> None:
        """Resume the interrupted restore from its checkpoint."""
        if self.check_action("restore_resume", ()) is True:
            self.host.start_run(RESTORE, resume=True)

    def action_restore_pause(self) -> None:
        """Toggle ``paused`` in the control file."""
        if self.check_action("restore_pause", ()) is not True:
            return
        def change(control: RestoreControl) -> str:
            control.paused = not control.paused
            return "pause requested" if control.paused else "resume requested"

        self._write_control(change)

    def action_restore_rate_up(self) -> None:
        """Raise the rate limit ×1.5 (no limit stays no limit)."""
        self._step_rate(RATE_STEP)

    def action_restore_rate_down(self) -> None:
        """Lower the rate limit ÷1.5 (from the observed rate when there is none)."""
        self._step_rate(1 / RATE_STEP)

    def _step_rate(self, factor: float) -> None:
        live = self.live
        observed = live.rate if live is not None and self.slot.running else 0.0
        if not (self.control and self.control.rate) and not (factor < 1 and observed):
            self.notify("no rate limit set: l sets one" if factor > 1 else
                        "no rate limit and no observed rate yet: l sets one", timeout=3)
            return

        def change(control: RestoreControl) -> str:
            base = control.rate or (observed if factor < 1 else None)
            if not base:
                raise RestoreError("no rate limit is set (and no observed rate to start from): "
                                   "set one with l", title="Rate unchanged")
            control.rate = max(1.0, round(base * factor, 1))
            return f"rate limit {format_rate(control.rate, 'items')}"

        self._write_control(change)

    def action_restore_set_rate(self) -> None:
        """Type a rate limit (0: none)."""
        current = self.control.rate if self.control else None
        dialog = NumberDialog("Rate limit", "Items per second at most (0 or empty: as fast as the table "
                              "takes). A running restore picks it up within a second.", current,
                              minimum=1, maximum=1_000_000, blank_means="no limit")
        self.app.push_screen(dialog, self._rate_chosen)

    def _rate_chosen(self, value: float | None) -> None:
        if value is None:
            return

        def change(control: RestoreControl) -> str:
            control.rate = value or None
            return f"rate limit {format_rate(value, 'items')}" if value else "no rate limit"

        self._write_control(change)

    def action_restore_set_workers(self) -> None:
        """Set the number of parallel writers."""
        live = self.live
        current = (self.control.workers if self.control else None) or (live.workers if live else DEFAULT_WORKERS)
        dialog = NumberDialog("Workers", "Parallel BatchWriteItem writers (1-64). A running restore picks "
                              "it up within a second.", current, minimum=1, maximum=64)
        self.app.push_screen(dialog, self._workers_chosen)

    def _workers_chosen(self, value: float | None) -> None:
        if value is None:
            return

        def change(control: RestoreControl) -> str:
            control.workers = int(value)
            return f"{int(value)} workers"

        self._write_control(change)

    def _write_control(self, change: Callable[[RestoreControl], str]) -> None:
        """Read the control file, apply ``change``, write it back and audit it (in a thread)."""
        context = self.host.context

        def work() -> None:
            context.require_writable("restore control")
            ws = context.workspace
            control = read_control(ws) or RestoreControl()
            note = change(control)
            write_control(ws, control)
            ws.audit(context.operator, "restore.control", dataclasses.asdict(control))
            self.post_message(ControlWritten(control, note))

        self.host.run_blocking(work, group="restore-control", description="write the restore control")

    @on(ControlWritten)
    def _control_written(self, message: ControlWritten) -> None:
        self.control = message.control_file
        self.query_one("#restore-control", Static).update(_control(message.control_file))
        self.notify(f"control file: {message.note}", timeout=3)


# -- rendering ---------------------------------------------------------------------------------
def _from_summary(summary: Mapping[str, Any], total_lines: int | None) -> RestoreProgress:
    """A finished run's summary in the shape of progress (one renderer for both)."""
    progress = RestoreProgress(total_lines=total_lines, elapsed=float(summary.get("seconds", 0.0)))
    for name in ("lines", "written", "skipped", "dropped_by_decision", "unreadable", "retries", "throttles"):
        setattr(progress, name, int(summary.get(name, 0)))
    progress.skip_reasons = {str(k): int(n) for k, n in (summary.get("skip_reasons") or {}).items()}
    return progress


#: What each reason a restore skips a line for means (run_restore's skip kinds).
_SKIP_REASONS = {
    "superseded": "superseded (a later line of the dump has the same item)",
    "unresolved": "of open cases (decide them in the queue to write them)",
    "conflict-loser": "lost a key conflict to the record the decision kept",
    "collision": "collide with another identifier's new key",
    "invalid": "invalid identifiers (no new id possible)",
    "bad-key": "identifier attribute not a string",
    "other": "for another reason",
}


def _done(p: RestoreProgress) -> int:
    """Lines settled: written, skipped, dropped or unreadable (``lines`` counts lines read, which
    run ahead of the writes by up to two batches per worker)."""
    return min(p.lines, p.written + p.skipped + p.dropped_by_decision + p.unreadable)


def _stats(p: RestoreProgress, total: int | None, running: bool) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    done = _done(p)
    lines = f"{done:,}" + (f" of {total:,} ({min(1.0, done / total):.0%})" if total else "")
    if running:
        eta = p.elapsed * (total - done) / done if total and done and p.elapsed > 0 else None
        lines += f" done, {p.lines:,} read   {format_eta(eta)}"
    grid.add_row("lines", Text(lines))
    grid.add_row("written", Text(f"{p.written:,} items   {format_rate(p.rate, 'items')}"))
    grid.add_row("skipped", Text(f"{p.skipped:,}   dropped by decision {p.dropped_by_decision:,}"
                                 f"   unreadable {p.unreadable:,}"))
    for reason, n in sorted(p.skip_reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        if n and reason != "unreadable":  # unreadable has its own count above
            grid.add_row("", Text(f"  {n:,} {_SKIP_REASONS.get(reason, reason)}", style="dim"))
    grid.add_row("retries", Text(f"{p.retries:,}   throttles {p.throttles:,}",
                                 style="yellow" if p.retries or p.throttles else ""))
    if running:
        grid.add_row("workers", Text(str(p.workers)))
        grid.add_row("rate limit", Text(format_rate(p.rate_limit, "items") if p.rate_limit else "none"))
        grid.add_row("paused", Text("yes", style="bold yellow") if p.paused else Text("no"))
    grid.add_row("elapsed", Text(f"{p.elapsed:,.1f} s"))
    return grid


def _control(control: RestoreControl | None) -> Table | Text:
    if control is None:
        return Text("none: a restore runs as started (p, +, -, l and w write it)", style="dim")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("paused", Text("yes", style="bold yellow") if control.paused else Text("no"))
    grid.add_row("rate limit", Text(format_rate(control.rate, "items") if control.rate else "none"))
    grid.add_row("workers", Text(str(control.workers) if control.workers else "as started"))
    return grid


def _last_run(run: Run | None) -> Table | Text:
    if run is None:
        return Text("no restore in this workspace yet", style="dim")
    style, label = restore_label(run)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("run", Text(f"#{run.id}"))
    grid.add_row("state", Text(label, style=style))
    grid.add_row("keymap", Text(str(run.keymap or "?")))
    grid.add_row("started", Text(str(run.started_at or "?")))
    grid.add_row("finished", Text(str(run.finished_at or "—")))
    summary = run.summary or {}
    if summary:
        grid.add_row("table", visible_text(summary.get("table")))
        grid.add_row("written", Text(f"{summary.get('written', 0):,} items"))
        grid.add_row("resumed", Text("yes" if summary.get("resumed") else "no"))
    return grid
