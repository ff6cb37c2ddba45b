"""The one table of the console's actions and the migration's steps.

The overview's key bindings and its step links, the command palette and the help screen are all
generated from :data:`ACTIONS` and :data:`STEPS`, so none of them can name a screen or a key the
others do not. Screen-local keys (a restore's ``p``) stay in their screen's ``BINDINGS``; the
help screen lists those from the screen itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding, BindingType

__all__ = [
    "ACTIONS",
    "ConsoleAction",
    "action_named",
    "MUTATING_ACTIONS",
    "MUTATING_TITLES",
    "STEPS",
    "Step",
    "app_bindings",
    "overview_bindings",
    "palette_actions",
    "read_only_refusal",
]


@dataclass(frozen=True)
class ConsoleAction:
    """One thing the operator can do from anywhere in the console (an action of the App)."""

    #: The App's action, without its namespace (``open_restore`` runs ``action_open_restore``).
    action: str
    #: Its name in the command palette and the help screen.
    title: str
    #: One sentence: the binding's tooltip, the palette's help line, the help screen's text.
    description: str
    #: Its key (comma-separated for several; None: palette only) and where the key is bound:
    #: ``overview`` (the overview's keys, shown in its footer) or ``app`` (every screen).
    key: str | None = None
    scope: Literal["overview", "app"] = "overview"
    #: The short label in the footer (default: the title).
    footer: str | None = None
    key_display: str | None = None
    #: The binding's id after its scope (``restore`` → ``overview.restore``), for user keymaps.
    binding_id: str = ""
    show: bool = True
    #: It changes the workspace or AWS: greyed out, and left out of the palette, in read-only mode.
    mutates: bool = False
    #: The screen it opens (for the help screen), if any.
    opens: str | None = None
    #: Offered by the command palette (Quit is Textual's own palette command already).
    in_palette: bool = True

    @property
    def footer_label(self) -> str:
        """What the footer shows next to the key."""
        return self.footer or self.title

    def binding(self) -> Binding:
        """The key binding of this action (it must have a key)."""
        assert self.key is not None, self.action
        namespace = "" if self.scope == "app" else "app."
        return Binding(self.key, f"{namespace}{self.action}", self.footer_label, key_display=self.key_display,
                       show=self.show, id=f"{self.scope}.{self.binding_id or self.action}",
                       tooltip=self.description)


GO_OVERVIEW = ConsoleAction("overview", "Overview", "The migration's steps and the plan's counts",
                         opens="OverviewScreen")
OPEN_BROWSER = ConsoleAction("open_browser", "Dump browser",
                       "Page through every planned record, filter by status, search identifiers",
                       key="b", footer="Browse", binding_id="browse", opens="DumpBrowserScreen")
OPEN_PREVIEW = ConsoleAction("open_preview", "Normalization preview",
                        "Type or paste any identifier and see what the rules do to it",
                        key="n", footer="Normalize", binding_id="preview", opens="NormalizePreviewScreen")
OPEN_QUEUE = ConsoleAction("open_queue", "Resolution queue",
                      "Decide what the rules could not: ambiguous, orphaned, invalid, conflicts, suspicious",
                      key="c", footer="Resolve", binding_id="resolve", opens="ResolveQueueScreen")
PLAN_DUMP = ConsoleAction("plan", "Plan a dump", "Read a dump and classify every record (changes the workspace)",
                     key="p", footer="Plan", binding_id="plan", mutates=True, opens="PlanDialog")
OPEN_KEYMAP = ConsoleAction("open_keymap", "Keymap",
                        "Build the keymap from the rules and decisions: its version, counts and what changed",
                        key="k", binding_id="keymap", opens="KeymapScreen")
OPEN_RESTORE = ConsoleAction("open_restore", "Restore",
                        "Step 3: write transform(dump) into the new table, watch and steer it",
                        key="3", binding_id="restore", opens="RestoreScreen",
                        show=False)  # the step list draws "3 Restore": its number is the key (80 columns)
OPEN_STREAM_SYNC = ConsoleAction("open_stream_sync", "Stream sync",
                            "Step 4: replay the old table's stream into the new table, watch its lag",
                            key="4", footer="Sync", binding_id="stream_sync", opens="StreamSyncScreen",
                            show=False)  # like every step's key: the step list shows it
OPEN_VERIFY = ConsoleAction("open_verify", "Verify",
                       "Step 5: diff the new table against transform(old table), item by item",
                       key="5", binding_id="verify", opens="VerifyScreen",
                       show=False)  # like every step's key: the step list shows it
OPEN_CUTOVER = ConsoleAction("open_cutover", "Cut over",
                         "Step 6: the flag every service reads: gates, routers, shadow reads, flip and flip back",
                         key="6", footer="Cut over", binding_id="cutover", opens="CutoverScreen",
                         show=False)  # like every step's key: the step list shows it
OPEN_AUDIT = ConsoleAction("open_audit", "Audit log",
                           "Every recorded action (who, when, details), filtered; the hash chain verified",
                           key="a", footer="Audit", binding_id="audit", opens="AuditScreen",
                           show=False)  # the footer is full (Quit would drop out); F1 and the palette list it
SHOW_HELP = ConsoleAction("help", "Help", "Every key of the screen you are on, and of the whole console",
                     key="f1,question_mark", scope="app", binding_id="help",
                     opens="HelpScreen")
QUIT = ConsoleAction("quit", "Quit", "Leave the console", key="q", scope="app", binding_id="quit",
                     in_palette=False)
CANCEL = ConsoleAction("cancel_work", "Cancel", "Cancel running work (a plan, a query); never a restore, "
                       "a verify or a stream sync: their own screen's Escape stops them",
                       key="escape", scope="app", show=False, binding_id="cancel", in_palette=False)

#: Every console-level action, in footer order (the overview's footer shows them in this order).
ACTIONS: tuple[ConsoleAction, ...] = (
    GO_OVERVIEW, OPEN_BROWSER, OPEN_PREVIEW, OPEN_QUEUE, PLAN_DUMP, OPEN_KEYMAP, OPEN_RESTORE, OPEN_STREAM_SYNC, OPEN_VERIFY,
    OPEN_CUTOVER, OPEN_AUDIT, SHOW_HELP, QUIT, CANCEL,
)


@dataclass(frozen=True)
class Step:
    """One step of the migration, and the action that opens it (None: nothing to open yet)."""

    number: int
    name: str
    action: ConsoleAction | None = None

    @property
    def link(self) -> str | None:
        """The action a click on the step's name runs (never one that changes anything)."""
        if self.action is None or self.action.mutates:
            return None
        return f"app.{self.action.action}"


#: The migration's steps, in order.
STEPS: tuple[Step, ...] = (
    Step(1, "Plan", PLAN_DUMP),
    Step(2, "Resolve", OPEN_QUEUE),
    Step(3, "Restore", OPEN_RESTORE),
    Step(4, "Stream-sync", OPEN_STREAM_SYNC),
    Step(5, "Verify", OPEN_VERIFY),
    Step(6, "Cut over", OPEN_CUTOVER),
)

#: Actions that change the workspace or AWS, greyed out in read-only (audit) mode: the console-level
#: ones from the table and every screen's own. Starting a verify is not one: a read-only console
#: verifies without recording (resuming a recorded run is).
MUTATING_ACTIONS: frozenset[str] = frozenset({a.action for a in ACTIONS if a.mutates} | {
    "decide", "undo_decision", "bulk_resolve", "keymap_build",
    "restore_start", "restore_resume", "restore_pause", "restore_rate_up", "restore_rate_down",
    "restore_set_rate", "restore_set_workers", "verify_resume", "sync_once", "sync_follow",
    "flag_flip", "flag_approve", "flag_init",
})


def action_named(action: str) -> ConsoleAction | None:
    """The table's action ``action`` (e.g. a status's ``next``), None when there is none."""
    return next((a for a in ACTIONS if a.action == action), None)


#: What each mutating action does, for the read-only refusal ("read-only: deciding a case is
#: disabled"): the table's own titles, and a phrase for each screen's action.
MUTATING_TITLES: dict[str, str] = {
    **{a.action: a.title.lower() for a in ACTIONS if a.mutates},
    "decide": "deciding a case", "undo_decision": "undoing a decision", "bulk_resolve": "bulk resolve",
    "restore_start": "starting a restore", "restore_resume": "resuming a restore",
    "restore_pause": "pausing a restore", "restore_rate_up": "raising the restore rate",
    "restore_rate_down": "lowering the restore rate", "restore_set_rate": "setting the restore rate",
    "restore_set_workers": "setting the restore workers", "verify_resume": "resuming a recorded verify", "sync_once": "a stream-sync pass", "sync_follow": "following the stream",
    "flag_flip": "flipping the flag", "flag_approve": "approving a flip", "flag_init": "creating the flag",
}


def read_only_refusal(action: str) -> str:
    """The one line an operator reads when a mutating key is pressed in read-only mode."""
    what = MUTATING_TITLES.get(action, action.replace("_", " "))
    return f"read-only: {what} is disabled (this console only reads; reopen it without --read-only)"


def overview_bindings() -> list[BindingType]:
    """The overview's keys: every table action bound there, in table order."""
    return [a.binding() for a in ACTIONS if a.scope == "overview" and a.key is not None]


def app_bindings() -> list[BindingType]:
    """The App's keys, active on every screen."""
    return [a.binding() for a in ACTIONS if a.scope == "app" and a.key is not None]


def palette_actions() -> list[ConsoleAction]:
    """What the command palette offers (before read-only mode leaves out the mutating ones)."""
    return [a for a in ACTIONS if a.in_palette]
