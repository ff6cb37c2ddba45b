"""Command palette provider: every screen and step of the console, reachable by name (Ctrl+P)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from .app import KeyshiftApp

__all__ = ["KeyshiftCommands"]


class KeyshiftCommands(Provider):
    """The console's own commands; mutating ones are left out in read-only mode."""

    def _commands(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        app = cast("KeyshiftApp", self.app)
        yield "Overview", app.action_overview, "The migration's steps and the plan's counts"
        yield "Dump browser", app.action_open_browser, "Page through planned records, filter, search"
        yield ("Normalization preview", partial(app.action_open_preview, None),
               "See what the rules do to any identifier")
        yield ("Resolution queue", app.action_open_queue,
               "Decide the cases the rules could not: ambiguous, orphaned, invalid, conflicts, suspicious")
        yield ("Restore", app.action_open_restore,
               "Step 3: write transform(dump) into the new table; watch, pause, throttle, resume")
        yield "Verify", app.action_open_verify, "Step 5: diff the new table against transform(old table)"
        if app.check_action("plan", ()):
            yield "Plan a dump", app.action_plan, "Read a dump and classify every record"

    async def discover(self) -> Hits:
        for name, command, help_text in self._commands():
            yield DiscoveryHit(name, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, command, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help_text)
