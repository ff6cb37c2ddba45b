"""Command palette provider: every screen and step of the console, reachable by name (Ctrl+P).

Its commands are the action table's (:mod:`keyshift.screens.actions`), the same entries the
overview's keys and the help screen show, so the three cannot drift apart. In read-only mode a
mutating command stays listed, marked disabled, and choosing it says why (as its key does): a
reviewer sees what exists without being able to run it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from keyshift.screens.actions import palette_actions, read_only_refusal

__all__ = ["KeyshiftCommands", "DISABLED_SUFFIX"]

#: What a disabled command's name ends with in the palette.
DISABLED_SUFFIX = " (disabled: read-only)"


class KeyshiftCommands(Provider):
    """The console's own commands; mutating ones are shown disabled in read-only mode."""

    def _commands(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        app = self.app
        for entry in palette_actions():
            if app.check_action(entry.action, ()):
                yield entry.title, partial(app.run_action, entry.action), entry.description
            else:  # None in read-only mode for a mutating action: run_action refuses it aloud
                yield (entry.title + DISABLED_SUFFIX, partial(app.run_action, entry.action),
                       read_only_refusal(entry.action))

    async def discover(self) -> Hits:
        for name, command, help_text in self._commands():
            yield DiscoveryHit(name, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, command, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help_text)
