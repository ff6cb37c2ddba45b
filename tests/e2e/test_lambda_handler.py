"""The Lambda handler against the moto server, invoked with the stream's real records.

Every event here is built from the moto server's own ``GetRecords`` output (the old table's, or
the new table's for the reverse direction), converted to the Lambda JSON shape
(:mod:`keyshift.core.kernel.lambda_events`). The keymap artifact is written by the real writer
(``keymap_document``) into the server's S3; the handler finds everything through
``KEYSHIFT_KEYMAP_URI`` / ``KEYSHIFT_DIRECTION`` and ``AWS_ENDPOINT_URL``. Faults are injected with
botocore hooks on the handler's own DynamoDB client.

The keymap: ``Acme`` and ``Acme`` + ZWSP are one customer ``C-1`` (primary ``Acme``; both have an
order ``o1``, ``Acme`` wins it), ``Globex`` is ``C-2``, ``Dropped`` is dropped, anything else is
unknown (held when there is a hold table).
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from faults import Raw

from keyshift.core import lambda_handler
from keyshift.core.kernel.echo_dynamodb import echo_table_definition
from keyshift.core.kernel.keymap import Keymap, KeymapEntry, KeymapFormatError, sort_key_json
from keyshift.core.kernel.lambda_events import lambda_event
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.resolve.keymap_build import KeymapBuild, keymap_document

pytestmark = pytest.mark.e2e

BUCKET, KEY = "keymaps", "orders/keymap.json"
URI = f"s3://{BUCKET}/{KEY}"
NAMES = KeyNames("customer", "order_id", "customer_id", None)
ZW = "Acme\u200b"


def make_keymap(*, extra: dict[str, str | None] | None = None, hold: bool = True, echo: bool = False) -> Keymap:
    entries = {"Acme": KeymapEntry("C-1", "rule"), ZW: KeymapEntry("C-1", "decision:1"),
               "Globex": KeymapEntry("C-2", "rule"), "Dropped": KeymapEntry(None, "decision:2", "test data")}
    for raw, new_id in (extra or {}).items():
        entries[raw] = KeymapEntry(new_id, "decision:3")
    migration = {"source_table": "orders", "target_table": "orders_v2", **NAMES.to_migration(),
                 "new_identifiers": "hold", "hold_table": "keyshift_hold" if hold else None,
                 "echo_table": "keyshift_echo" if echo else None}
    version = "v-" + str(abs(hash(tuple(sorted((k, v.new_id or "") for k, v in entries.items())))))[:8]
    return Keymap(version, entries, {}, {("C-1", sort_key_json({"S": "o1"})): "Acme"}, {"C-1": "Acme"}, migration)


def publish(s3, keymap: Keymap) -> dict[str, Any]:
    doc = keymap_document(KeymapBuild(keymap, [], {}), operator="test")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(doc).encode())
    return doc


def key(customer: str, order: str) -> dict:
    return {"customer": {"S": customer}, "order_id": {"S": order}}


def new_key(cid: str, order: str) -> dict:
    return {"customer_id": {"S": cid}, "order_id": {"S": order}}


class Ctx:
    """The function's context as Lambda passes it (only what the handler reads)."""

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class World:
    def __init__(self, clients) -> None:
        self.ddb, self.s3, self.streams = clients.dynamodb, clients.s3, clients.dynamodbstreams
        self.seen: dict[str, int] = {}

    def put(self, customer: str, order: str, table: str = "orders", **attrs: Any) -> None:
        self.ddb.put_item(TableName=table, Item={**key(customer, order), **attrs} if table == "orders"
                          else {**new_key(customer, order), **attrs})

    def delete(self, customer: str, order: str) -> None:
        self.ddb.delete_item(TableName="orders", Key=key(customer, order))

    def records(self, table: str, *, new_only: bool = True) -> list[dict[str, Any]]:
        """The table's stream records since the last call (all of them with new_only False), as
        Lambda event records, in stream order."""
        arn = self.ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        out = []
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            it = self.streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                page = self.streams.get_records(ShardIterator=it, Limit=1000)
                out.extend(page["Records"])
                it = page.get("NextShardIterator") if page["Records"] else None
        out.sort(key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
        last = self.seen.get(table, -1) if new_only else -1
        fresh = [r for r in out if int(r["dynamodb"]["SequenceNumber"]) > last]
        if out:
            self.seen[table] = max(self.seen.get(table, -1), int(out[-1]["dynamodb"]["SequenceNumber"]))
        return lambda_event(fresh, arn)["Records"]

    def scan(self, table: str) -> dict[str, dict]:
        items = [i for p in self.ddb.get_paginator("scan").paginate(TableName=table) for i in p["Items"]]
        if table == "orders":
            return {(i["customer"]["S"], i["order_id"]["S"]): i for i in items}
        if table == "keyshift_hold":
            return {(i["raw"]["S"], i["seq"]["S"]): i for i in items}
        return {(i["customer_id"]["S"], i["order_id"]["S"]): i for i in items}

    def expected(self, keymap: Keymap) -> dict[str, dict]:
        """transform(old table), computed from a scan of it: what the new table must hold."""
        out = {}
        for item in self.scan("orders").values():
            outcome = transform(item, keymap, NAMES)
            if type(outcome) is Put:
                out[(outcome.item["customer_id"]["S"], outcome.item["order_id"]["S"])] = outcome.item
        return out

    def clear(self, table: str) -> None:
        for k, item in self.scan(table).items():
            self.ddb.delete_item(TableName=table, Key=new_key(*k) if table == "orders_v2" else key(*k))


def _table(ddb, name: str, pk: str, sk: str, stream: bool) -> None:
    extra = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}} if stream else {}
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"},
                                           {"AttributeName": sk, "AttributeType": "S"}], **extra)


@pytest.fixture
def world(aws_env, boto_clients, monkeypatch) -> World:
    w = World(boto_clients)
    _table(w.ddb, "orders", "customer", "order_id", True)
    _table(w.ddb, "orders_v2", "customer_id", "order_id", True)
    _table(w.ddb, "keyshift_hold", "raw", "seq", False)
    w.ddb.create_table(**echo_table_definition("keyshift_echo"))
    w.s3.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("KEYSHIFT_KEYMAP_URI", URI)
    monkeypatch.delenv("KEYSHIFT_DIRECTION", raising=False)
    lambda_handler.reset()
    yield w
    lambda_handler.reset()


def source_history(w: World) -> None:
    """Writes to the old table: several changes per key, a delete and re-insert, merged raws,
    the conflict key, a dropped identifier and binary values."""
    w.put("Acme", "o1", total={"N": "1"})
    w.put(ZW, "o1", total={"N": "99"})             # the conflict loser's item
    w.put(ZW, "o2", total={"N": "2"}, blob={"B": b"\x01\x02"})
    w.put("Globex", "g1", total={"N": "3"})
    w.put("Acme", "o1", total={"N": "4"})          # second change of one item
    w.put("Dropped", "d1", total={"N": "5"})
    w.delete("Globex", "g1")                       # delete ...
    w.put("Globex", "g1", total={"N": "6"})        # ... and re-insert
    w.put("Globex", "g2", total={"N": "7"}, tags={"SS": ["b", "a"]})
    w.delete(ZW, "o1")                             # the loser's delete must not remove the winner's item
    w.put(ZW, "o2", total={"N": "8"}, blob={"B": b"\x03"})
    w.delete("Globex", "g2")


def test_applies_a_batch_in_sequence_order_duplicates_and_shuffling_included(world):
    w = world
    keymap = make_keymap()
    publish(w.s3, keymap)
    source_history(w)
    records = w.records("orders")
    assert len(records) == 12
    sent: list[dict] = []

    result = lambda_handler.handler({"Records": records}, Ctx())
    assert result == {"batchItemFailures": []}
    assert w.scan("orders_v2") == w.expected(keymap)
    assert ("C-1", "o1") in w.scan("orders_v2")  # the winner's item survived the loser's delete

    # Delivered twice, out of order, with duplicates: the same table, and deletes name new keys.
    client = lambda_handler.current().ddb
    client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem",
                                lambda params, **_: sent.extend(params["RequestItems"]["orders_v2"]))
    shuffled = records + records[3:9]
    random.Random(7).shuffle(shuffled)
    assert lambda_handler.handler({"Records": shuffled}, Ctx()) == {"batchItemFailures": []}
    assert w.scan("orders_v2") == w.expected(keymap)
    deletes = [r["DeleteRequest"]["Key"] for r in sent if "DeleteRequest" in r]
    assert deletes == [new_key("C-2", "g2")]  # transformed; the loser's delete skipped
    assert len(sent) == 4  # one write per new key: C-1/o1, C-1/o2, C-2/g1, C-2/g2


def test_deletes_are_transformed_never_the_source_key(world):
    w = world
    publish(w.s3, make_keymap())
    w.put("Globex", "g1", total={"N": "1"})
    assert lambda_handler.handler({"Records": w.records("orders")}, Ctx())["batchItemFailures"] == []
    # An item in the new table under the *source* key's value: a tombstone keyed like ddb_migration's.
    w.ddb.put_item(TableName="orders_v2", Item={"customer_id": {"S": "Globex"}, "order_id": {"S": "g1"}})
    w.delete("Globex", "g1")
    sent: list[dict] = []
    lambda_handler.current().ddb.meta.events.register(
        "before-parameter-build.dynamodb.BatchWriteItem",
        lambda params, **_: sent.extend(params["RequestItems"]["orders_v2"]))
    assert lambda_handler.handler({"Records": w.records("orders")}, Ctx())["batchItemFailures"] == []
    assert sent == [{"DeleteRequest": {"Key": new_key("C-2", "g1")}}]
    after = w.scan("orders_v2")
    assert ("C-2", "g1") not in after
    assert ("Globex", "g1") in after  # an item under the *source* key value is not touched


def test_replays_of_a_prefix_and_of_every_suffix_leave_the_same_table(world):
    w = world
    keymap = make_keymap()
    publish(w.s3, keymap)
    source_history(w)
    records = w.records("orders")
    expected = w.expected(keymap)
    handle = lambda rs: lambda_handler.handler({"Records": rs}, Ctx())["batchItemFailures"]  # noqa: E731
    for i in range(len(records) + 1):
        # Lambda retries from any record on, after the whole batch was applied ...
        w.clear("orders_v2")
        assert handle(records) == []
        assert handle(records[i:]) == []
        assert w.scan("orders_v2") == expected, f"whole batch, then again from record {i}"
        # ... or after only a prefix of it was applied (the function died part-way).
        w.clear("orders_v2")
        assert handle(records[:i]) == []
        assert handle(records[i:]) == []
        assert w.scan("orders_v2") == expected, f"prefix {i}, then the rest"


class FailKey:
    """botocore hooks on the handler's client: requests for one new key come back unprocessed
    (HTTP 200, ``UnprocessedItems``), as DynamoDB does under pressure, every time."""

    def __init__(self, client, target: dict) -> None:
        self.target, self.held, self.attempts, self.stub = target, [], 0, False
        client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", self.hold)
        client.meta.events.register("before-send.dynamodb.BatchWriteItem", self.answer)
        client.meta.events.register("after-call.dynamodb.BatchWriteItem", self.report)

    def _key(self, request: dict) -> dict:
        item = request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"]
        return {k: item[k] for k in ("customer_id", "order_id")}

    def hold(self, params, **_):
        requests = params["RequestItems"]["orders_v2"]
        self.held = [r for r in requests if self._key(r) == self.target]
        if self.held:
            self.attempts += 1
        rest = [r for r in requests if self._key(r) != self.target]
        self.stub = not rest  # nothing left to send: DynamoDB refuses an empty batch, so answer here
        params["RequestItems"]["orders_v2"] = rest

    def answer(self, request, **_):
        if self.stub:
            self.stub = False
            return AWSResponse(request.url, 200, {}, Raw(b'{"UnprocessedItems":{}}'))
        return None

    def report(self, parsed, **_):
        if self.held:
            parsed["UnprocessedItems"] = {"orders_v2": self.held}
            self.held = []


def test_partial_failure_reports_the_first_record_of_the_failed_key_and_the_retry_converges(world):
    w = world
    keymap = make_keymap()
    publish(w.s3, keymap)
    w.put("Acme", "o1", total={"N": "1"})
    w.put("Globex", "g1", total={"N": "1"})
    assert lambda_handler.handler({"Records": w.records("orders")}, Ctx())["batchItemFailures"] == []
    before = w.scan("orders_v2")

    w.put("Globex", "g1", total={"N": "2"})     # other key, before the failing one
    w.put("Acme", "o1", total={"N": "2"})       # the failing key's first record in this batch
    w.put(ZW, "o2", total={"N": "2"})           # other key, after it
    w.put("Acme", "o1", total={"N": "3"})       # the failing key again
    w.put("Globex", "g9", total={"N": "9"})     # other key, last
    batch = w.records("orders")
    first_failed = batch[1]["dynamodb"]["SequenceNumber"]
    fault = FailKey(lambda_handler.current().ddb, new_key("C-1", "o1"))
    # A short invocation budget: the unprocessed write is retried with backoff until the deadline.
    result = lambda_handler.handler({"Records": batch}, Ctx(remaining_ms=4_000))
    assert result == {"batchItemFailures": [{"itemIdentifier": first_failed}]}
    assert fault.attempts >= 2  # retried, not dropped at the first UnprocessedItems
    after = w.scan("orders_v2")
    assert after[("C-1", "o1")] == before[("C-1", "o1")]          # no record of that key applied
    assert after[("C-2", "g1")]["total"] == {"N": "2"}            # the other keys went on
    assert after[("C-1", "o2")]["total"] == {"N": "2"}
    assert after[("C-2", "g9")]["total"] == {"N": "9"}

    # Lambda retries from the reported record on (records before it are checkpointed).
    fault.target = None
    retry = [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= int(first_failed)]
    assert lambda_handler.handler({"Records": retry}, Ctx())["batchItemFailures"] == []
    assert w.scan("orders_v2") == w.expected(keymap)


def test_a_new_keymap_version_is_loaded_when_the_etag_changes(world):
    w = world
    publish(w.s3, make_keymap())
    calls: list[str] = []
    w.put("Initech", "i1", total={"N": "1"})     # unknown to the first keymap: held
    assert lambda_handler.handler({"Records": w.records("orders")}, Ctx())["batchItemFailures"] == []
    handler = lambda_handler.current()
    handler.s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    first = handler.loaded
    assert ("C-3", "i1") not in w.scan("orders_v2")

    w.put("Globex", "g1", total={"N": "1"})
    assert lambda_handler.handler({"Records": w.records("orders")}, Ctx())["batchItemFailures"] == []
    assert calls == ["HeadObject"]               # unchanged ETag: the cached keymap, no download
    assert lambda_handler.current().loaded is first

    second = make_keymap(extra={"Initech": "C-3"})
    publish(w.s3, second)
    w.put("Initech", "i1", total={"N": "2"})
    assert lambda_handler.handler({"Records": w.records("orders")}, Ctx())["batchItemFailures"] == []
    assert calls[1:] == ["HeadObject", "GetObject"]
    loaded = lambda_handler.current().loaded
    assert loaded.keymap.version == second.version != first.keymap.version
    assert loaded.etag != first.etag
    assert w.scan("orders_v2")[("C-3", "i1")]["total"] == {"N": "2"}


def test_an_unknown_keymap_format_is_refused_and_the_batch_fails_whole(world, caplog):
    w = world
    publish(w.s3, make_keymap())
    w.put("Globex", "g1", total={"N": "1"})
    records = w.records("orders")
    assert lambda_handler.handler({"Records": records}, Ctx())["batchItemFailures"] == []
    w.s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps({"format": "keyshift-keymap/9"}).encode())
    w.put("Globex", "g1", total={"N": "2"})
    with caplog.at_level(logging.ERROR, logger="keyshift.lambda"):
        with pytest.raises(KeymapFormatError, match="keyshift-keymap/9"):
            lambda_handler.handler({"Records": w.records("orders")}, Ctx())
    line = json.loads(caplog.records[-1].getMessage())
    assert line["event"] == "keymap-refused" and line["uri"] == URI and "keyshift-keymap/9" in line["error"]
    assert w.scan("orders_v2")[("C-2", "g1")]["total"] == {"N": "1"}  # nothing applied with the old one
    w.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"{not json")
    with pytest.raises(KeymapFormatError, match="not JSON"):
        lambda_handler.handler({"Records": records}, Ctx())


def test_a_missing_or_bad_environment_is_a_clear_error(world, monkeypatch):
    monkeypatch.delenv("KEYSHIFT_KEYMAP_URI")
    with pytest.raises(lambda_handler.LambdaConfigError, match="KEYSHIFT_KEYMAP_URI is not set"):
        lambda_handler.handler({"Records": []}, Ctx())
    monkeypatch.setenv("KEYSHIFT_KEYMAP_URI", "https://example.com/keymap.json")
    with pytest.raises(lambda_handler.LambdaConfigError, match="is not s3://bucket/key"):
        lambda_handler.handler({"Records": []}, Ctx())
    monkeypatch.setenv("KEYSHIFT_KEYMAP_URI", URI)
    monkeypatch.setenv("KEYSHIFT_DIRECTION", "sideways")
    with pytest.raises(lambda_handler.LambdaConfigError, match="expected forward or reverse"):
        lambda_handler.handler({"Records": []}, Ctx())
    # A keymap built without a spec records no migration: refused, naming the fix.
    monkeypatch.delenv("KEYSHIFT_DIRECTION")
    bare = make_keymap()
    publish(world.s3, Keymap(bare.version, bare.entries, {}, {}, {}, None))
    with pytest.raises(lambda_handler.LambdaConfigError, match="keymap build --out"):
        lambda_handler.handler({"Records": []}, Ctx())


def test_a_record_from_another_stream_is_refused(world):
    w = world
    publish(w.s3, make_keymap())
    w.put("Globex", "g1", "orders_v2", total={"N": "1"})
    with pytest.raises(lambda_handler.LambdaConfigError, match="check the event source mapping"):
        lambda_handler.handler({"Records": w.records("orders_v2")}, Ctx())  # forward reads orders


def test_held_records_go_to_the_hold_table_idempotently(world, caplog):
    w = world
    publish(w.s3, make_keymap())
    w.put("Initech\u200b", "i1", total={"N": "1"}, blob={"B": b"\x00"})
    w.delete("Initech\u200b", "i1")
    w.put("Globex", "g1", total={"N": "1"})
    records = w.records("orders")
    for _ in range(2):  # delivered twice: the same two held items
        assert lambda_handler.handler({"Records": records}, Ctx())["batchItemFailures"] == []
    held = w.scan("keyshift_hold")
    seqs = [r["dynamodb"]["SequenceNumber"] for r in records[:2]]
    assert sorted(held) == [("Initech\u200b", s.zfill(40)) for s in seqs]
    first = held[("Initech\u200b", seqs[0].zfill(40))]
    assert first["direction"] == {"S": "forward"} and first["event"] == {"S": "INSERT"}
    assert first["source_arn"]["S"] == records[0]["eventSourceARN"]
    assert json.loads(first["record"]["S"]) == records[0]["dynamodb"]
    assert first["held_at"]["S"].endswith("+00:00")
    assert held[("Initech\u200b", seqs[1].zfill(40))]["event"] == {"S": "REMOVE"}
    assert ("C-2", "g1") in w.scan("orders_v2")

    # Without a hold table: counted and logged, not failed.
    publish(w.s3, make_keymap(hold=False))
    w.put("Initech\u200b", "i2", total={"N": "1"})
    with caplog.at_level(logging.WARNING, logger="keyshift.lambda"):
        assert lambda_handler.handler({"Records": w.records("orders")}, Ctx())["batchItemFailures"] == []
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "keyshift.lambda"]
    assert any(line["event"] == "unmapped-not-held" and line["raw"] == "Initech\u200b" for line in lines)
    assert len(w.scan("keyshift_hold")) == 2


def test_reverse_direction_round_trip(world, monkeypatch):
    w = world
    keymap = make_keymap()
    publish(w.s3, keymap)
    source_history(w)
    assert lambda_handler.handler({"Records": w.records("orders")}, Ctx())["batchItemFailures"] == []
    w.records("orders_v2")  # the forward writes: before the switch point
    # After cut-over, services write the new table; the reverse handler carries it back.
    w.put("C-1", "o7", "orders_v2", total={"N": "70"})                 # merged id: back to its primary
    w.put("C-1", "o2", "orders_v2", total={"N": "20"}, blob={"B": b"\x09"})
    w.ddb.delete_item(TableName="orders_v2", Key=new_key("C-2", "g1"))
    w.put("C-9", "n1", "orders_v2", total={"N": "1"})                  # an id the keymap cannot take back
    monkeypatch.setenv("KEYSHIFT_DIRECTION", "reverse")
    records = w.records("orders_v2")
    for _ in range(2):  # at least once
        assert lambda_handler.handler({"Records": records}, Ctx())["batchItemFailures"] == []
    old = w.scan("orders")
    assert old[("Acme", "o7")]["total"] == {"N": "70"}
    # ZW's o2 lived under the other spelling; the write goes back to the primary's key.
    assert old[("Acme", "o2")]["blob"] == {"B": b"\x09"}
    assert ("Globex", "g1") not in old
    assert not any(k[0] == "C-9" for k in old)
    held = w.scan("keyshift_hold")
    assert [(k[0], v["direction"]["S"]) for k, v in held.items()] == [("C-9", "reverse")]
    # The new-table item written after the switch is transform(old) of what went back.
    assert w.expected(keymap)[("C-1", "o7")] == w.scan("orders_v2")[("C-1", "o7")]


def test_echo_suppression_with_both_directions_running(world):
    w = world
    publish(w.s3, make_keymap(echo=True))
    forward = lambda_handler.Handler(URI, "forward")
    reverse = lambda_handler.Handler(URI, "reverse")
    writes = {"forward": [], "reverse": []}
    for name, h in (("forward", forward), ("reverse", reverse)):
        h.ddb.meta.events.register(
            "before-parameter-build.dynamodb.BatchWriteItem",
            lambda params, name=name, **_: writes[name].extend(
                r for t, rs in params["RequestItems"].items() if t in ("orders", "orders_v2") for r in rs))

    w.put("Acme", "o1", total={"N": "1"})
    w.put("Globex", "g1", total={"N": "1"})
    assert forward({"Records": w.records("orders")}, Ctx())["batchItemFailures"] == []
    assert len(writes["forward"]) == 2
    # The new table's stream shows forward's writes: echoes, not written back (and twice: still echoes).
    new_records = w.records("orders_v2")
    assert len(new_records) == 2
    for _ in range(2):
        assert reverse({"Records": new_records}, Ctx())["batchItemFailures"] == []
    assert writes["reverse"] == []

    # After the flip: a service writes the new table, one that has not switched still writes the old one.
    w.put("C-2", "g1", "orders_v2", total={"N": "2"})
    w.put("Acme", "o5", total={"N": "5"})
    assert reverse({"Records": w.records("orders_v2")}, Ctx())["batchItemFailures"] == []
    assert [r["PutRequest"]["Item"]["customer"] for r in writes["reverse"]] == [{"S": "Globex"}]
    writes["forward"].clear()
    old_records = w.records("orders")     # the service's write and reverse's write
    assert len(old_records) == 2
    assert forward({"Records": old_records}, Ctx())["batchItemFailures"] == []
    assert [r["PutRequest"]["Item"]["order_id"] for r in writes["forward"]] == [{"S": "o5"}]
    assert w.scan("orders_v2")[("C-2", "g1")]["total"] == {"N": "2"}
    assert w.scan("orders")[("Globex", "g1")]["total"] == {"N": "2"}
    assert w.scan("orders_v2")[("C-1", "o5")]["total"] == {"N": "5"}
    # Forward's o5 write echoes on the new stream; reverse skips it.
    writes["reverse"].clear()
    assert reverse({"Records": w.records("orders_v2")}, Ctx())["batchItemFailures"] == []
    assert writes["reverse"] == []


def test_a_key_two_spellings_share_holds_the_primarys_item_whatever_the_record_order(world):
    """Acme and Acme+ZWSP (one new id, Acme primary) both write o5 after the plan, then ZW deletes
    its o5: the new table must keep Acme's o5, not follow the last record (kernel/merged)."""
    w = world
    keymap = make_keymap()
    publish(w.s3, keymap)
    w.put("Acme", "o5", total={"N": "1"})
    w.put(ZW, "o5", total={"N": "2"})
    w.put(ZW, "o6", total={"N": "3"})        # only the other spelling has o6: it stands
    w.ddb.delete_item(TableName="orders", Key=key(ZW, "o5"))
    records = w.records("orders")
    half = len(records) // 2
    # Two invocations as two shards' handlers would make them, in either order.
    for batch in (records[half:], records[:half]):
        assert lambda_handler.handler({"Records": batch}, Ctx())["batchItemFailures"] == []
    new = w.scan("orders_v2")
    assert new[("C-1", "o5")]["total"] == {"N": "1"}
    assert new[("C-1", "o6")]["total"] == {"N": "3"}
    assert {k: v for k, v in new.items() if k[0] == "C-1"} == {k: v for k, v in w.expected(keymap).items()
                                                               if k[0] == "C-1" and k[1] in ("o5", "o6")}
