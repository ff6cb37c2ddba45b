"""The resolution queue: every case the rules could not decide, open ones first, decided by key.

The list holds every case of the plan (a kind filter narrows it); the selected case's members are
shown side by side with invisible characters marked, each change named, item counts, a sample
item and the candidate ids. ``s x d m k a`` decide (each only where the case's kind takes it),
``u`` reopens, ``b`` decides many open cases at once. Every decision asks for a reason in a small
modal; decisions that drop data (a drop, keeping one record of a conflict) are confirmed first,
the confirmation naming what goes. Reads and writes run in App-owned thread workers; a refused
decision (:class:`~keyshift.core.resolve.cases.CaseError`) is shown in its dialog, which stays open.

Two consoles on one workspace see each other's decisions: the App polls the newest decision id
(:func:`latest_decision_id`) and posts :class:`DecisionsChanged` to every screen when it moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Select, Static
from textual.worker import get_current_worker

from keyshift.core.resolve.cases import KINDS, Case, get_case, list_cases
from keyshift.core.resolve.decisions import ACTIONS, decide, latest_decision_id, undo
from keyshift.core.text.escape import escape
from keyshift.core.text.lookalike import marks
from keyshift.core.errors import KeyshiftError
from keyshift.core.plan.queries import ConflictRecord, conflict_records, latest_plan

from .confirm import ConfirmScreen
from .decision_dialog import (ACTION_LABELS, BulkDialog, DecisionAccepted, DecisionDialog, DecisionRefused,
                              DecisionRequest)
from .fit_columns import fit_table
from .host import ConsoleHost
from .lookalike_badge import BADGE_STYLE, identifier_text
from .widgets import STATUS_STYLES, WorkspaceChanged, visible_text

__all__ = [
    "ACTION_KEYS",
    "DecisionRecorded",
    "DecisionsChanged",
    "QueueLoaded",
    "ResolveQueueScreen",
]

_ALL = "all"
#: The key of each decision action (``u`` undoes, ``b`` opens the bulk dialog).
ACTION_KEYS = {"same": "s", "split": "x", "drop": "d", "map": "m", "keep": "k", "accept": "a"}
_TOOLTIPS = {
    "same": "Ambiguous: every raw form is one entity and gets one new id",
    "split": "Ambiguous: the raw forms are different entities, one new id each",
    "drop": "Leave raw identifiers and all their items out of the migration (asks to confirm)",
    "map": "Orphaned, invalid or suspicious: give the identifier a new id",
    "keep": "Orphaned: keep the canonical form as the new id; conflict: choose whose item survives",
    "accept": "Suspicious: the identifier is genuine, migrate it as normalized",
}
_KIND_KEYS = dict(zip("0123456", (_ALL, *KINDS)))
_KIND_GROUP = Binding.Group("kind", compact=True)
#: Members shown side by side per row of the member table (more members wrap to another row).
_SIDE_BY_SIDE = 4
#: (key, label, width) of the case list's columns.
COLUMNS = (
    ("status", "", 1),
    ("kind", "kind", 10),
    ("case", "case", 16),
    ("members", "members", 40),
    ("items", "items", 6),
    ("decision", "decision", 26),
)
#: The narrowest each column gets when the terminal is (80 columns: members and decision give way
#: most, the case id a little; the cells' ellipsis marks the cut).
MIN_WIDTHS = {"status": 1, "kind": 10, "case": 10, "members": 16, "items": 5, "decision": 12}
_KIND_STYLES = {"ambiguous": STATUS_STYLES["ambiguous"], "orphaned": STATUS_STYLES["orphaned"],
                "invalid": STATUS_STYLES["invalid"], "conflict": "bold yellow", "suspicious": "yellow",
                "unmapped": "bold magenta"}




class DecisionsChanged(Message, bubble=False):
    """Decisions were recorded (by this console or another one): screens showing them reload."""


@dataclass
class QueueLoaded(Message, bubble=False):
    """Every case of the plan, read in a thread; ``mark`` is the newest decision id they reflect."""

    token: int
    cases: list[Case]
    mark: int
    planned: bool
    rules: tuple[str, ...] = ()  # the plan's normalization rules: typed new ids are checked against them


@dataclass
class DecisionRecorded(Message, bubble=False):
    """A decision of this console was recorded (``action`` is ``undo`` for a reopened case)."""

    case_id: str
    action: str
    decision_id: int


@dataclass
class ConflictRecordsLoaded(Message, bubble=False):
    """The records a conflict keep would choose between, read in a thread for its confirmation."""

    case: Case
    request: DecisionRequest
    dialog: DecisionDialog
    records: list[ConflictRecord]


class ResolveQueueScreen(Screen[None]):
    """Work through the open cases: select one, read its members, press the decision's key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="queue.back", tooltip="Back to the previous screen"),
        *(Binding(key, f"decide('{action}')", ACTION_LABELS[action].split()[0], id=f"queue.{action}",
                  tooltip=_TOOLTIPS[action]) for action, key in ACTION_KEYS.items()),
        Binding("u", "undo_decision", "Undo", id="queue.undo",
                tooltip="Reopen the selected decided case (the decision stays in the history)"),
        Binding("b", "bulk_resolve", "Bulk", id="queue.bulk", show=False,  # 80 columns: F1 lists it
                tooltip="Decide every open case matching a condition at once (preview first)"),
        *(Binding(key, f"kind('{kind}')", "kind", id=f"queue.kind-{kind}", group=_KIND_GROUP,
                  show=False,  # 80 columns: the kind filter above the list shows them, F1 lists them
                  tooltip=f"Show {'every kind of case' if kind == _ALL else kind + ' cases'}")
          for key, kind in _KIND_KEYS.items()),
    ]

    #: At most this many rows in the table: rebuilding a DataTable of tens of thousands of rows
    #: blocks the UI for seconds, and open cases come first anyway (filter by kind to see others).
    row_limit: ClassVar[int] = 1000

    def __init__(self, host: ConsoleHost) -> None:
        super().__init__()
        self.host = host
        self.cases: list[Case] = []  # every case of the plan, as last loaded
        self.rules: tuple[str, ...] = ()  # the plan's normalization rules (typed new ids must pass them)
        self.shown: list[Case] = []  # the cases in the table (after the kind filter and row limit)
        self.matching = 0  # how many cases the kind filter lets through (``shown`` may hold fewer)
        self.planned = True
        self.loaded = False
        self._token = 0
        self._next_index: int | None = None  # after our own decision: stay at this row (the next case)
        self._binding_state: tuple[str, str] | None = None  # what the enabled decision keys depend on

    @property
    def current(self) -> Case | None:
        """The highlighted case."""
        row = self.query_one("#cases", DataTable).cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="queue-filters"):
            yield Select([("all kinds", _ALL), *((k, k) for k in KINDS)], value=_ALL, allow_blank=False,
                         id="kind-filter")
            yield Static("reading the cases…", id="queue-progress")
        table: DataTable[Any] = DataTable(id="cases", cursor_type="row", zebra_stripes=True)
        for key, label, width in COLUMNS:
            table.add_column(label, width=width, key=key)
        yield table
        with VerticalScroll(id="case-detail") as detail:
            detail.border_title = "case"
            yield Static("", id="case-head")
            yield Static("", id="case-decision")
            yield Static("", id="case-members")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cases", DataTable).focus()
        self.reload()

    def on_resize(self, event: events.Resize) -> None:
        """Fit the case list's columns to the width (at 80 columns every column stays on screen)."""
        table = self.query_one("#cases", DataTable)
        fit_table(table, [(key, width, MIN_WIDTHS[key]) for key, _, width in COLUMNS],
                  event.size.width - table.styles.scrollbar_size_vertical)

    # -- loading -------------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read every case (in a thread) and show them, keeping the selection."""
        self._token += 1
        token, context = self._token, self.host.context

        def load() -> None:
            ws = context.workspace
            mark = latest_decision_id(ws)  # read first: a decision after it moves the mark again
            cases = list_cases(ws, samples=True)
            plan = latest_plan(ws)
            planned = bool(cases) or plan is not None
            rules = tuple(plan.rules) if plan is not None else ()
            if not get_current_worker().is_cancelled:
                self.post_message(QueueLoaded(token, cases, mark, planned, rules))

        self.host.run_blocking(load, group="queue", description="read the cases")

    @on(DecisionsChanged)
    @on(WorkspaceChanged)
    def _changed_elsewhere(self) -> None:
        self.reload()

    @on(QueueLoaded)
    def _loaded(self, message: QueueLoaded) -> None:
        if message.token != self._token:
            return
        self.host.saw_decisions(message.mark)
        self.cases, self.planned, self.loaded = message.cases, message.planned, True
        self.rules = message.rules
        self._fill()

    def _fill(self) -> None:
        """(Re)fill the table from :attr:`cases` and the kind filter."""
        table = self.query_one("#cases", DataTable)
        previous = self.current
        index = self._next_index
        self._next_index = None
        kind = self.kind
        matching = [c for c in self.cases if kind is None or c.kind == kind]
        self.matching, self.shown = len(matching), matching[:self.row_limit]
        table.clear()
        table.add_rows(_cells(c) for c in self.shown)
        if index is None and previous is not None:
            index = next((i for i, c in enumerate(self.shown) if c.id == previous.id), None)
        if self.shown:
            table.move_cursor(row=min(index or 0, len(self.shown) - 1), scroll=True)
        self.query_one("#queue-progress", Static).update(self._progress())
        self._show(self.current)

    @property
    def kind(self) -> str | None:
        value = self.query_one("#kind-filter", Select).value
        return None if value in (_ALL, Select.NULL) else str(value)

    # -- actions -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in ("decide", "undo_decision", "bulk_resolve"):
            return True
        if action in self.host.MUTATING_ACTIONS and self.host.read_only:
            return None  # greyed out: audit mode changes nothing
        if action == "bulk_resolve":
            return True
        case = self.current
        if case is None:
            return None
        if case.moot is not None:
            return None  # a moot case has nothing to decide (a decision took it away)
        if action == "undo_decision":
            return True if case.decision is not None else None
        return True if parameters and parameters[0] in ACTIONS[case.kind] else None

    def on_screen_resume(self) -> None:
        """Back from a dialog: the case list has the keys (m, s, Home…), not the kind filter.

        Textual gives focus back to the widget that had it when the dialog opened; when that was
        the filter, the next keys would change the filter instead of acting on the case."""
        table = self.query_one("#cases", DataTable)
        if self.app.focused is not table:
            table.focus()

    def action_back(self) -> None:
        self.host.cancel_work("queue")
        self.dismiss()

    def action_kind(self, kind: str) -> None:
        """Show one kind of case (``all`` for every kind)."""
        self.query_one("#kind-filter", Select).value = kind

    @on(Select.Changed, "#kind-filter")
    def _kind_changed(self) -> None:
        self._fill()

    def action_decide(self, action: str) -> None:
        """Ask for ``action``'s reason and parameters, confirm a drop, then record it."""
        case = self.current
        if case is None or self.check_action("decide", (action,)) is not True:
            return
        self.app.push_screen(DecisionDialog(case, action, rules=self.rules, submit=partial(self._asked, case)))

    def action_undo_decision(self) -> None:
        """Reopen the selected case, with a reason."""
        case = self.current
        if case is None or self.check_action("undo_decision", ()) is not True:
            return
        self.app.push_screen(DecisionDialog(case, "undo", submit=partial(self._asked, case)))

    def action_bulk_resolve(self) -> None:
        """Decide many open cases at once (the dialog previews before anything is applied)."""
        if self.check_action("bulk_resolve", ()) is not True:
            return
        self.app.push_screen(BulkDialog(self.host, self.kind))  # it tells every screen when it applied decisions

    def _asked(self, case: Case, dialog: DecisionDialog, request: DecisionRequest) -> None:
        """The dialog's request: confirmed first when it drops data, then recorded."""
        if request.action == "drop":
            dropped = [m for m in case.members if m.raw in (request.raws or [])]
            items = sum(m.items for m in dropped)
            lines = "\n".join(f"  {escape(m.raw)}  ({m.items:,} items)" for m in dropped)
            self._confirm(case, dialog, request, ConfirmScreen(
                "Drop data?",
                f"Leave {len(dropped)} raw identifier(s) and their {items:,} item(s) out of the migration:\n\n"
                f"{lines}\n\nThey will not be in the new table. Undo (u) reopens the case.",
                confirm_label="Drop", cancelled="nothing dropped"))
        elif request.action == "keep" and case.kind == "conflict":
            raws, sort_key, context = [m.raw for m in case.members], case.sort_key, self.host.context

            def load() -> None:
                records = conflict_records(context.workspace, raws, sort_key)
                self.post_message(ConflictRecordsLoaded(case, request, dialog, records))

            self.host.run_blocking(load, group="queue-conflict", description="read a conflict's records")
        else:
            self._record(case, request, dialog)

    @on(ConflictRecordsLoaded)
    def _conflict_records(self, message: ConflictRecordsLoaded) -> None:
        """Confirm a conflict keep with the records themselves: the survivor and those it replaces."""
        survivor = (message.request.raws or [""])[0]
        kept = [r for r in message.records if r.raw == survivor]
        lost = [r for r in message.records if r.raw != survivor]
        key = escape(message.case.new_key) if message.case.new_key else "(empty)"
        on = f"{key} / {message.case.sort_key}" if message.case.sort_key is not None else key
        self._confirm(message.case, message.dialog, message.request, ConfirmScreen(
            "Keep one record, drop the others?",
            f"{len(message.records)} record(s) land on the new key {on}. Keep {len(kept)} of "
            f"{escape(survivor)}; leave {len(lost)} record(s) of the others out of the migration:\n\n"
            f"keeps\n{_record_lines(kept)}\n\ndrops\n{_record_lines(lost)}\n\nUndo (u) reopens the case.",
            confirm_label="Keep it, drop the others", cancelled="nothing dropped"))

    def _confirm(self, case: Case, dialog: DecisionDialog, request: DecisionRequest,
                 question: ConfirmScreen) -> None:
        """Ask ``question`` over the dialog; declined: both close (the confirmation said "cancelled")."""
        def answered(yes: bool | None) -> None:
            if yes:
                self._record(case, request, dialog)
            else:
                dialog.dismiss(None)

        self.app.push_screen(question, answered)

    def _record(self, case: Case, request: DecisionRequest, dialog: DecisionDialog) -> None:
        """Record ``request`` in a thread; a refusal is shown in ``dialog``, which stays open."""
        context, case_id = self.host.context, case.id

        def work() -> None:
            try:
                context.require_writable(f"resolve {request.action}")
                ws = context.workspace
                fresh = get_case(ws, case_id)  # as it is now: another console may have decided it
                if request.action == "undo":
                    decision = undo(ws, fresh, reason=request.reason, operator=context.operator)
                else:
                    decision = decide(ws, fresh, request.action, reason=request.reason, operator=context.operator,
                                      new_id=request.new_id, mapping=request.mapping, raws=request.raws,
                                      allow_suspicious=request.allow_suspicious, primary=request.primary)
            except KeyshiftError as exc:  # refused: the dialog shows why and keeps what was typed
                dialog.post_message(DecisionRefused(f"{exc.title}: {exc.message}"))
                return
            except BaseException:
                dialog.post_message(DecisionRefused("failed (see the error)"))
                raise  # the App's error modal shows it
            dialog.post_message(DecisionAccepted())
            self.post_message(DecisionRecorded(case_id, decision.action, decision.id))

        # One group per case: deciding the next case quickly never supersedes this one.
        self.host.run_blocking(work, group=f"decide:{case_id}", description=f"{request.action} {case_id}")

    @on(DecisionRecorded)
    def _recorded(self, message: DecisionRecorded) -> None:
        what = "reopened" if message.action == "undo" else f"{message.action} recorded"
        self.notify(f"{message.case_id}: {what} (decision {message.decision_id})", timeout=3)
        self.host.note_action(("reopened" if message.action == "undo" else f"decided ({message.action})")
                              + f" case {message.case_id}")  # for the other consoles' presence panels
        current = self.current
        if current is not None and current.id == message.case_id and current.decision is None \
                and message.action != "undo":  # an open case left the top: its row now holds the next one
            self._next_index = self.query_one("#cases", DataTable).cursor_row
        self.reload()

    # -- selection -----------------------------------------------------------------------------
    def select_case(self, case_id: str) -> bool:
        """Move the cursor to ``case_id`` (False when it is not shown)."""
        index = next((i for i, c in enumerate(self.shown) if c.id == case_id), None)
        if index is None:
            return False
        self.query_one("#cases", DataTable).move_cursor(row=index, scroll=True)
        self._show(self.shown[index])
        return True

    @on(DataTable.RowHighlighted, "#cases")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show(self.shown[event.cursor_row] if 0 <= event.cursor_row < len(self.shown) else None)

    def _show(self, case: Case | None) -> None:
        detail = self.query_one("#case-detail", VerticalScroll)
        if case is None:
            detail.border_title = "case"
            empty = "no plan yet: plan a dump first (p on the overview)" if not self.planned else (
                "no cases of this kind" if self.kind else "nothing to resolve: every identifier is decided")
            self.query_one("#case-head", Static).update(Text(empty if self.loaded else "", style="dim"))
            self.query_one("#case-members", Static).update("")
            self.query_one("#case-decision", Static).update("")
        else:
            detail.border_title = f"{case.kind} · {case.id}"
            self.query_one("#case-head", Static).update(_head(case))
            self.query_one("#case-members", Static).update(_members(case))
            self.query_one("#case-decision", Static).update(_decision(case))
        state = None if case is None else (case.kind, case.status)
        if state != self._binding_state:  # the footer redraws every key: only when they change
            self._binding_state = state
            self.refresh_bindings()

    def _progress(self) -> Text:
        decided = sum(not c.is_open for c in self.cases)  # decided, or moot: nothing left to do
        text = Text(f"{decided} of {len(self.cases)} decided", style="bold")
        text.append(f"   {len(self.cases) - decided} open", style="yellow" if decided < len(self.cases) else "")
        moot = sum(c.moot is not None for c in self.cases)
        if moot:
            text.append(f"   ({moot} moot)", style="dim")
        kind = self.kind
        if kind is not None:
            mine = [c for c in self.cases if c.kind == kind]
            decided_here = sum(not c.is_open for c in mine)
            text.append(f"   {kind}: {decided_here} of {len(mine)} decided", style="dim")
        if self.matching > len(self.shown):
            text.append(f"   showing the first {len(self.shown):,} of {self.matching:,}", style="yellow")
        return text


# -- rendering ---------------------------------------------------------------------------------
def _record_lines(records: list[ConflictRecord], attributes: int = 4) -> str:
    """One line per record: its identifier, where it is, and a few of its attributes."""
    if not records:
        return "  (none)"
    lines = []
    for r in records:
        where = f"{r.file.rsplit('/', 1)[-1]}:{r.line}"
        if r.item is None:
            shown = f"{r.size:,} bytes (the plan kept no copy of this item)"
        else:
            shown = ", ".join(f"{name}={json.dumps(value, ensure_ascii=True)}"
                              for name, value in list(sorted(r.item.items()))[:attributes])
        lines.append(f"  {escape(r.raw)}  {where}  {shown}")
    return "\n".join(lines)


def _cells(case: Case) -> tuple[Any, ...]:
    members = Text(" | ", style="dim").join(identifier_text(m.raw) for m in case.members)
    members.no_wrap, members.overflow = True, "ellipsis"
    d = case.decision
    decision = Text(f"{d['action']} · {d['operator']}", no_wrap=True, overflow="ellipsis") if d else Text("")
    if case.moot is not None:
        decision = Text("moot", style="dim")
    return (
        Text("–", style="dim") if case.moot is not None else Text("✔", style="green") if d else Text("●", style="yellow"),
        Text(case.kind, style=_KIND_STYLES.get(case.kind, "")),
        Text(case.id),
        members,
        Text(f"{sum(m.items for m in case.members):,}", justify="right"),
        decision,
    )


def _head(case: Case) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", width=10)
    grid.add_column()
    grid.add_row("case", Text(f"{case.title}"))
    if case.sort_key is not None:
        grid.add_row("sort key", Text(case.sort_key))
    candidates = Text(", ").join(identifier_text(c) for c in case.candidates) if case.candidates else Text(
        "none: a new id must be typed", style="dim")
    grid.add_row("candidates", candidates)
    if case.kind == "unmapped" and case.details:
        _unmapped_rows(grid, case.details)
    keys = Text(" · ").join(Text(f"{ACTION_KEYS[a]} {a}") for a in ACTIONS[case.kind])
    grid.add_row("decide", keys.append("  (u undo)", style="dim"))
    return grid


def _unmapped_rows(grid: Table, details: dict[str, Any]) -> None:
    """An unmapped case's canonical form, what it collides with and its held records."""
    grid.add_row("canonical", visible_text(details.get("canonical", "")))
    hits = [visible_text(c["raw"]).append(f" → {c['new_id'] or 'undecided'}", style="dim") if "raw" in c
            else Text(f"reference id {c['reference_id']}") for c in details.get("collisions", [])]
    grid.add_row("collides", Text("; ").join(hits) if hits else Text("nothing: a wholly new identifier", style="dim"))
    held = details.get("held", {})
    grid.add_row("held", Text(f"{held.get('held', 0):,} waiting · {held.get('applied', 0):,} applied · "
                              f"{held.get('dropped', 0):,} dropped (stream records)"))


def _members(case: Case) -> Group:
    """The members side by side: one column each, at most :data:`_SIDE_BY_SIDE` per table."""
    tables = []
    for start in range(0, len(case.members), _SIDE_BY_SIDE):
        chunk = case.members[start:start + _SIDE_BY_SIDE]
        table = Table(expand=True, show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("", style="bold", width=10, no_wrap=True)
        for number, member in enumerate(chunk, start + 1):
            table.add_column(f"member {number}", ratio=1, overflow="fold")
        rows: list[tuple[str, list[Any]]] = [
            ("raw", [identifier_text(m.raw) for m in chunk]),
            ("look-alike", [_marks(m.raw) for m in chunk]),
            ("escaped", [Text(m.escaped, overflow="fold") for m in chunk]),
            ("canonical", [visible_text(m.canonical) for m in chunk]),
            ("items", [Text(f"{m.items:,}") for m in chunk]),
            ("changes", [_changes(m.changes) for m in chunk]),
            ("suspicious", [_flags(m.suspicious) for m in chunk]),
            ("ref ids", [Text(", ").join(visible_text(r) for r in m.ref_ids) if m.ref_ids else Text("—", style="dim")
                         for m in chunk]),
            ("sample", [_sample(m.sample) for m in chunk]),
        ]
        for label, cells in rows:
            table.add_row(label, *cells)
        tables.append(table)
    return Group(*tables)


def _marks(raw: str) -> Text:
    """Every look-alike mark of a member, one per line: what its badge stands for."""
    found = marks(raw)
    if not found:
        return Text("none", style="dim")
    text = Text("\n").join(Text.assemble((f" {m.label} ", BADGE_STYLE), f" {m.detail}") for m in found)
    text.no_wrap, text.overflow = False, "fold"
    return text


def _changes(changes: list[dict[str, Any]]) -> Text:
    if not changes:
        return Text("none", style="dim")
    return Text("\n").join(Text(f"• {c.get('description', '')}") for c in changes)


def _flags(flags: list[str]) -> Text:
    if not flags:
        return Text("none", style="dim")
    text = Text("\n").join(visible_text(f"⚠ {f}", edge_spaces=False) for f in flags)
    text.no_wrap, text.overflow = False, "fold"
    text.stylize("yellow")
    return text


def _sample(item: dict[str, Any] | None) -> Text:
    if item is None:
        return Text("—", style="dim")
    text = visible_text(json.dumps(item, ensure_ascii=False, sort_keys=True), edge_spaces=False)
    text.no_wrap, text.overflow = False, "fold"
    return text


def _decision(case: Case) -> Table | Text:
    d = case.decision
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", width=10)
    grid.add_column()
    if case.moot is not None:
        grid.add_row("status", Text(f"moot: {case.moot}", style="dim"))
    elif d is None:
        grid.add_row("status", Text("open: no decision yet", style="yellow"))
    else:
        grid.add_row("status", Text("decided", style="green"))
        grid.add_row("decision", _describe(d))
        grid.add_row("by", visible_text(d["operator"]))
        grid.add_row("when", Text(d["ts"]))
        grid.add_row("why", visible_text(d["reason"], edge_spaces=False))
    if len(case.history) > 1:  # one entry is the decision shown above
        history = Text()
        for i, entry in enumerate(case.history):
            if i:
                history.append("\n")
            history.append(f"#{entry['decision_id']} {entry['ts']}  ", style="dim")
            history.append_text(_describe(entry))
            history.append(f"  by {entry['operator']}: ", style="dim")
            history.append_text(visible_text(entry["reason"], edge_spaces=False))
        grid.add_row("history", history)
    return grid


def _describe(decision: dict[str, Any]) -> Text:
    """``same → ACME-1``, ``drop Acme⟨ZWSP⟩``…: a decision and its payload, markers shown."""
    action, payload = decision["action"], decision.get("payload") or {}
    text = Text(action, style="bold")
    if "id" in payload:
        text.append(" → ").append_text(visible_text(payload["id"]))
    elif "map" in payload:
        for raw, new_id in payload["map"].items():
            text.append("  ").append_text(visible_text(raw)).append(" → ").append_text(visible_text(new_id))
    elif "raws" in payload:
        text.append(" ").append_text(Text(", ").join(visible_text(r) for r in payload["raws"]))
    elif "raw" in payload:
        text.append(" ").append_text(visible_text(payload["raw"])).append(" survives")
    elif "undoes" in payload:
        text.append(f" of decision {payload['undoes']}")
    return text
