"""Two consoles on one workspace: each lists the other, and sees its decisions, runs and flips.

Both apps run in this one test process on one event loop (nested ``run_test``), each with its own
Context and Workspace object, like two terminals on one workspace directory.
"""

from __future__ import annotations

import queue
import time
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from keyshift.core.store import presence, runs
from keyshift.core.store.workspace import Workspace
from keyshift.screens.news import FlagChanged, RunsChanged
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.presence_panel import PresencePanel, ago, presence_table
from keyshift.screens.run_kinds import RUN_KINDS, RunKind
from keyshift.screens.runs import Launch, RunRequest
from ui_support import OPERATOR, SIZE, make, settle, text_of, wait_until

from test_ui_resolve import cases_of, open_dialog, open_queue, shown


class LedgerVerify:
    """A verify of the test's making that writes the run ledger like the real one (no AWS):
    started when the run starts, finished ``equal`` when the test puts None in :attr:`feed`."""

    def __init__(self) -> None:
        self.feed: queue.Queue[Any] = queue.Queue()
        self.run_kind = RunKind("verify", "ledger verify", self.prepare, ())

    def prepare(self, request: RunRequest) -> Launch:
        ws = request.context.workspace
        with ws.transaction() as conn:
            run_id = runs.start(conn, "verify", operator=request.context.operator, keymap="v1", params={})
        return Launch(self._steps(ws, run_id), details={"run_id": run_id})

    def _steps(self, ws: Workspace, run_id: int) -> Any:
        while (item := self.feed.get(timeout=20)) is not None:
            yield item
        with ws.transaction() as conn:
            runs.finish(conn, run_id, "complete", {"equal": True, "missing": 0, "extra": 0, "different": 0})
        ws.close()
        return {"equal": True}


def _panel(app: Any) -> PresencePanel:
    return app.screen.query_one(PresencePanel)


async def test_each_console_lists_the_other_and_its_last_decision(resolvable):
    alice, bob = resolvable.context(), resolvable.context()
    bob.operator = "bob"
    total = len(cases_of(resolvable))
    app_a, app_b = make(alice), make(bob)
    async with app_a.run_test(size=SIZE) as pilot_a, app_b.run_test(size=SIZE) as pilot_b:
        assert not _panel(app_b).display  # alone so far: the panel takes no room
        await wait_until(pilot_b, lambda: [c.operator for c in app_b.attached_consoles] == [OPERATOR], timeout=3)
        await wait_until(pilot_b, lambda: _panel(app_b).display)
        assert OPERATOR in text_of(_panel(app_b).content) and "terminal" in text_of(_panel(app_b).content)
        await wait_until(pilot_b, lambda: "1 other console attached" in (app_b.screen.sub_title or ""))
        await wait_until(pilot_a, lambda: [c.operator for c in app_a.attached_consoles] == ["bob"], timeout=3)

        queue_a = await open_queue(pilot_a)
        await open_dialog(pilot_a, "s")
        await pilot_a.press("enter", *"dup", "enter")
        await settle(pilot_a)
        decided = time.monotonic()
        queue_b = await open_queue(pilot_b)
        await wait_until(pilot_b, lambda: f"1 of {total} decided" in shown(queue_b, "#queue-progress"), timeout=2)
        assert queue_a.current is not None
        await wait_until(pilot_b, lambda: any((c.last_action or "").startswith("decided (same) case") for c in app_b.attached_consoles),
                         timeout=2.5)
        assert time.monotonic() - decided <= 2.5
        await pilot_b.press("escape")  # back to the overview: the panel says what alice did
        await wait_until(pilot_b, lambda: "decided (same) case" in text_of(_panel(app_b).content))

    # Both left: their rows are gone, nobody is listed.
    assert presence.attached(Workspace(resolvable.path / "ws")) == []


async def test_a_run_in_one_console_shows_in_the_others_overview(resolvable):
    verify = LedgerVerify()
    app_a = make(resolvable.context(), run_kinds={**RUN_KINDS, "verify": verify.run_kind})
    bob = resolvable.context()
    bob.operator = "bob"
    app_b = make(bob)
    async with app_a.run_test(size=SIZE) as pilot_a, app_b.run_test(size=SIZE) as pilot_b:
        overview_b = app_b.screen
        assert isinstance(overview_b, OverviewScreen)
        await settle(pilot_b)
        await wait_until(pilot_b, lambda: app_b.attached_consoles != (), timeout=3)
        def verify_step() -> str:  # the overview's Verify line
            return next(line for line in shown(overview_b, "#steps").splitlines() if "Verify" in line)

        assert "not started" in verify_step()

        app_a.start_run("verify")
        started = time.monotonic()
        await wait_until(pilot_b, lambda: "running" in verify_step(), timeout=2.5)
        assert time.monotonic() - started <= 2.5
        await wait_until(pilot_b, lambda: any(c.last_action == "started verify" for c in app_b.attached_consoles),
                         timeout=2.5)

        verify.feed.put(None)
        finished = time.monotonic()
        await wait_until(pilot_b, lambda: "equal" in verify_step(), timeout=2.5)
        assert time.monotonic() - finished <= 2.5
        await wait_until(pilot_b, lambda: any(c.last_action == "verify complete" for c in app_b.attached_consoles),
                         timeout=2.5)
        assert not app_b.slot("verify").running  # B shows A's run; it runs none itself


async def test_the_verify_screen_shows_a_run_another_process_started_and_finished(resolvable):
    """A verify the CLI (here: the test, as another writer of the ledger) runs shows on the verify
    screen within 2 s of starting and of finishing, without a key pressed."""
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        app.action_open_verify()
        await settle(pilot)
        screen = app.screen
        await wait_until(pilot, lambda: app._marks is not None, timeout=3)
        ws = Workspace(resolvable.path / "ws")
        with ws.transaction() as conn:
            run_id = runs.start(conn, "verify", operator="bob", keymap="v1", params={})
        took = await wait_until(pilot, lambda: f"#{run_id} running" in shown(screen, "#verify-report"), timeout=2)
        assert took <= 2.0
        with ws.transaction() as conn:
            runs.set_state(conn, run_id, "cancelled")
        ws.close()
        took = await wait_until(pilot, lambda: f"#{run_id} cancelled" in shown(screen, "#verify-report"), timeout=2)
        assert took <= 2.0


async def test_a_read_only_console_lists_the_others_and_is_not_listed(resolvable):
    """Audit mode opens the database read-only: it cannot register, so it only watches."""
    app_a, reviewer = make(resolvable.context()), make(resolvable.context(read_only=True))
    async with app_a.run_test(size=SIZE) as pilot_a, reviewer.run_test(size=SIZE) as pilot_r:
        await wait_until(pilot_r, lambda: [c.operator for c in reviewer.attached_consoles] == [OPERATOR], timeout=3)
        polled = app_a._marks
        await wait_until(pilot_a, lambda: app_a._marks is not polled and app_a._marks is not None, timeout=3)
        assert app_a.attached_consoles == () and reviewer._console_id is None


class Listener(Screen[None]):
    """A screen that records the news the App's poll posts to every screen."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[tuple[str, float]] = []

    def compose(self) -> ComposeResult:
        yield Static("listening")

    @on(FlagChanged)
    @on(RunsChanged)
    def _heard(self, message: FlagChanged | RunsChanged) -> None:
        self.heard.append((type(message).__name__, time.monotonic()))


async def test_a_flag_entry_in_the_audit_log_is_news_to_every_screen(resolvable):
    """A flip recorded by another console or the CLI (its ``flag.*`` audit entry) reaches the screens
    (the cut-over screen re-reads the flag on it) within 2 s; an unrelated entry is no news."""
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        listener = Listener()
        await app.push_screen(listener)
        await wait_until(pilot, lambda: app._marks is not None, timeout=3)
        ws = Workspace(resolvable.path / "ws")
        ws.audit("bob", "restore.control", {"paused": True})
        ws.audit("bob", "flag.flip", {"flag": "customers", "from": "old", "to": "new"})
        ws.close()
        written = time.monotonic()
        await wait_until(pilot, lambda: bool(listener.heard), timeout=2)
        polled = app._marks
        await wait_until(pilot, lambda: app._marks is not polled, timeout=2)  # one more poll: no more news
        assert [(name, at - written <= 2.0) for name, at in listener.heard] == [("FlagChanged", True)]


def test_the_presence_table_and_ages():
    row = presence.ConsolePresence(1, "bob\u200b", "browser", 1, "h", "2024-05-01T09:00:00+00:00", 100.0,
                                   "flipped to new", 90.0)
    shown_text = text_of(presence_table((row,), now=100.0))
    assert "bob⟨ZWSP⟩" in shown_text and "browser" in shown_text and "flipped to new · 10 s ago" in shown_text
    assert (ago(5), ago(125), ago(7300)) == ("5 s ago", "2 min ago", "2 h ago")
