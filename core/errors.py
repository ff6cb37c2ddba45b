"""Exceptions that carry an operator-readable title and message.

The CLI turns a :class:`KeyshiftError` into ``exit 2`` with its message; the console shows it in
an error modal. Nothing here knows about either. The base class lives in the service-side kernel
(:mod:`keyshift.core.kernel.errors`), which may raise it without importing the rest of keyshift.
"""

from __future__ import annotations

from .kernel.errors import KeyshiftError

__all__ = ["KeyshiftError", "SpecError", "DumpError", "ManifestError", "WorkspaceError", "WorkspaceMissing"]


class SpecError(KeyshiftError):
    """The migration spec is missing, unreadable or invalid; the message names the key."""

    title = "Invalid migration spec"


class DumpError(KeyshiftError):
    """The dump cannot be used at all (no such location, no data files, unknown format)."""

    title = "Unusable dump"


class ManifestError(DumpError):
    """A manifest's item count or checksum disagrees with a data file; names the file."""

    title = "Manifest mismatch"


class WorkspaceError(KeyshiftError):
    """The workspace database is missing, locked, or from a newer keyshift."""

    title = "Workspace error"


class WorkspaceMissing(WorkspaceError):
    """There is no workspace where one is needed; the message names where it was looked for."""

    title = "No workspace"
