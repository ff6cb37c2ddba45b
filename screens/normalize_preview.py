"""The normalization preview: raw vs canonical side by side, every change named, the plan's verdict.

Opened from the dump browser for one record's identifier, or standalone to type or paste any
identifier (escapes such as ``Acme\\u200b`` accepted) and see live how the rules treat it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static
from textual.worker import get_current_worker

from keyshift.core.errors import KeyshiftError
from keyshift.core.text.escape import escape, unescape
from keyshift.core.kernel.items import utf8_len
from keyshift.core.text.normalize import DEFAULT_RULES, Normalized, Normalizer
from keyshift.core.plan.queries import IdentifierRow, get_identifier, identifiers_page, latest_plan

from .host import ConsoleHost, HostContext
from .widgets import STATUS_STYLES, visible_text

__all__ = ["NormalizePreviewScreen", "PreviewLoaded", "escape_invisible"]

_GROUP_LIMIT = 12


@dataclass
class PreviewLoaded(Message, bubble=False):
    """Everything the preview shows for one identifier, computed in a thread."""

    token: int
    raw: str
    rules: tuple[str, ...]
    rules_source: str
    normalized: Normalized
    identifier: IdentifierRow | None
    group: list[str]  # other raw identifiers of the plan sharing the canonical form
    planned: bool  # whether the workspace has a plan at all


class NormalizePreviewScreen(Screen[None]):
    """What the normalization rules do to one identifier, and what the plan decided for it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="preview.back", tooltip="Back to the previous screen"),
        Binding("slash", "edit", "Edit identifier", id="preview.edit",
                tooltip="Type or paste an identifier (escapes like Acme\\u200b accepted)"),
    ]

    def __init__(self, host: ConsoleHost, raw: str | None = None) -> None:
        """``raw``: the identifier to show (from the browser), or None to start with an empty input."""
        super().__init__()
        self.host = host
        self.initial = raw
        self.raw: str | None = raw
        self._token = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="preview"):
            yield Input(value=escape(self.initial) if self.initial is not None else "",
                        placeholder="type or paste an identifier (escapes like Acme\\u200b accepted)",
                        id="identifier")
            yield Static("", id="preview-rules")
            with Horizontal(id="sides"):
                with Vertical(id="raw-box", classes="side") as raw_box:
                    raw_box.border_title = "raw"
                    yield Static("", id="raw-side")
                with Vertical(id="canonical-box", classes="side") as canonical_box:
                    canonical_box.border_title = "canonical"
                    yield Static("", id="canonical-side")
            with Vertical(id="changes-box", classes="section") as changes:
                changes.border_title = "changes"
                yield Static("", id="changes")
            with Vertical(id="suspicious-box", classes="section") as flags:
                flags.border_title = "suspicious"
                yield Static("", id="suspicious")
            with Horizontal(id="plan-row"):
                with Vertical(id="verdict-box", classes="section") as plan:
                    plan.border_title = "in the plan"
                    yield Static("", id="in-plan")
                with Vertical(id="sample-box", classes="section") as sample:
                    sample.border_title = "sample item"
                    yield Static("", id="sample")
        yield Footer()

    def on_mount(self) -> None:
        if self.initial is None:
            self.query_one("#identifier", Input).focus()
        self._load(self.initial or "")

    def action_back(self) -> None:
        self.host.cancel_work("preview")
        self.dismiss()

    def action_edit(self) -> None:
        self.query_one("#identifier", Input).focus()

    @on(Input.Changed, "#identifier")
    def _typed(self, event: Input.Changed) -> None:
        field = event.input
        cleaned = escape_invisible(event.value)
        if cleaned != event.value:  # a paste brought raw invisible characters: show them escaped
            field.value = cleaned
            field.cursor_position = len(cleaned)
            return  # the value change posts another Changed
        try:
            raw = unescape(event.value)
        except ValueError as exc:
            self.query_one("#preview-rules", Static).update(Text(f"incomplete escape: {exc}", style="yellow"))
            return
        self._load(raw)

    @on(Input.Submitted, "#identifier")
    def _submitted(self) -> None:
        self.query_one("#preview", VerticalScroll).focus()

    # -- loading -------------------------------------------------------------------------------
    def _load(self, raw: str) -> None:
        self._token += 1
        token, context = self._token, self.host.context
        self.raw = raw

        def load() -> None:
            message = _explain(context, token, raw)
            if not get_current_worker().is_cancelled:
                self.post_message(message)

        self.host.run_blocking(load, group="preview", description="normalization preview")

    @on(PreviewLoaded)
    def _loaded(self, message: PreviewLoaded) -> None:
        if message.token != self._token:
            return
        norm = message.normalized
        self.query_one("#preview-rules", Static).update(
            Text.assemble(("rules  ", "bold"), " → ".join(message.rules),
                          (f"   ({message.rules_source})", "dim"))
        )
        self.query_one("#raw-side", Static).update(_side(norm.raw))
        self.query_one("#canonical-side", Static).update(_side(norm.canonical))
        self.query_one("#changes", Static).update(_changes(norm, message.raw))
        self.query_one("#suspicious", Static).update(_suspicious(norm))
        self.query_one("#suspicious-box").set_class(bool(norm.suspicious), "flagged")
        self.query_one("#in-plan", Static).update(_in_plan(message))
        sample = message.identifier.sample if message.identifier is not None else None
        self.query_one("#sample", Static).update(
            _json(sample) if sample is not None else Text("—", style="dim"))


def escape_invisible(value: str) -> str:
    """``value`` with every raw invisible character replaced by its escape (typed escapes kept)."""
    if value.isascii() and value.isprintable():
        return value
    return "".join(ch if ch == "\\" or escape(ch) == ch else escape(ch) for ch in value)


def _explain(context: HostContext, token: int, raw: str) -> PreviewLoaded:
    """Runs in a thread: the rules to use, what they do to ``raw``, and the plan's record of it."""
    ws, plan, rules_source = None, None, "default rules: no plan, no spec"
    rules: tuple[str, ...] = DEFAULT_RULES
    try:
        ws = context.workspace
        plan = latest_plan(ws)
    except KeyshiftError:
        ws = None  # no workspace (read-only mode on a fresh directory): the rules still work
    if plan is not None:
        rules, rules_source = tuple(plan.rules), "the plan's rules"
    else:
        try:
            rules, rules_source = tuple(context.spec.normalize.rules), "the spec's rules"
        except KeyshiftError:
            pass
    norm = Normalizer(rules).explain(raw)
    identifier = get_identifier(ws, raw) if ws is not None and plan is not None and raw else None
    group: list[str] = []
    if ws is not None and plan is not None and norm.canonical:
        rows = identifiers_page(ws, canonical=norm.canonical, limit=_GROUP_LIMIT + 1)
        group = [r.raw for r in rows if r.raw != raw]
    return PreviewLoaded(token, raw, rules, rules_source, norm, identifier, group, plan is not None)


# -- rendering ---------------------------------------------------------------------------------
def _side(value: str) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", width=9)
    grid.add_column()
    shown = visible_text(value)
    shown.stylize("bold")
    grid.add_row("shown", shown)
    grid.add_row("escaped", Text(escape(value), no_wrap=True, overflow="ellipsis"))
    grid.add_row("length", Text(f"{len(value)} code points · {utf8_len(value)} UTF-8 bytes"))
    return grid


def _changes(norm: Normalized, raw: str) -> Table | Text:
    if not raw:
        return Text("type an identifier above", style="dim")
    if not norm.changes:
        return Text("no changes: the identifier is already canonical", style="green")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="cyan", no_wrap=True)
    table.add_column()
    for change in norm.changes:
        table.add_row(change.rule, Text(change.describe()))
    return table


def _suspicious(norm: Normalized) -> Text:
    if not norm.suspicious:
        return Text("none", style="dim")
    text = Text()
    for i, flag in enumerate(norm.suspicious):
        if i:
            text.append("\n")
        text.append("⚠ ", style="bold yellow")
        shown = visible_text(flag, edge_spaces=False)
        shown.style = "bold yellow"
        text.append_text(shown)
    text.append("\nflagged for a human, never changed by the rules", style="dim")
    return text


def _in_plan(message: PreviewLoaded) -> Table | Text:
    if not message.planned:
        return Text("no plan yet: plan a dump to see how its records are classified", style="dim")
    row = message.identifier
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", width=14)
    grid.add_column()
    if row is None:
        grid.add_row("status", Text("not in the plan (no record has this raw identifier)", style="dim"))
    else:
        status = Text(row.status, style=STATUS_STYLES.get(row.status, ""))
        if row.reason:
            status.append(f" — {row.reason}")
        grid.add_row("status", status)
        grid.add_row("items", Text(f"{row.items:,}"))
        grid.add_row("new id", visible_text(row.new_id, none="— (needs a decision)"))
        ref = Text(", ").join(visible_text(r) for r in row.ref_ids) if row.ref_ids else Text("—")
        grid.add_row("reference ids", ref)
    if message.group:
        shown = message.group[:_GROUP_LIMIT]
        same = Text(" · ").join(visible_text(r) for r in shown)
        if len(message.group) > _GROUP_LIMIT:
            same.append(" · …")
        grid.add_row("same canonical", same)
    return grid


def _json(item: Any) -> Text:
    """Pretty JSON with invisible characters as markers (never raw)."""
    lines = json.dumps(item, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    text = Text("\n").join(visible_text(line, edge_spaces=False) for line in lines)
    text.no_wrap = False
    return JSONHighlighter()(text)
