"""Step 4 in the console: the stream-sync screen (catch up, follow, stop) and the overview's line."""

from __future__ import annotations

import json
import re
import time

from keyshift.core.resolve.keymap_build import build_keymap
from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.plan.queries import latest_plan
from keyshift.core.migrate.restore import plan_to_restore_args, run_restore
from keyshift.core.spec import load_spec
from keyshift.core.migrate.tables import create_target_table, target_key_schema
from keyshift.core.store.workspace import Workspace
from keyshift.core.progress import run_to_completion
from keyshift.core.migrate.stream.sync import latest_stream_sync, run_stream_sync
from keyshift.screens.overview import OverviewScreen, sync_mark
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.stream_sync_screen import StreamSyncScreen
from test_ui_restore_verify import SOURCE, SPEC, TARGET, _context, _restore, _world, shown
from ui_support import OPERATOR, SIZE, make, settle, wait_until


async def test_overview_shows_the_replay_run(tmp_path, aws_env):
    world, ddb = _streamed_world(tmp_path, aws_env)
    summary = _replay(world, ddb)
    assert (summary["puts"], summary["deletes"]) == (1, 1)
    app = make(world)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        steps = shown(app.screen, "#steps")
        assert re.search(r"4 Stream-sync\s+caught up", steps), steps
        assert "2 records · 1 puts · 1 deletes · 0 restarts" in steps


def test_a_running_replay_without_a_heartbeat_is_not_called_following():
    from keyshift.core.store.runs import Run, Unit

    now = time.time()

    def run(state, heartbeat=None, caught_up_at=None, summary=None):
        units = {"_counters": Unit("_counters", counters={"records": 5}),
                 "_watermark": Unit("_watermark", {"caught_up_at": caught_up_at})}
        return Run(1, "stream-sync", state, "op", "v", {}, summary, "", None, heartbeat, units)

    assert sync_mark(run("running", now, now - 3), now)[:3] == ("◐", "green", "following, 3 s behind")
    assert sync_mark(run("running", now - 600, now - 3), now)[:3] == ("✘", "red", "not responding")  # killed
    assert sync_mark(run("running", now), now)[2] == "catching up"
    assert sync_mark(run("stopped", summary={"records": 1}), now)[2] == "stopped"


def _streamed_world(tmp_path, aws_env):
    """A restored world whose old table has a stream and has changed since the dump."""
    world = _world(tmp_path / "world", aws_env["AWS_ENDPOINT_URL"])
    _restore(world)
    ddb = world.aws.client("dynamodb")
    ddb.update_table(TableName=SOURCE, StreamSpecification={"StreamEnabled": True,
                                                            "StreamViewType": "NEW_AND_OLD_IMAGES"})
    ddb.put_item(TableName=SOURCE, Item={"customer": {"S": "CUST-001"}, "order": {"N": "9001"}})
    ddb.delete_item(TableName=SOURCE, Key={"customer": {"S": "CUST-002"}, "order": {"N": "2"}})
    world.workspace.close()
    return world, ddb


def _replay(world, ddb) -> dict:
    """One stream-sync run to the tip, through the core (as the CLI does)."""
    summary = run_to_completion(run_stream_sync(
        world.workspace, world.spec, build_keymap(world.workspace).keymap, ddb=ddb,
        streams=world.aws.client("dynamodbstreams"), operator=OPERATOR))
    world.workspace.close()
    return summary


async def _confirm(pilot) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), timeout=10)
    await pilot.click("#confirm-yes")


async def test_catch_up_then_follow_then_stop_from_the_console(tmp_path, aws_env):
    world, ddb = _streamed_world(tmp_path, aws_env)
    app = make(world)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, StreamSyncScreen)
        assert "No replay yet" in shown(screen, "#sync-state")

        await pilot.press("s")  # restored, nothing open: nothing to ask
        await wait_until(pilot, lambda: app.slot("stream-sync").outcome is not None, timeout=20)
        assert app.slot("stream-sync").outcome == "complete", app.slot("stream-sync")
        await wait_until(pilot, lambda: "caught up" in shown(screen, "#sync-state"), timeout=10)
        assert "2 read · 1 puts · 1 deletes" in shown(screen, "#sync-report")
        assert "trim-horizon" in shown(screen, "#sync-report")
        item = ddb.get_item(TableName=TARGET, Key={"customer": {"S": "CUST-001"}, "order": {"N": "9001"}},
                            ConsistentRead=True)
        assert "Item" in item

        await pilot.press("f")
        sync = app.slot("stream-sync")  # the same slot object for the App's lifetime
        await wait_until(pilot, lambda: sync.running and sync.progress is not None and sync.progress.caught_up,
                         timeout=20)
        ddb.put_item(TableName=SOURCE, Item={"customer": {"S": "CUST-003"}, "order": {"N": "9003"}})
        await wait_until(pilot, lambda: sync.progress.puts == 1, timeout=20)
        assert "following" in shown(screen, "#sync-state")
        await pilot.press("b")  # back to the overview: the follower keeps following (the flip needs it)
        # (no settle() while a follow runs: it waits for every worker to finish)
        await wait_until(pilot, lambda: app.screen is not screen, timeout=10)
        assert sync.running
        await wait_until(pilot, lambda: re.search(r"4 Stream-sync\s+following", shown(app.screen, "#steps")),
                         timeout=10)
        await pilot.press("4")
        await wait_until(pilot, lambda: isinstance(app.screen, StreamSyncScreen), timeout=10)
        screen = app.screen
        assert isinstance(screen, StreamSyncScreen) and sync.running
        await pilot.press("escape")  # stops the follower, keeps its checkpoint
        await wait_until(pilot, lambda: app.slot("stream-sync").outcome is not None, timeout=20)
        assert app.slot("stream-sync").outcome == "stopped"
        await pilot.press("escape")
        await settle(pilot)
        assert re.search(r"4 Stream-sync\s+stopped", shown(app.screen, "#steps"))


async def test_a_replay_before_any_restore_says_what_that_means_and_asks(tmp_path, aws_env):
    world = _world(tmp_path / "world", aws_env["AWS_ENDPOINT_URL"])
    ddb = world.aws.client("dynamodb")
    create_target_table(ddb, world.spec, target_key_schema(world.spec, "N"))  # empty: never restored
    ddb.update_table(TableName=SOURCE, StreamSpecification={"StreamEnabled": True,
                                                            "StreamViewType": "NEW_AND_OLD_IMAGES"})
    world.workspace.close()
    app = make(world)
    heard: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        notify = app.notify
        app.notify = lambda message, **options: (heard.append(str(message)), notify(message, **options))
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=10)
        message = app.screen.message
        assert "No restore has completed yet" in message
        assert "stay missing from the new table until a restore writes them" in message
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.slot("stream-sync").outcome is not None, timeout=10)
        assert app.slot("stream-sync").outcome == "declined"
        assert "cancelled: no replay started" in heard
        assert isinstance(app.screen, StreamSyncScreen)


async def test_read_only_shows_the_run_and_refuses_to_start_one(tmp_path, aws_env):
    world, ddb = _streamed_world(tmp_path, aws_env)
    _replay(world, ddb)
    app = make(_context(tmp_path / "world", aws_env["AWS_ENDPOINT_URL"], read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        await wait_until(pilot, lambda: "latest run" in shown(screen, "#sync-state"), timeout=10)
        assert "caught up" in shown(screen, "#sync-state")
        assert screen.check_action("sync_once", ()) is None and screen.check_action("sync_follow", ()) is None
        await pilot.press("s")
        await settle(pilot)
        assert not app.slot("stream-sync").running and isinstance(app.screen, StreamSyncScreen)


async def test_open_cases_are_named_in_the_confirmation_and_their_records_held(tmp_path, aws_env):
    """An ambiguous pair left open: the replay says so before it starts, then holds its records; an
    identifier first seen on the stream is held too, shows in the lag line and as an unmapped case."""
    directory = tmp_path / "world"
    directory.mkdir()
    items = [{"customer": {"S": c}, "order": {"N": str(n)}}
             for n, c in enumerate(["Acme", "Acme\u200b", "Globex", "Initech"])]
    (directory / "dump.json").write_text("".join(json.dumps({"Item": i}) + "\n" for i in items), encoding="utf-8")
    (directory / "keyshift.toml").write_text(SPEC, encoding="utf-8")
    context = _context(directory, aws_env["AWS_ENDPOINT_URL"])
    ddb = context.aws.client("dynamodb")
    ddb.create_table(TableName=SOURCE, BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                     KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                                {"AttributeName": "order", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                           {"AttributeName": "order", "AttributeType": "N"}])
    for item in items:
        ddb.put_item(TableName=SOURCE, Item=item)
    ws, spec = Workspace(directory / "ws"), load_spec(directory / "keyshift.toml")
    plan_to_completion(ws, spec, str(directory / "dump.json"), operator=OPERATOR)
    create_target_table(ddb, spec, target_key_schema(spec, "N"))
    run_to_completion(run_restore(ws, spec, build_keymap(ws, allow_unresolved=True).keymap, ddb=ddb,
                                  operator=OPERATOR, **plan_to_restore_args(latest_plan(ws))))
    ws.close()
    ddb.put_item(TableName=SOURCE, Item={"customer": {"S": "Hooli\u200b"}, "order": {"N": "7"}})
    app = make(context)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), timeout=10)
        assert "1 case(s) are still open" in app.screen.message
        await pilot.click("#confirm-yes")
        await wait_until(pilot, lambda: app.slot("stream-sync").outcome is not None, timeout=20)
        assert app.slot("stream-sync").outcome == "complete", app.slot("stream-sync")
        summary = app.slot("stream-sync").summary
        assert summary["skipped"] == {} and summary["held"] == 3 and summary["unmapped"] == 3
        screen = app.screen
        await wait_until(pilot, lambda: "3 record(s) waiting" in shown(screen, "#sync-lag"), timeout=10)
        assert "lag 0 s" in shown(screen, "#sync-lag") and "iterator age 0 s" in shown(screen, "#sync-lag")
        spark = screen.query_one("#sync-lag-spark")
        assert list(spark.data) and spark.data[-1] == 0  # a sample per measurement; caught up at the end: 0
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("c")  # the resolution queue lists the identifier first seen on the stream
        await settle(pilot)
        await pilot.press("6")  # unmapped cases only
        await settle(pilot)
        queue = app.screen
        await wait_until(pilot, lambda: queue.shown and all(c.kind == "unmapped" for c in queue.shown), timeout=10)
        assert [c.members[0].raw for c in queue.shown] == ["Hooli\u200b"]
        head = shown(queue, "#case-head")
        assert "Hooli" in head and "nothing: a wholly new identifier" in head and "1 waiting" in head


async def test_the_direction_switch_shows_and_starts_reverse_sync(tmp_path, aws_env):
    world, ddb = _streamed_world(tmp_path, aws_env)
    app = make(world)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, StreamSyncScreen)
        assert "direction: forward" in shown(screen, "#sync-direction")
        await pilot.press("r")
        await settle(pilot)
        assert "direction: reverse" in shown(screen, "#sync-direction")
        await wait_until(pilot, lambda: "No reverse replay yet" in shown(screen, "#sync-state"), timeout=10)

        await pilot.press("s")
        await _confirm(pilot)
        await wait_until(pilot, lambda: app.slot("stream-sync").outcome is not None, timeout=20)
        slot = app.slot("stream-sync")
        assert slot.outcome == "complete", slot
        assert slot.summary["direction"] == "reverse" and slot.summary["source"] == TARGET
        await wait_until(pilot, lambda: "latest run" in shown(screen, "#sync-state"), timeout=10)
        assert "latest" in shown(screen, "#sync-report")  # its origin: from this second on

        await pilot.press("r")  # back to forward: its own (absent) run, not the reverse one
        await settle(pilot)
        assert "direction: forward" in shown(screen, "#sync-direction")
        await wait_until(pilot, lambda: "No replay yet" in shown(screen, "#sync-state"), timeout=10)


async def test_closing_the_console_stops_a_following_replay(tmp_path, aws_env):
    """A following replay runs in a thread Textual cannot cancel: closing the console must stop it,
    or the process would outlive its console (it did: the follower kept the interpreter alive)."""
    world, _ddb = _streamed_world(tmp_path, aws_env)
    app = make(world)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("f")
        sync = app.slot("stream-sync")
        await wait_until(pilot, lambda: sync.running and sync.progress is not None, timeout=20)
    # run_test shut the app down without exit(): the unmount stopped the follower, keeping its checkpoint.
    assert sync.cancel.is_set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run = latest_stream_sync(world.workspace)
        if run is not None and run.state != "running":
            break
        time.sleep(0.1)
    assert run is not None and run.state == "stopped", run
