"""The overview's Stream-sync step: what the latest replay run says, and a dead one called dead."""

from __future__ import annotations

import re
import time

from keyshift.core.keymap import build_keymap
from keyshift.core.progress import run_to_completion
from keyshift.core.stream_sync import run_stream_sync
from keyshift.screens.overview import OverviewScreen, sync_mark
from test_ui_restore_verify import SOURCE, _restore, _world, shown
from ui_support import OPERATOR, SIZE, make, settle


async def test_overview_shows_the_replay_run(tmp_path, aws_env):
    world = _world(tmp_path / "world", aws_env["AWS_ENDPOINT_URL"])
    _restore(world)
    ddb = world.aws.client("dynamodb")
    ddb.update_table(TableName=SOURCE, StreamSpecification={"StreamEnabled": True,
                                                            "StreamViewType": "NEW_AND_OLD_IMAGES"})
    ddb.put_item(TableName=SOURCE, Item={"customer": {"S": "CUST-001"}, "order": {"N": "9001"}})
    ddb.delete_item(TableName=SOURCE, Key={"customer": {"S": "CUST-002"}, "order": {"N": "2"}})
    summary = run_to_completion(run_stream_sync(
        world.workspace, world.spec, build_keymap(world.workspace).keymap, ddb=ddb,
        streams=world.aws.client("dynamodbstreams"), operator=OPERATOR))
    assert (summary["puts"], summary["deletes"]) == (1, 1)
    world.workspace.close()
    app = make(world)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        steps = shown(app.screen, "#steps")
        assert re.search(r"4 Stream-sync\s+caught up", steps), steps
        assert "2 records · 1 puts · 1 deletes · 0 restarts" in steps


def test_a_running_replay_without_a_heartbeat_is_not_called_following():
    now = time.time()
    run = {"state": "running", "counters": {"records": 5}, "watermark": {"caught_up_at": now - 3, "heartbeat": now}}
    assert sync_mark(run, now)[:3] == ("◐", "green", "following, 3 s behind")
    run["watermark"]["heartbeat"] = now - 600  # killed without a word
    assert sync_mark(run, now)[:3] == ("✘", "red", "not responding")
    assert sync_mark({"state": "running", "watermark": {"heartbeat": now}}, now)[2] == "catching up"
    assert sync_mark({"state": "stopped", "summary": {"records": 1}}, now)[2] == "stopped"
