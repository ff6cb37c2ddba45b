"""Pilot tests of the run slots: start, progress, finish, refusal and cancel, with scripted runs.

A :class:`Scripted` run replaces a kind's prepare function (the App takes its run kinds in its
constructor): it yields one progress item per item the test puts in its feed, ends on None, and
stops (like a restore at its next batch) when its cancel event is set. No AWS is needed.
"""

from __future__ import annotations

import queue
import re
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from keyshift.core.errors import KeyshiftError
from keyshift.core.migrate.restore import RestoreProgress
from keyshift.screens.error_modal import ErrorModal
from keyshift.screens.restore_screen import RestoreScreen
from keyshift.screens.run_kinds import RUN_KINDS, RunKind
from keyshift.screens.runs import Launch, RunFinished, RunProgressed, RunRequest, RunStarted
from ui_support import SIZE, make, settle, text_of, wait_until


class Stopped(Exception):
    """A scripted run saw its cancel event (what RestoreCancelled is to a restore)."""


class Scripted:
    """A run of the test's making for ``kind``: each item put in :attr:`feed` is one progress step."""

    def __init__(self, kind: str, *, long: bool = True) -> None:
        self.kind = kind
        self.feed: queue.Queue[Any] = queue.Queue()
        self.requests: list[RunRequest] = []
        self.run_kind = RunKind(kind, f"scripted {kind}", self.prepare, (Stopped,), long=long)

    def prepare(self, request: RunRequest) -> Launch | None:
        self.requests.append(request)
        if request.options.get("decline"):
            return None
        if request.options.get("refuse"):
            raise KeyshiftError("the target table is missing", title="Scripted run not started")
        return Launch(self._steps(request), details={"scripted": self.kind},
                      result=lambda steps: ("complete", {"steps": steps}))

    def _steps(self, request: RunRequest) -> Any:
        steps = 0
        while True:
            item = self.feed.get(timeout=20)
            if request.cancel.is_set():
                raise Stopped(self.kind)
            if item is None:
                return steps
            steps += 1
            yield item


class Listener(Screen[None]):
    """A screen that records every run message the App forwards to it."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[RunStarted | RunProgressed | RunFinished] = []

    def compose(self) -> ComposeResult:
        yield Static("listening")

    @on(RunStarted)
    @on(RunProgressed)
    @on(RunFinished)
    def _heard(self, message: RunStarted | RunProgressed | RunFinished) -> None:
        self.heard.append(message)


def _app(planned, *scripted: Scripted):
    return make(planned.context(), run_kinds={**RUN_KINDS, **{s.kind: s.run_kind for s in scripted}})


async def test_a_run_fills_its_slot_and_each_screen_hears_it_once(planned):
    restore = Scripted("restore")
    app = _app(planned, restore)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        overview = app.screen
        listener = Listener()
        await app.push_screen(listener)
        slot = app.slot("restore")
        assert app.start_run("restore", resume=False) is not None
        assert slot.running and slot.options == {"resume": False} and slot.progress is None
        assert app.start_run("restore", resume=True) is None  # one at a time: a second start is refused
        restore.feed.put(RestoreProgress(lines=10, written=10))
        await wait_until(pilot, lambda: slot.progress is not None)
        assert slot.started and slot.details == {"scripted": "restore"} and slot.progress.written == 10
        restore.feed.put(RestoreProgress(lines=20, written=20))
        await wait_until(pilot, lambda: slot.progress.written == 20)
        assert "20 / 350 written" in text_of(overview.query_one("#steps", Static).content)  # the overview heard
        restore.feed.put(None)
        await wait_until(pilot, lambda: not slot.running)
        assert (slot.outcome, slot.summary, slot.error) == ("complete", {"steps": 2}, "")
        assert len(restore.requests) == 1 and restore.requests[0].options == {"resume": False}
        kinds = [type(m).__name__ for m in listener.heard]
        assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
        assert kinds.count("RunStarted") == kinds.count("RunFinished") == 1
        assert {m.kind for m in listener.heard} == {"restore"}
        # A new run starts from a clean slot.
        app.start_run("restore", resume=True)
        assert slot.running and slot.outcome is None and slot.progress is None and slot.details is None
        restore.feed.put(None)
        await wait_until(pilot, lambda: not slot.running)
        assert slot.outcome == "complete" and slot.options == {"resume": True}


async def test_progress_is_replaced_only_by_newer_progress_of_the_same_kind(planned):
    first, second = RunProgressed("restore", 1), RunProgressed("restore", 2)
    assert first.can_replace(second)
    assert not first.can_replace(RunProgressed("verify", 2))
    assert not first.can_replace(RunFinished("restore", "complete"))
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        listener = Listener()
        await app.push_screen(listener)
        await pilot.pause()
        # Posted in one go (nothing runs in between): the App's queue holds them side by side.
        for kind, progress in (("restore", 1), ("restore", 2), ("verify", 1), ("restore", 3)):
            app.post_message(RunProgressed(kind, progress))
        await wait_until(pilot, lambda: len(listener.heard) >= 3)
        await pilot.pause()
        assert [(m.kind, m.progress) for m in listener.heard] == [("restore", 2), ("verify", 1), ("restore", 3)]
        assert app.slot("restore").progress == 3 and app.slot("verify").progress == 1


async def test_cancel_reaches_only_its_own_kind(planned):
    restore, verify, plan = Scripted("restore"), Scripted("verify"), Scripted("plan", long=False)
    app = _app(planned, restore, verify, plan)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        slots = {s.kind: app.slot(s.kind) for s in (restore, verify, plan)}
        for scripted in (restore, verify, plan):
            app.start_run(scripted.kind)
            scripted.feed.put(RestoreProgress(lines=1, written=1))
        await wait_until(pilot, lambda: all(s.progress is not None for s in slots.values()))

        # The console-wide Escape (the overview has none of its own) stops the plan, no long run.
        await pilot.press("escape")
        assert slots["plan"].cancel.is_set()
        assert not slots["restore"].cancel.is_set() and not slots["verify"].cancel.is_set()
        plan.feed.put(RestoreProgress())
        await wait_until(pilot, lambda: not slots["plan"].running)
        assert slots["plan"].outcome == "cancelled"

        # Cancelling the verify by name stops it alone.
        assert app.cancel_run("verify") is True
        assert not slots["restore"].cancel.is_set()
        verify.feed.put(RestoreProgress())
        await wait_until(pilot, lambda: not slots["verify"].running)
        assert slots["verify"].outcome == "cancelled"

        restore.feed.put(RestoreProgress(lines=2, written=2))
        await wait_until(pilot, lambda: slots["restore"].progress.written == 2)
        assert slots["restore"].running
        restore.feed.put(None)
        await wait_until(pilot, lambda: not slots["restore"].running)
        assert slots["restore"].outcome == "complete"
        assert app.cancel_run("restore") is False  # nothing runs any more


async def test_escape_on_the_restore_screen_cancels_only_the_restore(planned):
    restore, verify = Scripted("restore"), Scripted("verify")
    app = _app(planned, restore, verify)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RestoreScreen)
        app.start_run("verify")
        await pilot.press("s")  # the screen starts its restore through the host
        assert app.slot("restore").running
        assert screen.check_action("restore_start", ()) is None  # greyed out while it runs
        restore.feed.put(RestoreProgress(lines=5, written=5, total_lines=350))
        await wait_until(pilot, lambda: app.slot("restore").progress is not None)
        await wait_until(pilot, lambda: "running" in text_of(screen.query_one("#restore-state", Static).content))
        await pilot.press("escape")
        assert app.slot("restore").cancel.is_set() and not app.slot("verify").cancel.is_set()
        assert isinstance(app.screen, RestoreScreen)  # a running restore: Escape cancels, it does not leave
        restore.feed.put(RestoreProgress())
        await wait_until(pilot, lambda: app.slot("restore").outcome == "cancelled")
        await wait_until(pilot, lambda: "cancelled — resumable" in text_of(
            screen.query_one("#restore-state", Static).content))
        assert app.slot("verify").running
        verify.feed.put(None)
        await wait_until(pilot, lambda: app.slot("verify").outcome == "complete")
        await pilot.press("escape")  # nothing runs: back to the overview
        await pilot.pause()
        assert not isinstance(app.screen, RestoreScreen)


async def test_declined_and_refused_runs_say_so(planned):
    restore = Scripted("restore")
    app = _app(planned, restore)
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        notify = app.notify

        def noted(message: str, **options: Any) -> None:
            notes.append(message)
            notify(message, **options)

        app.notify = noted  # type: ignore[method-assign]
        slot = app.slot("restore")
        app.start_run("restore", decline=True)
        await wait_until(pilot, lambda: not slot.running)
        assert slot.outcome == "declined" and slot.details is None
        assert "nothing started" in notes
        app.start_run("restore", refuse=True)
        await wait_until(pilot, lambda: not slot.running)
        assert (slot.outcome, slot.error) == ("refused", "the target table is missing")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert app.screen.error_title == "Scripted run not started"
        assert notes.count("nothing started") == 1
        assert re.search(r"3 Restore\s+not started", text_of(app.screen_stack[0].query_one("#steps").content))
