"""The keymap step: build the keymap the operator will restore and sync with, and see it.

Restore and stream sync build the keymap they need themselves; this screen makes that step
visible: the newest build's version, its counts, and what changed since the build before it
(entries added, changed and removed, from the artifacts the console keeps in the workspace:
:mod:`keyshift.core.resolve.keymap_history`). ``b`` builds in a thread worker; while cases are
open the build is refused, the open cases are named, and ``c`` opens the resolution queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from keyshift.core.errors import KeyshiftError
from keyshift.core.resolve.cases import list_cases
from keyshift.core.resolve.keymap_build import UnresolvedError
from keyshift.core.resolve.keymap_history import (
    KeymapChange,
    KeymapInUse,
    KeymapRecord,
    build_in_workspace,
    change_between,
    keymap_builds,
    keymaps_in_use,
)
from keyshift.core.text.plural import count

from .host import ConsoleHost
from .resolve_queue import DecisionsChanged
from .widgets import WorkspaceChanged, visible_text

__all__ = ["KeymapScreen"]

#: How many open cases a refusal names (the queue lists them all).
NAMED = 8


@dataclass
class KeymapLoaded(Message, bubble=False):
    """The newest build and what changed since the one before it, read in a thread."""

    current: KeymapRecord | None
    change: KeymapChange | None
    in_use: list[KeymapInUse] = field(default_factory=list)


@dataclass
class KeymapBuilt(Message, bubble=False):
    """A build finished (``change``: since the previous build)."""

    current: KeymapRecord
    change: KeymapChange


@dataclass
class KeymapRefused(Message, bubble=False):
    """The build was refused: these cases are open (kind, title), ``total`` of them."""

    total: int
    kinds: dict[str, int]
    named: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _BuildEnded(Message, bubble=False):
    """The build worker ended (built, refused or failed): ``b`` works again."""


class KeymapScreen(Screen[None]):
    """The keymap: its version, counts and changes; ``b`` builds it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="keymap.back", tooltip="Back to where you were"),
        Binding("b", "keymap_build", "Build", id="keymap.build",
                tooltip="Build the keymap from the rules and every decision (refused while cases are open)"),
        Binding("c", "app.open_queue", "Resolve", id="keymap.resolve",
                tooltip="Open the resolution queue to decide the open cases"),
    ]

    def __init__(self, host: ConsoleHost) -> None:
        super().__init__()
        self.host = host
        self.building = False
        self.refused: KeymapRefused | None = None
        #: What this screen's last build changed: a rebuild to the same version leaves one row in the
        #: ``keymaps`` table, so a re-read alone would call it the first build.
        self.built: KeymapChange | None = None
        self.in_use: list[KeymapInUse] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="keymap"):
            with Vertical(id="keymap-box", classes="box") as box:
                box.border_title = "Keymap"
                yield Static("reading the workspace…", id="keymap-state")
                yield Static("", id="keymap-counts")
            with Vertical(id="keymap-change-box", classes="box") as change:
                change.border_title = "Since the previous build"
                yield Static("", id="keymap-change")
            with Vertical(id="keymap-in-use-box", classes="box") as used:
                used.border_title = "Applied by the newest runs"
                yield Static("", id="keymap-in-use")
        yield Footer()

    def on_screen_resume(self) -> None:
        self.reload()

    @on(DecisionsChanged)
    @on(WorkspaceChanged)
    def _changed(self) -> None:
        self.refused = None  # the open cases may be decided now: the next build says
        self.reload()

    def reload(self) -> None:
        """Re-read the two newest builds (in a thread)."""
        context = self.host.context

        def load() -> None:
            builds = keymap_builds(context.workspace, limit=2)
            current = builds[0] if builds else None
            change = change_between(builds[1] if len(builds) > 1 else None, current) if current else None
            self.post_message(KeymapLoaded(current, change, keymaps_in_use(context.workspace)))

        self.host.run_blocking(load, group="keymap-info", description="read the keymap builds")

    # -- actions -----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.host.MUTATING_ACTIONS and self.host.read_only:
            return None  # greyed out: audit mode builds nothing
        if action == "keymap_build" and self.building:
            return None
        return True

    def action_back(self) -> None:
        """Close the screen."""
        self.dismiss()

    def action_keymap_build(self) -> None:
        """Build the keymap in a thread; refused (the open cases named) while cases are open."""
        if self.check_action("keymap_build", ()) is not True:
            return
        context = self.host.context
        self.building = True
        self.refresh_bindings()
        self.query_one("#keymap-state", Static).update(Text("building…", style="yellow"))

        def work() -> None:
            try:
                context.require_writable("keymap build")
                ws = context.workspace
                try:
                    spec = context.spec
                except KeyshiftError:  # the artifact can do without its migration section
                    spec = None
                try:
                    _, change = build_in_workspace(ws, operator=context.operator, spec=spec)
                except UnresolvedError:
                    open_cases = [c for c in list_cases(ws, open_only=True) if c.moot is None and c.kind != "unmapped"]
                    kinds: dict[str, int] = {}
                    for case in open_cases:
                        kinds[case.kind] = kinds.get(case.kind, 0) + 1
                    self.post_message(KeymapRefused(len(open_cases), kinds,
                                                    [(c.kind, c.title) for c in open_cases[:NAMED]]))
                    return
                self.post_message(KeymapBuilt(keymap_builds(ws, limit=1)[0], change))
            finally:
                self.post_message(_BuildEnded())

        self.host.run_blocking(work, group="keymap-build", description="build the keymap")

    @on(KeymapLoaded)
    def _loaded(self, message: KeymapLoaded) -> None:
        change = message.change
        if message.current is not None and self.built is not None and self.built.current == message.current.version:
            change = self.built
        self.in_use = message.in_use
        self._show(message.current, change)

    @on(KeymapBuilt)
    def _built(self, message: KeymapBuilt) -> None:
        self.refused, self.built = None, message.change
        self._show(message.current, message.change)
        change = message.change
        self.notify(f"keymap {message.current.version} built" + ("" if change.previous is None or not change.same
                                                                 else " (unchanged)"), timeout=4)
        self.host.workspace_changed()  # the overview's keymap step moved on

    @on(KeymapRefused)
    def _refused(self, message: KeymapRefused) -> None:
        self.refused = message
        kinds = ", ".join(f"{n:,} {k}" for k, n in message.kinds.items())
        lines = [Text(f"✘ not built: {count(message.total, 'case')} still open ({kinds})", style="bold red"),
                 Text("Decide them first: press c for the resolution queue. (Restore can still skip "
                      "their items: it asks.)")]
        for kind, title in message.named:
            lines.append(Text("  • ").append(f"{kind}: ", style="bold").append(visible_text(title, edge_spaces=False)))
        if message.total > len(message.named):
            lines.append(Text(f"  … and {message.total - len(message.named):,} more in the queue", style="dim"))
        self.query_one("#keymap-state", Static).update(Group(*lines))

    @on(_BuildEnded)
    def _build_ended(self) -> None:
        self.building = False
        self.refresh_bindings()

    # -- rendering -------------------------------------------------------------------------------
    def _show(self, current: KeymapRecord | None, change: KeymapChange | None) -> None:
        state = self.query_one("#keymap-state", Static)
        if self.refused is not None:
            pass  # the refusal stays until something changes
        elif current is None:
            state.update(Text("No keymap built yet. Press b to build it from the rules and every decision "
                              "(refused while cases are open; restore and stream sync use the same build)."))
        else:
            state.update(Text(f"version {current.version}", style="bold green")
                         .append(f"  built {current.built_at} by {current.operator}", style=""))
        self.query_one("#keymap-counts", Static).update(_counts(current) if current else "")
        self.query_one("#keymap-change", Static).update(_change(change) if change else "")
        self.query_one("#keymap-in-use", Static).update(_in_use(self.in_use, current))


def _in_use(in_use: list[KeymapInUse], current: KeymapRecord | None) -> Text:
    """Which version each step's newest run applied, and whether it is the newest build."""
    if not in_use:
        return Text("no restore, sync or verify has run yet", style="dim")
    built = current.version if current is not None else None
    text = Text()
    for i, use in enumerate(in_use):
        text.append("\n" if i else "")
        text.append(f"{use.kind} run {use.run_id} ({use.state}): ", style="bold")
        if use.version is None:
            text.append("no keymap recorded", style="dim")
        elif use.matches(built):
            text.append(f"{use.version} ✔ the newest build", style="green")
        else:
            text.append(f"{use.version} — not the newest build", style="yellow")
            text.append(" (built from the decisions in force when it started)", style="dim")
    return text


def _counts(current: KeymapRecord) -> Table:
    s = current.summary
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    grid.add_column(style="dim")
    grid.add_row("entries", f"{int(s.get('entries', 0)):,}", "raw identifiers the keymap knows")
    grid.add_row("mapped", f"{int(s.get('mapped', 0)):,}", "to a new id")
    grid.add_row("dropped", f"{int(s.get('dropped', 0)):,}", "left out by a decision")
    grid.add_row("unresolved", f"{int(s.get('unresolved', 0)):,}", "open cases' identifiers: their items skipped")
    grid.add_row("conflict keys", f"{int(s.get('conflict_keys', 0)):,}", "keys one decision picks a winner for")
    grid.add_row("merged ids", f"{int(s.get('merged_ids', 0)):,}", "new ids several raw spellings share")
    return grid


def _change(change: KeymapChange) -> Group | Text:
    if change.previous is None:
        return Text("the first build: nothing to compare with", style="dim")
    if change.same:
        return Text(f"nothing: the same version as before ({change.current})", style="dim")
    lines: list[Text] = [Text(f"{change.previous} → {change.current}", style="bold")]
    if change.by_entries:
        lines.append(Text(f"{count(change.added, 'entry')} added, {change.changed:,} changed, "
                          f"{change.removed:,} removed"))
        for what, raws in change.examples.items():
            shown = Text(f"  {what}: ", style="bold")
            for i, raw in enumerate(raws):
                shown.append(", " if i else "").append(visible_text(raw))
            lines.append(shown)
    else:
        lines.append(Text("the previous build's entries are not in the workspace (built outside the "
                          "console): its counts only", style="dim"))
    for name, (before, now) in change.counts.items():
        lines.append(Text(f"  {name}: {before:,} → {now:,}"))
    return Group(*lines)
