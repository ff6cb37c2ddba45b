"""The demo's background activity against the moto server: the live writer and the three services.

Each test sets the demo up as ``keyshift demo`` does (a small table, dump, plan, control table),
starts the activity with fast parameters, and checks what an operator would see: stream records
for names the dump never had, routers registered and acknowledging flips, the services' writes on
the table in force, and no thread left once the activity is stopped.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from keyshift.console.context import Context
from keyshift.console.demo import setup_demo, start_activity
from keyshift.console.demo_activity import ActivityOptions
from keyshift.console.demo_live import STREAM_ONLY
from keyshift.console.demo_services import SERVICES
from keyshift.core.aws import AwsContext
from keyshift.core.cutover.flag import flag_status
from keyshift.core.resolve.keymap_build import build_keymap, record_build
from keyshift.core.spec import load_spec
from keyshift.core.store.workspace import Workspace

pytestmark = pytest.mark.e2e

RECORDS = 120


def _wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _demo(tmp_path: Path, boto_clients: Any) -> tuple[Context, Any]:
    obj = Context(aws=AwsContext(endpoint_url=boto_clients.endpoint_url), operator="tester")
    setup = setup_demo(obj, tmp_path / "demo", RECORDS, say=lambda message: None)
    return obj, setup


def _demo_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("keyshift-demo-") and t.is_alive()]


def _stream_customers(streams: Any, ddb: Any, table: str) -> list[tuple[str, str]]:
    """(event name, customer) of every record on ``table``'s stream, from the start."""
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    out = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = streams.get_records(ShardIterator=it, Limit=1000)
            for r in page["Records"]:
                image = r["dynamodb"].get("NewImage") or r["dynamodb"].get("Keys")
                out.append((r["eventName"], image["customer"]["S"]))
            it = page.get("NextShardIterator") if page["Records"] else None
    return out


def test_live_writer_puts_stream_only_names_and_stops_at_its_bound(tmp_path: Path, boto_clients: Any,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    obj, setup = _demo(tmp_path, boto_clients)
    dump_names = {i["customer"]["S"] for i in setup.items}
    capfd.readouterr()
    activity = start_activity(obj, setup, ActivityOptions(writes_per_second=100, max_writes=60, services=()))
    assert activity.writer is not None
    activity.writer.join(20)  # it stops by itself after max_writes
    assert not activity.writer.is_alive()
    stats = activity.writer.stats
    assert stats.writes + stats.errors == 60 and stats.errors == 0
    assert stats.puts and stats.stream_only_puts and stats.updates and stats.deletes

    records = _stream_customers(boto_clients.dynamodbstreams, boto_clients.dynamodb, "orders")
    assert {"INSERT", "MODIFY", "REMOVE"} <= {event for event, _ in records}
    on_stream = {customer for _, customer in records}
    stream_only = on_stream - dump_names
    assert stream_only and stream_only <= {raw for raw, _ in STREAM_ONLY}
    assert stream_only == stats.stream_only_names
    assert on_stream & dump_names  # and new orders for names the dump has

    summary = activity.stop()
    assert summary["alive"] == [] and _demo_threads() == []
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""  # the console owns the terminal
    assert "writer: stopped" in activity.log_path.read_text(encoding="utf-8")


def _flip(run_cli: Any, env: dict[str, str], setup: Any, to: str) -> None:
    argv = ["--spec", str(setup.spec_path), "--workspace", str(setup.workspace_path), "flag", "flip",
            "--to", to, "--reason", f"demo test: {to}", "--yes", "--force", "--json"]
    result = run_cli(argv, env, setup.directory)
    assert result.returncode == 0, result.stderr


def _acknowledged(ddb: Any, spec: Any, version: int) -> bool:
    doc = flag_status(ddb, spec)
    mine = {r["service"]: r for r in doc["routers"]}
    return (doc["version"] == version and set(mine) == set(SERVICES)
            and all(r["version"] == version for r in mine.values()))


def test_services_register_follow_flips_and_write_on_the_table_in_force(
        tmp_path: Path, boto_clients: Any, aws_env: dict[str, str], run_cli: Any) -> None:
    obj, setup = _demo(tmp_path, boto_clients)
    ddb = boto_clients.dynamodb
    spec = load_spec(setup.spec_path)
    ddb.create_table(
        TableName="orders_v2",
        KeySchema=[{"AttributeName": "customer_id", "KeyType": "HASH"},
                   {"AttributeName": "order_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "customer_id", "AttributeType": "S"},
                              {"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    ws = Workspace(setup.workspace_path, create=False)
    record_build(ws, build_keymap(ws, allow_unresolved=True), operator="tester", location=None)
    ws.close()

    activity = start_activity(obj, setup, ActivityOptions(
        writes_per_second=20, services=SERVICES, service_interval=0.05, ttl_seconds=0.2, keymap_refresh_s=0.2))
    writer = activity.writer
    try:
        assert writer is not None
        # Registered from the start, on version 0 (state old): what the cut-over screen lists.
        _wait_for(lambda: _acknowledged(ddb, spec, 0), what="three routers on version 0")
        _wait_for(lambda: all(s.stats.writes.get("orders") for s in activity.services), what="writes on orders")

        _flip(run_cli, aws_env, setup, "new")
        _wait_for(lambda: _acknowledged(ddb, spec, 1), what="three routers acknowledging version 1")
        _wait_for(lambda: all(s.stats.writes.get("orders_v2") for s in activity.services),
                  what="writes on orders_v2")
        channels = {i["channel"]["S"] for i in ddb.scan(TableName="orders_v2", ConsistentRead=True)["Items"]}
        assert channels == set(SERVICES)
        # The live writer is the old table's legacy traffic: paused while the flag says new.
        paused_at = _wait_for(lambda: writer.stats.paused, what="the writer pausing")
        writes = writer.stats.writes
        _wait_for(lambda: writer.stats.paused >= paused_at + 5, what="five paused ticks")
        assert writer.stats.writes == writes

        _flip(run_cli, aws_env, setup, "old")
        _wait_for(lambda: _acknowledged(ddb, spec, 2), what="three routers acknowledging version 2")
        before = {s.service: s.stats.writes["orders"] for s in activity.services}
        _wait_for(lambda: all(s.stats.writes["orders"] > before[s.service] for s in activity.services),
                  what="writes on orders again after the flip back")
        _wait_for(lambda: writer.stats.writes > writes, what="the writer writing again after the flip back")
        assert all(s.stats.errors == 0 for s in activity.services), [s.stats for s in activity.services]
        assert writer.stats.errors == 0
    finally:
        summary = activity.stop()
    assert summary["alive"] == [] and _demo_threads() == []


def test_a_failing_writer_logs_and_keeps_going_without_printing(boto_clients: Any, tmp_path: Path,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    """Every write fails (no such table): each failure is counted and logged, none is raised or
    printed, and the writer still stops at its bound."""
    import logging

    from keyshift.console.demo_live import LiveWriter

    log = logging.getLogger("keyshift.demo.activity.test")
    log.propagate = False
    handler = logging.FileHandler(tmp_path / "activity.log", encoding="utf-8")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        writer = LiveWriter(boto_clients.dynamodb, "no-such-table", keys=[("Acme", "ORD-1")], names=["Acme"],
                            writes_per_second=200, max_writes=5, log=log)
        writer.start()
        writer.join(10)
    finally:
        log.removeHandler(handler)
        handler.close()
    assert not writer.is_alive()
    assert writer.stats.errors == 5 and writer.stats.writes == 0
    text = (tmp_path / "activity.log").read_text(encoding="utf-8")
    assert text.count("write failed: ") == 5 and "ResourceNotFoundException" in text
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
