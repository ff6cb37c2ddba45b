"""A live writer while restore and forward sync run: after it stops and sync catches up, verify is
clean and an independent scan agrees (issue 9's reliability tests).

Everything runs as an operator would: the real ``keyshift`` command (restore, stream-sync
``--follow`` SIGKILLed mid-way and started again, verify) against the moto server, while a writer
thread in this process keeps changing the old table the whole time: puts of new orders, updates
and deletes, on clean identifiers, on both raw spellings that a ``same`` decision merged, on the
key of a decided item conflict (winner and loser), on an identifier the rules fix, and on
brand-new dirty identifiers no plan has seen. The independent check scans both tables directly
and compares the new one with transform(old) through the artifact ``keymap build --out`` wrote.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from keyshift.console.demo_data import item_line
from keyshift.core.kernel.keymap import keymap_from_document
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.migrate.stream.sync import latest_stream_sync, watermark
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace
from test_e2e_stream_sync import Pipeline, create_orders

pytestmark = pytest.mark.e2e

CLEAN = [f"CUST-{i}" for i in range(4)]
MERGED = ["Acme", "Acme\u200b"]   # one ambiguous case, decided `same` -> "Acme"
FIXED = "  Globex\u00a0"            # the rules make it "Globex"
NEW_DIRTY = ["Hooli\u200b", "Initech\u00a0Inc"]  # first seen on the stream


def _scan(ddb, table: str) -> list[dict]:
    return [i for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
            for i in page["Items"]]


def _assert_new_equals_transform_of_old(ddb, keymap, spec_path: Path) -> None:
    """The independent check: scan both tables, transform the old through the artifact's keymap.
    Where both spellings of Acme have an order, the decision's primary "Acme" stands in the new
    table; ORD-SHARED is the decided conflict: only Acme's item, never the other's."""
    names = KeyNames.from_spec(parse_spec(spec_path.read_text()))
    expected: dict[tuple[str, str], dict] = {}
    for item in sorted(_scan(ddb, "orders"), key=lambda i: i["customer"]["S"] != "Acme"):
        out = transform(item, keymap, names)
        if type(out) is Put:
            expected.setdefault((out.item["customer_id"]["S"], out.item["order_id"]["S"]), out.item)
    actual = {(i["customer_id"]["S"], i["order_id"]["S"]): i for i in _scan(ddb, "orders_v2")}
    assert actual == expected
    assert actual.get(("Acme", "ORD-SHARED"), {}).get("legacy_customer", {"S": "Acme"}) == {"S": "Acme"}


class LiveWriter(threading.Thread):
    """Changes the old table at about ``rate`` writes per second until stopped."""

    def __init__(self, ddb, rate: float = 40.0, seed: int = 5) -> None:
        super().__init__(name="live-writer", daemon=True)
        self.ddb, self.rate, self.rng = ddb, rate, random.Random(seed)
        self.stop = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def key(self, customer: str, order: str) -> dict:
        return {"customer": {"S": customer}, "order_id": {"S": order}}

    def run(self) -> None:
        rng, n = self.rng, 0
        try:
            while not self.stop.is_set():
                n += 1
                roll = rng.random()
                if roll < 0.1:   # the conflict key: both spellings of Acme write ORD-SHARED
                    customer, order = rng.choice(MERGED), "ORD-SHARED"
                elif roll < 0.15:
                    customer, order = rng.choice(NEW_DIRTY), f"ORD-N{n % 7}"
                elif roll < 0.3:
                    customer, order = rng.choice(MERGED), f"ORD-M{n % 9}"
                elif roll < 0.4:
                    customer, order = FIXED, f"ORD-G{n % 5}"
                else:
                    customer, order = rng.choice(CLEAN), f"ORD-{rng.randrange(40):03d}"
                if rng.random() < 0.15:
                    self.ddb.delete_item(TableName="orders", Key=self.key(customer, order))
                else:
                    self.ddb.put_item(TableName="orders", Item={**self.key(customer, order),
                                                                "total": {"N": str(n)}, "status": {"S": f"v{n}"}})
                self.writes += 1
                time.sleep(1.0 / self.rate)
        except BaseException as exc:  # the test fails on it, below
            self.error = exc


@pytest.fixture
def live(aws_env, boto_clients, tmp_path, run_cli) -> Pipeline:
    p = Pipeline(tmp_path, aws_env, boto_clients, run_cli)
    create_orders(p.ddb)
    for i in range(40):
        p.put(CLEAN[i % 4], f"ORD-{i:03d}", total={"N": str(i)})
    for i in range(3):
        p.put(FIXED, f"ORD-G{i}", total={"N": "7"})
    p.put("Acme", "ORD-M0", total={"N": "1"})
    p.put("Acme\u200b", "ORD-M1", total={"N": "2"})
    p.put("Acme", "ORD-SHARED", total={"N": "10"})
    p.put("Acme\u200b", "ORD-SHARED", total={"N": "20"})
    dump = tmp_path / "dump.json"
    dump.write_bytes(b"".join(item_line(i) + b"\n" for i in _scan(p.ddb, "orders")))
    assert p.run("plan", "--dump", str(dump), "--format", "ddbjson", "--json").returncode == 0
    ambiguous = [c for c in p.run("resolve", "list", "--open", "--json").json() if c["kind"] == "ambiguous"]
    assert len(ambiguous) == 1, ambiguous
    assert p.run("resolve", "decide", ambiguous[0]["id"], "same", "--id", "Acme", "--primary", "Acme",
                 "--reason", "one company").returncode == 0
    conflicts = [c for c in p.run("resolve", "list", "--open", "--json").json() if c["kind"] == "conflict"]
    assert len(conflicts) == 1, conflicts
    assert p.run("resolve", "decide", conflicts[0]["id"], "keep", "--raw", "Acme",
                 "--reason", "the clean spelling's order wins").returncode == 0
    assert p.run("resolve", "list", "--open", "--json").json() == []
    return p


def _wait_for(predicate, timeout: float, what: str, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended early: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)


def test_a_live_writer_during_restore_and_a_killed_sync_converges(live, spawn_cli, boto_clients):
    p = live
    km_path = p.tmp / "keymap.json"
    assert p.run("keymap", "build", "--out", str(km_path), "--json").returncode == 0
    writer = LiveWriter(p.ddb)
    writer.start()
    procs = []
    try:
        restore = spawn_cli(p.argv("restore", "--create-table", "--workers", "2", "--json"), p.env, p.tmp)
        procs.append(restore)
        _wait_for(lambda: "orders_v2" in p.ddb.list_tables()["TableNames"], 60, "the target table", restore)
        ws = Workspace(p.workspace, read_only=True)

        def sync_records() -> int:
            run = latest_stream_sync(ws)
            unit = run.unit("_counters") if run is not None else None
            return (unit.counters or {}).get("records", 0) if unit is not None else 0

        sync = spawn_cli(p.argv("stream-sync", "--follow", "--json"), p.env, p.tmp)
        procs.append(sync)
        _wait_for(lambda: sync_records() > 0, 60, "the first replayed records", sync)
        sync.send_signal(signal.SIGKILL)  # mid-way: no chance to save anything more
        sync.wait(30)
        out, err = restore.communicate(timeout=120)
        assert restore.returncode == 0, err.decode()[-2000:]
        time.sleep(1.0)  # the writer keeps going after the restore, as services do
        sync = spawn_cli(p.argv("stream-sync", "--follow", "--json"), p.env, p.tmp)
        procs.append(sync)
        time.sleep(1.5)
        writer.stop.set()
        writer.join(30)
        assert writer.error is None, writer.error
        stopped_at = time.time()

        def caught_up() -> bool:
            run = latest_stream_sync(ws)
            return run is not None and run.state == "running" and (watermark(run)["caught_up_at"] or 0) > stopped_at + 0.5

        _wait_for(caught_up, 90, "the replay catching up after the writer stopped", sync)
        sync.send_signal(signal.SIGTERM)
        out, err = sync.communicate(timeout=30)
        assert sync.returncode == 0, err.decode()[-2000:]
    finally:
        writer.stop.set()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert writer.writes > 50
    summary = json.loads(out)
    assert summary["state"] == "stopped" and summary["caught_up"]

    verify = p.run("verify", "--json", timeout=120)
    assert verify.returncode == 0, verify.stdout
    report = verify.json()
    assert report["equal"] is True, report

    keymap = keymap_from_document(json.loads(km_path.read_text()))
    _assert_new_equals_transform_of_old(p.ddb, keymap, p.spec_path)
    actual = {(i["customer_id"]["S"], i["order_id"]["S"]) for i in _scan(p.ddb, "orders_v2")}
    assert any(k[0] == "Acme" and k[1].startswith("ORD-M") for k in actual)


class StreamToLambda:
    """Stands in for the event source mapping: reads the old table's stream from the trim horizon
    (created after the restore, as docs/deploy.md says) and invokes the handler with batches of
    real records, retrying from the reported sequence number as Lambda does."""

    def __init__(self, streams, ddb, batch: int = 50) -> None:
        self.streams, self.batch = streams, batch
        self.arn = ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
        self.iterators: dict[str, str | None] = {}
        self.invocations = 0

    def drain(self) -> int:
        from keyshift.core import lambda_handler
        from keyshift.core.kernel.lambda_events import lambda_event

        applied = 0
        shards = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        for shard in shards:
            sid = shard["ShardId"]
            it = self.iterators.get(sid) or self.streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                page = self.streams.get_records(ShardIterator=it, Limit=self.batch)
                records = page["Records"]
                while records:
                    self.invocations += 1
                    failures = lambda_handler.handler(lambda_event(records, self.arn), None)["batchItemFailures"]
                    if not failures:
                        break
                    first = int(failures[0]["itemIdentifier"])  # retry from there, as Lambda does
                    records = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= first]
                applied += len(page["Records"])
                nxt = page.get("NextShardIterator")
                self.iterators[sid] = nxt
                if not page["Records"]:
                    break
                it = nxt
        return applied


def test_a_live_writer_with_the_lambda_handler_in_place_of_the_local_replay(live, spawn_cli, boto_clients,
                                                                             monkeypatch):
    p = live
    s3 = boto_clients.s3
    s3.create_bucket(Bucket="keymaps")
    assert p.run("keymap", "build", "--out", "s3://keymaps/orders/keymap.json", "--json").returncode == 0
    monkeypatch.setenv("KEYSHIFT_KEYMAP_URI", "s3://keymaps/orders/keymap.json")
    monkeypatch.delenv("KEYSHIFT_DIRECTION", raising=False)
    from keyshift.core import lambda_handler

    lambda_handler.reset()
    writer = LiveWriter(p.ddb)
    writer.start()
    try:
        restore = p.run("restore", "--create-table", "--workers", "2", "--json", timeout=120)
        assert restore.returncode == 0, restore.stderr
        # The mapping is created (TRIM_HORIZON) once the restore is complete; the writer goes on.
        mapping = StreamToLambda(boto_clients.dynamodbstreams, p.ddb)
        for _ in range(5):
            mapping.drain()
            time.sleep(0.3)
        writer.stop.set()
        writer.join(30)
        assert writer.error is None, writer.error
        mapping.drain()
        assert mapping.drain() == 0  # caught up: nothing left on the stream
    finally:
        writer.stop.set()
        lambda_handler.reset()
    assert writer.writes > 30 and mapping.invocations > 0
    verify = p.run("verify", "--json", timeout=120)
    assert verify.returncode == 0 and verify.json()["equal"] is True, verify.stdout
    keymap_doc = json.loads(s3.get_object(Bucket="keymaps", Key="orders/keymap.json")["Body"].read())
    _assert_new_equals_transform_of_old(p.ddb, keymap_from_document(keymap_doc), p.spec_path)
