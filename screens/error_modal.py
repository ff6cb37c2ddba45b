"""The error modal: a failed worker's short title and operator-readable message."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

__all__ = ["ErrorModal"]


class ErrorModal(ModalScreen[None]):
    """Shows an error; more errors arriving while it is open are appended (repeats are dropped).

    Escape or the OK button closes it.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", id="error.close", tooltip="Close this message"),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.errors: list[tuple[str, str]] = [(title, message)]

    @property
    def error_title(self) -> str:
        """The first error's title."""
        return self.errors[0][0]

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box", classes="dialog") as box:
            box.border_title = "Error"
            for title, message in self.errors:
                yield from self._error(title, message)
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", id="error-ok", variant="error")

    def on_mount(self) -> None:
        self.query_one("#error-ok", Button).focus()

    def add(self, title: str, message: str) -> None:
        """Append another error (once: the same error twice is shown once)."""
        if (title, message) in self.errors:
            return
        self.errors.append((title, message))
        if self.is_mounted:
            box = self.query_one("#error-box")
            box.mount_all(list(self._error(title, message)), before=box.query_one(".dialog-buttons"))

    @staticmethod
    def _error(title: str, message: str) -> list[Static]:
        return [Static(title, classes="error-title", markup=False),
                Static(message, classes="error-message", markup=False)]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)
