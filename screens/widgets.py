"""Small reusable pieces of the console: identifier rendering, a progress panel, shared messages."""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import ProgressBar, Static

from keyshift.core.text.escape import visible

__all__ = [
    "MARKER_STYLE",
    "STATUS_STYLES",
    "WorkspaceChanged",
    "visible_text",
    "format_eta",
    "format_rate",
    "ProgressPanel",
]

#: How an invisible character's marker (``⟨ZWSP⟩``) is drawn: it must stand out from real text.
MARKER_STYLE = "bold reverse magenta"
#: One colour per record status, used wherever a status is shown.
STATUS_STYLES = {
    "unchanged": "green",
    "fixed": "cyan",
    "remapped": "blue",
    "ambiguous": "yellow",
    "orphaned": "magenta",
    "invalid": "red",
    "quarantined": "bold red",
}
_MARKER = re.compile(r"⟨[^⟨⟩]+⟩")


class WorkspaceChanged(Message, bubble=False):
    """The workspace's plan changed (a plan finished): screens showing plan data reload."""


def visible_text(value: str | None, *, none: str = "—", edge_spaces: bool = True) -> Text:
    """``value`` as Rich text with every invisible character shown as a styled marker.

    Never contains a raw invisible character, and markup in ``value`` is never interpreted
    (``[bold]`` stays literal). Leading and trailing spaces are marked too (``Initech⟨SP⟩``)
    unless ``edge_spaces`` is False.
    """
    if value is None:
        return Text(none, style="dim")
    if value == "":
        return Text("(empty)", style="dim italic")
    shown = visible(value, edge_spaces=edge_spaces)
    text = Text(shown, no_wrap=True, overflow="ellipsis")
    if shown != value and "⟨" not in value:  # a literal ⟨ in the value would fool the styling
        for match in _MARKER.finditer(shown):
            text.stylize(MARKER_STYLE, match.start(), match.end())
    return text


def format_eta(seconds: float | None) -> str:
    """``ETA 1m 05s``, or ``ETA —`` when unknown."""
    if seconds is None:
        return "ETA —"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"ETA {hours}h {minutes:02d}m"
    if minutes:
        return f"ETA {minutes}m {secs:02d}s"
    return f"ETA {secs}s"


def format_rate(per_second: float, unit: str = "lines") -> str:
    """``12,345 lines/s``."""
    return f"{per_second:,.0f} {unit}/s"


class ProgressPanel(Widget):
    """A progress bar with a phase, a count, a rate and an ETA, bound to reactive fields.

    A thread worker posts progress messages; the screen that receives them calls :meth:`show`.
    ``fraction`` None shows an indeterminate bar.
    """

    DEFAULT_CSS: ClassVar[str] = """
    ProgressPanel {
        height: auto;
    }
    ProgressPanel > ProgressBar {
        width: 100%;
    }
    ProgressPanel > ProgressBar > Bar {
        width: 1fr;
    }
    ProgressPanel > .progress-detail {
        height: 1;
        color: $text-muted;
    }
    """

    phase: reactive[str] = reactive("idle")
    done: reactive[int] = reactive(0)
    fraction: reactive[float | None] = reactive(None)
    rate: reactive[float] = reactive(0.0)
    eta: reactive[float | None] = reactive(None)

    def __init__(self, unit: str = "lines", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.unit = unit

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=100, show_eta=False, show_percentage=False)
        yield Static(self._detail(), classes="progress-detail", markup=False)

    def show(self, *, phase: str, done: int, fraction: float | None, rate: float, eta: float | None) -> None:
        """Update every field at once (one refresh)."""
        self.phase, self.done, self.fraction, self.rate, self.eta = phase, done, fraction, rate, eta

    def finish(self, phase: str) -> None:
        """Mark the work finished (``complete``, ``cancelled``, ``failed``)."""
        self.phase, self.eta = phase, None
        if phase == "complete":
            self.fraction = 1.0

    def _detail(self) -> str:
        parts = [self.phase]
        if self.fraction is not None:
            parts.append(f"{self.fraction:.0%}")
        parts += [f"{self.done:,} {self.unit}", format_rate(self.rate, self.unit)]
        if self.phase not in ("complete", "cancelled", "failed", "idle"):
            parts.append(format_eta(self.eta))
        return "  ·  ".join(parts)

    def _sync(self) -> None:
        if not self.is_mounted:
            return
        bar = self.query_one(ProgressBar)
        if self.fraction is None and self.phase not in ("idle", "cancelled", "failed"):
            bar.update(total=None)
        else:
            bar.update(total=100, progress=round((self.fraction or 0.0) * 100, 1))
        self.query_one(".progress-detail", Static).update(self._detail())

    def on_mount(self) -> None:
        self._sync()

    watch_phase = watch_done = watch_fraction = watch_rate = watch_eta = _sync  # type: ignore[assignment]
