#!/usr/bin/env python3
"""Forward sync lag at a steady write rate: how long after a write to the old table is it in the new one?

    python bench/stream_lag_bench.py                      # 100 writes/s for 60 s
    python bench/stream_lag_bench.py --rate 100 --seconds 30 --idle-sleep 0.1

One local moto server (a child process on 127.0.0.1), one source table ``orders`` with a
NEW_AND_OLD_IMAGES stream, one target table made by ``create_target_table``:

1. ``run_stream_sync(..., follow=True)`` runs in a thread (the CLI's ``stream-sync --follow``);
2. a writer thread puts realistic orders (``demo_data.order_item``: new items, updates of earlier
   ones, some deletes) into ``orders`` at ``--rate`` writes per second, paced to the clock, and
   notes when each write was acknowledged;
3. a ``after-call`` hook on the sync's ``BatchWriteItem`` notes when each new key was written.

The **lag** of a write is (its key's BatchWriteItem acknowledged) − (the source write acknowledged):
what a reader of the new table waits. Reported: p50, p90, p99, max over every write after a
5-second warm-up, next to **moto's own GetRecords latency** (p50/p99 of the sync's GetRecords
calls, from ``before-call``/``after-call`` hooks) and the sync's idle poll interval, the two parts
of the lag keyshift does not control. Target: p99 under 1 s. Saves JSON to
``bench/out/stream-lag-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from restore_bench import machine, save  # noqa: E402

from keyshift.console import demo_data as dd  # noqa: E402
from keyshift.console.demo import DEMO_ENV, LocalMotoServer  # noqa: E402
from keyshift.core.aws import AwsContext  # noqa: E402
from keyshift.core.kernel.keymap import Keymap, KeymapEntry  # noqa: E402
from keyshift.core.migrate.stream.sync import run_stream_sync  # noqa: E402
from keyshift.core.migrate.tables import KeySchema, create_target_table  # noqa: E402
from keyshift.core.spec import parse_spec  # noqa: E402
from keyshift.core.store.workspace import Workspace  # noqa: E402

REGION = "us-east-1"
SPEC = """\
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"

[target]
table = "orders_v2"
partition_key = "customer_id"
legacy_attribute = "legacy_customer"
"""


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank: an observed value, not an interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(rate: float, seconds: float, idle_sleep: float, warmup: float = 5.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="keyshift-lag-bench-") as tmp, \
            LocalMotoServer(log=Path(tmp) / "moto.log") as server:
        spec = parse_spec(SPEC)
        plain = AwsContext(endpoint_url=server.endpoint_url, region=REGION)
        ddb = plain.client("dynamodb")
        ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                         StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                         **KeySchema("customer", "S", "order_id", "S").definition())
        create_target_table(ddb, spec, KeySchema("customer_id", "S", "order_id", "S"))
        customers = [f"Customer {i:04d} Ltd" for i in range(200)]
        keymap = Keymap("bench", {c: KeymapEntry(f"ID-{c.split()[1]}", "rule") for c in customers})

        written_at: dict[tuple[str, str], list[float]] = {}   # new key -> sync's write acks
        source_at: list[tuple[float, tuple[str, str]]] = []   # (ack time, new key) per source write
        get_records: list[float] = []
        lock = threading.Lock()

        def after_batch(http_response: Any = None, parsed: Any = None, model: Any = None,
                        params: Any = None, **_: Any) -> None:
            now = time.perf_counter()
            body = params or {}
            with lock:
                for requests in (body.get("RequestItems") or {}).values():
                    for r in requests:
                        key = (r.get("PutRequest") or {}).get("Item") or (r.get("DeleteRequest") or {}).get("Key")
                        if key:
                            written_at.setdefault((key["customer_id"]["S"], key["order_id"]["S"]), []).append(now)

        started: dict[int, float] = {}

        def before_get(params: Any = None, context: Any = None, **_: Any) -> None:
            started[threading.get_ident()] = time.perf_counter()

        def after_get(**_: Any) -> None:
            t0 = started.pop(threading.get_ident(), None)
            if t0 is not None:
                get_records.append(time.perf_counter() - t0)

        # The hooks see botocore's parameters (before-parameter-build keeps the wire items).
        captured: dict[int, Any] = {}

        def keep_params(params: Any = None, **_: Any) -> None:
            captured[threading.get_ident()] = {"RequestItems": {t: list(v) for t, v in params["RequestItems"].items()}}

        def after_call(**kw: Any) -> None:
            after_batch(params=captured.pop(threading.get_ident(), None))

        aws = AwsContext(endpoint_url=server.endpoint_url, region=REGION, hooks=[
            ("before-parameter-build.dynamodb.BatchWriteItem", keep_params),
            ("after-call.dynamodb.BatchWriteItem", after_call),
            ("before-call.dynamodbstreams.GetRecords", before_get),
            ("after-call.dynamodbstreams.GetRecords", after_get),
        ])
        ws = Workspace(Path(tmp) / "ws")
        cancel = threading.Event()
        sync_error: list[BaseException] = []

        def sync() -> None:
            try:
                for _ in run_stream_sync(ws, spec, keymap, ddb=aws.client("dynamodb"),
                                         streams=aws.client("dynamodbstreams"), follow=True, cancel=cancel,
                                         operator="bench", accept_gap=True, idle_sleep=idle_sleep):
                    pass
            except BaseException as exc:  # reported below, not swallowed
                sync_error.append(exc)

        syncer = threading.Thread(target=sync, name="bench-sync")
        syncer.start()
        writes = int(rate * seconds)
        writers = 4  # one thread's put_item round trip on a busy moto can exceed 1/rate
        t_start = time.perf_counter()

        def writer(w: int) -> None:
            # Writer w owns the orders it creates (updates and deletes stay in one thread's order).
            from keyshift.core.kernel.items import for_botocore

            rng = random.Random(11 + w)
            live: list[dict] = []
            for n in range(w, writes, writers):
                delay = t_start + n / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                roll = rng.random()
                if live and roll < 0.2:
                    item = dict(rng.choice(live), status={"S": f"s{n}"})
                    ddb.put_item(TableName="orders", Item=item)
                elif live and roll < 0.25:
                    item = live.pop(rng.randrange(len(live)))
                    ddb.delete_item(TableName="orders", Key={"customer": item["customer"],
                                                             "order_id": item["order_id"]})
                else:
                    item = for_botocore(dd.order_item(rng.choice(customers), f"ORD-{n:07d}", rng))
                    ddb.put_item(TableName="orders", Item=item)
                    live.append(item)
                key = (keymap.entries[item["customer"]["S"]].new_id, item["order_id"]["S"])
                with lock:
                    source_at.append((time.perf_counter(), key))

        threads = [threading.Thread(target=writer, args=(w,), name=f"bench-writer-{w}") for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        achieved = writes / (time.perf_counter() - t_start)
        # Let the replay catch up with the last writes, then stop it.
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            with lock:
                if all(any(w >= t for w in written_at.get(k, ())) for t, k in sorted(source_at)[-20:]):
                    break
            time.sleep(0.05)
        cancel.set()
        syncer.join(60)
        ws.close()
        if sync_error:
            raise SystemExit(f"stream sync failed: {sync_error[0]}")

        lags, missing = [], 0
        with lock:
            for t, key in source_at:
                if t - t_start < warmup:
                    continue
                later = [w for w in written_at.get(key, ()) if w >= t]
                if later:
                    lags.append(min(later) - t)
                else:
                    missing += 1
        return {
            "rate": rate, "achieved_rate": round(achieved, 1), "seconds": seconds, "idle_sleep": idle_sleep,
            "writes": writes, "measured": len(lags), "unmatched": missing,
            "lag_p50": pct(lags, 0.50), "lag_p90": pct(lags, 0.90), "lag_p99": pct(lags, 0.99),
            "lag_max": max(lags) if lags else float("nan"),
            "get_records_calls": len(get_records),
            "get_records_p50": pct(get_records, 0.50), "get_records_p99": pct(get_records, 0.99),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="source writes per second [default: 100]")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the writer runs [default: 60]")
    parser.add_argument("--idle-sleep", type=float, default=0.25,
                        help="the sync's poll interval at the tip of every shard [default: 0.25]")
    args = parser.parse_args()
    os.environ.update(DEMO_ENV)
    r = measure(args.rate, args.seconds, args.idle_sleep)
    ms = {k: round(v * 1000, 1) for k, v in r.items() if k.startswith(("lag_", "get_records_p"))}
    print("machine:", ", ".join(f"{k} {v}" for k, v in machine().items()))
    print(f"{r['writes']:,} source writes at {r['achieved_rate']} /s for {r['seconds']:.0f} s; sync polls every"
          f" {r['idle_sleep']} s at the tip; {r['measured']:,} writes measured after a 5 s warm-up"
          f" ({r['unmatched']} unmatched)\n")
    print("| lag p50 ms | p90 ms | p99 ms | max ms | moto GetRecords p50 ms | p99 ms | GetRecords calls |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {ms['lag_p50']} | {ms['lag_p90']} | {ms['lag_p99']} | {ms['lag_max']} | {ms['get_records_p50']}"
          f" | {ms['get_records_p99']} | {r['get_records_calls']:,} |")
    verdict = "met" if r["lag_p99"] < 1.0 else "NOT MET"
    print(f"\ntarget p99 < 1 s: {verdict}")
    save("stream-lag", machine(), r)


if __name__ == "__main__":
    main()
