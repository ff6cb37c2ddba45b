"""The dump browser: every planned record, one page at a time, filtered by status or searched.

The table only ever holds one page. Pages are fetched by keyset (``seq`` after the page's last
record, or before its first) in a thread worker, so page-down costs the same at record one and
at record one million; totals come from the plan's summary, never from a count per keystroke.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Select, Static
from textual.worker import Worker, get_current_worker

from keyshift.core.text.escape import escape, unescape
from keyshift.core.text.lookalike import marks
from keyshift.core.text.normalize import Normalizer
from keyshift.core.plan.queries import RECORD_FILTERS, PlanRow, RecordRow, latest_plan, records_page

from .fit_columns import fit_table
from .host import ConsoleHost
from .lookalike_badge import BADGE_STYLE, identifier_text
from .normalize_preview import NormalizePreviewScreen
from .widgets import STATUS_STYLES, WorkspaceChanged, visible_text

__all__ = ["DumpBrowserScreen", "PageLoaded", "PageRequest"]

_ALL = "all"
#: (key, label, width) of the table's columns.
COLUMNS = (
    ("line", "line", 7),
    ("file", "file", 14),
    ("raw", "raw", 24),
    ("canonical", "canonical", 20),
    ("new_id", "new id", 16),
    ("status", "status", 11),
    ("changes", "changes", 7),
)
#: The narrowest each column gets (at 80 columns every column stays on screen, cut with an ellipsis).
MIN_WIDTHS = {"line": 7, "file": 6, "raw": 12, "canonical": 10, "new_id": 8, "status": 11, "changes": 7}
_STATUS_KEYS = dict(zip("01234567", (_ALL, *RECORD_FILTERS)))
_STATUS_GROUP = Binding.Group("status", compact=True)


@dataclass(frozen=True)
class PageRequest:
    """One page fetch: which filter, which direction, and where the page starts when known."""

    token: int
    status: str | None
    search: str  # as typed (escapes accepted); normalized with the plan's rules in the worker
    move: str  # first | next | prev | last
    after_seq: int = 0
    before_seq: int | None = None
    offset: int | None = 0  # 0-based index of the page's first row in the filtered set


@dataclass
class PageLoaded(Message, bubble=False):
    """A fetched page (``has_more``: another page exists in the fetch direction)."""

    request: PageRequest
    rows: list[RecordRow]
    has_more: bool
    plan: PlanRow | None
    search: str | None  # the normalized search actually used


class DumpBrowserScreen(Screen[None]):
    """Records of the latest plan in dump order; Enter opens the normalization preview."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="browser.back",
                tooltip="Back to the overview (cancels a running query)"),
        Binding("pagedown", "page('next')", "Next", id="browser.next-page", priority=True,
                tooltip="Fetch the next page of records"),
        Binding("pageup", "page('prev')", "Prev", id="browser.prev-page", priority=True,
                tooltip="Fetch the previous page of records"),
        Binding("ctrl+home", "page('first')", "First", id="browser.first-page", priority=True, show=False,
                tooltip="Jump to the first page"),
        Binding("ctrl+end", "page('last')", "Last", id="browser.last-page", priority=True, show=False,
                tooltip="Jump to the last page"),
        Binding("enter", "preview_row", "Preview", id="browser.preview", priority=True,
                tooltip="Open the normalization preview for the highlighted record's identifier"),
        Binding("slash", "focus_search", "Search", id="browser.search",
                tooltip="Search identifiers (normalized with the plan's rules, prefix match)"),
        *(
            Binding(key, f"status('{status}')", "status", id=f"browser.status-{status}", group=_STATUS_GROUP,
                    tooltip=f"Show {'all records' if status == _ALL else status + ' records'}")
            for key, status in _STATUS_KEYS.items()
        ),
    ]

    def __init__(self, host: ConsoleHost) -> None:
        super().__init__()
        self.host = host
        self.page_size = host.page_size
        self.plan: PlanRow | None = None
        self.rows: list[RecordRow] = []
        self.first_index: int | None = 0  # 0-based position of the page in the filtered set; None: unknown
        self.at_end = True
        self._token = 0
        self._worker: Worker | None = None
        self._queued = 0  # page moves asked for while a fetch was running (+ next, - prev)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="browser-filters"):
            yield Select([("all records", _ALL), *((s, s) for s in RECORD_FILTERS)], value=_ALL,
                         allow_blank=False, id="status-filter")
            yield Input(placeholder="search identifier (normalized; escapes like Acme\\u200b accepted)",
                        id="search")
        yield Static("", id="page-label", markup=False)
        table: DataTable[Any] = DataTable(id="records", cursor_type="row", zebra_stripes=True)
        for key, label, width in COLUMNS:
            table.add_column(label, width=width, key=key)
        yield table
        yield Static("", id="record-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#records", DataTable).focus()
        self._fetch("first")

    def on_resize(self, event: events.Resize) -> None:
        """Fit the columns to the width (at 80 columns every column stays on screen)."""
        table = self.query_one("#records", DataTable)
        fit_table(table, [(key, width, MIN_WIDTHS[key]) for key, _, width in COLUMNS],
                  event.size.width - table.styles.scrollbar_size_vertical)

    # -- actions -----------------------------------------------------------------------------
    def action_back(self) -> None:
        """Leave the search field, or go back to the overview."""
        if isinstance(self.focused, Input):
            self.query_one("#records", DataTable).focus()
            return
        self.host.cancel_work("browser")
        self.dismiss()

    def action_page(self, move: str) -> None:
        """Fetch the ``first``, ``next``, ``prev`` or ``last`` page."""
        if self._worker is not None and not self._worker.is_finished and move in ("next", "prev"):
            self._queued += 1 if move == "next" else -1
            return
        self._fetch(move)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "preview_row":  # Enter belongs to the search field and the filter when focused
            return isinstance(self.focused, DataTable)
        return True

    def action_preview_row(self) -> None:
        """Open the normalization preview for the highlighted record."""
        self._preview(self.query_one("#records", DataTable).cursor_row)

    def action_status(self, status: str) -> None:
        """Filter by one status (``all`` for every record)."""
        self.query_one("#status-filter", Select).value = status

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    @on(Select.Changed, "#status-filter")
    def _status_changed(self) -> None:
        self._fetch("first")

    @on(Input.Changed, "#search")
    def _search_changed(self) -> None:
        self._fetch("first")

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.query_one("#records", DataTable).focus()

    @on(WorkspaceChanged)
    def _workspace_changed(self) -> None:
        self.plan = None
        self._fetch("first")

    # -- fetching ----------------------------------------------------------------------------
    @property
    def status(self) -> str | None:
        value = self.query_one("#status-filter", Select).value
        return None if value in (_ALL, Select.NULL) else str(value)

    def _fetch(self, move: str) -> None:
        rows = self.rows
        if move == "next":
            if self.at_end or not rows:
                self.notify("last page", timeout=1.5)
                return
            request = self._request(move, after_seq=rows[-1].seq,
                                    offset=None if self.first_index is None else self.first_index + len(rows))
        elif move == "prev":
            if not rows or self.first_index == 0:
                self.notify("first page", timeout=1.5)
                return
            request = self._request(move, before_seq=rows[0].seq, offset=self.first_index)
        elif move == "last":
            request = self._request(move, before_seq=2**62, offset=None)
        else:
            request = self._request("first")
        context, plan, size = self.host.context, self.plan, self.page_size

        def load() -> None:
            ws = context.workspace
            current_plan = plan if plan is not None else latest_plan(ws)
            search = _normalized_search(request.search, current_plan)
            page = records_page(ws, status=request.status, search=search, after_seq=request.after_seq,
                                before_seq=request.before_seq, limit=size + 1)
            has_more = len(page) > size
            page = page[-size:] if request.before_seq is not None else page[:size]
            if not get_current_worker().is_cancelled:
                self.post_message(PageLoaded(request, page, has_more, current_plan, search))

        self._worker = self.host.run_blocking(load, group="browser", description=f"records page ({move})")

    def _request(self, move: str, *, after_seq: int = 0, before_seq: int | None = None,
                 offset: int | None = 0) -> PageRequest:
        self._token += 1
        if move in ("first", "last"):
            self._queued = 0
        return PageRequest(self._token, self.status, self.query_one("#search", Input).value, move,
                           after_seq, before_seq, offset)

    @on(PageLoaded)
    def _page_loaded(self, message: PageLoaded) -> None:
        request = message.request
        if request.token != self._token:
            return  # superseded by a newer request
        self.plan = message.plan
        rows = message.rows
        if request.move == "next" and not rows:
            self.at_end = True
        else:
            self._show(request, rows, message.has_more, message.search)
        if self._queued:
            move = "next" if self._queued > 0 else "prev"
            self._queued += -1 if self._queued > 0 else 1
            self._fetch(move)

    def _show(self, request: PageRequest, rows: list[RecordRow], has_more: bool, search: str | None) -> None:
        self.rows = rows
        total = self._total(request.status, search)
        if request.move == "prev":
            if not has_more:
                self.first_index = 0
            elif request.offset is not None:
                self.first_index = max(0, request.offset - len(rows))
            else:
                self.first_index = None
            self.at_end = False
        elif request.move == "last":
            self.first_index = None if total is None else max(0, total - len(rows))
            self.at_end = True
        else:
            self.first_index = request.offset
            self.at_end = not has_more
        table = self.query_one("#records", DataTable)
        table.clear()
        table.add_rows((_cells(r) for r in rows))
        table.move_cursor(row=0, scroll=True)
        self.query_one("#page-label", Static).update(self._label(len(rows), total, search))
        self._describe(0)

    def _total(self, status: str | None, search: str | None) -> int | None:
        summary = self.plan.summary if self.plan is not None else None
        if not summary or (search and status != "quarantined"):
            return None
        if status is None:
            return int(summary.get("records", 0))
        if status == "quarantined":
            return int(summary.get("quarantined", 0))
        if status == "remapped":
            return summary.get("remapped_records")  # None for a plan made before it was counted
        return int(summary.get("records_by_status", {}).get(status, 0))

    def _label(self, count: int, total: int | None, search: str | None) -> Text:
        status = self.status or "all"
        noun = "quarantined lines" if status == "quarantined" else "records"
        if count == 0:
            text = Text(f"no {noun}")
        else:
            if self.first_index is None:
                text = Text(f"{noun}: {count:,} on this page")
            else:
                text = Text(f"{noun} {self.first_index + 1:,}–{self.first_index + count:,}")
            if total is not None:
                text.append(f" of {total:,}")
            else:  # a search: counting the matches could scan the table, so it is not done
                text.append(" · end" if self.at_end else " · more follow")
        text.append(f"   status: {status}", style="dim")
        if search and status != "quarantined":
            text.append("   search: ", style="dim")
            text.append_text(visible_text(search))
        if self.plan is None:
            text = Text("no plan yet: press Escape, then p to plan a dump")
        return text

    # -- selection ---------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#records")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._describe(event.cursor_row)

    def _describe(self, index: int) -> None:
        detail = self.query_one("#record-detail", Static)
        if not 0 <= index < len(self.rows):
            detail.update("")
            return
        row = self.rows[index]
        text = Text(f"{Path(row.file).name}:{row.line}  ", style="bold")
        if row.status == "quarantined":
            text.append(f"quarantined: {row.reason}")
            # The line as read: what the operator searches the dump for to fix it.
            text.append("\nexcerpt  ", style="bold")
            text.append_text(visible_text(row.excerpt, edge_spaces=False) if row.excerpt
                             else Text("(none recorded)", style="dim"))
        else:
            text.append(row.reason or row.status)
            for change in row.changes:
                text.append(f"  ·  {change.get('description', '')}")
            for flag in row.suspicious:
                text.append(f"  ·  ⚠ {flag}", style="yellow")
        if row.raw:
            for mark in marks(row.raw):  # the badge's meaning, and the raw form no terminal hides
                text.append("  ·  ")
                text.append(f" {mark.label} ", style=BADGE_STYLE)
                text.append(f" {mark.detail}")
            if marks(row.raw):
                text.append(f"  ·  escaped {escape(row.raw)}")
        detail.update(text)

    @on(DataTable.RowSelected, "#records")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self._preview(event.cursor_row)

    def _preview(self, index: int) -> None:
        if not 0 <= index < len(self.rows):
            return
        row = self.rows[index]
        if row.raw is None:
            self.notify(f"line {row.line} has no identifier: {row.reason}", severity="warning")
            return
        self.app.push_screen(NormalizePreviewScreen(self.host, row.raw))


def _normalized_search(typed: str, plan: PlanRow | None) -> str | None:
    """The search text as the plan's rules see it (escapes like ``Acme\\u200b`` accepted)."""
    if not typed.strip():
        return None
    try:
        text = unescape(typed)
    except ValueError:
        text = typed  # a half-typed escape: search for what is there
    normalizer = Normalizer(plan.rules) if plan is not None else Normalizer()
    return normalizer.canonical(text) or None


def _cells(row: RecordRow) -> tuple[Any, ...]:
    changes = Text(str(len(row.changes)) if row.status != "quarantined" else "—", justify="right")
    if row.suspicious:
        changes.append(" ⚠", style="yellow")
    # Where the record is (not its internal sequence number, which is file-based and sparse).
    # The line comes first: export file names are long random strings that get cut.
    return (
        Text(str(row.line), justify="right"),
        Text(Path(row.file).name, no_wrap=True, overflow="ellipsis"),
        identifier_text(row.raw),
        visible_text(row.canonical),
        visible_text(row.new_id),
        Text(row.status, style=STATUS_STYLES.get(row.status, "")),
        changes,
    )
