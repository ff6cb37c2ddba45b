"""The cut-over screen (step 6): the flag, the gates as a live checklist, routers, shadow reads,
approval requests and the history; flip with a dialog where the operator types the target table.

Everything is read in a thread worker (``host.run_blocking``, group ``cutover-info``) every
:data:`REFRESH_SECONDS`, so the UI never blocks on DynamoDB or SQLite; a failed read (no control
table yet, the endpoint down) is shown on the screen, not in an error modal every few seconds.
The gates shown are those of the natural next flip (to ``new`` from ``old``/``shadow``, back to
``old`` from ``new``), checked without the stream-position probe a real flip makes. A flip (``f``)
and an approval (``a``) run the same core functions as ``keyshift flag flip``/``approve``
(:mod:`keyshift.core.cutover.flag`): gates again, positions, the compare-and-set; a refusal (failed
gate, lost race, same operator) is shown as the outcome line, since nothing went wrong in the
console. ``i`` creates the control table and the flag (``keyshift flag init``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, RadioButton, RadioSet, Static
from textual.worker import get_current_worker

from keyshift.core.cutover.control_table import STATES
from keyshift.core.cutover.gates import Gate

#: What fixes a failed gate, as console actions (the CLI words the same codes as commands).
GATE_REMEDIES = {
    "resolve-open": "c: the resolve queue",
    "resolve-unmapped": "c: the resolve queue, kind unmapped",
    "verify": "5: verify",
    "restore": "3: restore",
    "follow-forward": "4 then f: follow forward sync",
    "follow-reverse": "4, r, then f: follow reverse sync (a first run starts at the flip's positions),"
                      " or flip with 'Accept loss'",
    "accept-loss": "flip with 'Accept loss'",
}
from keyshift.core.errors import KeyshiftError

from .confirm import ConfirmScreen, say_cancelled
from .host import ConsoleHost
from .news import FlagChanged

__all__ = ["CutoverScreen", "FlipDialog", "FlipChoice", "natural_target"]

#: How often the screen re-reads the flag and re-checks the gates.
REFRESH_SECONDS = 3.0


def natural_target(state: str) -> str:
    """The flip the checklist is about: forward to ``new``, or back to ``old`` once on ``new``."""
    return "old" if state == "new" else "new"


@dataclass
class CutoverInfo(Message, bubble=False):
    """What the loader read: the status document, the checklist, the history (or why not)."""

    status: dict[str, Any] | None
    gates: list[Gate] = field(default_factory=list)
    target: str = "new"
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


@dataclass
class FlipOutcome(Message, bubble=False):
    """How a flip, an approval or an init from this screen ended (``ok`` False: nothing changed)."""

    ok: bool
    text: str


@dataclass(frozen=True)
class FlipChoice:
    """What the operator chose in the flip dialog."""

    to_state: str
    reason: str
    force: bool
    accept_loss: bool


class FlipDialog(ModalScreen["FlipChoice | None"]):
    """Choose the target state and a reason; type the target table's name to enable the flip."""

    DEFAULT_CSS = """
    FlipDialog { align: center middle; }
    FlipDialog RadioSet { height: auto; margin-bottom: 1; }
    FlipDialog Input { margin-bottom: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="flip.cancel", tooltip="Do nothing and go back"),
    ]

    def __init__(self, flag: str, current: str, old_table: str, new_table: str, suggested: str) -> None:
        super().__init__()
        self.flag, self.current = flag, current
        self.tables = {"old": old_table, "new": new_table, "shadow": new_table}
        self.choices = [s for s in STATES if s != current]
        self.to_state = suggested if suggested in self.choices else self.choices[0]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = f"Flip flag {self.flag} (now {self.current})"
            with RadioSet(id="flip-to"):
                for state in self.choices:
                    yield RadioButton(f"to {state}", value=state == self.to_state, id=f"flip-to-{state}")
            yield Input(id="flip-reason", placeholder="reason (recorded in the history and the audit log)")
            yield Checkbox("Force: flip even if a gate fails (marked in the history)", id="flip-force")
            yield Checkbox("Accept loss: flip back although reverse sync has not caught up", id="flip-accept-loss")
            yield Static("", id="flip-prompt", markup=False)
            yield Input(id="flip-table", placeholder="the target table's name")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Flip", id="flip-yes", variant="error", disabled=True)
                yield Button("Cancel", id="flip-no")

    def on_mount(self) -> None:
        self._update()
        self.query_one("#flip-reason", Input).focus()

    @property
    def target_table(self) -> str:
        return self.tables[self.to_state]

    def _ready(self) -> bool:
        return (bool(self.query_one("#flip-reason", Input).value.strip())
                and self.query_one("#flip-table", Input).value == self.target_table)

    def _update(self) -> None:
        self.query_one("#flip-prompt", Static).update(
            f"Type {self.target_table!r} to flip to {self.to_state}:")
        self.query_one("#flip-yes", Button).disabled = not self._ready()

    @on(RadioSet.Changed, "#flip-to")
    def _picked(self, event: RadioSet.Changed) -> None:
        self.to_state = self.choices[event.index]
        self._update()

    @on(Input.Changed)
    def _typed(self) -> None:
        self._update()

    @on(Input.Submitted, "#flip-table")
    def _submitted(self) -> None:
        if self._ready():
            self._yes()

    @on(Button.Pressed, "#flip-yes")
    def _yes(self) -> None:
        self.dismiss(FlipChoice(self.to_state, self.query_one("#flip-reason", Input).value.strip(),
                                self.query_one("#flip-force", Checkbox).value,
                                self.query_one("#flip-accept-loss", Checkbox).value))

    @on(Button.Pressed, "#flip-no")
    def action_cancel(self) -> None:
        """Dismiss without flipping, and say so."""
        say_cancelled(self, "the flag was not flipped")
        self.dismiss(None)


class CutoverScreen(Screen[None]):
    """Step 6: the flag every service reads, and the switch."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="cutover.back", tooltip="Back to the previous screen"),
        Binding("f", "flag_flip", "Flip", id="cutover.flip",
                tooltip="Flip the flag (gates checked; type the target table's name)"),
        Binding("a", "flag_approve", "Approve", id="cutover.approve",
                tooltip="Approve the oldest pending request another operator filed (two-person rule)"),
        Binding("i", "flag_init", "Init flag", id="cutover.init",
                tooltip="Create the control table and the flag (state old, version 0) when missing"),
        Binding("g", "refresh", "Refresh", id="cutover.refresh", tooltip="Read the flag and check the gates now"),
    ]

    def __init__(self, host: ConsoleHost) -> None:
        super().__init__()
        self.host = host
        self.info: CutoverInfo | None = None
        self.outcome: FlipOutcome | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="cutover"):
            with Vertical(classes="box") as box:
                box.border_title = "Flag"
                yield Static("reading the control table…", id="cut-flag")
                yield Static("", id="cut-outcome")
            with Vertical(classes="box") as box:
                box.border_title = "Gates"
                yield Static("", id="cut-gates")
            with Vertical(classes="box") as box:
                box.border_title = "Routers"
                yield Static("", id="cut-routers")
                yield Static("", id="cut-shadow")
            with Vertical(classes="box") as box:
                box.border_title = "Approval requests"
                yield Static("", id="cut-requests")
            with Vertical(classes="box") as box:
                box.border_title = "History"
                yield Static("", id="cut-history")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._tick)
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    @on(FlagChanged)  # a flip recorded by another console or the CLI: re-read the flag now
    def _tick(self) -> None:
        if self.is_current and not self.busy:
            self.reload()

    # -- reading -----------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the flag, routers, shadow counts, requests and history, and check the gates (in a thread)."""
        context = self.host.context

        def load() -> None:
            from keyshift.core.cutover.flag import control_spec, flag_history, flag_status
            from keyshift.core.cutover.gates import gates_for

            info: CutoverInfo
            try:
                spec = context.spec
                ddb = context.aws.client("dynamodb")
                status = flag_status(ddb, spec)
                control = control_spec(spec)
                history = [e.to_dict() for e in flag_history(ddb, control.table, control.flag)]
                target = natural_target(status["state"])
                gates = gates_for(context.workspace, spec, ddb, from_state=status["state"], to_state=target)
                info = CutoverInfo(status, gates, target, history)
            except KeyshiftError as exc:
                info = CutoverInfo(None, error=exc.message)
            except (ClientError, BotoCoreError) as exc:
                info = CutoverInfo(None, error=f"AWS error: {exc}")
            if not get_current_worker().is_cancelled:
                self.post_message(info)

        self.host.run_blocking(load, group="cutover-info", description="read the flag and check the gates")

    @on(CutoverInfo)
    def _info(self, info: CutoverInfo) -> None:
        self.info = info
        self._show()
        self.refresh_bindings()

    @on(FlipOutcome)
    def _outcome(self, outcome: FlipOutcome) -> None:
        self.outcome, self.busy = outcome, False
        if outcome.ok:
            self.host.note_action(outcome.text)  # what the other consoles' presence panels show
        self.refresh_bindings()
        self.query_one("#cut-outcome", Static).update(
            Text(("✔ " if outcome.ok else "✘ ") + outcome.text, style="green" if outcome.ok else "red"))
        self.reload()

    def _show(self) -> None:
        info = self.info
        if info is None:
            return
        flag = self.query_one("#cut-flag", Static)
        if info.status is None:
            flag.update(Text(f"✘ {info.error}", style="red"))
            for sel in ("#cut-gates", "#cut-routers", "#cut-shadow", "#cut-requests", "#cut-history"):
                self.query_one(sel, Static).update("")
            return
        s = info.status
        head = Text()
        head.append(f"{s['flag']}: ", style="bold")
        head.append(s["state"], style="bold magenta" if s["state"] == "shadow" else
                    "bold green" if s["state"] == "new" else "bold")
        head.append(f"  version {s['version']}  source of truth "
                    f"{s['new_table'] if s['state'] == 'new' else s['old_table']}\n")
        head.append(f"by {s['updated_by']} at {s['updated_at']}: {s['reason']}")
        if s.get("forced"):
            head.append("  FORCED", style="bold red")
        flag.update(head)
        gates = Text()
        gates.append(f"before a flip to {info.target}:\n", style="dim")
        for g in info.gates:
            gates.append("✔ " if g.ok else "✘ ", style="green" if g.ok else "red")
            gates.append(f"{g.name}: ", style="bold")
            gates.append(g.detail)
            remedy = GATE_REMEDIES.get(g.remedy, "") if not g.ok else ""
            gates.append(f" — {remedy}\n" if remedy else "\n", style="cyan")
        self.query_one("#cut-gates", Static).update(gates)
        self.query_one("#cut-routers", Static).update(_routers(s))
        sh = s["shadow"]
        self.query_one("#cut-shadow", Static).update(Text(
            f"shadow reads (version {s['version']}, sample {sh['sample']:g}): {sh['reads']:,} read(s), "
            f"{sh['mismatches']:,} mismatch(es), {sh['errors']:,} error(s)",
            style="red" if sh["mismatches"] else ""))
        requests = Text()
        for r in s["requests"]:
            requests.append(f"{r['id']} ", style="bold")
            requests.append(f"to {r['to']} by {r['requested_by']} (expires {r['expires_at']}): {r['reason']}\n")
        self.query_one("#cut-requests", Static).update(requests or Text("no pending request", style="dim"))
        history = Table("v", "when", "flip", "by", "why", box=None, padding=(0, 1))
        for h in reversed(info.history):
            failed = [g["name"] for g in h["gates"] if not g.get("ok")]
            history.add_row(str(h["version"]), h["at"], f"{h['from']} → {h['to']}",
                            h["operator"] + (f" (req. {h['requested_by']})" if h.get("requested_by") else ""),
                            Text(h["reason"] + (" FORCED" if h["forced"] else "")
                                 + (" ACCEPT-LOSS" if h.get("accept_loss") else "")
                                 + (f" [failed: {', '.join(failed)}]" if failed else ""),
                                 style="red" if h["forced"] else ""))
        self.query_one("#cut-history", Static).update(history if info.history else Text("no flip yet", style="dim"))

    # -- actions -----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.host.MUTATING_ACTIONS and self.host.read_only:
            return None
        if action in ("flag_flip", "flag_approve") and (self.info is None or self.info.status is None or self.busy):
            return None
        return True

    def action_back(self) -> None:
        """Back to the previous screen."""
        self.dismiss()

    def action_refresh(self) -> None:
        """Read the flag and check the gates now."""
        self.reload()

    def action_flag_flip(self) -> None:
        """Open the flip dialog; on a choice, flip in a thread (gates, positions, compare-and-set)."""
        if self.check_action("flag_flip", ()) is not True or self.info is None or self.info.status is None:
            return
        s = self.info.status
        dialog = FlipDialog(s["flag"], s["state"], s["old_table"], s["new_table"], self.info.target)
        self.app.push_screen(dialog, self._flip)

    def _flip(self, choice: FlipChoice | None) -> None:
        if choice is None:
            return
        context = self.host.context
        self.busy = True
        self.refresh_bindings()
        # Reading both streams to their tips can take a while on a busy stream: say what is going on.
        self.query_one("#cut-outcome", Static).update(Text(
            f"flipping to {choice.to_state}: checking the gates and reading both streams' positions…",
            style="yellow"))

        def work() -> None:
            from keyshift.core.cutover.approvals import file_request
            from keyshift.core.cutover.flag import FlipRefused, commit_flip, prepare_flip, refuse_failed_gates

            try:
                context.require_writable("flag flip")
                spec, ws = context.spec, context.workspace
                ddb, streams = context.aws.client("dynamodb"), context.aws.client("dynamodbstreams")
                plan = prepare_flip(ws, spec, ddb, streams, to_state=choice.to_state, accept_loss=choice.accept_loss)
                if plan.failed and not choice.force:
                    refuse_failed_gates(ws, ddb, spec, plan, operator=context.operator, reason=choice.reason)
                if getattr(spec.control, "require_approval", False):
                    req = file_request(ws, ddb, spec, plan.current, to_state=choice.to_state, reason=choice.reason,
                                       operator=context.operator, force=choice.force, accept_loss=choice.accept_loss,
                                       gates=[g.to_dict() for g in plan.gates])
                    self.post_message(FlipOutcome(True, f"approval request {req.id} filed; another operator approves"
                                                        " it (a on this screen, in their console)"))
                    return
                result = commit_flip(ws, ddb, streams, spec, plan, operator=context.operator, reason=choice.reason,
                                     force=choice.force)
                self.post_message(FlipOutcome(True, f"flipped to {result.state.state} (version {result.state.version})"
                                                    + (" FORCED" if result.entry.forced else "")))
            except FlipRefused as exc:
                self.post_message(FlipOutcome(False, exc.message))
            except KeyshiftError as exc:
                self.post_message(FlipOutcome(False, exc.message))
            except (ClientError, BotoCoreError) as exc:
                self.post_message(FlipOutcome(False, f"AWS error, nothing known to have changed: {exc}"))

        self.host.run_blocking(work, group="cutover-flip", description="flip the flag")

    def action_flag_approve(self) -> None:
        """Approve the oldest pending request filed by another operator (type the target table)."""
        if self.check_action("flag_approve", ()) is not True or self.info is None or self.info.status is None:
            return
        s = self.info.status
        mine = self.host.context.operator
        pending = [r for r in reversed(s["requests"]) if r["requested_by"] != mine]
        if not pending:
            self.notify("no pending request filed by another operator", severity="warning")
            return
        req = pending[0]
        table = s["old_table"] if req["to"] == "old" else s["new_table"]
        question = ConfirmScreen("Approve the flip?", f"Request {req['id']} by {req['requested_by']}: flip flag "
                                 f"{s['flag']} from {s['state']} to {req['to']}.\nReason: {req['reason']}",
                                 confirm_label="Approve and flip", type_to_confirm=table)

        def answered(yes: bool | None) -> None:
            if yes:
                self._approve(req["id"])

        self.app.push_screen(question, answered)

    def _approve(self, request_id: str) -> None:
        context = self.host.context
        self.busy = True

        def work() -> None:
            from keyshift.core.cutover.approvals import check_approvable, get_request
            from keyshift.core.cutover.flag import FlipRefused, commit_flip, control_spec, prepare_flip, read_flag

            try:
                context.require_writable("flag approve")
                spec, ws = context.spec, context.workspace
                ddb, streams = context.aws.client("dynamodb"), context.aws.client("dynamodbstreams")
                control = control_spec(spec)
                request = get_request(ddb, spec, request_id)
                current = read_flag(ddb, control.table, control.flag)
                check_approvable(ws, ddb, spec, request, current, operator=context.operator)
                plan = prepare_flip(ws, spec, ddb, streams, to_state=request.to_state, accept_loss=request.accept_loss)
                result = commit_flip(ws, ddb, streams, spec, plan, operator=context.operator, reason=request.reason,
                                     force=request.force, request=request)
                self.post_message(FlipOutcome(True, f"request {request_id} approved: flipped to {result.state.state}"
                                                    f" (version {result.state.version})"))
            except KeyshiftError as exc:  # FlipRefused included: a refusal is an outcome, not an error
                self.post_message(FlipOutcome(False, exc.message))
            except (ClientError, BotoCoreError) as exc:
                self.post_message(FlipOutcome(False, f"AWS error, nothing known to have changed: {exc}"))

        self.host.run_blocking(work, group="cutover-flip", description="approve a flip request")

    def action_flag_init(self) -> None:
        """Create the control table and the flag when missing (an existing flag is left as it is)."""
        if self.check_action("flag_init", ()) is not True:
            return
        context = self.host.context

        def work() -> None:
            from keyshift.core.cutover.flag import init_flag

            try:
                context.require_writable("flag init")
                result = init_flag(context.workspace, context.spec, context.aws.client("dynamodb"),
                                   operator=context.operator)
            except KeyshiftError as exc:
                self.post_message(FlipOutcome(False, exc.message))
                return
            except (ClientError, BotoCoreError) as exc:
                self.post_message(FlipOutcome(False, f"AWS error: {exc}"))
                return
            state = result["flag"]
            self.post_message(FlipOutcome(True, f"flag {state.flag} " + (
                "created (state old, version 0)" if result["flag_created"] else
                f"exists, left as it is (state {state.state}, version {state.version})")))

        self.host.run_blocking(work, group="cutover-flip", description="create the flag")


def _routers(status: dict[str, Any]) -> Any:
    rows = status["routers"]
    if not rows:
        return Text("no router has reported yet", style="dim")
    table = Table("service", "instance", "version", "last seen", "", box=None, padding=(0, 1))
    for r in rows:
        mark = Text("stale", style="dim") if r["stale"] else (
            Text("✔ acknowledged", style="green") if r["acknowledged"] else Text("✘ straggler", style="red"))
        table.add_row(r["service"], r["instance"], str(r["version"]), r["last_seen"], mark)
    done = Text(f"cut over: every router seen in the last {status['router_window_minutes']:g} min acts on version "
                f"{status['version']}", style="green") if status["cut_over"] else Text(
        "not cut over" + (f": stragglers {', '.join(status['stragglers'])}" if status["stragglers"] else ""),
        style="yellow")
    grid = Table.grid()
    grid.add_row(table)
    grid.add_row(done)
    return grid

