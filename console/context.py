"""Everything one invocation needs, built once from the global options.

The CLI and the console share this: the App takes a :class:`Context` in its constructor, so tests
build one pointing at a temporary workspace and a local moto server.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from keyshift.core.aws import AwsContext
from keyshift.core.errors import WorkspaceError, WorkspaceMissing
from keyshift.core.spec import Spec, load_spec
from keyshift.core.store.workspace import DB_NAME, Workspace

__all__ = ["Context", "default_operator"]


def default_operator() -> str:
    """The login name, or ``unknown`` where there is none (containers without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"


@dataclass
class Context:
    """Global options, resolved lazily: a command that needs no spec never reads one."""

    spec_path: Path = Path("keyshift.toml")
    workspace_path: Path = Path(".keyshift")
    read_only: bool = False
    operator: str = field(default_factory=default_operator)
    aws: AwsContext = field(default_factory=AwsContext)

    @cached_property
    def spec(self) -> Spec:
        """The migration spec (raises SpecError naming the bad key)."""
        return load_spec(self.spec_path)

    _workspace: Workspace | None = field(default=None, init=False, repr=False)

    @property
    def workspace(self) -> Workspace:
        """The existing workspace; :class:`WorkspaceMissing` naming it (and the spec, when that is
        missing too) when there is none. Only planning creates one (:meth:`create_workspace`)."""
        if self._workspace is None:
            if not (self.workspace_path / DB_NAME).exists():
                raise WorkspaceMissing(self._missing_message())
            self._workspace = Workspace(self.workspace_path, read_only=self.read_only, create=False)
        return self._workspace

    @property
    def opened_workspace(self) -> Workspace | None:
        """The workspace if this invocation has opened it already (never opens or creates one)."""
        return self._workspace

    def create_workspace(self) -> Workspace:
        """The workspace, created when missing: what ``plan`` (and the demo) do, and nothing else."""
        if self._workspace is None:
            if self.read_only:
                return self.workspace  # audit mode creates nothing
            self._workspace = Workspace(self.workspace_path, create=True)
        return self._workspace

    def _missing_message(self) -> str:
        where = f"no workspace at {self.workspace_path.absolute()}"
        if not self.spec_path.exists():
            return (f"not a migration directory: {where} and no spec at {self.spec_path.absolute()}; write a spec and run"
                    " `keyshift plan --dump …` here, or pass --spec and --workspace")
        return f"{where}: plan a dump first (`keyshift plan --dump …`, or p in the console), or pass --workspace"

    def require_writable(self, action: str) -> None:
        """Refuse ``action`` in read-only (audit) mode with a clear message."""
        if self.read_only:
            raise WorkspaceError(f"{action} changes the workspace; refused in read-only (audit) mode")

    def s3(self) -> Any:
        """The S3 client (built on first use)."""
        return self.aws.client("s3")
