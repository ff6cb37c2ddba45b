"""Reverse sync against the moto server: flip back without losing a write, and without echoes.

- Both directions at once (two threads, each its own run): a service that has not switched yet
  writes the old table while a switched one writes the new table. After both catch up, the new
  table equals transform(old table), the old table holds inverse(new item) for every key written
  on the new table after the switch point (merged identifiers under their primary spelling), and
  neither direction replayed the other's writes: the reverse writes are exactly the direct writes
  on the new table, the forward writes exactly the direct writes on the old table.
- The flip-back rehearsal: forward sync, the switch, writes to the new table while reverse sync
  follows, then old == inverse(new) for everything written after the switch point.
- The CLI: ``stream-sync --reverse --from … --json`` mirrors forward's fields plus ``direction``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from keyshift.core.aws import AwsContext
from keyshift.core.kernel.items import for_botocore
from keyshift.core.kernel.keymap import Keymap, KeymapEntry
from keyshift.core.kernel.transform import KeyNames, Put, inverse, inverse_key, transform
from keyshift.core.migrate.stream.reverse import StartPosition
from keyshift.core.migrate.stream.sync import latest_stream_sync, run_stream_sync, watermark
from keyshift.core.migrate.tables import KeySchema, create_target_table
from keyshift.core.progress import run_to_completion
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace
from test_e2e_stream_sync import _key, pipeline  # noqa: F401  (the fixture)

pytestmark = pytest.mark.e2e

ZW = "\u200b"
#: Acme and Acme+ZWSP are one entity (C1) whose writes go back to "Acme"; Globex is C2.
KEYMAP = Keymap("reverse-test", {"Acme": KeymapEntry("C1", "rule"), "Acme" + ZW: KeymapEntry("C1", "decision:1"),
                                 "Globex": KeymapEntry("C2", "rule"), "Hooli": KeymapEntry("C3", "rule")},
                primaries={"C1": "Acme"})
SPEC = """
[source]
table = "{source}"
partition_key = "customer"
sort_key = "order_id"

[target]
table = "{target}"
partition_key = "customer_id"
"""


class Tables:
    """An old table with a stream, a new one (created with its stream), a workspace."""

    def __init__(self, clients: Any, root: Path) -> None:
        tag = uuid.uuid4().hex[:8]
        self.endpoint = clients.endpoint_url
        self.ddb = clients.dynamodb
        self.spec = parse_spec(SPEC.format(source=f"old_{tag}", target=f"new_{tag}"))
        self.old, self.new = self.spec.source.table, self.spec.target.table
        self.names = KeyNames.from_spec(self.spec)
        self.ws = Workspace(root / ".keyshift")
        self.ddb.create_table(TableName=self.old, BillingMode="PAY_PER_REQUEST",
                              StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                              **KeySchema("customer", "S", "order_id", "S").definition())
        create_target_table(self.ddb, self.spec, KeySchema("customer_id", "S", "order_id", "S"))
        self.writes: dict[str, int] = {"old": 0, "new": 0}
        self.sent: dict[str, int] = {self.old: 0, self.new: 0}  # BatchWriteItem requests per table

    def client(self, service: str) -> Any:
        """A client of its own for a thread, counting the syncs' BatchWriteItem requests."""
        def count(params: Any, **_: Any) -> None:
            for table, requests in params.get("RequestItems", {}).items():
                self.sent[table] = self.sent.get(table, 0) + len(requests)
        return AwsContext(endpoint_url=self.endpoint,
                          hooks=[("before-parameter-build.dynamodb.BatchWriteItem", count)]).client(service)

    def sync(self, direction: str = "forward", **kw: Any) -> dict:
        return run_to_completion(run_stream_sync(self.ws, self.spec, KEYMAP, ddb=self.client("dynamodb"),
                                                 streams=self.client("dynamodbstreams"), operator="test",
                                                 idle_sleep=0.05, direction=direction, **kw))

    @contextmanager
    def following(self, direction: str, **kw: Any) -> Iterator[dict[str, Any]]:
        """A ``--follow`` run of ``direction`` in a thread for the block; its summary lands in the dict."""
        cancel = threading.Event()
        out: dict[str, Any] = {}

        def follow() -> None:
            try:
                out["summary"] = run_to_completion(run_stream_sync(
                    self.ws, self.spec, KEYMAP, ddb=self.client("dynamodb"), streams=self.client("dynamodbstreams"),
                    follow=True, cancel=cancel, operator="test", idle_sleep=0.05, direction=direction, **kw))
            except BaseException as exc:  # reported by the test, not lost in the thread
                out["error"] = exc

        thread = threading.Thread(target=follow, name=f"sync-{direction}")
        thread.start()
        try:
            yield out
        finally:
            cancel.set()
            thread.join(timeout=60)
        assert "error" not in out, out.get("error")

    def caught_up(self, direction: str, after: float, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            run = latest_stream_sync(self.ws, direction)
            if run is not None and run.state == "running" and (watermark(run)["caught_up_at"] or 0) > after:
                return
            assert time.monotonic() < deadline, f"{direction} sync did not catch up"
            time.sleep(0.05)

    # writes by services ---------------------------------------------------------------------------
    def put_old(self, customer: str, order: str, v: int) -> None:
        self.writes["old"] += 1
        self.ddb.put_item(TableName=self.old, Item={**_key(customer, order), "v": {"N": str(v)}})

    def put_new(self, new_id: str, order: str, v: int) -> None:
        self.writes["new"] += 1
        self.ddb.put_item(TableName=self.new, Item={"customer_id": {"S": new_id}, "order_id": {"S": order},
                                                    "v": {"N": str(v)}, "blob": {"B": bytes([v % 256])}})

    def delete_new(self, new_id: str, order: str) -> None:
        self.writes["new"] += 1
        self.ddb.delete_item(TableName=self.new, Key={"customer_id": {"S": new_id}, "order_id": {"S": order}})

    # checks -------------------------------------------------------------------------------------
    def scan(self, table: str) -> dict[tuple, dict]:
        pk = "customer" if table == self.old else "customer_id"
        return {(i[pk]["S"], i["order_id"]["S"]): i
                for page in self.ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
                for i in page["Items"]}

    def expected_new(self) -> dict[tuple, dict]:
        out = {}
        for item in self.scan(self.old).values():
            o = transform(item, KEYMAP, self.names)
            if isinstance(o, Put):
                out[(o.item["customer_id"]["S"], o.item["order_id"]["S"])] = for_botocore(o.item)
        return out

    def assert_old_is_inverse_of_new(self, keys: set[tuple[str, str]]) -> None:
        """For every new-table key written after the switch: the old table holds inverse(new item)
        under the key's spelling, and nothing under the other merged spellings; a deleted key is
        absent under every spelling."""
        old, new = self.scan(self.old), self.scan(self.new)
        for new_id, order in sorted(keys):
            new_key = {"customer_id": {"S": new_id}, "order_id": {"S": order}}
            spelling = inverse_key(new_key, self.names, KEYMAP)["customer"]["S"]
            if (new_id, order) in new:
                assert old.get((spelling, order)) == inverse(new[(new_id, order)], self.names, KEYMAP), (new_id, order)
            else:
                assert (spelling, order) not in old, (new_id, order)
            for raw in KEYMAP.raws_for(new_id):
                if raw != spelling:
                    assert (raw, order) not in old, f"{raw!r} {order} left behind under another spelling"


def test_forward_and_reverse_at_once_without_echoes(boto_clients, tmp_path):
    t = Tables(boto_clients, tmp_path)
    # Before the switch: the old table has items under both spellings of C1, and Globex's.
    t.put_old("Acme", "o1", 1)
    t.put_old("Acme" + ZW, "o2", 2)
    t.put_old("Globex", "o3", 3)
    t.put_old("Hooli", "o4", 4)
    first = t.sync()  # forward catches up: the new table is transform(old)
    assert first["caught_up"] and first["puts"] == 4
    assert t.scan(t.new) == t.expected_new()
    time.sleep(1.1)  # the switch point is a second of its own: the stream's times are whole seconds
    switch = time.time()
    before, sent_before = dict(t.writes), dict(t.sent)
    with t.following("forward") as fwd, t.following("reverse", start=StartPosition("timestamp", at=switch)) as rev:
        written_new: set[tuple[str, str]] = set()

        def old_service() -> None:  # not switched yet: Globex's orders, on the old table
            for n in range(12):
                t.put_old("Globex", f"g{n % 4}", 100 + n)

        def new_service() -> None:  # switched: C1's and C3's orders on the new table
            for n in range(12):
                order = f"n{n % 5}"
                t.put_new("C1", order, 200 + n)
                written_new.add(("C1", order))
            t.put_new("C1", "o2", 300)  # held under Acme+ZWSP in the old table: moves to "Acme"
            t.put_new("C3", "o4", 301)
            t.delete_new("C1", "n0")
            t.delete_new("C3", "o4")
            written_new.update({("C1", "o2"), ("C3", "o4"), ("C1", "n0")})

        writers = [threading.Thread(target=old_service), threading.Thread(target=new_service)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        end = time.time()
        t.caught_up("forward", end)
        t.caught_up("reverse", end)
        # One more pass of each past the other's last writes (their records are echoes to skip).
        again = time.time()
        t.caught_up("forward", again)
        t.caught_up("reverse", again)
    forward, reverse = fwd["summary"], rev["summary"]
    assert forward["direction"] == "forward" and reverse["direction"] == "reverse"

    assert t.scan(t.new) == t.expected_new()  # new == transform(old), item for item
    t.assert_old_is_inverse_of_new(written_new)
    # No echo was replayed: each direction wrote once per direct write on its source table.
    direct_old, direct_new = t.writes["old"] - before["old"], t.writes["new"] - before["new"]
    assert reverse["puts"] + reverse["deletes"] == direct_new, reverse
    assert forward["puts"] + forward["deletes"] == direct_old, forward
    assert forward["echoes"] > 0 and reverse["echoes"] > 0
    assert forward["skipped"] == {} and reverse["skipped"].get("no-raw", 0) == 0
    # What went over the wire agrees: forward sent at most one request per direct old-table write into
    # the new table (a page keeps the last write per key), none of the reverse writes came back.
    assert 0 < t.sent[t.new] - sent_before[t.new] <= direct_old
    assert 0 < t.sent[t.old] - sent_before[t.old] <= 2 * direct_new  # a C1 write also deletes "Acme\u200b"


def test_flip_back_rehearsal_loses_no_write(boto_clients, tmp_path):
    """Forward sync, the switch, writes to the new table while reverse sync follows: then the old
    table equals inverse(new table) for every item written after the switch point."""
    t = Tables(boto_clients, tmp_path)
    for n in range(6):
        t.put_old("Acme" + ZW if n % 2 else "Acme", f"o{n}", n)
        t.put_old("Globex", f"g{n}", n)
    assert t.sync()["caught_up"]
    time.sleep(1.1)
    switch = time.time()
    written: set[tuple[str, str]] = set()
    with t.following("reverse", start=StartPosition("timestamp", at=switch)) as rev:
        for n in range(20):
            new_id, order = ("C1", f"o{n % 8}") if n % 3 else ("C2", f"g{n % 7}")
            t.put_new(new_id, order, 500 + n)
            written.add((new_id, order))
        t.delete_new("C1", "o1")   # was Acme+ZWSP's in the old table: gone under every spelling
        t.delete_new("C2", "g5")
        t.put_new("NEW-1", "x", 1)  # an entity created after the flip: no old spelling, skipped and counted
        written |= {("C1", "o1"), ("C2", "g5")}
        t.caught_up("reverse", time.time())
    summary = rev["summary"]
    t.assert_old_is_inverse_of_new(written)
    # Forward's 12 writes came before the switch: not replayed. The new entity has no old spelling.
    assert summary["skipped"] == {"before-start": 12, "no-raw": 1}
    assert summary["puts"] + summary["deletes"] == t.writes["new"] - 1
    assert summary["origin"].startswith("from ") and summary["echoes"] == 0
    # Merged identifiers went back to their primary spelling: no C1 item is left under Acme+ZWSP
    # among the keys written after the switch.
    old = t.scan(t.old)
    assert not {("Acme" + ZW, o) for _, o in written} & set(old)
    assert old[("Acme", "o5")]["v"] == {"N": "513"}  # Acme+ZWSP's o5 moved to "Acme" with its new value

    # The next run continues from the checkpoint; the start is not needed again.
    t.put_new("C2", "g0", 999)
    again = t.sync("reverse")
    assert again["origin"] == f"checkpoint of run {summary['run_id']}" and again["puts"] == 1
    assert t.scan(t.old)[("Globex", "g0")]["v"] == {"N": "999"}


def test_reverse_needs_a_start_and_skips_the_restores_writes(boto_clients, tmp_path):
    t = Tables(boto_clients, tmp_path)
    from keyshift.core.migrate.stream.source import StreamSyncError

    with pytest.raises(StreamSyncError, match="needs a start"):
        t.sync("reverse")
    # Records the new table's stream holds from before the switch (forward's catch-up) are not
    # replayed from the trim horizon: forward's writes are echoes.
    t.put_old("Globex", "g1", 1)
    t.sync()
    back = t.sync("reverse", start=StartPosition("trim-horizon"))
    assert (back["puts"], back["echoes"]) == (0, 1)


def test_cli_reverse_json_mirrors_forward_plus_direction(pipeline):
    p = pipeline
    assert p.run("restore", "--create-table", "--allow-unresolved", "--json").json()["written"] == 63
    forward = p.run("stream-sync", "--allow-unresolved", "--json").json()
    bad = p.run("stream-sync", "--reverse", "--from", "yesterday-ish", "--allow-unresolved", "--json")
    assert bad.returncode == 2 and "--from 'yesterday-ish'" in bad.message and "Traceback" not in bad.stderr
    assert p.run("stream-sync", "--from", "latest").returncode == 2  # --from goes with --reverse
    time.sleep(1.1)  # past the restore's last second: its writes are never replayed
    switch = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    p.ddb.put_item(TableName="orders_v2", Item={"customer_id": {"S": "CUST-1"}, "order_id": {"S": "ORD-NEW2"},
                                                "total": {"N": "5"}})  # a switched service, no legacy attribute
    back = p.run("stream-sync", "--reverse", "--from", switch, "--allow-unresolved", "--json").json()
    assert set(forward) <= set(back) and back["direction"] == "reverse" and forward["direction"] == "forward"
    assert (back["puts"], back["source"], back["target"]) == (1, "orders_v2", "orders")
    item = p.ddb.get_item(TableName="orders", Key=_key("CUST-1", "ORD-NEW2"), ConsistentRead=True)["Item"]
    assert item == {**_key("CUST-1", "ORD-NEW2"), "total": {"N": "5"}}
    audit = {e["action"] for e in p.run("audit", "--json", "--limit", "50").json()}
    assert {"reverse-sync.start", "reverse-sync.complete"} <= audit
