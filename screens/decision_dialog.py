"""Small modals of the resolution queue: one decision's reason and parameters.

:class:`DecisionDialog` asks what an action needs, and always a reason: the new id for ``same``
and ``map`` (the case's candidates offered), one id per member for ``split``, which raw
identifiers to drop for ``drop``, which raw's item survives for ``keep`` on a conflict. It only
collects; the queue screen confirms what drops data and records the decision in a thread worker.
Ids are typed with escapes accepted (``Acme\\u200b``), like everywhere else in the console.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, RadioButton, RadioSet, SelectionList, Static
from textual.widgets.option_list import Option

from keyshift.core.cases import Case, Member
from keyshift.core.escape import escape, unescape

from .widgets import visible_text

__all__ = ["ACTION_HELP", "ACTION_LABELS", "DecisionDialog", "DecisionRequest", "member_label"]

#: What each action is called on buttons and titles.
ACTION_LABELS = {
    "same": "Same entity",
    "split": "Split",
    "drop": "Drop",
    "map": "Map to an id",
    "keep": "Keep",
    "accept": "Accept",
    "undo": "Undo",
}
#: One line per action: what it does to the case.
ACTION_HELP = {
    "same": "Every raw form is one entity: all of them get the new id below.",
    "split": "The raw forms are different entities: give each one its own new id.",
    "drop": "The ticked raw identifiers and all their items are left out of the migration.",
    "map": "Give the identifier the new id below.",
    "keep": "Keep the identifier: its canonical form becomes its new id.",
    "keep-conflict": "Several records land on one new key: choose whose item survives.",
    "accept": "The flagged identifier is genuine: migrate it as the rules normalize it.",
    "undo": "Reopen the case (the decision stays in the history).",
}


@dataclass(frozen=True)
class DecisionRequest:
    """What the operator asked for: the arguments of ``core.decisions.decide`` (or ``undo``)."""

    action: str
    reason: str
    new_id: str | None = None
    mapping: dict[str, str] | None = None
    raws: list[str] | None = field(default=None)


def member_label(member: Member) -> Text:
    """A member as a one-line label: invisible characters marked, then its item count."""
    label = visible_text(member.raw)
    label.append(f"  · {member.items:,} item{'s' if member.items != 1 else ''}", style="dim")
    return label


class DecisionDialog(ModalScreen["DecisionRequest | None"]):
    """Ask for ``action``'s parameters and a reason; dismisses with a request, or None (Escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="decision.cancel", tooltip="Decide nothing and go back"),
    ]

    def __init__(self, case: Case, action: str) -> None:
        super().__init__()
        self.case = case
        self.action = action
        self.conflict_keep = action == "keep" and case.kind == "conflict"

    def compose(self) -> ComposeResult:
        case, action = self.case, self.action
        with Vertical(id="decision-dialog", classes="dialog") as box:
            box.border_title = f"{ACTION_LABELS[action]} · {case.id}"
            with VerticalScroll(id="decision-fields"):
                yield Static(Text(ACTION_HELP["keep-conflict" if self.conflict_keep else action]),
                             classes="decision-help")
                yield from self._parameters()
                yield Label("Reason (required: recorded with your name and the time)")
                yield Input(placeholder="why this decision", id="reason")
            yield Static("", id="decision-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button(ACTION_LABELS[action], id="decision-ok",
                             variant="error" if action == "drop" else "primary", disabled=True)
                yield Button("Cancel", id="decision-cancel")

    def _parameters(self) -> ComposeResult:
        case, action = self.case, self.action
        members = case.members
        if action in ("same", "map"):
            yield Label("New id")
            first = case.candidates[0] if case.candidates else ""
            yield Input(escape(first), placeholder="new id (escapes like \\u00e9 accepted)", id="new-id")
            if case.candidates:
                yield Label("Candidates (Enter on one to use it)")
                yield OptionList(*(Option(visible_text(c), id=str(i)) for i, c in enumerate(case.candidates)),
                                 id="candidates")
        elif action == "split":
            hint = ", ".join(escape(c) for c in case.candidates)
            for i, member in enumerate(members):
                yield Label(member_label(member), classes="split-label")
                yield Input(placeholder=f"new id for this raw form{f' (candidates: {hint})' if hint else ''}",
                            id=f"split-{i}", classes="split-id")
        elif action == "drop":
            yield Label("Drop (space ticks; at least one)")
            yield SelectionList[int](*((member_label(m), i, len(members) == 1) for i, m in enumerate(members)),
                                     id="drop-raws")
        elif self.conflict_keep:
            yield Label("Whose item survives")
            with RadioSet(id="keep-raw"):
                for member in members:
                    yield RadioButton(member_label(member))
        elif action == "keep":
            yield Static(Text.assemble("new id  ", visible_text(members[0].canonical)))

    def on_mount(self) -> None:
        parameters = self.query("#new-id, .split-id, #drop-raws, #keep-raw")
        (parameters.first() if parameters else self.query_one("#reason", Input)).focus()
        self._validate()

    # -- validation ----------------------------------------------------------------------------
    def request(self) -> DecisionRequest:
        """The request as filled in; ValueError names what is missing."""
        members = self.case.members
        new_id = mapping = raws = None
        if self.action in ("same", "map"):
            new_id = _typed_id(self.query_one("#new-id", Input).value, "new id")
        elif self.action == "split":
            mapping = {m.raw: _typed_id(self.query_one(f"#split-{i}", Input).value, f"new id of {m.escaped}")
                       for i, m in enumerate(members)}
        elif self.action == "drop":
            ticked = self.query_one("#drop-raws", SelectionList).selected
            if not ticked:
                raise ValueError("tick at least one raw identifier to drop")
            raws = [members[i].raw for i in sorted(ticked)]
        elif self.conflict_keep:
            index = self.query_one("#keep-raw", RadioSet).pressed_index
            if index < 0:
                raise ValueError("choose whose item survives")
            raws = [members[index].raw]
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            raise ValueError("a reason is required")
        return DecisionRequest(self.action, reason, new_id, mapping, raws)

    def _validate(self) -> DecisionRequest | None:
        try:
            request = self.request()
        except ValueError as exc:
            self.query_one("#decision-problem", Static).update(Text(str(exc), style="yellow"))
            self.query_one("#decision-ok", Button).disabled = True
            return None
        self.query_one("#decision-problem", Static).update("")
        self.query_one("#decision-ok", Button).disabled = False
        return request

    @on(Input.Changed)
    @on(SelectionList.SelectedChanged)
    @on(RadioSet.Changed)
    def _changed(self) -> None:
        self._validate()

    @on(OptionList.OptionSelected, "#candidates")
    def _candidate(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#new-id", Input).value = escape(self.case.candidates[int(event.option.id or 0)])
        self.query_one("#reason", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        request = self._validate()
        if request is not None:
            self.dismiss(request)
        elif event.input.id != "reason":
            self.focus_next()

    @on(Button.Pressed, "#decision-ok")
    def _ok(self) -> None:
        request = self._validate()
        if request is not None:
            self.dismiss(request)

    @on(Button.Pressed, "#decision-cancel")
    def action_cancel(self) -> None:
        """Dismiss without deciding."""
        self.dismiss(None)


def _typed_id(value: str, what: str) -> str:
    """A typed id with its escapes resolved; ValueError when empty or a half-typed escape."""
    if not value.strip():
        raise ValueError(f"the {what} is required")
    try:
        return unescape(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
