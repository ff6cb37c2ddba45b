"""Who else is attached to the workspace: a small panel for the overview.

The console's poll keeps ``host.attached_consoles`` current (``console/watch.py``); the panel
re-reads that snapshot (memory, no I/O) every second, so the "how long ago" columns move, and
hides itself while nobody else is attached (a console alone looks exactly as it did before).
Names are shown with :func:`visible_text`: a partner's name with an invisible character or a
look-alike letter must not pass for someone else's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.message import Message
from textual.widgets import Static

from keyshift.core.store.presence import ConsolePresence
from keyshift.core.text.plural import count

from .host import ConsoleHost
from .widgets import visible_text

__all__ = ["PresencePanel", "ago", "presence_table"]

#: How often the panel re-reads the host's snapshot and redraws the ages.
REDRAW_SECONDS = 1.0


def ago(seconds: float) -> str:
    """``4 s ago``, ``3 min ago``, ``2 h ago``: how long ago, as coarse as an operator reads it."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _since(started_at: str) -> str:
    """``since 14:02`` in this machine's local time (the row stores UTC ISO 8601)."""
    try:
        return f"since {datetime.fromisoformat(started_at).astimezone().strftime('%H:%M')}"
    except ValueError:
        return f"since {started_at}"


def presence_table(consoles: tuple[ConsolePresence, ...], now: float | None = None) -> Table:
    """One row per other console: operator, terminal/browser, since when, last action and when."""
    now = time.time() if now is None else now
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for console in consoles:
        if console.last_action:
            last = Text(console.last_action)
            last.append(f" · {ago(now - (console.last_action_at or now))}", style="dim")
        else:
            last = Text("nothing yet", style="dim")
        table.add_row(visible_text(console.operator), console.kind, _since(console.started_at), last)
    return table


class PresencePanel(Static):
    """The other consoles on this workspace; hidden while there are none."""

    DEFAULT_CSS = """
    PresencePanel {
        height: auto;
        max-height: 6;
        border: round $accent 60%;
        border-title-style: bold;
        padding: 0 1;
        display: none;
    }
    PresencePanel.-others { display: block; }
    """

    @dataclass
    class Counted(Message):
        """How many other consoles are attached (posted when the number changes; bubbles to the screen)."""

        others: int

    def __init__(self, host: ConsoleHost, *, id: str | None = "presence") -> None:
        super().__init__("", id=id)
        self.host = host
        self._count: int | None = None

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(REDRAW_SECONDS, self.redraw)

    def redraw(self) -> None:
        """Show the host's newest snapshot (cheap: no I/O)."""
        consoles = self.host.attached_consoles
        self.set_class(bool(consoles), "-others")
        if consoles:
            self.border_title = f"Also attached: {count(len(consoles), 'console')}"
            self.update(presence_table(consoles))
        if len(consoles) != self._count:
            self._count = len(consoles)
            self.post_message(self.Counted(len(consoles)))
