"""The audit screen: the workspace's audit log, newest first, and whether its hash chain is whole.

Entries are fetched a page at a time by keyset (ids below the last one shown) in a thread worker,
and the next page is fetched when the cursor nears the end of what is loaded, so the table grows
as the operator scrolls and the first screen costs one page whatever the log's length. Filters
(operator; action, or a group of actions such as ``restore``) start again from the newest entry.
The chain is recomputed in a thread worker of its own (``v`` again), never blocking the table.
Everything here reads: it works in read-only mode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Select, Static
from textual.worker import get_current_worker

from keyshift.core.store.audit import AuditEntry, ChainReport, audit_facets, read_audit, verify_chain

from .fit_columns import fit_table
from .host import ConsoleHost
from .widgets import WorkspaceChanged

__all__ = ["AuditScreen", "ChainVerified", "EntriesLoaded", "FacetsLoaded"]

_ALL = "__all__"
#: Load the next page when the cursor is this close to the last loaded row.
PREFETCH_ROWS = 10
COLUMNS = (("id", "id", 7), ("ts", "time (UTC)", 20), ("operator", "operator", 12), ("action", "action", 24),
           ("details", "details", 52))
#: The narrowest each column gets (at 80 columns the details give way first; the time stays whole).
MIN_WIDTHS = {"id": 5, "ts": 20, "operator": 8, "action": 14, "details": 10}


@dataclass
class EntriesLoaded(Message, bubble=False):
    """A page of entries (``token``: the request it answers; ``more``: older entries exist)."""

    token: int
    entries: list[AuditEntry]
    more: bool
    append: bool


@dataclass
class FacetsLoaded(Message, bubble=False):
    """The operators and actions in the log, for the filters."""

    operators: list[str]
    actions: list[str]


@dataclass
class ChainVerified(Message, bubble=False):
    """The chain recomputed (``token``: the check it answers)."""

    token: int
    report: ChainReport


def action_options(actions: list[str]) -> list[tuple[str, str]]:
    """The action filter's choices: every dotted group with several actions (``restore.*``), then
    every action."""
    groups: dict[str, int] = {}
    for action in actions:
        parts = action.split(".")
        for n in range(1, len(parts)):
            prefix = ".".join(parts[:n])
            groups[prefix] = groups.get(prefix, 0) + 1
    options = [(f"{prefix}.*", prefix) for prefix, count in sorted(groups.items()) if count > 1]
    return options + [(a, a) for a in actions if a not in groups or groups[a] <= 1]


def chain_text(report: ChainReport | None, error: str | None = None) -> Text:
    """The chain status line."""
    if error is not None:
        return Text(f"chain: could not be checked: {error}", style="yellow")
    if report is None:
        return Text("chain: verifying…", style="dim")
    if report.chain_ok:
        text = Text("chain: whole", style="bold green")
        text.append(f" · {report.entries:,} entries verified", style="")
        if report.head_hash:
            text.append(f" · head {report.head_id} {report.head_hash[:16]}…", style="dim")
        return text
    text = Text(f"chain: BROKEN at entry {report.first_broken}", style="bold red")
    text.append(f" · {report.reason or ''}")
    text.append(f" · {report.verified:,} of {report.entries:,} verified before it", style="dim")
    return text


class AuditScreen(Screen[None]):
    """Who did what, when: every audit entry, filtered, with the chain's status."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="audit.back", tooltip="Back to the overview"),
        Binding("v", "verify_chain", "Verify chain", id="audit.verify",
                tooltip="Recompute the hash chain (in the background)"),
        Binding("r", "reload", "Refresh", id="audit.refresh", tooltip="Load the newest entries again"),
        Binding("o", "focus_filter('operator')", "Operator", id="audit.operator", show=False,
                tooltip="Filter by operator"),
        Binding("f", "focus_filter('action')", "Action", id="audit.action",
                tooltip="Filter by action (or a group of actions)"),
    ]

    def __init__(self, host: ConsoleHost, *, page_size: int | None = None) -> None:
        super().__init__()
        self.host = host
        self.page_size = page_size or min(host.page_size, 200)
        self.entries: list[AuditEntry] = []
        self.more = False
        self.loading = False
        self.report: ChainReport | None = None
        self._token = 0
        self._chain_token = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="audit-filters"):
            yield Select([("every operator", _ALL)], value=_ALL, allow_blank=False, id="operator-filter")
            yield Select([("every action", _ALL)], value=_ALL, allow_blank=False, id="action-filter")
        yield Static(chain_text(None), id="chain-status")
        yield Static("", id="audit-label", markup=False)
        table: DataTable[Any] = DataTable(id="entries", cursor_type="row", zebra_stripes=True)
        for key, label, width in COLUMNS:
            table.add_column(label, width=width, key=key)
        yield table
        yield Static("", id="entry-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#entries", DataTable).focus()
        self._load_facets()
        self._fetch(append=False)
        self.action_verify_chain()

    def on_resize(self, event: events.Resize) -> None:
        """Fit the columns to the width (at 80 columns every column stays on screen)."""
        table = self.query_one("#entries", DataTable)
        fit_table(table, [(key, width, MIN_WIDTHS[key]) for key, _, width in COLUMNS],
                  event.size.width - table.styles.scrollbar_size_vertical)

    # -- actions -----------------------------------------------------------------------------
    def action_back(self) -> None:
        """Leave a filter, or go back."""
        if isinstance(self.focused, Select):
            self.query_one("#entries", DataTable).focus()
            return
        self.host.cancel_work("audit")
        self.dismiss()

    def action_reload(self) -> None:
        """The newest entries again, the filters' choices and the chain."""
        self._load_facets()
        self._fetch(append=False)
        self.action_verify_chain()

    def action_focus_filter(self, which: str) -> None:
        self.query_one(f"#{which}-filter", Select).focus()

    def action_verify_chain(self) -> None:
        """Recompute the chain in a thread worker; the status line says when it is done."""
        self._chain_token += 1
        token, context = self._chain_token, self.host.context
        self.query_one("#chain-status", Static).update(chain_text(None))

        def check() -> None:
            report = verify_chain(context.workspace.connect())
            if not get_current_worker().is_cancelled:
                self.post_message(ChainVerified(token, report))

        self.host.run_blocking(check, group="audit-chain", description="verify the audit chain")

    @on(WorkspaceChanged)
    def _workspace_changed(self) -> None:
        self.action_reload()

    @on(Select.Changed, "#operator-filter")
    @on(Select.Changed, "#action-filter")
    def _filter_changed(self) -> None:
        self._fetch(append=False)

    # -- fetching ----------------------------------------------------------------------------
    def _filter(self, which: str) -> str | None:
        value = self.query_one(f"#{which}-filter", Select).value
        return None if value in (_ALL, Select.NULL) else str(value)

    def _fetch(self, *, append: bool) -> None:
        if append and (self.loading or not self.more or not self.entries):
            return
        self._token += 1
        token, context, size = self._token, self.host.context, self.page_size
        operator, action = self._filter("operator"), self._filter("action")
        before = self.entries[-1].id if append else None
        self.loading = True

        def load() -> None:
            page = read_audit(context.workspace.connect(), limit=size + 1, action=action, operator=operator,
                              before_id=before)
            if not get_current_worker().is_cancelled:
                self.post_message(EntriesLoaded(token, page[:size], len(page) > size, append))

        self.host.run_blocking(load, group="audit", description="audit entries")

    def _load_facets(self) -> None:
        context = self.host.context

        def load() -> None:
            operators, actions = audit_facets(context.workspace.connect())
            if not get_current_worker().is_cancelled:
                self.post_message(FacetsLoaded(operators, actions))

        self.host.run_blocking(load, group="audit-facets", description="audit filters")

    @on(EntriesLoaded)
    def _entries_loaded(self, message: EntriesLoaded) -> None:
        if message.token != self._token:
            return  # superseded (a filter changed meanwhile)
        self.loading = False
        table = self.query_one("#entries", DataTable)
        if not message.append:
            self.entries = []
            table.clear()
        self.entries.extend(message.entries)
        self.more = message.more
        table.add_rows(_cells(e) for e in message.entries)
        if not message.append and self.entries:
            table.move_cursor(row=0)
        self._label()
        self._describe(table.cursor_row)

    @on(FacetsLoaded)
    def _facets_loaded(self, message: FacetsLoaded) -> None:
        for which, options in (("operator", [(o, o) for o in message.operators]),
                               ("action", action_options(message.actions))):
            select = self.query_one(f"#{which}-filter", Select)
            current = select.value
            with select.prevent(Select.Changed):
                select.set_options([(f"every {which}", _ALL), *options])
                select.value = current if current in {v for _, v in options} else _ALL

    @on(ChainVerified)
    def _chain_verified(self, message: ChainVerified) -> None:
        if message.token != self._chain_token:
            return
        self.report = message.report
        self.query_one("#chain-status", Static).update(chain_text(message.report))
        self._label()

    def _label(self) -> None:
        n = len(self.entries)
        if n == 0:
            text = Text("no audit entries" + (" match these filters" if self._filtered() else ""))
        else:
            text = Text(f"entries {self.entries[0].id:,}–{self.entries[-1].id:,} (newest first): {n:,} loaded")
            text.append(" · more load as you scroll" if self.more else " · the oldest is shown", style="dim")
        self.query_one("#audit-label", Static).update(text)

    def _filtered(self) -> bool:
        return self._filter("operator") is not None or self._filter("action") is not None

    # -- selection ---------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#entries")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._describe(event.cursor_row)
        if event.cursor_row >= len(self.entries) - PREFETCH_ROWS:
            self._fetch(append=True)

    def _describe(self, index: int) -> None:
        detail = self.query_one("#entry-detail", Static)
        if not 0 <= index < len(self.entries):
            detail.update("")
            return
        e = self.entries[index]
        text = Text(f"{e.id}  {e.ts}  {e.operator}  {e.action}\n", style="bold")
        text.append(json.dumps(e.details, ensure_ascii=True, sort_keys=True))
        prev = "—" if e.prev_hash is None else (e.prev_hash or "(genesis)")
        text.append(f"\nhash {e.hash or '—'}  prev {prev}", style="dim")
        if self.report is not None and not self.report.chain_ok and self.report.first_broken is not None \
                and e.id >= self.report.first_broken:
            text.append(f"\nnot verified: the chain breaks at entry {self.report.first_broken}", style="red")
        detail.update(text)


def _cells(e: AuditEntry) -> tuple[Any, ...]:
    # ensure_ascii: an invisible character in a detail is shown escaped, never raw.
    details = json.dumps(e.details, ensure_ascii=True, sort_keys=True)
    return (Text(str(e.id), justify="right"), e.ts.replace("+00:00", "Z"),
            Text(e.operator, no_wrap=True, overflow="ellipsis"),
            Text(e.action, no_wrap=True, overflow="ellipsis"),
            Text(details, no_wrap=True, overflow="ellipsis"))
