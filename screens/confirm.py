"""Confirmation for destructive steps: ``ModalScreen[bool]``, awaited with ``push_screen_wait``.

For the riskiest steps (the flag flip) the operator must type a word, e.g. the target table's name,
before the confirm button enables.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

__all__ = ["ConfirmScreen", "say_cancelled"]


def say_cancelled(screen: ModalScreen, what: str = "") -> None:
    """Tell the operator a modal was cancelled (every modal says so: a silent Escape leaves them
    unsure whether the step ran). ``what``: what did not happen, e.g. ``"nothing dropped"``."""
    screen.app.notify(f"cancelled: {what}" if what else "cancelled", timeout=3)


class ConfirmScreen(ModalScreen[bool]):
    """Ask before a destructive action; dismisses with True only on an explicit confirmation.

    ``type_to_confirm``: text the operator must type exactly (e.g. the table name) to enable the
    confirm button. Escape and the cancel button dismiss with False and notify "cancelled"
    (``cancelled``: what did not happen, added to that notification).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel", tooltip="Do nothing and go back"),
    ]

    def __init__(self, title: str, message: str, *, confirm_label: str = "Confirm",
                 type_to_confirm: str | None = None, cancelled: str = "") -> None:
        super().__init__()
        self.confirm_title = title
        self.message = message
        self.confirm_label = confirm_label
        self.type_to_confirm = type_to_confirm
        self.cancelled = cancelled

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = self.confirm_title
            yield Static(self.message, classes="confirm-message", markup=False)
            if self.type_to_confirm is not None:
                yield Static(f"Type {self.type_to_confirm!r} to confirm:", classes="confirm-prompt",
                             markup=False)
                yield Input(id="confirm-text", placeholder=self.type_to_confirm)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, id="confirm-yes", variant="error",
                             disabled=self.type_to_confirm is not None)
                yield Button("Cancel", id="confirm-no")

    def on_mount(self) -> None:
        target = "#confirm-text" if self.type_to_confirm is not None else "#confirm-no"
        self.query_one(target).focus()

    @on(Input.Changed, "#confirm-text")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm-yes", Button).disabled = event.value != self.type_to_confirm

    @on(Input.Submitted, "#confirm-text")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value == self.type_to_confirm:
            self.dismiss(True)

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def action_cancel(self) -> None:
        """Dismiss without confirming, and say so."""
        say_cancelled(self, self.cancelled)
        self.dismiss(False)
