"""Shard splits: a parent shard's records are applied before its children's.

moto never splits a shard (brief section 6), so the stream here is a small stand-in for the
DynamoDB Streams client that serves a split stream: a closed parent and two open children, listed
children first. The writes go to a real new table on the moto server fixture. If children were
replayed before their parent, the parent's older image of an item would be applied last.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from keyshift.core.progress import run_to_completion
from keyshift.core.spec import parse_spec
from keyshift.core.migrate.stream.sync import latest_stream_sync, run_stream_sync, shard_positions
from keyshift.core.migrate.tables import KeySchema, create_target_table
from keyshift.core.kernel.keymap import Keymap, KeymapEntry
from keyshift.core.store.workspace import Workspace

pytestmark = pytest.mark.e2e

SPEC = parse_spec("""
[source]
table = "events"
partition_key = "customer"

[target]
table = "events_v2"
partition_key = "customer_id"
""")
KEYMAP = Keymap("shards", {"A": KeymapEntry("ID-A", "rule"), "B": KeymapEntry("ID-B", "rule"),
                           "C": KeymapEntry("ID-C", "rule")})
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def record(event: str, seq: int, customer: str, version: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Keys": {"customer": {"S": customer}}, "SequenceNumber": f"{seq:021d}",
                            "ApproximateCreationDateTime": WHEN}
    if event != "REMOVE":
        body["NewImage"] = {"customer": {"S": customer}, "v": {"N": str(version)}}
    return {"eventName": event, "dynamodb": body}


class SplitStream:
    """Just the three calls stream sync makes, over fixed shards; pages of ``page`` records."""

    def __init__(self, shards: list[dict[str, Any]], records: dict[str, list[dict]], page: int = 2) -> None:
        self.shards, self.records, self.page = shards, records, page
        self.read_order: list[str] = []

    def describe_stream(self, StreamArn: str, **_: Any) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": self.shards}}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str,
                           SequenceNumber: str | None = None) -> dict[str, Any]:
        start = 0
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            seqs = [r["dynamodb"]["SequenceNumber"] for r in self.records[ShardId]]
            start = seqs.index(SequenceNumber) + 1
        return {"ShardIterator": f"{ShardId}|{start}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard_id, start = ShardIterator.split("|")
        records = self.records[shard_id][int(start):int(start) + self.page]
        self.read_order += [shard_id] * len(records)
        end = int(start) + len(records)
        closed = any(s["ShardId"] == shard_id and "EndingSequenceNumber" in s["SequenceNumberRange"]
                     for s in self.shards)
        if closed and end >= len(self.records[shard_id]):
            return {"Records": records}  # a closed shard's end: no NextShardIterator
        return {"Records": records, "NextShardIterator": f"{shard_id}|{end}"}


def _shard(shard_id: str, start: int, end: int | None = None, parent: str | None = None) -> dict[str, Any]:
    rng: dict[str, str] = {"StartingSequenceNumber": f"{start:021d}"}
    if end is not None:
        rng["EndingSequenceNumber"] = f"{end:021d}"
    return {"ShardId": shard_id, "SequenceNumberRange": rng, **({"ParentShardId": parent} if parent else {})}


@pytest.fixture
def tables(boto_clients):
    ddb = boto_clients.dynamodb
    ddb.create_table(TableName="events", BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                     **KeySchema("customer").definition())
    create_target_table(ddb, SPEC, KeySchema("customer_id"))
    return ddb


def _target(ddb) -> dict[str, int]:
    items = ddb.scan(TableName="events_v2", ConsistentRead=True)["Items"]
    return {i["customer_id"]["S"]: int(i["v"]["N"]) for i in items}


def test_parents_are_drained_before_their_children_whatever_the_listing_order(tables, tmp_path):
    stream = SplitStream(
        # Listed children first, and the parent's records would lose to its children's if read last.
        shards=[_shard("child-1", 200, parent="parent"), _shard("child-2", 210, parent="parent"),
                _shard("parent", 100, end=199)],
        records={"parent": [record("INSERT", 100, "A", 1), record("MODIFY", 101, "A", 2),
                            record("INSERT", 102, "B", 1), record("INSERT", 103, "C", 9)],
                 "child-1": [record("MODIFY", 200, "A", 3), record("REMOVE", 201, "B")],
                 "child-2": [record("MODIFY", 210, "C", 10)]})
    ws = Workspace(tmp_path / "ws")
    summary = run_to_completion(run_stream_sync(ws, SPEC, KEYMAP, ddb=tables, streams=stream, operator="test"))
    first_child = min(stream.read_order.index("child-1"), stream.read_order.index("child-2"))
    assert set(stream.read_order[:first_child]) == {"parent"} and stream.read_order.count("parent") == 4
    assert _target(tables) == {"ID-A": 3, "ID-C": 10}
    assert summary["caught_up"] and (summary["shard_count"], summary["shards_done"]) == (3, 1)
    assert {s["shard_id"]: (s["parent"], s["done"]) for s in summary["shards"]} == {
        "parent": (None, True), "child-1": ("parent", False), "child-2": ("parent", False)}
    assert summary["lag_seconds"] == 0 and summary["iterator_age_seconds"] == 0  # read to every tip
    run = latest_stream_sync(ws)
    shards = shard_positions(run)
    assert shards["parent"]["done"] and not shards["child-1"]["done"]
    assert shards["child-1"]["sequence"] == f"{201:021d}"

    # The next run continues after each shard's checkpoint, and skips the drained parent.
    stream.records["child-1"].append(record("MODIFY", 202, "A", 4))
    stream.read_order.clear()
    again = run_to_completion(run_stream_sync(ws, SPEC, KEYMAP, ddb=tables, streams=stream, operator="test"))
    assert stream.read_order == ["child-1"] and again["records"] == 1
    assert _target(tables) == {"ID-A": 4, "ID-C": 10}


def test_a_child_whose_parent_was_trimmed_is_read_at_once(tables, tmp_path):
    stream = SplitStream(shards=[_shard("child", 300, parent="trimmed-away")],
                         records={"child": [record("INSERT", 300, "A", 7)]})
    summary = run_to_completion(run_stream_sync(Workspace(tmp_path / "ws"), SPEC, KEYMAP, ddb=tables,
                                                streams=stream, operator="test"))
    assert summary["caught_up"] and _target(tables) == {"ID-A": 7}
