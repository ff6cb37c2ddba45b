"""The base of every operator-facing error, defined in the kernel so the kernel can raise it.

:mod:`keyshift.core.errors` re-exports :class:`KeyshiftError` and defines the rest of the family;
the kernel (standard library only) needs just this base and the keymap's own error.
"""

from __future__ import annotations

__all__ = ["KeyshiftError"]


class KeyshiftError(Exception):
    """Base class: an error an operator can act on. ``title`` is a short heading.

    The CLI turns one into ``exit 2`` with its message; the console shows it in an error modal;
    a Lambda handler logs it. Nothing here knows about any of them.
    """

    title = "keyshift error"
    exit_code = 2

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title
