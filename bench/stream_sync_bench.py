#!/usr/bin/env python3
"""How fast does ``run_stream_sync`` replay a stream, next to the plainest correct raw replayer?

    python bench/stream_sync_bench.py                     # 10,000 records, 4 writer threads
    python bench/stream_sync_bench.py --records 4000 --workers 2

One run, one local moto server (a child process on 127.0.0.1):

1. a source table with a NEW_AND_OLD_IMAGES stream takes ``--records`` writes: puts of realistic
   orders (``keyshift.console.demo_data``, ~2,000 clean customers), then about 10% of them
   updated and 5% deleted, so the stream holds INSERT, MODIFY and REMOVE records;
2. the keymap maps every customer to an id (no decisions needed);
3. **keyshift**: ``run_stream_sync`` from the trim horizon into a fresh target table (transform,
   per-page reduction, batches of 25 from ``--workers`` threads, checkpoint per page, audit);
4. **raw replayer**: ``GetRecords`` from the trim horizon, each record's new image (or keys) with
   the key renamed by the same keymap, the last write per key of each page, ``batch_write_item`` in
   batches of 25 from as many threads, naive retries; no checkpoint, no workspace;
5. both again with ``BatchWriteItem`` stubbed by a ``before-send`` hook (``GetRecords`` still hits
   moto, for both): what is left is reading and keyshift's own cost per record.

Both targets are checked to hold the source's every item, transformed. Rates are stream records
per wall second. Prints a Markdown table and saves JSON to ``bench/out/stream-sync-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from plan_bench import machine  # noqa: E402
from restore_bench import make_stub, save  # noqa: E402  (the same instant BatchWriteItem answer)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from keyshift.console import demo_data as dd  # noqa: E402
from keyshift.console.demo import DEMO_ENV, LocalMotoServer  # noqa: E402
from keyshift.core.aws import AwsContext  # noqa: E402
from keyshift.core.kernel.items import for_botocore  # noqa: E402
from keyshift.core.progress import run_to_completion  # noqa: E402
from keyshift.core.spec import parse_spec  # noqa: E402
from keyshift.core.migrate.stream.sync import list_shards, run_stream_sync  # noqa: E402
from keyshift.core.migrate.tables import KeySchema, create_target_table  # noqa: E402
from keyshift.core.kernel.keymap import Keymap, KeymapEntry  # noqa: E402
from keyshift.core.kernel.transform import KeyNames, Put, transform  # noqa: E402
from keyshift.core.store.workspace import Workspace  # noqa: E402

REGION = "us-east-1"
BATCH = 25
SPEC = """\
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"

[target]
table = "{target}"
partition_key = "customer_id"
legacy_attribute = "legacy_customer"
"""


# -- data ----------------------------------------------------------------------------------------
def fill_source(ddb: Any, n: int, seed: int = 7) -> tuple[set[str], int]:
    """Write ``n`` stream records into ``orders``: puts, then updates and deletes of some of them."""
    rng = random.Random(seed)
    customers = [f"Customer {i:04d} Ltd" for i in range(2_000)]
    puts = int(n / 1.15)
    items = [dd.order_item(rng.choice(customers), f"ORD-{i:07d}", rng) for i in range(puts)]
    updates = [dict(item, status={"S": "shipped"}) for item in rng.sample(items, int(puts * 0.10))]
    deletes = rng.sample(items, n - puts - len(updates))

    def send(requests: list[dict]) -> None:
        for i in range(0, len(requests), BATCH):
            request = {"orders": requests[i:i + BATCH]}
            while request:
                request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    send([{"PutRequest": {"Item": i}} for i in items])
    send([{"PutRequest": {"Item": i}} for i in updates])
    send([{"DeleteRequest": {"Key": {"customer": i["customer"], "order_id": i["order_id"]}}} for i in deletes])
    return {i["customer"]["S"] for i in items}, puts + len(updates) + len(deletes)


# -- the two replayers ---------------------------------------------------------------------------
def keyshift_replay(root: Path, spec_text: str, keymap: Keymap, endpoint: str, workers: int,
                    hooks: list[tuple[str, Any]] | None = None) -> dict:
    """run_stream_sync once from the trim horizon into the spec's target; records per wall second."""
    ws = Workspace(root / f"ws-{time.monotonic_ns()}")
    aws = AwsContext(endpoint_url=endpoint, region=REGION, hooks=list(hooks or []))
    ddb, streams = aws.client("dynamodb"), aws.client("dynamodbstreams")
    t0, cpu0 = time.perf_counter(), time.process_time()
    summary = run_to_completion(run_stream_sync(ws, parse_spec(spec_text), keymap, ddb=ddb, streams=streams,
                                                operator="bench", workers=workers, accept_gap=True))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    ws.close()
    return {"records": summary["records"], "seconds": wall, "cpu_seconds": cpu, "rate": summary["records"] / wall}


def raw_replay(keymap: Keymap, names: KeyNames, table: str, endpoint: str, workers: int,
               stub: Callable[..., Any] | None = None) -> dict:
    """The plainest correct replayer: every shard from its trim horizon, per page the last write
    per key, batches from a thread pool, naive retries. No workspace, no checkpoints."""
    session = boto3.session.Session(region_name=REGION)
    config = Config(max_pool_connections=max(10, workers), account_id_endpoint_mode="disabled")
    ddb = session.client("dynamodb", endpoint_url=endpoint, config=config)
    streams = session.client("dynamodbstreams", endpoint_url=endpoint, config=config)
    if stub is not None:
        ddb.meta.events.register("before-send.dynamodb.BatchWriteItem", stub)
    arn = ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]

    def write(requests: list[dict]) -> None:
        request = {table: requests}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    records = 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for shard in list_shards(streams, arn):
            it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                page = streams.get_records(ShardIterator=it, Limit=1000)
                it = page.get("NextShardIterator")
                if not page["Records"]:
                    break
                last: dict[tuple, dict] = {}
                for rec in page["Records"]:
                    body = rec["dynamodb"]
                    new_id = keymap.entries[body["Keys"]["customer"]["S"]].new_id
                    key = (new_id, body["Keys"]["order_id"]["S"])
                    if rec["eventName"] == "REMOVE":
                        last[key] = {"DeleteRequest": {"Key": {"customer_id": {"S": new_id},
                                                               "order_id": body["Keys"]["order_id"]}}}
                    else:
                        item = dict(body["NewImage"], customer_id={"S": new_id},
                                    legacy_customer=body["NewImage"]["customer"])
                        del item["customer"]
                        last[key] = {"PutRequest": {"Item": item}}
                records += len(page["Records"])
                requests = list(last.values())
                list(pool.map(write, [requests[i:i + BATCH] for i in range(0, len(requests), BATCH)]))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"records": records, "seconds": wall, "cpu_seconds": cpu, "rate": records / wall}


def check_target(ddb: Any, table: str, keymap: Keymap, names: KeyNames) -> int:
    """Assert ``table`` holds transform(orders) exactly; returns its item count."""
    def scan(name: str) -> list[dict]:
        return [i for p in ddb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True) for i in p["Items"]]

    expected = {}
    for item in scan("orders"):
        out = transform(item, keymap, names)
        assert isinstance(out, Put)
        expected[(out.item["customer_id"]["S"], out.item["order_id"]["S"])] = for_botocore(out.item)
    actual = {(i["customer_id"]["S"], i["order_id"]["S"]): i for i in scan(table)}
    if actual != expected:
        raise SystemExit(f"{table}: {len(actual)} items, expected {len(expected)}; contents differ")
    return len(actual)


# -- the run -------------------------------------------------------------------------------------
def measure(n: int, workers: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="keyshift-sync-bench-") as tmp, \
            LocalMotoServer(log=Path(tmp) / "moto.log") as server:
        root, endpoint = Path(tmp), server.endpoint_url
        ddb = AwsContext(endpoint_url=endpoint, region=REGION).client("dynamodb")
        ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                         StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                         **KeySchema("customer", "S", "order_id", "S").definition())
        t0 = time.perf_counter()
        customers, records = fill_source(ddb, n)
        keymap = Keymap("bench", {c: KeymapEntry(f"ID-{c.split()[1]}", "rule") for c in customers})
        names = KeyNames("customer", "order_id", "customer_id", "legacy_customer")
        print(f"  source: {records:,} stream records ({time.perf_counter() - t0:.1f}s to write)",
              file=sys.stderr, flush=True)
        result: dict[str, Any] = {"records": records, "workers": workers}
        for mode in ("moto", "stub"):
            runs: dict[str, list[dict]] = {"keyshift": [], "raw": []}
            for r in range(repeat):
                for who in (("keyshift", "raw") if r % 2 == 0 else ("raw", "keyshift")):
                    table = f"orders_v2_{mode}_{who}_{r}"
                    spec_text = SPEC.format(target=table)
                    create_target_table(ddb, parse_spec(spec_text), KeySchema("customer_id", "S", "order_id", "S"))
                    stub = make_stub()[0] if mode == "stub" else None
                    if who == "keyshift":
                        run = keyshift_replay(root, spec_text, keymap, endpoint, workers,
                                              hooks=[("before-send.dynamodb.BatchWriteItem", stub)] if stub else None)
                    else:
                        run = raw_replay(keymap, names, table, endpoint, workers, stub)
                    if mode == "moto":
                        run["table_items"] = check_target(ddb, table, keymap, names)
                    runs[who].append(run)
                    print(f"  {mode} {who:8s} {run['rate']:8,.0f} records/s ({run['seconds']:.2f}s, "
                          f"{run['cpu_seconds']:.2f} CPU-s)", file=sys.stderr, flush=True)
            best = {who: max(rs, key=lambda x: x["rate"]) for who, rs in runs.items()}
            result[mode] = {**best, "ratio": best["keyshift"]["rate"] / best["raw"]["rate"], "runs": runs}
    return result


def report(r: dict, info: dict[str, str]) -> str:
    def row(label: str, part: dict) -> str:
        ks, raw = part["keyshift"], part["raw"]
        return (f"| {label} | {ks['rate']:,.0f} | {raw['rate']:,.0f} | **{part['ratio']:.0%}** | "
                f"{ks['seconds']:.2f} / {raw['seconds']:.2f} | {ks['cpu_seconds']:.2f} / {raw['cpu_seconds']:.2f} |")

    return "\n".join([
        f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']} RAM, Python {info['python']}, "
        f"{info['platform']}; {info['date']}",
        f"{r['records']:,} stream records (INSERT, MODIFY, REMOVE), {r['workers']} writer threads",
        "",
        "| run | keyshift records/s | raw replayer records/s | ratio | wall s (keyshift / raw) "
        "| CPU s (keyshift / raw) |",
        "|---|---:|---:|---:|---:|---:|",
        row("moto server, real HTTP", r["moto"]),
        row("BatchWriteItem stubbed (`before-send`)", r["stub"]),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000, help="stream records [default: 10000]")
    parser.add_argument("--workers", type=int, default=4, help="writer threads for both [default: 4]")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved runs of each; best kept [default: 2]")
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith(("AWS_", "KEYSHIFT_"))]:
        del os.environ[key]
    os.environ.update(DEMO_ENV)
    OUT.mkdir(exist_ok=True)
    info = machine()
    print(f"stream-sync bench: {args.records:,} records, {args.workers} workers", file=sys.stderr, flush=True)
    result = measure(args.records, args.workers, max(1, args.repeat))
    print(report(result, info))
    save("stream-sync", info, result)


if __name__ == "__main__":
    main()
