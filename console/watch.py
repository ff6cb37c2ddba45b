"""The console's one background poll: presence and what other consoles changed.

Every :data:`POLL_SECONDS` one thread worker (never two at once) beats this console's presence row
and reads four cheap marks of the workspace: the newest decision id, the run ledger's mark, the
newest flag audit entry and the consoles attached. On the UI thread each changed mark becomes a
message to every screen (``DecisionsChanged``, :class:`~keyshift.screens.news.RunsChanged`,
:class:`~keyshift.screens.news.FlagChanged`, :class:`~keyshift.screens.news.PresenceChanged`), so
two consoles on one workspace see each other's work within about a second and a half.

The flag is watched through the workspace's audit log, not DynamoDB: every flip, init and approval
made through keyshift (console or CLI) appends a ``flag.*`` entry, and one indexed SQLite read a
second per console costs nothing, where a ``GetItem`` a second per console costs read capacity and
a round trip. A flip made around keyshift is still seen by the cut-over screen's own re-read of the
control table every few seconds.

A read-only console (audit mode) opens the database read-only, so it cannot register itself: it
shows the others and is not shown.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import App
from textual.message import Message
from textual.timer import Timer
from textual.worker import Worker

from keyshift.core.errors import KeyshiftError
from keyshift.core.resolve.decisions import latest_decision_id
from keyshift.core.store import presence
from keyshift.core.store.marks import flag_mark, runs_mark
from keyshift.core.store.presence import ConsolePresence
from keyshift.screens.news import FlagChanged, PresenceChanged, RunsChanged
from keyshift.screens.resolve_queue import DecisionsChanged
from keyshift.screens.runs import RunFinished, RunStarted

__all__ = ["POLL_GROUP", "POLL_SECONDS", "ConsoleWatch", "WatchPolled"]

log = logging.getLogger(__name__)

#: How often the console beats and looks for other consoles' work.
POLL_SECONDS = 1.0
#: The poll's worker group: never the operator's work, so Escape leaves it alone.
POLL_GROUP = "decisions-poll"


@dataclass
class WatchPolled(Message, bubble=False):
    """One poll's marks (``error``: the poll failed and says why; the marks are then None)."""

    decisions: int | None
    runs: tuple[Any, ...] | None = None
    flag: int | None = None
    others: tuple[ConsolePresence, ...] = ()
    error: str = ""


def _presence_key(consoles: tuple[ConsolePresence, ...]) -> tuple[Any, ...]:
    """What a presence panel shows, less the beats (they move every second and show nothing)."""
    return tuple((c.id, c.operator, c.kind, c.last_action, c.last_action_at) for c in consoles)


class ConsoleWatch(App[None]):
    """Mixed into the console's App: presence and the poll. Needs ``context``, ``run_blocking``,
    ``_announce_decisions`` and ``saw_decisions`` of the App (``console/app.py``)."""

    _watch_timer: Timer | None = None
    _watch_worker: Worker | None = None
    _console_id: int | None = None  # this console's presence row (set by the poll's thread)
    _last_action: tuple[str, float] | None = None
    _decisions_seen: int | None = None  # the newest decision id the screens reflect
    _marks: tuple[Any, Any] | None = None  # (runs, flag) as last polled
    _others: tuple[ConsolePresence, ...] = ()

    @property
    def console_kind(self) -> str:
        """``browser`` for a session of ``console --serve`` (it asks for its operator), else ``terminal``."""
        return "browser" if getattr(self, "_ask_operator", False) else "terminal"

    @property
    def attached_consoles(self) -> tuple[ConsolePresence, ...]:
        """The other consoles attached to the workspace now, as last polled (oldest first)."""
        return self._others

    def note_action(self, text: str) -> None:
        """Record what this console just did, and beat now: the others see it at their next poll."""
        self._last_action = (text, time.time())
        self._poll()

    def start_watching(self) -> None:
        """Begin polling (from ``on_mount``)."""
        self._watch_timer = self.set_interval(POLL_SECONDS, self._poll)

    def _poll(self) -> None:
        """Beat and read the marks in a thread; only once a screen has opened the workspace (the
        poll never creates one), and never two polls at once."""
        context = self.context  # type: ignore[attr-defined]
        workspace = context.opened_workspace
        if workspace is None or (self._watch_worker is not None and not self._watch_worker.is_finished):
            return
        writable = not context.read_only

        def poll() -> None:
            try:
                if writable:
                    self._beat(workspace, context.operator)
                polled = WatchPolled(latest_decision_id(workspace), runs_mark(workspace), flag_mark(workspace),
                                     tuple(presence.attached(workspace, exclude=self._console_id)))
            except (KeyshiftError, sqlite3.Error) as exc:
                polled = WatchPolled(None, error=getattr(exc, "message", str(exc)))
            self.post_message(polled)

        self._watch_worker = self.run_blocking(poll, group=POLL_GROUP,  # type: ignore[attr-defined]
                                               description="watch the workspace")

    def _beat(self, workspace: Any, operator: str) -> None:
        """From the poll's thread: register on the first poll, beat (with the last action) after."""
        action, at = self._last_action or (None, None)
        if self._console_id is None or not presence.beat(workspace, self._console_id, operator,
                                                         action=action, action_at=at):
            self._console_id = presence.register(workspace, operator, self.console_kind)
            if action is not None:
                presence.beat(workspace, self._console_id, operator, action=action, action_at=at)

    @on(WatchPolled)
    def _watch_polled(self, message: WatchPolled) -> None:
        if message.decisions is None:
            if self._watch_timer is not None:
                self._watch_timer.stop()
            log.warning("watching the workspace stopped: %s", message.error)
            self.notify(f"stopped watching for other consoles' work: {message.error}",
                        severity="warning", timeout=8)
            return
        previous, self._decisions_seen = self._decisions_seen, message.decisions
        if previous is not None and previous != message.decisions:
            self._announce_decisions()  # type: ignore[attr-defined]
        marks, self._marks = self._marks, (message.runs, message.flag)
        if marks is not None and marks[0] != message.runs:
            self._tell_screens(RunsChanged)
        if marks is not None and marks[1] != message.flag:
            self._tell_screens(FlagChanged)
        others, self._others = self._others, message.others
        if _presence_key(others) != _presence_key(message.others):
            self._tell_screens(PresenceChanged)

    def _tell_screens(self, news: type[Message]) -> None:
        for screen in self.screen_stack:
            screen.post_message(news())

    # -- this console's last action: its runs (decisions and flips call note_action) -------------
    @on(RunStarted)
    def _note_run_started(self, message: RunStarted) -> None:
        self.note_action(f"started {message.kind}")

    @on(RunFinished)
    def _note_run_finished(self, message: RunFinished) -> None:
        if message.outcome != "declined":  # nothing happened
            self.note_action(f"{message.kind} {message.outcome}")

    def _on_unmount(self) -> None:
        self.stop_watching()

    def stop_watching(self) -> None:
        """Leave the workspace's presence (on exit; a console killed instead goes stale)."""
        if self._watch_timer is not None:
            self._watch_timer.stop()
        workspace = self.context.opened_workspace  # type: ignore[attr-defined]
        if self._console_id is None or workspace is None:
            return
        try:
            presence.unregister(workspace, self._console_id)
        except sqlite3.Error as exc:  # it goes stale in a few seconds anyway
            log.warning("could not leave the workspace's presence: %s", exc)
        self._console_id = None
