"""What the screens need from the console that hosts them, as protocols (the App implements them).

Screens get their host in their constructor and use only these members, so ``keyshift.screens``
never imports ``keyshift.console`` (an import-linter contract in ``pyproject.toml``), and a test
can host a screen with anything that has them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

from textual.worker import Worker

from keyshift.core.aws import AwsContext
from keyshift.core.spec import Spec
from keyshift.core.store.presence import ConsolePresence
from keyshift.core.store.workspace import Workspace

from .runs import RunSlot

__all__ = ["ConsoleHost", "HostContext"]


class HostContext(Protocol):
    """One invocation's options and resources (the console's ``Context``), resolved lazily."""

    #: Audit mode: everything visible, nothing changeable.
    read_only: bool
    #: Who is recorded on runs, decisions and the audit log.
    operator: str
    #: The AWS session and clients.
    aws: AwsContext

    @property
    def spec(self) -> Spec:
        """The migration spec (SpecError naming the bad key)."""
        ...

    @property
    def workspace(self) -> Workspace:
        """The existing workspace (WorkspaceMissing when there is none)."""
        ...

    @property
    def opened_workspace(self) -> Workspace | None:
        """The workspace if it is open already (never opens or creates one)."""
        ...

    def create_workspace(self) -> Workspace:
        """The workspace, created when missing (planning only)."""
        ...

    def require_writable(self, action: str) -> None:
        """Refuse ``action`` in read-only mode (WorkspaceError)."""
        ...

    def s3(self) -> Any:
        """The S3 client."""
        ...


@runtime_checkable
class ConsoleHost(Protocol):
    """What a screen may ask of the console: its context, workers, run slots and notifications."""

    #: Actions that change the workspace or AWS: greyed out in read-only mode.
    MUTATING_ACTIONS: ClassVar[frozenset[str]]

    @property
    def context(self) -> HostContext:
        """The invocation's options and resources."""
        ...

    @property
    def read_only(self) -> bool:
        """Audit mode: everything visible, nothing changeable."""
        ...

    @property
    def page_size(self) -> int:
        """How many records the dump browser holds at once."""
        ...

    def run_blocking(self, work: Callable[[], Any], *, group: str, description: str = "") -> Worker[Any]:
        """Run blocking ``work`` in a thread worker (a newer one in ``group`` supersedes it); ``work``
        posts its results as messages and never touches widgets."""
        ...

    def cancel_work(self, group: str) -> bool:
        """Cancel the running workers of ``group`` (True: one ran)."""
        ...

    def start_run(self, kind: str, **options: Any) -> Worker[Any] | None:
        """Start a run of ``kind`` with ``options`` (None: one runs already)."""
        ...

    def slot(self, kind: str) -> RunSlot:
        """This console's run of ``kind``: running, progress, outcome."""
        ...

    def cancel_run(self, kind: str) -> bool:
        """Stop the running run of ``kind`` at its next step (False: none runs)."""
        ...

    def saw_decisions(self, mark: int) -> None:
        """A screen now shows the decisions up to ``mark``."""
        ...

    def decisions_changed(self) -> None:
        """Tell every screen that decisions changed."""
        ...

    def workspace_changed(self) -> None:
        """Tell every screen that the plan changed."""
        ...

    @property
    def attached_consoles(self) -> tuple[ConsolePresence, ...]:
        """The other consoles attached to the workspace now (``PresenceChanged`` says when it moves)."""
        ...

    def note_action(self, text: str) -> None:
        """Record what this console just did, for the other consoles' presence panels."""
        ...

