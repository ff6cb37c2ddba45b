#!/usr/bin/env python3
"""Records/s through the Lambda handler (writes stubbed) against a loop that only parses the events.

    python bench/lambda_bench.py                         # 6,000 stream records, batches of 1,000, 5 rounds
    python bench/lambda_bench.py --items 4000 --batch 100 --repeat 7

1. A local moto server; an old table with a NEW_AND_OLD_IMAGES stream takes ``--items`` puts of
   realistic orders (``keyshift.console.demo_data``: lists of maps, string sets, binary on about
   one order in ten), then 10% of them updated and 5% deleted. Its stream's real ``GetRecords``
   output becomes Lambda events of ``--batch`` records (``keyshift.core.kernel.lambda_events``),
   kept as JSON text, as Lambda's runtime receives them.
2. A keymap artifact mapping every customer to an id is written to the server's S3; the handler
   is configured by it (``KEYSHIFT_KEYMAP_URI``), as in production.
3. Alternating, ``--repeat`` rounds of:
   - **bare loop**: ``json.loads`` of each event (the standard library's, which is what Lambda's
     Python runtime uses to hand the function its event) and a walk over its records: the floor.
   - **handler**: ``json.loads`` of each event, then ``handler(event, context)``: sort, transform,
     reduce, ``BatchWriteItem`` bodies built and sent through botocore, answered at once by a
     ``before-send`` hook (no network, no moto), plus the per-invocation ``HeadObject`` of the
     keymap, which does reach the moto server (it is part of every invocation's cost).
4. The handler's writes are checked once: every request a stubbed call received, per new key,
   equals transform() of the old table's final item (or a delete).

Rates are stream records per wall second and per CPU second of this process (``process_time``:
on a shared machine the wall clock also counts other people's work); medians over the rounds,
ratio = handler / bare loop, target >= 0.5. Prints a Markdown table; saves JSON to ``bench/out/lambda-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

import boto3  # noqa: E402
from botocore.awsrequest import AWSResponse  # noqa: E402

from keyshift.console import demo_data as dd  # noqa: E402
from keyshift.console.demo import DEMO_ENV, LocalMotoServer  # noqa: E402
from keyshift.core.kernel.keymap import Keymap, KeymapEntry  # noqa: E402
from keyshift.core.kernel.lambda_events import lambda_event  # noqa: E402
from keyshift.core.kernel.lambda_handler import Handler  # noqa: E402
from keyshift.core.kernel.transform import KeyNames, Put, transform  # noqa: E402
from keyshift.core.resolve.keymap_build import KeymapBuild, keymap_document  # noqa: E402

NAMES = KeyNames("customer", "order_id", "customer_id", None)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any):
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def stub_writes(client: Any, sink: list | None) -> None:
    """Answer every BatchWriteItem at once (HTTP 200, nothing unprocessed); keep the bodies in
    ``sink`` when given (the correctness check)."""

    def answer(request: Any, **_: Any) -> AWSResponse:
        if sink is not None:
            sink.append(request.body)
        return AWSResponse(request.url, 200, {}, _Raw(b'{"UnprocessedItems":{}}'))

    client.meta.events.register("before-send.dynamodb.BatchWriteItem", answer)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def build(server_url: str, items: int, batch: int, seed: int) -> tuple[list[bytes], dict, int]:
    """(event JSON texts, transform(old table) by new key, record count)."""
    kw = {"endpoint_url": server_url, "region_name": "us-east-1"}
    ddb, s3, streams = boto3.client("dynamodb", **kw), boto3.client("s3", **kw), boto3.client("dynamodbstreams", **kw)
    ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                     KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                                {"AttributeName": "order_id", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                           {"AttributeName": "order_id", "AttributeType": "S"}])
    rng = random.Random(seed)
    names = dd.customer_names(400, rng)
    orders = [dd.order_item(rng.choice(names), f"ORD-{i:07d}", rng) for i in range(items)]
    from keyshift.core.kernel.items import for_botocore

    for item in orders:
        ddb.put_item(TableName="orders", Item=for_botocore(item))
    for item in rng.sample(orders, items // 10):
        ddb.put_item(TableName="orders", Item=for_botocore({**item, "status": {"S": "updated"}}))
    for item in rng.sample(orders, items // 20):
        ddb.delete_item(TableName="orders", Key={k: item[k] for k in ("customer", "order_id")})
    entries = {n: KeymapEntry(f"C-{i:05d}", "rule") for i, n in enumerate(sorted(set(names)))}
    migration = {"source_table": "orders", "target_table": "orders_v2", **NAMES.to_migration(),
                 "new_identifiers": "hold", "hold_table": None, "echo_table": None}
    keymap = Keymap("bench", entries, {}, {}, {}, migration)
    s3.create_bucket(Bucket="keymaps")
    s3.put_object(Bucket="keymaps", Key="keymap.json",
                  Body=json.dumps(keymap_document(KeymapBuild(keymap, [], {}), operator="bench")).encode())
    arn = ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = streams.get_records(ShardIterator=it, Limit=1000)
            records.extend(page["Records"])
            it = page.get("NextShardIterator") if page["Records"] else None
    events = [json.dumps(lambda_event(records[i:i + batch], arn)).encode() for i in range(0, len(records), batch)]
    expected = {}
    for page in ddb.get_paginator("scan").paginate(TableName="orders"):
        for item in page["Items"]:
            out = transform(json.loads(json.dumps(item, default=_b64)), keymap, NAMES)
            if type(out) is Put:
                expected[(out.item["customer_id"]["S"], out.item["order_id"]["S"])] = out.item
    return events, expected, len(records)


def bare(events: list[bytes]) -> tuple[float, float]:
    """(wall, CPU) seconds of parsing every event."""
    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    for text in events:
        for record in json.loads(text)["Records"]:
            n += record["dynamodb"] is not None
    return time.perf_counter() - start, time.process_time() - cpu


def through_handler(events: list[bytes], handler: Handler) -> tuple[float, float]:
    """(wall, CPU) seconds of parsing every event and handling it."""
    start, cpu = time.perf_counter(), time.process_time()
    for text in events:
        result = handler(json.loads(text), None)
        if result["batchItemFailures"]:
            raise SystemExit(f"handler reported failures: {result}")
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    for k, v in DEMO_ENV.items():
        os.environ[k] = v
    server = LocalMotoServer()
    server.start()
    try:
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
        events, expected, n = build(server.endpoint_url, args.items, args.batch, args.seed)
        handler = Handler("s3://keymaps/keymap.json", "forward")
        stub_writes(handler.ddb, None)
        # Correctness once, on a second handler (its own stub records the bodies).
        checker = Handler("s3://keymaps/keymap.json", "forward")
        sink2: list = []
        stub_writes(checker.ddb, sink2)
        for text in events:
            checker(json.loads(text), None)
        final: dict = {}
        for body in sink2:
            for requests in json.loads(body)["RequestItems"].values():
                for r in requests:
                    item = r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"]
                    final[(item["customer_id"]["S"], item["order_id"]["S"])] = r.get("PutRequest", {}).get("Item")
        got = {k: v for k, v in final.items() if v is not None}
        if got != expected:
            raise SystemExit(f"handler writes differ from transform(old table): {len(got)} vs {len(expected)}")
        through_handler(events[:1], handler)  # warm: keymap loaded, clients built
        rounds = []
        for _ in range(args.repeat):
            b, b_cpu = bare(events)
            h, h_cpu = through_handler(events, handler)
            rounds.append({"bare_s": b, "handler_s": h, "bare_cpu_s": b_cpu, "handler_cpu_s": h_cpu})
    finally:
        server.stop()
    bare_rate = statistics.median(n / r["bare_s"] for r in rounds)
    handler_rate = statistics.median(n / r["handler_s"] for r in rounds)
    bare_cpu = statistics.median(n / r["bare_cpu_s"] for r in rounds)
    handler_cpu = statistics.median(n / r["handler_cpu_s"] for r in rounds)
    size = sum(len(e) for e in events)
    result = {"records": n, "events": len(events), "event_bytes_per_record": round(size / n), "batch": args.batch, "items": args.items,
              "bare_records_per_s": round(bare_rate), "handler_records_per_s": round(handler_rate),
              "ratio": round(handler_rate / bare_rate, 3), "bare_records_per_cpu_s": round(bare_cpu),
              "handler_records_per_cpu_s": round(handler_cpu), "cpu_ratio": round(handler_cpu / bare_cpu, 3),
              "rounds": rounds, "reference": "json.loads"}
    print(f"| loop (median of {args.repeat} alternated rounds) | records/s (wall) | records per CPU second |")
    print("|---|---|---|")
    print(f"| bare: json.loads of the events | {bare_rate:,.0f} | {bare_cpu:,.0f} |")
    print(f"| handler (writes stubbed), json.loads included | {handler_rate:,.0f} | {handler_cpu:,.0f} |")
    print(f"| ratio (target >= 0.5) | {handler_rate / bare_rate:.2f} | {handler_cpu / bare_cpu:.2f} |")
    print(f"\n{n:,} records in {len(events)} events of up to {args.batch}, {size / n:,.0f} bytes of event JSON a record")
    from restore_bench import machine, save  # noqa: E402

    OUT.mkdir(exist_ok=True)
    save("lambda", machine(), result)


if __name__ == "__main__":
    main()
