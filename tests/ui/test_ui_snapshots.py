"""Snapshot tests: every screen at 80×24 (the smallest terminal an operator has) and at 160×48.

Pinned data (``ui_support``'s fixture, timestamps pinned), no cursor blink, and nothing that
shows a clock or a temporary path. Update the baselines with
``pytest tests/ui/test_ui_snapshots.py --snapshot-update`` after an intended UI change, and look
at the report before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.widgets import Input

from ui_support import make, settle, wait_until

#: The two terminal sizes every screen must work at.
SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


def _no_blink(pilot: Any) -> None:
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


def _keys(*keys: str) -> Callable[[Any], Awaitable[None]]:
    async def steps(pilot: Any) -> None:
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
    return steps


async def _preview(pilot: Any) -> None:
    pilot.app.action_open_preview("Acme\u200b")


def _pushing(factory: Callable[[Any], Any]) -> Callable[[Any], Awaitable[None]]:
    """Steps that push the screen ``factory(app)`` returns (screens with no key of their own)."""
    async def steps(pilot: Any) -> None:
        pilot.app.push_screen(factory(pilot.app))
    return steps


def _plan_dialog(app: Any) -> Any:
    from keyshift.screens.plan_dialog import PlanDialog

    return PlanDialog(app, "s3://acme-exports/customers/2024-05-01/")


def _error(app: Any) -> Any:
    from keyshift.screens.error_modal import ErrorModal

    return ErrorModal("Restore failed", "Customers-v2 does not exist: press 3, then s to create it.")


def _confirm(app: Any) -> Any:
    from keyshift.screens.confirm import ConfirmScreen

    return ConfirmScreen("Drop 3 items?", "Dropping Acme\u200b removes 3 items from the new table.",
                         confirm_label="Drop")


def _operator(app: Any) -> Any:
    from keyshift.screens.operator_prompt import OperatorPrompt

    return OperatorPrompt("alice")


#: name → the steps from the overview to the screen (on the shared planned workspace: read only).
SCREENS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "overview": _keys(),
    "browser": _keys("b"),
    "preview": _preview,
    "queue": _keys("c"),
    "same_dialog": _keys("c", "s"),
    "split_dialog": _keys("c", "x"),
    "bulk_dialog": _keys("c", "b"),
    "keymap": _keys("k"),
    "restore": _keys("3"),
    "stream_sync": _keys("4"),
    "verify": _keys("5"),
    "help": _keys("f1"),
    "plan_dialog": _pushing(_plan_dialog),
    "error_modal": _pushing(_error),
    "confirm": _pushing(_confirm),
    "operator_prompt": _pushing(_operator),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen_snapshot(planned, snap_compare, screen: str, size: str):
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await SCREENS[screen](pilot)
        await settle(pilot)
        _no_blink(pilot)

    assert snap_compare(make(planned.context()), terminal_size=SIZES[size], run_before=run_before)


async def _cutover(pilot: Any) -> None:
    await _keys("6")(pilot)
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "info", None) is not None, timeout=15)


async def _audit(pilot: Any) -> None:
    await _keys("a")(pilot)
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "report", None) is not None, timeout=15)


#: Screens that show recorded times and the flag, on ``flagged``: the fixture planned, its flag
#: made and flipped once, every clock pinned while it was written (nothing is masked).
FLAGGED_SCREENS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "cutover": _cutover,
    "audit": _audit,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", FLAGGED_SCREENS)
def test_flagged_screen_snapshot(flagged, snap_compare, screen: str, size: str):
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await FLAGGED_SCREENS[screen](pilot)
        await settle(pilot)
        _no_blink(pilot)

    assert snap_compare(make(flagged.context()), terminal_size=SIZES[size], run_before=run_before)


#: The restore and verify screens after a finished run (its times and durations pinned at write time).
FINISHED_SCREENS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "restore_finished": _keys("3"),
    "verify_finished": _keys("5"),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", FINISHED_SCREENS)
def test_finished_run_snapshot(finished_pinned, snap_compare, screen: str, size: str):
    from dataclasses import replace

    from keyshift.core.aws import AwsContext

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await FINISHED_SCREENS[screen](pilot)
        await settle(pilot)
        _no_blink(pilot)

    # An endpoint nothing listens on: the idle screens must show the run from the workspace alone.
    context = replace(finished_pinned.context(), aws=AwsContext(endpoint_url="http://127.0.0.1:9", region="us-east-1"))
    assert snap_compare(make(context), terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_read_only_plan_dialog_snapshot(planned, snap_compare, size: str):
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await _pushing(_plan_dialog)(pilot)
        await settle(pilot)
        _no_blink(pilot)

    assert snap_compare(make(planned.context(read_only=True)), terminal_size=SIZES[size], run_before=run_before)


def test_pinned_fixtures_carry_pinned_times_and_a_whole_chain(flagged, finished_pinned):
    """What the snapshots above rely on: every stored time is a pinned one, no stored location is
    a temporary path, and the audit chains (hashed over those times) verify."""
    from keyshift.core.store.audit import read_audit, verify_chain
    from keyshift.core.store.workspace import Workspace

    for fixture, days in ((flagged, {"2024-05-01"}), (finished_pinned, {"2024-05-01"})):
        ws = Workspace(fixture.path / "ws")
        try:
            conn = ws.connect()
            report = verify_chain(conn)
            assert report.chain_ok and report.entries >= 2, report
            entries = read_audit(conn, limit=1000)
            assert {e.ts[:10] for e in entries} == days
            assert all(str(fixture.path) not in str(e.details) for e in entries)
            stamps = conn.execute("SELECT started_at, finished_at FROM plans").fetchall()
            stamps += conn.execute("SELECT started_at, finished_at FROM runs").fetchall()
            assert {t[:10] for row in stamps for t in row if t} == days
            if fixture is flagged:  # the flag's init and its one (forced) flip, newest first
                assert [e.action for e in entries[:3]] == ["flag.flip.forced", "flag.flip", "flag.init"]
        finally:
            ws.close()
