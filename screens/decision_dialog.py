"""Small modals of the resolution queue: one decision's reason and parameters, and bulk decisions.

:class:`DecisionDialog` asks what an action needs, and always a reason: the new id for ``same``
and ``map`` (the case's candidates offered), one id per member for ``split``, which raw
identifiers to drop for ``drop``, which raw's item survives for ``keep`` on a conflict. It only
collects; the queue screen confirms what drops data and records the decision in a thread worker.
Ids are typed with escapes accepted (``Acme\\u200b``), like everywhere else in the console.

A refusal never moves focus: Enter in a field whose own value is refused keeps the cursor there
(the next keystrokes would otherwise land in another field), and a decision the store refuses
(:meth:`DecisionDialog.refused`) keeps the dialog open with everything typed and the refusal shown.

:class:`BulkDialog` chooses a kind, a condition and an action from ``core.bulk``, previews the count
and a sample of the matching cases in a thread, asks for the shared reason and a confirmation, and
applies in a thread worker with progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import (Button, Checkbox, Input, Label, OptionList, RadioButton, RadioSet, Select, SelectionList,
                             Static)
from textual.widgets.option_list import Option

from keyshift.core.resolve.bulk import BULK_ACTIONS, CONDITIONS, BulkPreview, BulkResult, apply_bulk, preview_bulk
from keyshift.core.resolve.cases import Case, Member
from keyshift.core.resolve.decisions import default_primary
from keyshift.core.resolve.new_ids import new_id_problem
from keyshift.core.text.normalize import DEFAULT_RULES
from keyshift.core.text.escape import escape, unescape
from keyshift.core.text.lookalike import badges

from .confirm import ConfirmScreen, say_cancelled
from .host import ConsoleHost
from .lookalike_badge import identifier_text
from .widgets import ProgressPanel, visible_text

__all__ = ["ACTION_HELP", "ACTION_LABELS", "BulkDialog", "DecisionAccepted", "DecisionDialog", "DecisionRefused",
           "DecisionRequest", "member_label"]

#: How many matching cases a bulk preview shows.
_SAMPLE = 5

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
    raws: list[str] | None = None
    allow_suspicious: bool = False
    primary: str | None = None  # same: the spelling writes go back to on a flip-back


def member_label(member: Member) -> Text:
    """A member as a one-line label: invisible characters marked, then its item count."""
    label = identifier_text(member.raw)
    label.append(f"  · {member.items:,} item{'s' if member.items != 1 else ''}", style="dim")
    return label


@dataclass
class DecisionRefused(Message, bubble=False):
    """The store refused the dialog's request (``why``: its operator-readable reason)."""

    why: str


class DecisionAccepted(Message, bubble=False):
    """The dialog's request was recorded: the dialog closes."""


class DecisionDialog(ModalScreen["DecisionRequest | None"]):
    """Ask for ``action``'s parameters and a reason; dismisses with a request, or None (Escape).

    With ``submit``, a complete request goes to ``submit(dialog, request)`` instead and the dialog
    stays open until :class:`DecisionAccepted` (recorded: it closes) or :class:`DecisionRefused`
    (the refusal is shown under the fields, nothing typed is lost, focus stays where it was).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="decision.cancel", tooltip="Decide nothing and go back"),
    ]

    def __init__(self, case: Case, action: str, *, rules: Sequence[str] = (),
                 submit: Callable[[DecisionDialog, DecisionRequest], None] | None = None) -> None:
        """``rules``: the plan's normalization rules; typed new ids are checked against them as
        the operator types (the same check :func:`~keyshift.core.resolve.decisions.decide` makes)."""
        super().__init__()
        self.submit = submit
        self.pending = False  # a submitted request is being confirmed or recorded
        self.case = case
        self.action = action
        self.rules = tuple(rules) or DEFAULT_RULES
        self.conflict_keep = action == "keep" and case.kind == "conflict"
        self.takes_ids = action in ("same", "map", "split")

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
                if self.takes_ids:  # after the reason: Enter in an id field moves on to the reason
                    yield Checkbox("Allow a suspicious new id (mixed scripts, look-alikes; recorded)",
                                   id="allow-suspicious")
            yield Static("", id="decision-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button(ACTION_LABELS[action], id="decision-ok",
                             variant="error" if action == "drop" else "primary", disabled=True)
                yield Button("Cancel", id="decision-cancel")

    def _parameters(self) -> ComposeResult:
        case, action = self.case, self.action
        members = case.members
        if action in ("same", "map"):
            if case.candidates:
                yield Label("Candidates (Enter on one to use it)")
                yield OptionList(*(Option(identifier_text(c), id=str(i)) for i, c in enumerate(case.candidates)),
                                 id="candidates")
            yield Label("New id")
            first = case.candidates[0] if case.candidates else ""
            yield Input(escape(first), placeholder="new id (escapes like \\u00e9 accepted)", id="new-id")
            if action == "same" and len(members) > 1:
                # Reverse sync writes the merged id back under one spelling; preselected: the default.
                yield Label("Writes go back to (after a flip back)")
                default = default_primary(case)
                with RadioSet(id="primary"):
                    for member in members:
                        yield RadioButton(member_label(member), value=member.raw == default)
        elif action == "split":
            # Escaped candidates plus their badges: ``Café`` and ``Cafe\u0301`` escape alike.
            hint = ", ".join(escape(c) + (f" ({badges(c)})" if badges(c) else "") for c in case.candidates)
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
        allow = self.takes_ids and self.query_one("#allow-suspicious", Checkbox).value
        primary = None
        if self.action in ("same", "map"):
            new_id = self._checked(_typed_id(self.query_one("#new-id", Input).value, "new id"), allow)
            picked = self.query("#primary")
            if picked:
                index = picked.first(RadioSet).pressed_index
                primary = members[index].raw if index >= 0 else None
        elif self.action == "split":
            mapping = {m.raw: self._checked(_typed_id(self.query_one(f"#split-{i}", Input).value,
                                                      f"new id of {m.escaped}"), allow)
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
        return DecisionRequest(self.action, reason, new_id, mapping, raws, bool(allow), primary)

    def _checked(self, new_id: str, allow_suspicious: bool) -> str:
        """``new_id`` when it is a clean key under the plan's rules; ValueError saying why not."""
        allowed = {m.canonical for m in self.case.members} | set(self.case.candidates)
        problem = new_id_problem(new_id, rules=self.rules, allowed=allowed, allow_suspicious=allow_suspicious)
        if problem is not None:
            raise ValueError(problem)
        return new_id

    def _validate(self) -> DecisionRequest | None:
        if self.pending:  # being recorded: a refusal will re-enable it
            self.query_one("#decision-ok", Button).disabled = True
            return None
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
    @on(Checkbox.Changed)
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
            self._send(request)
        elif self._field_problem(event.input) is not None:
            self.app.bell()  # this field is refused: the cursor stays, the problem is shown below
        elif event.input.id == "new-id":
            self.query_one("#reason", Input).focus()  # the primary choice is preselected: Tab reaches it
        elif event.input.id != "reason":
            self.focus_next()

    def _field_problem(self, field: Input) -> str | None:
        """Why the typed id in ``field`` is refused (None: it is fine, or it is not an id field)."""
        if field.id != "new-id" and not field.has_class("split-id"):
            return None
        allow = self.query_one("#allow-suspicious", Checkbox).value
        try:
            self._checked(_typed_id(field.value, "new id"), allow)
        except ValueError as exc:
            return str(exc)
        return None

    @on(Button.Pressed, "#decision-ok")
    def _ok(self) -> None:
        request = self._validate()
        if request is not None:
            self._send(request)

    def _send(self, request: DecisionRequest) -> None:
        if self.submit is None:
            self.dismiss(request)
        elif not self.pending:
            self.pending = True
            self.query_one("#decision-ok", Button).disabled = True
            self.submit(self, request)

    def resume(self) -> None:
        """The submitted request was not recorded (a confirmation declined): edit it again."""
        self.pending = False
        self._validate()

    @on(DecisionRefused)
    def _refused(self, message: DecisionRefused) -> None:
        self.pending = False
        self._validate()
        self.query_one("#decision-problem", Static).update(Text(f"refused: {message.why}", style="red"))

    @on(DecisionAccepted)
    def _accepted(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#decision-cancel")
    def action_cancel(self) -> None:
        """Dismiss without deciding, and say so."""
        say_cancelled(self, "nothing decided")
        self.dismiss(None)


def _typed_id(value: str, what: str) -> str:
    """A typed id with its escapes resolved; ValueError when empty or a half-typed escape."""
    if not value.strip():
        raise ValueError(f"the {what} is required")
    try:
        return unescape(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


# -- bulk ----------------------------------------------------------------------------------------
@dataclass
class BulkPreviewed(Message, bubble=False):
    """A bulk preview, computed in a thread (``token``: which choice it answers)."""

    token: int
    preview: BulkPreview


@dataclass
class BulkProgressed(Message, bubble=False):
    """How far a bulk apply is (replaceable: only the newest count matters)."""

    done: int
    total: int
    rate: float

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, BulkProgressed)


@dataclass
class BulkFinished(Message, bubble=False):
    """A bulk apply ended (``result`` None: it failed; the App's error modal says why)."""

    result: BulkResult | None


class BulkDialog(ModalScreen[bool]):
    """Decide every matching open case at once: choose, preview, give a reason, confirm, apply.

    Dismisses with True when decisions were recorded. While applying, Escape does nothing: the
    decisions are recorded one by one and the audit log gets one summary entry at the end.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="bulk.close", tooltip="Close (not while applying)"),
    ]

    def __init__(self, host: ConsoleHost, kind: str | None = None) -> None:
        """``kind``: the kind to start with (the queue's filter), when it can be decided in bulk."""
        super().__init__()
        self.host = host
        self.kind = kind if kind in BULK_ACTIONS else next(iter(BULK_ACTIONS))
        self.preview: BulkPreview | None = None
        self.applying = False
        self.applied = 0
        self._token = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="bulk-dialog", classes="dialog") as box:
            box.border_title = "Bulk decision"
            with Horizontal(id="bulk-choice"):
                yield Select([(k, k) for k in BULK_ACTIONS], value=self.kind, allow_blank=False, id="bulk-kind")
                yield Select([(c, c) for c in CONDITIONS], value="single-candidate", allow_blank=False,
                             id="bulk-condition")
                yield Select(self._action_options(self.kind), value=BULK_ACTIONS[self.kind][0],
                             allow_blank=False, id="bulk-action")
            yield Static("", id="bulk-condition-help")
            # The preview scrolls on its own, so the reason and the buttons stay on a 24-row screen.
            with VerticalScroll(id="bulk-preview-box"):
                yield Static("previewing…", id="bulk-preview")
            yield Label("Shared reason (required: recorded on every decision)")
            yield Input(placeholder="why these decisions", id="bulk-reason")
            yield ProgressPanel("cases", id="bulk-progress")
            yield Static("", id="bulk-outcome")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", id="bulk-apply", variant="error", disabled=True)
                yield Button("Close", id="bulk-close")

    @staticmethod
    def _action_options(kind: str) -> list[tuple[str, str]]:
        return [(a, a) for a in BULK_ACTIONS[kind]]

    def on_mount(self) -> None:
        self.query_one("#bulk-progress").display = False
        self.query_one("#bulk-kind", Select).focus()
        self._preview()

    # -- choosing and previewing ---------------------------------------------------------------
    def choice(self) -> tuple[str, str, str]:
        """(kind, condition, action) as chosen."""
        return (str(self.query_one("#bulk-kind", Select).value),
                str(self.query_one("#bulk-condition", Select).value),
                str(self.query_one("#bulk-action", Select).value))

    @on(Select.Changed, "#bulk-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        action = self.query_one("#bulk-action", Select)
        kind = str(event.value)
        if action.value not in BULK_ACTIONS[kind]:
            with self.prevent(Select.Changed):
                action.set_options(self._action_options(kind))
                action.value = BULK_ACTIONS[kind][0]
        self._preview()

    @on(Select.Changed, "#bulk-condition")
    @on(Select.Changed, "#bulk-action")
    def _choice_changed(self) -> None:
        self._preview()

    def _preview(self) -> None:
        """Preview the current choice in a thread; Apply waits for it."""
        self._token += 1
        token, context = self._token, self.host.context
        kind, condition, action = self.choice()
        self.preview = None
        self.query_one("#bulk-condition-help", Static).update(Text(CONDITIONS[condition][0], style="dim"))
        self.query_one("#bulk-preview", Static).update(Text("previewing…", style="dim"))
        self._validate()

        def load() -> None:
            preview = preview_bulk(context.workspace, kind=kind, condition=condition, action=action)
            self.post_message(BulkPreviewed(token, preview))

        self.host.run_blocking(load, group="bulk-preview", description="preview a bulk decision")

    @on(BulkPreviewed)
    def _previewed(self, message: BulkPreviewed) -> None:
        if message.token != self._token:
            return
        self.preview = message.preview
        self.query_one("#bulk-preview", Static).update(_preview_text(message.preview))
        self._validate()

    @on(Input.Changed, "#bulk-reason")
    def _validate(self) -> None:
        ready = (not self.applying and self.preview is not None and self.preview.count > 0
                 and bool(self.query_one("#bulk-reason", Input).value.strip()))
        apply = self.query_one("#bulk-apply", Button)
        apply.disabled = not ready
        apply.label = f"Apply to {self.preview.count:,}" if self.preview is not None else "Apply"

    # -- applying ------------------------------------------------------------------------------
    @on(Input.Submitted, "#bulk-reason")
    @on(Button.Pressed, "#bulk-apply")
    def _apply(self) -> None:
        preview, reason = self.preview, self.query_one("#bulk-reason", Input).value.strip()
        if self.applying or preview is None or not preview.count or not reason:
            return
        items = sum(m.items for c in preview.cases for m in c.members)
        drops = f" Their {items:,} item(s) are left out of the migration." if preview.action == "drop" else ""
        question = ConfirmScreen(
            f"{ACTION_LABELS.get(preview.action, preview.action)}: {preview.count:,} cases?",
            f"Record {preview.action!r} on {preview.count:,} open {preview.kind} case(s) matching "
            f"{preview.condition!r}, each with the reason {reason!r}.{drops} Each is an ordinary decision: "
            "u in the queue undoes one.",
            confirm_label=f"Apply to {preview.count:,}",
        )
        self.app.push_screen(question, lambda yes: self._run(preview, reason) if yes else None)

    def _run(self, preview: BulkPreview, reason: str) -> None:
        self._set_applying(True)
        panel = self.query_one("#bulk-progress", ProgressPanel)
        panel.display = True
        panel.show(phase="applying", done=0, fraction=0.0, rate=0.0, eta=None)
        context = self.host.context

        def work() -> None:
            context.require_writable("resolve bulk")
            started = time.monotonic()

            def progress(done: int, total: int) -> None:
                rate = done / max(time.monotonic() - started, 1e-6)
                self.post_message(BulkProgressed(done, total, rate))

            try:
                result = apply_bulk(context.workspace, preview, reason=reason, operator=context.operator,
                                    progress=progress)
            except BaseException:
                self.post_message(BulkFinished(None))
                raise  # the App's error modal shows it
            self.post_message(BulkFinished(result))

        self.host.run_blocking(work, group="bulk-apply", description="apply a bulk decision")

    @on(BulkProgressed)
    def _progressed(self, message: BulkProgressed) -> None:
        remaining = message.total - message.done
        self.query_one("#bulk-progress", ProgressPanel).show(
            phase="applying", done=message.done, fraction=message.done / max(message.total, 1),
            rate=message.rate, eta=remaining / message.rate if message.rate else None)

    @on(BulkFinished)
    def _finished(self, message: BulkFinished) -> None:
        self._set_applying(False)
        panel = self.query_one("#bulk-progress", ProgressPanel)
        result = message.result
        if result is None:
            panel.finish("failed")
            self.query_one("#bulk-outcome", Static).update(Text("failed: nothing more was applied", style="red"))
        else:
            panel.finish("complete")
            panel.done = result.applied + len(result.refused)
            self.applied += result.applied
            outcome = Text(f"applied {result.applied:,}, refused {len(result.refused):,}",
                           style="green" if not result.refused else "yellow")
            for case_id, why in result.refused[:5]:
                outcome.append(f"\n  {case_id}: {why}", style="")
            if len(result.refused) > 5:
                outcome.append(f"\n  … and {len(result.refused) - 5:,} more")
            self.query_one("#bulk-outcome", Static).update(outcome)
        self.host.decisions_changed()  # even a failed apply may have recorded some
        self._preview()  # what is still open

    def _set_applying(self, applying: bool) -> None:
        self.applying = applying
        for selector in ("#bulk-kind", "#bulk-condition", "#bulk-action", "#bulk-reason", "#bulk-close"):
            self.query_one(selector).disabled = applying
        self._validate()

    @on(Button.Pressed, "#bulk-close")
    def action_close(self) -> None:
        """Close, unless decisions are being applied."""
        if self.applying:
            self.notify("applying: wait for it to finish", severity="warning", timeout=2)
            return
        if not self.applied:
            say_cancelled(self, "nothing applied")
        self.dismiss(self.applied > 0)


def _preview_text(preview: BulkPreview) -> Text:
    """The count and a sample of the matching cases, invisible characters marked."""
    text = Text(f"{preview.count:,} open {preview.kind} case(s) match", style="bold")
    if not preview.count:
        return text.append("  (nothing to apply)", style="dim")
    sample = preview.sample(_SAMPLE)
    text.append(f"; the first {len(sample)}:" if preview.count > len(sample) else ":", style="bold")
    for case in sample:
        text.append(f"\n  {case.id}  ", style="dim")
        text.append_text(Text(" | ", style="dim").join(visible_text(m.raw) for m in case.members))
        if preview.action == "same" and case.candidates:
            text.append(" → ").append_text(visible_text(case.candidates[0]))
    return text
