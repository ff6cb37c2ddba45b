"""The guarantee of brief section 5, tested: for any interleaving of source writes, restore and
stream replay, the new table ends equal to transform(old table).

Against the moto server fixture (real HTTP, real DynamoDB Streams records). The restore is the real
``run_restore`` with one writer and a dump of one item per file, so it sends one batch per item in
dump order; a ``before-send`` hook on its client runs the interleaving's next actions (source puts
and deletes, stream-sync passes) just before each batch goes out. Then more actions, then the
design's last step: a stream sync after the restore has completed (it replays from the trim
horizon by itself). ``run_verify`` and a direct scan both check the result.

The keymap merges two raw identifiers onto one new id (``Acme`` and ``Acme`` + ZWSP, with
``Acme`` winning every item conflict) and drops a third, so collisions under streaming are covered.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keyshift.console.demo_data import item_line
from keyshift.core.aws import AwsContext
from keyshift.core.kernel.items import for_botocore
from keyshift.core.progress import run_to_completion
from keyshift.core.migrate.restore import run_restore
from keyshift.core.spec import parse_spec
from keyshift.core.migrate.stream.sync import latest_stream_sync, run_stream_sync, watermark
from keyshift.core.migrate.tables import KeySchema, create_target_table
from keyshift.core.kernel.keymap import Keymap, KeymapEntry, sort_key_json
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.migrate.verify.run import run_verify
from keyshift.core.store.workspace import Workspace

pytestmark = pytest.mark.e2e

CUSTOMERS = ("Acme", "Acme\u200b", "Globex", "Initech")
ORDERS = ("o1", "o2")
KEYMAP = Keymap(
    version="convergence-test",
    entries={"Acme": KeymapEntry("C1", "rule"), "Acme\u200b": KeymapEntry("C1", "decision:1"),
             "Globex": KeymapEntry("C2", "rule"), "Initech": KeymapEntry(None, "decision:2", "test")},
    winners={("C1", sort_key_json({"S": o})): "Acme" for o in ORDERS},
)

SPEC = """
[source]
table = "{source}"
partition_key = "customer"
sort_key = "order_id"

[target]
table = "{target}"
partition_key = "customer_id"
legacy_attribute = "legacy_customer"
"""


# -- a small world per example -------------------------------------------------------------------
class Scenario:
    """Fresh source and target tables (unique names: examples share one server) and a workspace."""

    def __init__(self, clients: Any, root: Path) -> None:
        tag = uuid.uuid4().hex[:8]
        self.ddb, self.streams = clients.dynamodb, clients.dynamodbstreams
        self.endpoint = clients.endpoint_url
        self.spec = parse_spec(SPEC.format(source=f"src_{tag}", target=f"dst_{tag}"))
        self.names = KeyNames.from_spec(self.spec)
        self.root = root / tag
        self.root.mkdir(parents=True)
        self.ws = Workspace(self.root / ".keyshift")
        self.ddb.create_table(
            TableName=self.spec.source.table, BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            **KeySchema("customer", "S", "order_id", "S").definition())
        create_target_table(self.ddb, self.spec, KeySchema("customer_id", "S", "order_id", "S"))
        self.syncs = 0

    # source writes ---------------------------------------------------------------------------
    def act(self, action: tuple) -> None:
        kind = action[0]
        if kind == "put":
            _, customer, order, value = action
            item = {"customer": {"S": customer}, "order_id": {"S": order}, "v": {"N": str(value)},
                    "blob": {"B": bytes([value])}}
            self.ddb.put_item(TableName=self.spec.source.table, Item=item)
        elif kind == "delete":
            _, customer, order = action
            self.ddb.delete_item(TableName=self.spec.source.table,
                                 Key={"customer": {"S": customer}, "order_id": {"S": order}})
        elif kind == "sync":
            self.sync()
        else:  # pragma: no cover - the strategies make only the kinds above
            raise AssertionError(action)

    def sync(self) -> dict:
        """One stream-sync run to the tip of every shard (it continues from the last run's checkpoint)."""
        self.syncs += 1
        return run_to_completion(run_stream_sync(self.ws, self.spec, KEYMAP, ddb=self.ddb, streams=self.streams,
                                                 operator="test", idle_sleep=0.01))

    @contextmanager
    def following(self, idle_sleep: float) -> Iterator[dict[str, Any]]:
        """A ``stream-sync --follow`` run in a thread for the ``with`` block; yields where its
        summary lands once it has stopped."""
        cancel = threading.Event()
        outcome: dict[str, Any] = {}

        def follow() -> None:
            outcome["summary"] = run_to_completion(run_stream_sync(
                self.ws, self.spec, KEYMAP, ddb=self.ddb, streams=self.streams, follow=True, cancel=cancel,
                operator="test", idle_sleep=idle_sleep))

        follower = threading.Thread(target=follow)
        follower.start()
        try:
            yield outcome
        finally:
            cancel.set()
            follower.join(timeout=30)

    def wait_caught_up_after(self, moment: float, timeout: float = 20) -> None:
        """Until the replay's watermark says every source write before ``moment`` is applied."""
        deadline = time.monotonic() + timeout
        while True:
            run = latest_stream_sync(self.ws)
            if run is not None and (watermark(run)["caught_up_at"] or 0) > moment:
                return
            assert time.monotonic() < deadline, "stream sync did not catch up"
            time.sleep(0.02)

    # the dump and the restore ----------------------------------------------------------------
    def dump(self) -> Path:
        """A snapshot of the source as a dump directory, one item per file (one restore batch each)."""
        directory = self.root / "dump"
        directory.mkdir()
        items = self.scan(self.spec.source.table)
        (directory / "part-9999.json").write_bytes(b"")  # an empty table still has a (empty) dump file
        for n, line in enumerate(sorted(item_line(item) for item in items.values())):
            (directory / f"part-{n:04d}.json").write_bytes(line + b"\n")
        return directory

    def restore(self, dump: Path, before_batch: list[list[tuple]]) -> dict:
        """The real restore; ``before_batch[i]`` runs just before its i-th BatchWriteItem is sent."""
        sent = [0]

        def interleave(request: Any, **_: Any) -> None:
            n = sent[0]
            sent[0] += 1
            for action in before_batch[n] if n < len(before_batch) else ():
                self.act(action)

        aws = AwsContext(endpoint_url=self.endpoint, hooks=[("before-send.dynamodb.BatchWriteItem", interleave)])
        return run_to_completion(run_restore(self.ws, self.spec, KEYMAP, ddb=aws.writer_client(),
                                             dump_uri=str(dump), fmt="ddbjson", operator="test", workers=1,
                                             checkpoint_every=0.0))

    # the check ---------------------------------------------------------------------------------
    def scan(self, table: str) -> dict[tuple, dict]:
        out = {}
        for page in self.ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page["Items"]:
                pk = "customer" if "customer" in item and table == self.spec.source.table else "customer_id"
                out[(item[pk]["S"], item["order_id"]["S"])] = item
        return out

    def expected(self) -> dict[tuple, dict]:
        """transform(old table), keyed like :meth:`scan` of the target."""
        out = {}
        for item in self.scan(self.spec.source.table).values():
            outcome = transform(item, KEYMAP, self.names)
            if isinstance(outcome, Put):
                out[(outcome.item["customer_id"]["S"], outcome.item["order_id"]["S"])] = for_botocore(outcome.item)
        return out


# -- strategies ------------------------------------------------------------------------------------
_put = st.tuples(st.just("put"), st.sampled_from(CUSTOMERS), st.sampled_from(ORDERS), st.integers(0, 9))
_delete = st.tuples(st.just("delete"), st.sampled_from(CUSTOMERS), st.sampled_from(ORDERS))
_write = st.one_of(_put, _put, _delete)
_action = st.one_of(_write, _write, st.just(("sync",)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          database=None)
@given(before_dump=st.lists(_write, max_size=8),
       during_restore=st.lists(st.lists(_action, max_size=3), max_size=8),
       after_restore=st.lists(_action, max_size=5))
# The two races of brief section 5, always tried (random examples find them too, but not every run):
# a stale restore put lands after the replay applied a newer write, or resurrects a deleted item.
@example(before_dump=[("put", "Globex", "o1", 0)], during_restore=[[("put", "Globex", "o1", 1), ("sync",)]],
         after_restore=[])
@example(before_dump=[("put", "Acme", "o2", 3)], during_restore=[[("delete", "Acme", "o2"), ("sync",)]],
         after_restore=[])
def test_any_interleaving_of_writes_restore_and_replay_converges(boto_clients, tmp_path, before_dump,
                                                                 during_restore, after_restore):
    world = Scenario(boto_clients, tmp_path)
    for action in before_dump:
        world.act(action)
    dump = world.dump()
    world.restore(dump, during_restore)
    for action in after_restore:
        world.act(action)
    summary = world.sync()  # design (a)'s last step: the replay after the restore completed
    assert summary["caught_up"]
    # The replay now in force started from the trim horizon after the restore completed.
    assert latest_stream_sync(world.ws).params["restores_seen"]

    assert world.scan(world.spec.target.table) == world.expected()
    result = run_to_completion(run_verify(world.ws, world.spec, world.ddb, keymap=KEYMAP, segments=2,
                                          operator="test"))
    assert result.equal, result.summary
    world.ws.close()


def test_the_race_is_real_and_the_replay_after_the_restore_undoes_it(boto_clients, tmp_path):
    """A stale restore put lands after the replay applied a newer write; the final replay fixes it.

    The negative control for the property above: without the design's last step the new table
    would keep the dump's older version.
    """
    world = Scenario(boto_clients, tmp_path)
    world.act(("put", "Globex", "o1", 1))
    dump = world.dump()
    # Before the restore's one batch goes out: the source moves on, and a replay applies it.
    world.restore(dump, [[("put", "Globex", "o1", 2), ("sync",)]])
    stale = world.scan(world.spec.target.table)[("C2", "o1")]
    assert stale["v"] == {"N": "1"}, "the restore's put of the dump's version landed last"
    summary = world.sync()
    assert summary["restarts"] == 0 and summary["origin"] == "trim-horizon"  # a new run, from the start
    assert world.scan(world.spec.target.table)[("C2", "o1")]["v"] == {"N": "2"}
    assert world.scan(world.spec.target.table) == world.expected()


def test_a_following_replay_restarts_by_itself_when_the_restore_completes(boto_clients, tmp_path):
    """stream-sync --follow runs through the whole restore while the source keeps changing."""
    world = Scenario(boto_clients, tmp_path)
    for n in range(6):
        world.act(("put", CUSTOMERS[n % 4], ORDERS[n % 2], n))
    dump = world.dump()
    with world.following(idle_sleep=0.05) as outcome:
        world.wait_caught_up_after(0)  # following before the restore starts
        writes = [[("put", CUSTOMERS[n % 4], ORDERS[(n + 1) % 2], 10 + n), ("delete", CUSTOMERS[(n + 2) % 4], "o1")]
                  for n in range(6)]
        world.restore(dump, writes)
        world.act(("put", "Globex", "o2", 42))
        world.wait_caught_up_after(time.time() + 0.01)
    summary = outcome["summary"]
    assert summary["state"] == "stopped" and summary["restarts"] >= 1
    assert world.scan(world.spec.target.table) == world.expected()


# -- verify while the source is live ---------------------------------------------------------------
def test_verify_while_live_reports_a_mismatch_only_if_it_outlasts_stream_sync(boto_clients, tmp_path):
    world = Scenario(boto_clients, tmp_path)
    for n in range(6):
        world.act(("put", CUSTOMERS[n % 4], ORDERS[n % 2], n))
    world.restore(world.dump(), [])
    world.sync()

    # Control: a write the replay has not applied yet is a real difference to a one-off verify.
    world.act(("put", "Globex", "o1", 7))
    control = run_to_completion(run_verify(world.ws, world.spec, world.ddb, keymap=KEYMAP, segments=2, live=False))
    assert (control.summary["different"], control.summary["live"]) == (1, False)
    world.sync()

    with world.following(idle_sleep=3.0):
        world.wait_caught_up_after(time.time())
        # The follower now sleeps ~3 s: these writes are still unapplied when verify looks at them.
        world.act(("put", "Globex", "o1", 8))
        world.act(("delete", "Acme", "o1"))
        result = run_to_completion(run_verify(world.ws, world.spec, world.ddb, keymap=KEYMAP, segments=2,
                                              settle_margin=0.05))  # live: detected from the workspace
    s = result.summary
    assert s["live"] and s["equal"], s
    # The changed item waited for the sync (the deleted one too, unless the sync had caught up by the
    # time the extra-item pass got to it).
    assert s["cleared_by_sync"] >= 1 and s["unsettled"] == 0


def test_verify_live_without_a_running_sync_reports_offenders_as_unsettled(boto_clients, tmp_path):
    world = Scenario(boto_clients, tmp_path)
    world.act(("put", "Globex", "o1", 1))
    world.restore(world.dump(), [])
    world.act(("put", "Globex", "o1", 2))  # no stream sync runs: it stays behind
    result = run_to_completion(run_verify(world.ws, world.spec, world.ddb, keymap=KEYMAP, segments=1, live=True,
                                          settle_timeout=5))
    s = result.summary
    assert not s["equal"] and (s["different"], s["unsettled"], s["cleared_by_sync"]) == (1, 1, 0)


def test_a_second_replay_is_refused_while_one_is_following(boto_clients, tmp_path):
    from keyshift.core.migrate.stream.sync import StreamSyncError

    world = Scenario(boto_clients, tmp_path)
    world.restore(world.dump(), [])
    with world.following(idle_sleep=0.05):
        world.wait_caught_up_after(0)
        with pytest.raises(StreamSyncError, match="is still running"):
            world.sync()
    assert world.sync()["caught_up"]  # once it has stopped, the next run continues from its checkpoint


def test_replay_retries_unprocessed_items_and_throttles_until_applied(boto_clients, tmp_path):
    """The replay's writes go through the restore's retry loop: nothing held back is lost."""
    from faults import batch_write_faults

    world = Scenario(boto_clients, tmp_path)
    world.restore(world.dump(), [])
    for n in range(40):
        world.act(("put", CUSTOMERS[n % 4], f"o{n}", n % 10))
    hooks, calls = batch_write_faults(world.spec.target.table)
    faulty = AwsContext(endpoint_url=world.endpoint, hooks=hooks).client("dynamodb")
    summary = run_to_completion(run_stream_sync(world.ws, world.spec, KEYMAP, ddb=faulty, streams=world.streams,
                                                operator="test", workers=3))
    assert calls["held"] > 0 and calls["throttled"] > 0
    assert summary["retries"] >= calls["held"] and summary["throttles"] >= calls["throttled"]
    assert world.scan(world.spec.target.table) == world.expected()


def test_a_replay_closed_by_its_driver_is_recorded_as_stopped(boto_clients, tmp_path):
    world = Scenario(boto_clients, tmp_path)
    world.act(("put", "Globex", "o1", 1))
    gen = run_stream_sync(world.ws, world.spec, KEYMAP, ddb=world.ddb, streams=world.streams, follow=True,
                          operator="test", idle_sleep=0.01)
    for _ in range(3):
        next(gen)
    gen.close()  # what a cancelled worker or a KeyboardInterrupt in the driver does
    run = latest_stream_sync(world.ws)
    assert run.state == "stopped" and run.counters["records"] == 1
    assert world.sync()["origin"] == f"checkpoint of run {run.id}"
