"""The overview: the migration's steps as a checklist and the plan's state and counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from keyshift.core.resolve.cases import progress
from keyshift.core.errors import KeyshiftError, WorkspaceMissing
from keyshift.core.plan.queries import RECORD_STATUSES, PlanRow, latest_plan, status_counts
from keyshift.core.migrate.restore import latest_restore
from keyshift.core.store.runs import Run
from keyshift.core.migrate.stream.sync import latest_stream_sync, watermark
from keyshift.core.migrate.verify.run import latest_verify
from keyshift.core.status import StepStatus, next_step, read_status
from keyshift.core.text.plural import count

from .actions import OPEN_AUDIT, PLAN_DUMP, STEPS, action_named, overview_bindings
from .host import ConsoleHost
from .news import FlagChanged, RunsChanged
from .presence_panel import PresencePanel
from .resolve_queue import DecisionsChanged
from .restore_screen import restore_label
from .runs import RESTORE, RunFinished, RunProgressed, RunStarted
from .verify_screen import report_of, verify_mark
from .widgets import STATUS_STYLES, WorkspaceChanged, visible_text

__all__ = ["OverviewScreen", "sync_mark"]

_PLAN_MARKS = {
    "complete": ("✔", "green", "complete"),
    "running": ("◐", "yellow", "running"),
    "cancelled": ("✘", "yellow", "cancelled"),
    "failed": ("✘", "red", "failed"),
}
_NOT_STARTED = ("○", "dim", "not started")
#: How often the overview re-reads the workspace while it is on top.
REFRESH_SECONDS = 5.0
_NO_PLAN_HELP = (
    "No plan yet.\n\n"
    "Press p to plan a dump from here (a local file or directory, or s3://bucket/prefix).\n\n"
    "A plan reads every line of the dump, normalizes every identifier and classifies every "
    "record; nothing is written to AWS."
)


@dataclass
class OverviewLoaded(Message, bubble=False):
    """What the overview shows, read in a thread."""

    plan: PlanRow | None
    counts: dict[str, dict[str, int]] | None
    error: str | None = None
    resolved: tuple[int, int] | None = None  # (decided, cases) of a complete plan
    restore: Run | None = None  # the latest restore run
    verify: dict[str, Any] | None = None  # the latest verify run or report (latest_verify)
    sync: Run | None = None  # the latest stream-sync run
    status: list[StepStatus] | None = None  # every step's state, why and next action (core.status)


class OverviewScreen(Screen[None]):
    """The default screen: where the migration stands and what to do next."""

    #: The console's screens and steps (from the action table), then this screen's own key.
    BINDINGS: ClassVar[list[BindingType]] = [
        *overview_bindings(),
        Binding("r", "reload", "Refresh", id="overview.refresh",
                tooltip="Re-read the workspace (another console or the CLI may have changed it)"),
    ]

    def __init__(self, host: ConsoleHost) -> None:
        super().__init__()
        self.host = host

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="overview"):
            with Vertical(id="steps-box") as steps:
                steps.border_title = "Migration steps"
                yield Static(self._steps(None, None, None, None), id="steps")
                yield Static("", id="next-step")
            with VerticalScroll(id="plan-box") as box:
                box.border_title = "Plan"
                yield Static("reading the workspace…", id="plan-state")
                yield Static("", id="plan-counts")
                yield Static("", id="plan-findings")
        yield PresencePanel(self.host)
        yield Footer()

    _failed = False  # the last read failed: do not re-read (and re-fail) on every resume

    def on_mount(self) -> None:
        # Another console or the CLI moves the state too (a decision, a run ending): re-read now and
        # then while the overview is on top, so the status never tells of a world that is gone.
        self.set_interval(REFRESH_SECONDS, self._refresh_if_current)

    def _refresh_if_current(self) -> None:
        if self.is_current and not self._failed:
            self.action_reload()

    def on_screen_resume(self) -> None:
        """Shown first, or again after another screen closed: re-read the workspace."""
        if not self._failed:
            self.action_reload()

    @on(WorkspaceChanged)
    @on(DecisionsChanged)
    @on(RunStarted)
    @on(RunFinished)
    def _workspace_changed(self) -> None:
        self.action_reload()  # a run of any kind began or ended: its step changed

    @on(RunsChanged)
    @on(FlagChanged)
    def _elsewhere_changed(self) -> None:
        self._refresh_if_current()  # another console's run or flip (re-read on resume otherwise)

    @on(PresencePanel.Counted)
    def _presence_counted(self, message: PresencePanel.Counted) -> None:
        self.sub_title = (f"{self.app.sub_title} · {count(message.others, 'other console')} attached"
                          if message.others else None)

    _shown: OverviewLoaded | None = None  # what the steps show, re-drawn on restore progress

    @on(RunProgressed)
    def _run_progressed(self, message: RunProgressed) -> None:
        if message.kind == RESTORE and self._shown is not None:
            self._draw_steps(self._shown)

    def action_reload(self) -> None:
        """Re-read the plan and the per-status counts (in a thread: counting may take a moment)."""
        context = self.host.context

        def load() -> None:
            try:
                try:
                    ws = context.workspace
                except WorkspaceMissing:
                    if context.read_only:
                        raise  # audit mode cannot plan: say plainly that there is nothing to audit
                    self.post_message(OverviewLoaded(None, None))  # the no-plan help says what to do
                    return
                plan = latest_plan(ws)
                counts = status_counts(ws) if plan is not None and plan.state == "complete" else None
                resolved = progress(ws) if counts is not None else None
                restore, verify, sync = latest_restore(ws), report_of(latest_verify(ws)), latest_stream_sync(ws)
                status = read_status(ws)
            except KeyshiftError as exc:
                self.post_message(OverviewLoaded(None, None, exc.message))
                raise  # the App shows it in the error modal
            self.post_message(OverviewLoaded(plan, counts, resolved=resolved, restore=restore, verify=verify,
                                             sync=sync, status=status))

        self.host.run_blocking(load, group="overview", description="read the plan")

    @on(OverviewLoaded)
    def _loaded(self, message: OverviewLoaded) -> None:
        plan, counts = message.plan, message.counts
        self._failed = message.error is not None
        self._draw_steps(message)
        self.query_one("#next-step", Static).update(_next_step(message.status))
        state = self.query_one("#plan-state", Static)
        if plan is None:
            state.update(Text(f"Cannot read the workspace: {message.error}", style="red")
                         if message.error else Text(_NO_PLAN_HELP))
            self.query_one("#plan-counts", Static).update("")
            self.query_one("#plan-findings", Static).update("")
            return
        state.update(self._plan_state(plan))
        summary = plan.summary or {}
        self.query_one("#plan-counts", Static).update(self._counts(counts, summary) if counts else "")
        self.query_one("#plan-findings", Static).update(self._findings(summary) if summary else "")

    def _draw_steps(self, message: OverviewLoaded) -> None:
        self._shown = message
        restore = self.host.slot(RESTORE)
        live = restore.progress if restore.running else None
        self.query_one("#steps", Static).update(
            self._steps(message.plan, message.resolved, message.restore, message.verify, live, message.sync))

    # -- rendering ----------------------------------------------------------------------------
    @staticmethod
    def _steps(plan: PlanRow | None, resolved: tuple[int, int] | None, restore: Run | None,
               verify: dict[str, Any] | None, live: Any = None, sync: Run | None = None) -> Group:
        name_width = max(len(f"{step.number} {step.name}") for step in STEPS)

        def grid() -> Table:  # fixed widths: the grids above and below the Resolve count line up
            table = Table.grid(padding=(0, 1))
            table.add_column(width=1)
            table.add_column(width=name_width)
            table.add_column()
            return table

        parts: list[Table | Text] = []
        table = grid()
        for step in STEPS:
            number = step.number
            mark, style, label = _NOT_STARTED
            if number == 1 and plan is not None:
                mark, style, label = _PLAN_MARKS.get(plan.state, ("?", "red", plan.state))
            if number == 2 and resolved is not None:
                mark, style, label = _resolve_mark(*resolved)
            detail = None
            if number == 3 and (restore is not None or live is not None):
                mark, style, label, detail = _restore_mark(restore, live, plan)
            if number == 4 and sync is not None:
                mark, style, label, detail = sync_mark(sync)
            if number == 5 and verify is not None:
                mark, style, label = verify_mark(verify)
                label, _, rest = label.partition(" — ")  # the column is narrow: "resumable" below
                detail = rest or None
            name = Text(f"{number} {step.name}", style="bold" if number == 1 else "")
            if step.link is not None:  # a link: a click opens the step's screen, like its key
                name.stylize(Style(underline=True) + Style.on(click=step.link))
            table.add_row(Text(mark, style=style), name, Text(label, style=style))
            if number == 2 and resolved is not None and resolved[1]:
                detail = f"{resolved[0]:,} of {resolved[1]:,} decided"
            if detail:
                parts += [table, Text(f"  {detail}", style="dim")]
                table = grid()
        parts.append(table)
        return Group(*parts)

    @staticmethod
    def _plan_state(plan: PlanRow) -> Table:
        summary = plan.summary or {}
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("state", Text(plan.state, style=_PLAN_MARKS.get(plan.state, ("", "", ""))[1]))
        grid.add_row("dump", visible_text(plan.dump_uri))
        grid.add_row("format", Text(plan.format or "?"))
        if summary.get("detected"):
            grid.add_row("detected", visible_text(summary.get("detection", ""), edge_spaces=False))
        when = plan.started_at + (f" → {plan.finished_at}" if plan.finished_at else "")
        grid.add_row("when", Text(when))
        grid.add_row("by", visible_text(plan.operator))
        grid.add_row("rules", Text(" → ".join(plan.rules)))
        if summary:
            grid.add_row("files", Text(f"{summary.get('files', 0):,}"))
            grid.add_row("lines", _lines(summary))
        elif plan.state == "failed":
            grid.add_row("error", Text(f"the plan failed; the audit log says why ({OPEN_AUDIT.key})", style="red"))
        return grid

    @staticmethod
    def _counts(counts: dict[str, dict[str, int]], summary: dict[str, Any]) -> Table:
        table = Table(title="By status", title_justify="left", expand=False, box=None, padding=(0, 2))
        table.add_column("status", no_wrap=True)  # a wrapped label would sit beside the next row's numbers
        table.add_column("identifiers", justify="right")
        table.add_column("records", justify="right")
        for status in RECORD_STATUSES:
            row = counts.get(status, {"identifiers": 0, "records": 0})
            identifiers = "—" if status == "quarantined" else f"{row['identifiers']:,}"
            name = Text(status, style=STATUS_STYLES.get(status, ""))
            table.add_row(name, identifiers, f"{row['records']:,}")
            if status == "fixed" and counts.get("remapped", {}).get("identifiers"):
                # Not a status: unchanged/fixed identifiers upstream data gives another id.
                remapped = counts["remapped"]
                table.add_row(Text("  ↳ remapped", style=STATUS_STYLES["remapped"]),
                              f"{remapped['identifiers']:,}", f"{remapped['records']:,}")
        total_ids = sum(v["identifiers"] for k, v in counts.items() if k in RECORD_STATUSES and k != "quarantined")
        total_records = sum(v["records"] for k, v in counts.items() if k in RECORD_STATUSES)
        table.add_row(Text("total", style="bold"), Text(f"{total_ids:,}", style="bold"),
                      Text(f"{total_records:,}", style="bold"))
        return table

    @staticmethod
    def _findings(summary: dict[str, Any]) -> Table:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        conflicts = summary.get("conflicts", 0)
        grid.add_row("conflicts", Text(
            f"{conflicts:,} (canonical form + sort key shared by 2+ records)",
            style="yellow" if conflicts else ""))
        suspicious = summary.get("suspicious", 0)
        grid.add_row("suspicious", Text(
            f"{suspicious:,} (mixed scripts or look-alikes: flagged, never changed)",
            style="yellow" if suspicious else ""))
        warnings = list(summary.get("warnings", []))
        if summary.get("reference_problem_count"):
            warnings.append(count(int(summary["reference_problem_count"]), "unusable reference row"))
        if summary.get("expected_items") is not None and summary["expected_items"] != summary.get("lines"):
            warnings.append(f"manifest expects {summary['expected_items']:,} items")
        grid.add_row("warnings", Text(str(len(warnings)), style="yellow" if warnings else ""))
        for warning in warnings:
            grid.add_row("", visible_text(warning))
        return grid


_RESTORE_MARKS = {"complete": "✔", "running": "◐", "paused": "◐"}


def _restore_mark(run: Run | None, live: Any, plan: PlanRow | None) -> tuple[str, str, str, str]:
    """The Restore step's mark, style, label and detail line (items written / lines of the dump).

    ``live`` is this console's running restore (its progress), else None; a run of the CLI shows
    its state only (its counters are known when it completes).
    """
    total = (plan.summary or {}).get("lines") if plan is not None else None
    of_total = f" / {total:,}" if total else ""
    if live is not None:
        return "◐", "yellow", "paused" if live.paused else "running", f"{live.written:,}{of_total} written"
    assert run is not None
    style, label = restore_label(run)
    summary = run.summary or {}
    if summary:
        detail = f"{summary.get('written', 0):,}{of_total} written"
    elif run.counters:  # unfinished: how far its last checkpoint got
        detail = f"{run.counters.get('written', 0):,}{of_total} written"
        if run.state in ("cancelled", "failed") or not run.alive():
            detail += " · resumable"
    else:
        detail = "resumable" if run.state in ("cancelled", "failed") else ""
    mark = _RESTORE_MARKS.get(run.state, "✘") if run.alive() or run.finished else "✘"
    return mark, style, label.split(" — ")[0], detail


def sync_mark(run: Run, now: float | None = None) -> tuple[str, str, str, str]:
    """The Stream-sync step's mark, style, label and detail line, from :func:`latest_stream_sync`.

    A run that says ``running`` but whose heartbeat is stale has died without saying so (SIGKILL,
    a lost machine): it is shown as such, not as following.
    """
    import time

    now = time.time() if now is None else now
    counters = run.totals
    detail = (f"{counters.get('records', 0):,} records · {counters.get('puts', 0):,} puts · "
              f"{counters.get('deletes', 0):,} deletes · {counters.get('restarts', 0)} restarts")
    caught_up_at = watermark(run)["caught_up_at"]
    if run.state == "running":
        if not run.alive(now):
            return "✘", "red", "not responding", detail
        if caught_up_at is None:
            return "◐", "yellow", "catching up", detail
        return "◐", "green", f"following, {max(0.0, now - caught_up_at):.0f} s behind", detail
    if run.state == "complete":
        return "✔", "green", "caught up", detail
    if run.state == "stopped":
        return "■", "yellow", "stopped", detail
    return "✘", "red", run.state, detail


def _resolve_mark(decided: int, total: int) -> tuple[str, str, str]:
    """The Resolve step's mark, style and label from its decided and total case counts."""
    if total == 0:
        return "✔", "green", "nothing to decide"
    if decided == 0:
        return _NOT_STARTED
    if decided < total:
        return "◐", "yellow", "in progress"
    return "✔", "green", "complete"


def _lines(summary: dict[str, Any]) -> Text:
    text = Text(f"{summary.get('lines', 0):,} = {summary.get('records', 0):,} records + "
                f"{summary.get('quarantined', 0):,} quarantined  ")
    if summary.get("reconciled"):
        text.append("✔ reconciled", style="green")
    else:
        text.append("✘ DOES NOT RECONCILE", style="bold red")
    return text


def _action_hint(action: str | None) -> str:
    """`` (k Keymap)``: the key and name of a console action, for a status line."""
    found = action_named(action) if action else None
    if found is None:
        return ""
    key = (found.key or "").split(",")[0]
    return f" ({key} {found.footer_label})" if key else f" ({found.title}, in the palette)"


def _next_step(status: list[StepStatus] | None) -> Text:
    """What the status (:mod:`keyshift.core.status`) says: the keymap step (the checklist above
    has no row for it), every blocked step and why, and the next thing to press."""
    text = Text()
    if status is None:
        return text.append("next: ", style="bold").append(f"plan a dump ({PLAN_DUMP.key})")
    styles = {"done": "green", "running": "yellow", "blocked": "red", "ready": "", "not-started": "dim"}
    for step in status:
        if step.key == "keymap":
            text.append("Keymap ", style="bold").append(step.state.replace("-", " "), style=styles[step.state])
            text.append(f": {step.why}{_action_hint(step.next) if step.state != 'done' else ''}\n")
    upcoming = next_step(status)
    for step in status:
        # The keymap's line above says it; a step the next action unblocks needs no line of its own.
        if step.state == "blocked" and step.key != "keymap" and (upcoming is None or step.next != upcoming.next):
            text.append("blocked ", style="bold red").append(f"{step.name}: {step.why}\n")
    text.append("next: ", style="bold")
    if upcoming is None:
        return text.append("nothing: every step is done or running", style="green")
    return text.append(f"{upcoming.name}: {upcoming.why}{_action_hint(upcoming.next)}")
