"""Pilot and snapshot tests of the restore and verify screens against the moto server fixture.

The workspace plans a local ddbjson dump of 200 clean items (no reference data, no cases), and
the old table holds the same items, so restore and verify need no decision.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from keyshift.console.context import Context
from keyshift.core.aws import AwsContext
from keyshift.core.resolve.keymap_build import build_keymap
from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.plan.queries import latest_plan
from keyshift.core.migrate.restore import plan_to_restore_args, run_restore
from keyshift.core.migrate.restore_control import RestoreControl, read_control, write_control
from keyshift.core.spec import load_spec
from keyshift.core.migrate.tables import create_target_table, target_key_schema
from keyshift.core.migrate.verify.run import verify_to_completion
from keyshift.core.store.workspace import Workspace
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.restore_screen import NumberDialog, RestoreScreen
from keyshift.screens.verify_screen import VerifyScreen
from ui_support import OPERATOR, PINNED_DUMP, PINNED_FINISH, PINNED_START, SIZE, make, settle, text_of, wait_until

ITEMS = 200
#: A rate limit (items/s) that keeps a restore of ITEMS running for seconds: pause and cancel
#: land while the dump is still being read (a cancel after the last line lets the run finish);
#: with one worker, a cancel waits for at most two batches in flight.
SLOW = 20
SOURCE, TARGET = "Orders", "Orders-v2"
SPEC = (f'[source]\ntable = "{SOURCE}"\npartition_key = "customer"\nsort_key = "order"\n\n'
        f'[target]\ntable = "{TARGET}"\n')


def _items() -> list[dict[str, Any]]:
    return [{"customer": {"S": f"CUST-{i % 40:03d}"}, "order": {"N": str(i)}, "total": {"N": f"{i}.5"},
             "tags": {"SS": ["retail", "eu"]}} for i in range(ITEMS)]


def _world(directory: Path, endpoint_url: str) -> Context:
    """Spec, dump, a planned workspace and the old table; returns the console's context."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dump.json").write_text("".join(json.dumps({"Item": i}) + "\n" for i in _items()),
                                         encoding="utf-8")
    (directory / "keyshift.toml").write_text(SPEC, encoding="utf-8")
    ws = Workspace(directory / "ws")
    plan_to_completion(ws, load_spec(directory / "keyshift.toml"), str(directory / "dump.json"), operator=OPERATOR)
    ws.close()
    context = _context(directory, endpoint_url)
    ddb = context.aws.client("dynamodb")
    ddb.create_table(TableName=SOURCE, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                                {"AttributeName": "order", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                           {"AttributeName": "order", "AttributeType": "N"}])
    items = _items()
    for n in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={SOURCE: [{"PutRequest": {"Item": i}} for i in items[n:n + 25]]})
    return context


def _context(directory: Path, endpoint_url: str, *, read_only: bool = False) -> Context:
    return Context(spec_path=directory / "keyshift.toml", workspace_path=directory / "ws", read_only=read_only,
                   operator=OPERATOR, aws=AwsContext(endpoint_url=endpoint_url, region="us-east-1"))


def _restore(context: Context) -> dict[str, Any]:
    """Restore through the core (as the CLI does), for the tests that start from a full table."""
    ws, spec = context.workspace, context.spec
    ddb = context.aws.client("dynamodb")
    create_target_table(ddb, spec, target_key_schema(spec, "N"))
    gen = run_restore(ws, spec, build_keymap(ws).keymap, ddb=ddb, operator=OPERATOR,
                      **plan_to_restore_args(latest_plan(ws)))
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _count(context: Context, table: str) -> int:
    return context.aws.client("dynamodb").scan(TableName=table, Select="COUNT", ConsistentRead=True)["Count"]


def shown(screen, selector: str) -> str:
    return text_of(screen.query_one(selector).content)


async def _open(pilot, key: str, kind: type) -> Any:
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(pilot.app.screen, kind)
    return pilot.app.screen


async def _confirm(pilot, *, type_name: str | None = None) -> ConfirmScreen:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), timeout=10)
    question = pilot.app.screen
    if type_name is not None:
        await pilot.press(*type_name)
    await pilot.click("#confirm-yes")
    return question


@pytest.fixture
def world(tmp_path: Path, aws_env: dict[str, str]) -> Context:
    return _world(tmp_path / "world", aws_env["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="module")
def finished(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with a complete restore and a verify that found one missing item, times pinned.

    Only the workspace is kept: the idle screens read nothing from AWS (the server is reset by the
    next test that uses it).
    """
    from keyshift.console.demo import DEMO_ENV, reset_moto

    reset_moto(moto_server)
    directory = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as env:
        for name, value in DEMO_ENV.items():
            env.setenv(name, value)
        context = _world(directory, moto_server)
        _restore(context)
        ddb = context.aws.client("dynamodb")
        ddb.delete_item(TableName=TARGET, Key={"customer": {"S": "CUST-007"}, "order": {"N": "47"}})
        verify_to_completion(context.workspace, context.spec, ddb, operator=OPERATOR)
    conn = context.workspace.connect()
    conn.execute("UPDATE plans SET dump_uri = ?, started_at = ?, finished_at = ?", (PINNED_DUMP, PINNED_START,
                                                                                    PINNED_FINISH))
    for run_id, summary in conn.execute("SELECT id, summary FROM runs").fetchall():
        doc = json.loads(summary)
        doc.update(seconds=1.5, started_at=PINNED_START, finished_at=PINNED_FINISH)
        conn.execute("UPDATE runs SET summary = ?, started_at = ?, finished_at = ? WHERE id = ?",
                     (json.dumps(doc), PINNED_START, PINNED_FINISH, run_id))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    context.workspace.close()
    return directory


# -- restore ------------------------------------------------------------------------------------
async def test_restore_from_the_console_creates_the_table_and_writes_every_item(world):
    app = make(world)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, "3", RestoreScreen)
        assert "No restore yet" in shown(screen, "#restore-state")
        await pilot.press("s")
        question = await _confirm(pilot)
        assert question.confirm_title == "Create the target table?"
        await wait_until(pilot, lambda: app.slot("restore").outcome is not None, timeout=20)
        assert app.slot("restore").outcome == "complete", app.slot("restore")
        assert app.slot("restore").summary["written"] == ITEMS
        await settle(pilot)
        assert _count(world, TARGET) == ITEMS
        state = shown(screen, "#restore-state")
        assert f"complete: {ITEMS} items written into {TARGET}" in state
        assert re.search(rf"lines\s+{ITEMS} of {ITEMS} \(100%\)", shown(screen, "#restore-stats"))
        assert "complete" in shown(screen, "#restore-last")

        # Again: the table is not empty now, so the operator must type its name; Escape declines.
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=10)
        assert app.screen.type_to_confirm == TARGET
        assert app.screen.query_one("#confirm-yes").disabled
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.slot("restore").running)
        assert app.slot("restore").outcome == "declined"

        await pilot.press("escape")  # back to the overview: step 3 shows the run
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        steps = shown(app.screen, "#steps")
        assert re.search(r"3 Restore\s+complete", steps)
        assert f"{ITEMS} / {ITEMS} written" in steps


async def _set_number(pilot, key: str, value: str) -> None:
    """Open the rate (l) or workers (w) dialog and enter ``value``."""
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, NumberDialog))
    pilot.app.screen.query_one(Input).value = value
    await pilot.press("enter")
    # Not settle(): it waits for every worker, and a paused restore's never ends.
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, NumberDialog))


def _slow(world: Context) -> Any:
    """The console, with the control file set to restore at :data:`SLOW` items/s with one worker."""
    write_control(world.workspace, RestoreControl(rate=SLOW, workers=1))
    world.workspace.close()
    return make(world)


async def _start_restore(pilot) -> RestoreScreen:
    """Open the restore screen, start a restore, confirm, and wait for its first progress."""
    screen = await _open(pilot, "3", RestoreScreen)
    await pilot.press("s")
    await _confirm(pilot)
    await wait_until(pilot, lambda: pilot.app.slot("restore").progress is not None, timeout=10)
    return screen


def _control(world: Context) -> Any:
    return read_control(Workspace(world.workspace_path))


async def test_pause_and_resume_write_the_control_file_and_the_run_obeys(world):
    app = _slow(world)  # slow: the pause lands midway
    async with app.run_test(size=SIZE) as pilot:
        screen = await _start_restore(pilot)
        await pilot.press("p")
        await wait_until(pilot, lambda: _control(world).paused)
        await wait_until(pilot, lambda: app.slot("restore").progress.paused, timeout=10)
        # The status line follows on the next progress refresh, not in the same instant.
        await wait_until(pilot, lambda: "PAUSED" in shown(screen, "#restore-state"), timeout=10)
        assert app.slot("restore").running and app.slot("restore").progress.written < ITEMS
        await _set_number(pilot, "l", "0")  # no limit: the rest goes fast
        await wait_until(pilot, lambda: _control(world).rate is None)
        await pilot.press("p")
        await wait_until(pilot, lambda: app.slot("restore").outcome is not None, timeout=20)
        assert app.slot("restore").outcome == "complete"
        assert _control(world) is None  # a finished run leaves no control file behind

        # The rate keys and dialogs write the same file (no restore needs to run).
        await _set_number(pilot, "l", "40")
        await wait_until(pilot, lambda: _control(world).rate == 40)
        await pilot.press("plus")
        await wait_until(pilot, lambda: _control(world).rate == 60)
        await pilot.press("minus")
        await wait_until(pilot, lambda: _control(world).rate == 40)
        await _set_number(pilot, "w", "8")
        await wait_until(pilot, lambda: _control(world) == RestoreControl(paused=False, rate=40, workers=8))
        await settle(pilot)
        assert re.search(r"workers\s+8", shown(screen, "#restore-control"))


async def test_cancel_leaves_a_resumable_run_that_r_resumes(world):
    app = _slow(world)  # one worker: few batches in flight
    async with app.run_test(size=SIZE) as pilot:
        screen = await _start_restore(pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.slot("restore").outcome is not None, timeout=10)
        assert app.slot("restore").outcome == "cancelled"
        await settle(pilot)
        assert "cancelled — resumable" in shown(screen, "#restore-state")
        assert screen.check_action("restore_resume", ()) is True
        await _set_number(pilot, "l", "0")  # lift the limit, then resume
        await wait_until(pilot, lambda: _control(world).rate is None)
        await pilot.press("r")
        question = await _confirm(pilot)
        assert question.confirm_title == "Resume the restore?"
        await wait_until(pilot, lambda: app.slot("restore").outcome is not None, timeout=20)
        assert app.slot("restore").outcome == "complete"
        assert app.slot("restore").summary["resumed"] is True
        assert _count(world, TARGET) == ITEMS


async def test_restoring_into_a_full_table_says_how_many_items_it_holds(world):
    _restore(world)
    world.workspace.close()
    app = make(world)
    heard: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        notify = app.notify
        app.notify = lambda message, **options: (heard.append(str(message)), notify(message, **options))
        screen = await _open(pilot, "3", RestoreScreen)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=10)
        assert app.screen.confirm_title == "Restore into a non-empty table?"
        assert f"already holds about {ITEMS} items" in app.screen.message
        assert f"{ITEMS} lines" in app.screen.message  # and what will be written
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.slot("restore").outcome == "declined", timeout=10)
        assert "cancelled: nothing written" in heard and app.screen is screen


async def test_read_only_greys_out_starting_and_steering(finished):
    app = make(_context(finished, "http://127.0.0.1:9", read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, "3", RestoreScreen)
        bindings = screen.active_bindings
        for key in ("s", "p", "plus", "minus", "l", "w"):
            assert bindings[key].enabled is False, key
        await pilot.press("s")
        await pilot.press("p")
        await settle(pilot)
        assert not app.slot("restore").running
        assert read_control(Workspace(finished / "ws", read_only=True)) is None
        await pilot.press("escape")
        screen = await _open(pilot, "5", VerifyScreen)
        assert screen.active_bindings["r"].enabled is False  # resuming a recorded run records
        assert screen.active_bindings["s"].enabled is True  # verifying without recording is allowed


async def test_read_only_verify_runs_without_recording(world):
    _restore(world)
    world.workspace.close()
    app = make(_context(world.spec_path.parent, world.aws.endpoint_url, read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, "5", VerifyScreen)
        await pilot.press("s")
        await wait_until(pilot, lambda: app.slot("verify").outcome is not None, timeout=20)
        assert app.slot("verify").outcome == "complete", app.slot("verify")
        await settle(pilot)
        assert "equal (not recorded: read-only)" in shown(screen, "#verify-state")
        assert re.search(rf"compared {ITEMS}\s+missing 0", shown(screen, "#verify-report"))
    ws = Workspace(world.spec_path.parent / "ws", read_only=True)
    try:
        assert ws.connect().execute("SELECT count(*) FROM runs WHERE kind = 'verify'").fetchone()[0] == 0
    finally:
        ws.close()


# -- verify -------------------------------------------------------------------------------------
async def test_verify_says_equal_then_finds_the_deleted_item(world):
    _restore(world)
    world.workspace.close()
    app = make(world)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, "5", VerifyScreen)
        assert "No verify yet" in shown(screen, "#verify-state")
        await pilot.press("s")
        await wait_until(pilot, lambda: app.slot("verify").outcome is not None, timeout=20)
        assert app.slot("verify").outcome == "complete", app.slot("verify")
        await settle(pilot)
        assert "equal" in shown(screen, "#verify-state")
        assert re.search(rf"compared {ITEMS}\s+missing 0\s+extra 0\s+different 0", shown(screen, "#verify-report"))
        assert screen.query_one("#offenders", DataTable).row_count == 0

        world.aws.client("dynamodb").delete_item(TableName=TARGET,
                                                 Key={"customer": {"S": "CUST-007"}, "order": {"N": "47"}})
        await pilot.press("s")
        await wait_until(pilot, lambda: app.slot("verify").outcome is not None, timeout=20)
        await settle(pilot)
        assert "1 difference" in shown(screen, "#verify-state")
        assert re.search(r"missing 1\s+extra 0\s+different 0", shown(screen, "#verify-report"))
        table = screen.query_one("#offenders", DataTable)
        assert table.row_count == 1
        kind, key, _ = (text_of(cell).strip() for cell in table.get_row_at(0))
        assert kind == "missing" and key == "customer=CUST-007  order=47"
        table.focus()
        await pilot.press("enter")
        await settle(pilot)
        expected = shown(screen, "#expected-item")
        assert "CUST-007" in expected and '"47.5"' in expected
        assert "absent from the new table" in shown(screen, "#actual-item")

        await pilot.press("escape")
        await settle(pilot)
        assert re.search(r"5 Verify\s+1 difference", shown(app.screen, "#steps"))


# -- snapshots ----------------------------------------------------------------------------------
def test_restore_screen_snapshot(finished, snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)

    app = make(_context(finished, "http://127.0.0.1:9"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_verify_screen_snapshot(finished, snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)

    app = make(_context(finished, "http://127.0.0.1:9"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)

