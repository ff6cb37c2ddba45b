"""The help screen (F1 or ``?``): every key of the screen it was opened from, and the console's own.

Its rows are taken when it opens: the origin screen's bindings as they stand (greyed out where
``check_action`` refuses them now, e.g. in read-only mode) and every console-level action of the
action table (:mod:`.actions`), the same table the overview's keys and the command palette come
from. Escape closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from .actions import ACTIONS, ConsoleAction

__all__ = ["HelpRow", "HelpScreen", "console_rows", "screen_rows"]


@dataclass(frozen=True)
class HelpRow:
    """One line of the help: a key, the action it runs, what it does, and whether it can run now."""

    key: str
    action: str
    label: str
    description: str
    enabled: bool = True
    #: Where the key works (``overview``, ``everywhere``, ``palette``); empty for a screen's own.
    note: str = ""


def screen_rows(screen: Screen[object]) -> list[HelpRow]:
    """The bindings ``screen`` itself defines, in its order, as they stand now (a user keymap
    applied, greyed out where ``check_action`` refuses them).

    The App's keys and the focused widget's (a table's cursor keys) are left out: the first come
    from the action table, the second are the widget's own business. So are Textual's generic
    screen keys (Tab, copy): every console binding has an id, theirs have none.
    """
    rows = []
    for active in screen.active_bindings.values():
        if active.node is not screen or not active.binding.id:
            continue
        binding = active.binding
        rows.append(HelpRow(screen.app.get_key_display(binding), binding.action, binding.description,
                            active.tooltip or binding.tooltip, active.enabled))
    return rows


def console_rows(app: App[object], actions: tuple[ConsoleAction, ...] = ACTIONS) -> list[HelpRow]:
    """One row per console-level action of the table: its key(s) and where they work (the palette's
    key for an action that has none)."""
    rows = []
    for action in actions:
        keys = [key.strip() for key in action.key.split(",")] if action.key else []
        shown = " ".join(app.get_key_display(Binding(key, action.action, key_display=action.key_display))
                         for key in keys) or app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, ""))
        # Where the key works (every table action is in the palette too, by name).
        note = "palette" if not keys else "overview" if action.scope == "overview" else "everywhere"
        enabled = bool(app.check_action(action.action, ()))
        rows.append(HelpRow(shown, f"app.{action.action}", action.title, action.description, enabled, note))
    return rows


class HelpScreen(ModalScreen[None]):
    """Every key of the screen below and of the console, with what each does."""

    CSS_PATH = "help_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, title: str, screen: list[HelpRow], console: list[HelpRow]) -> None:
        """``title`` names the screen the rows of ``screen`` come from; ``console``: the table's."""
        super().__init__()
        self.help_title = title
        self.screen_help = screen
        self.console_help = console

    @classmethod
    def of(cls, screen: Screen[object]) -> HelpScreen:
        """The help for ``screen`` (taken now, before the help covers it)."""
        name = type(screen).__name__
        title = next((a.title for a in ACTIONS if a.opens == name), name)
        return cls(title, screen_rows(screen), console_rows(screen.app))

    @property
    def rows(self) -> list[HelpRow]:
        """Every row shown, the screen's first."""
        return [*self.screen_help, *self.console_help]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog") as box:
            box.border_title = "Help"
            yield Static(Text(f"Keys of {self.help_title}", style="bold"), classes="help-heading")
            yield Static(_table(self.screen_help) if self.screen_help else Text("none of its own", style="dim"),
                         id="help-screen")
            yield Static(Text("The console: its screens and steps (every one by name in the command palette, "
                              "Ctrl+P) and the keys that work everywhere", style="bold"), classes="help-heading")
            yield Static(_table(self.console_help), id="help-console")
            yield Static(Text("Dimmed keys cannot run now (read-only mode, nothing to resume…). Escape closes "
                              "this help.", style="dim"), classes="help-heading")


def _table(rows: list[HelpRow]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(no_wrap=True)
    notes = any(row.note for row in rows)
    if notes:
        table.add_column(no_wrap=True, style="dim")
    table.add_column(ratio=1)
    for row in rows:
        style = "" if row.enabled else "dim"  # refused now (read-only mode, nothing to resume…)
        cells = [Text(row.key, style=style), Text(row.label, style=style)]
        if notes:
            cells.append(Text(row.note))
        table.add_row(*cells, Text(row.description, style=style))
    return table
