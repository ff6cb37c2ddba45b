"""The first screen of a paired (browser) console: who is this operator?

``keyshift console --serve`` starts one console process per browser connection, all with the
server's login name; decisions and audit entries must name the person at that browser instead, so
the console asks before anything else and the answer becomes that process's operator.
"""

from __future__ import annotations

import unicodedata
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

__all__ = ["OperatorPrompt", "clean_operator_name"]

#: Long enough for a full name or an e-mail address; short enough for the audit table's column.
MAX_NAME = 64


def clean_operator_name(raw: str) -> tuple[str, str]:
    """``(name, "")`` for a usable name, ``("", why)`` otherwise.

    The name goes into the audit log verbatim, so it is NFC-normalized (two consoles typing the
    same name record the same string) and may hold no control or invisible format characters
    (which would make two different names look the same there).
    """
    name = unicodedata.normalize("NFC", " ".join(raw.split()))
    if not name:
        return "", "type your name: it is what your decisions and the audit log record"
    if len(name) > MAX_NAME:
        return "", f"at most {MAX_NAME} characters"
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        return "", "no control or invisible characters"
    return name, ""


class OperatorPrompt(ModalScreen[str]):
    """Ask the operator's name; dismisses with the cleaned name, and only with a usable one.

    There is no cancel: a browser session must not act under the server's login name. A refused
    name keeps the dialog open, with the typed text and the reason shown.
    """

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, suggestion: str = "") -> None:
        super().__init__()
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="operator-prompt") as box:
            box.border_title = "Who is operating?"
            yield Static("This console is shared over the browser. Your name is recorded on every "
                         "decision and audit entry you make here.", classes="confirm-message")
            yield Input(id="operator-name", placeholder="your name", max_length=MAX_NAME * 2)
            yield Static("", id="operator-refusal", classes="confirm-prompt", markup=False)

    def on_mount(self) -> None:
        self.query_one("#operator-name", Input).focus()

    @on(Input.Submitted, "#operator-name")
    def _submitted(self, event: Input.Submitted) -> None:
        name, why = clean_operator_name(event.value)
        if not name:
            self.query_one("#operator-refusal", Static).update(why)
            return  # focus stays in the field: the next keystrokes fix the name
        self.dismiss(name)
