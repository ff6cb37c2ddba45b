"""What the console tells its screens about other consoles' work (posted by the App's poll).

The App polls the workspace about every second (``console/watch.py``); when another console or the
CLI started, finished or moved a run, or flipped the flag, or a console came, went or acted, it
posts one of these to every screen of the stack. A screen that shows the matter reloads it.
"""

from __future__ import annotations

from textual.message import Message

__all__ = ["FlagChanged", "PresenceChanged", "RunsChanged"]


class RunsChanged(Message, bubble=False):
    """A run of another process started, ended or progressed: screens showing the ledger reload."""


class FlagChanged(Message, bubble=False):
    """The workspace's audit log has a new flag entry (a flip, an init, an approval): re-read the flag."""


class PresenceChanged(Message, bubble=False):
    """The other consoles attached, or what they did last, changed: re-read ``host.attached_consoles``."""
