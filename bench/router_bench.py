#!/usr/bin/env python3
"""The router library for services: the cost of ``table()``, flag reads per minute, time to switch.

    python bench/router_bench.py                        # all three, 60 s of reads, 10 flips
    python bench/router_bench.py --seconds 20 --flips 5 --ttl 1.0 --ttl 0.5

One local moto server (a child process on 127.0.0.1) holding the control table and the flag item
(written per the schema of docs/cutover.md, as ``flag init`` / ``flag flip`` write them):

1. **warm ``table()``**: one router whose flag was read once (TTL one hour), ``table()`` called
   1,000,000 times per run, ``--runs`` runs, nanoseconds per call, median (and the same for
   ``state()``). Beside it, for scale: ``time.monotonic()`` alone, and one ``GetItem`` of the flag
   item against moto, what the seed's team paid per access (median of 200). Target < 1 µs.
2. **flag reads per router per minute**: ``--routers`` routers (each its own client, like that many
   processes), each called by ``--threads`` threads in a tight loop for ``--seconds``; every
   ``GetItem`` counted by a ``before-call`` hook. Target ≤ 60 / TTL per router.
3. **time to switch**: 50 threads, each its own router (service instance) and client, call
   ``table()`` every millisecond; the flag is flipped (compare-and-set ``UpdateItem``, old ↔ new)
   ``--flips`` times, each after a random pause of 1–2 TTLs so flips land at any phase of the
   routers' caches. Per flip: the slowest router's first answer with the new table minus the
   flip's acknowledgement. Compared with TTL + the slowest flag read seen (``before-call`` to
   ``after-call`` of the routers' GetItem calls). Target: within TTL + one read.

Saves JSON to ``bench/out/router-<UTC time>.json``.
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

from keyshift.console.demo import DEMO_ENV, LocalMotoServer  # noqa: E402
from keyshift.core.router import MigrationRouter  # noqa: E402

REGION = "us-east-1"
CONTROL, FLAG, OLD, NEW = "keyshift-control", "orders-customer-id", "orders", "orders-v2"
KEY = {"pk": {"S": f"flag#{FLAG}"}, "sk": {"S": "state"}}


def client(session: Any, endpoint: str) -> Any:
    from botocore.config import Config

    return session.client("dynamodb", endpoint_url=endpoint, region_name=REGION,
                          config=Config(connect_timeout=1, read_timeout=2, max_pool_connections=4,
                                        retries={"mode": "standard", "max_attempts": 2}))


def setup(ddb: Any) -> None:
    ddb.create_table(TableName=CONTROL, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    ddb.put_item(TableName=CONTROL, Item={**KEY, "state": {"S": "old"}, "version": {"N": "0"},
                                          "old_table": {"S": OLD}, "new_table": {"S": NEW}})


def flip(ddb: Any, to: str) -> int:
    current = int(ddb.get_item(TableName=CONTROL, Key=KEY, ConsistentRead=True)["Item"]["version"]["N"])
    ddb.update_item(TableName=CONTROL, Key=KEY, UpdateExpression="SET #s = :s, #v = :n",
                    ConditionExpression="#v = :v", ExpressionAttributeNames={"#s": "state", "#v": "version"},
                    ExpressionAttributeValues={":s": {"S": to}, ":n": {"N": str(current + 1)},
                                               ":v": {"N": str(current)}})
    return current + 1


# -- 1. warm table() ---------------------------------------------------------------------------------

def per_call_ns(fn: Any, calls: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - t0) / calls


def warm(ddb: Any, runs: int, calls: int = 1_000_000) -> dict[str, Any]:
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, ttl_seconds=3600)
    assert router.table() == OLD
    out: dict[str, Any] = {}
    for name, fn in (("table", router.table), ("state", router.state), ("monotonic", time.monotonic)):
        samples = [per_call_ns(fn, calls) for _ in range(runs)]
        out[name] = {"median_ns": round(statistics.median(samples), 1), "min_ns": round(min(samples), 1),
                     "max_ns": round(max(samples), 1), "runs": runs, "calls_per_run": calls}
    gets = []
    for _ in range(200):
        t0 = time.perf_counter()
        ddb.get_item(TableName=CONTROL, Key=KEY, ConsistentRead=True)
        gets.append(time.perf_counter() - t0)
    out["get_item_per_access_us"] = round(statistics.median(gets) * 1e6, 1)
    return out


# -- 2. flag reads per router per minute ----------------------------------------------------------------

def reads_per_minute(session: Any, endpoint: str, ttl: float, routers: int, threads: int,
                     seconds: float) -> dict[str, Any]:
    counts = [0] * routers
    lock = threading.Lock()
    made = []
    for n in range(routers):
        c = client(session, endpoint)

        def hook(_n: int = n, **_: Any) -> None:
            with lock:
                counts[_n] += 1

        c.meta.events.register("before-call.dynamodb.GetItem", hook)
        made.append(MigrationRouter(CONTROL, FLAG, OLD, NEW, client=c, ttl_seconds=ttl, instance=f"bench-{n}"))
    calls = [0] * (routers * threads)
    stop = time.monotonic() + seconds

    def serve(slot: int, router: MigrationRouter) -> None:
        n = 0
        while time.monotonic() < stop:
            router.table()
            n += 1
        calls[slot] = n

    workers = [threading.Thread(target=serve, args=(r * threads + t, made[r]))
               for r in range(routers) for t in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    per_minute = [c / elapsed * 60 for c in counts]
    return {"ttl": ttl, "routers": routers, "threads_per_router": threads, "seconds": round(elapsed, 1),
            "reads": counts, "reads_per_router_per_minute_max": round(max(per_minute), 1),
            "reads_per_router_per_minute_median": round(statistics.median(per_minute), 1),
            "target": round(60 / ttl, 1), "table_calls": sum(calls)}


# -- 3. time to switch -----------------------------------------------------------------------------------

def switch_time(session: Any, endpoint: str, ddb: Any, ttl: float, threads: int, flips: int) -> dict[str, Any]:
    reads: list[float] = []
    lock = threading.Lock()
    routers = []
    for n in range(threads):
        c = client(session, endpoint)
        started: dict[int, float] = {}

        def before(_s: dict = started, **_: Any) -> None:
            _s[threading.get_ident()] = time.monotonic()

        def after(_s: dict = started, **_: Any) -> None:
            t0 = _s.pop(threading.get_ident(), None)
            if t0 is not None:
                with lock:
                    reads.append(time.monotonic() - t0)

        c.meta.events.register("before-call.dynamodb.GetItem", before)
        c.meta.events.register("after-call.dynamodb.GetItem", after)
        routers.append(MigrationRouter(CONTROL, FLAG, OLD, NEW, client=c, ttl_seconds=ttl, instance=f"switch-{n}"))
    for r in routers:
        r.table()
    current: list[Any] = [(-1, None)]          # (flip index, the table it routes to)
    first_seen: list[dict[int, float]] = [dict() for _ in range(flips)]
    stop = threading.Event()

    def serve(n: int, router: MigrationRouter) -> None:
        while not stop.is_set():
            idx, want = current[0]
            if idx >= 0 and n not in first_seen[idx] and router.table() == want:
                first_seen[idx][n] = time.monotonic()
            else:
                router.table()
            time.sleep(0.001)

    workers = [threading.Thread(target=serve, args=(n, r)) for n, r in enumerate(routers)]
    for w in workers:
        w.start()
    rng = random.Random(3)
    slowest, incomplete = [], 0
    state = "old"
    for idx in range(flips):
        time.sleep(rng.uniform(ttl, 2 * ttl))
        state = "new" if state == "old" else "old"
        flip(ddb, state)
        acked = time.monotonic()
        current[0] = (idx, NEW if state == "new" else OLD)
        deadline = acked + ttl + 10
        while len(first_seen[idx]) < threads and time.monotonic() < deadline:
            time.sleep(0.005)
        if len(first_seen[idx]) < threads:
            incomplete += 1
        slowest.append(max(first_seen[idx].values()) - acked)
    stop.set()
    for w in workers:
        w.join()
    one_read = max(reads)
    return {"ttl": ttl, "routers": threads, "flips": flips, "incomplete_flips": incomplete,
            "slowest_switch_s": [round(s, 3) for s in slowest],
            "slowest_switch_median_s": round(statistics.median(slowest), 3),
            "slowest_switch_max_s": round(max(slowest), 3), "flag_read_max_s": round(one_read, 3),
            "flag_read_p50_s": round(statistics.median(reads), 4), "flag_reads": len(reads),
            "bound_s": round(ttl + one_read, 3), "met": incomplete == 0 and max(slowest) <= ttl + one_read}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="runs of 1,000,000 table() calls [default: 9]")
    parser.add_argument("--ttl", type=float, action="append", help="TTL(s) to measure [default: 1.0]")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long routers are called [default: 60]")
    parser.add_argument("--routers", type=int, default=5, help="routers for the reads per minute [default: 5]")
    parser.add_argument("--threads", type=int, default=4, help="threads per router there [default: 4]")
    parser.add_argument("--switch-threads", type=int, default=50, help="routers for the switch time [default: 50]")
    parser.add_argument("--flips", type=int, default=10, help="flips for the switch time [default: 10]")
    args = parser.parse_args()
    ttls = args.ttl or [1.0]
    os.environ.update(DEMO_ENV)
    import boto3

    info = machine()
    print("machine:", ", ".join(f"{k} {v}" for k, v in info.items()))
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="keyshift-router-bench-") as tmp, \
            LocalMotoServer(log=Path(tmp) / "moto.log") as server:
        session = boto3.session.Session()
        ddb = client(session, server.endpoint_url)
        setup(ddb)
        w = result["warm"] = warm(ddb, args.runs)
        print(f"\nwarm table(): median {w['table']['median_ns']} ns per call (min {w['table']['min_ns']},"
              f" max {w['table']['max_ns']}, {args.runs} runs of 1,000,000); state() {w['state']['median_ns']} ns;"
              f" time.monotonic() alone {w['monotonic']['median_ns']} ns; a GetItem per access against moto"
              f" {w['get_item_per_access_us']} µs. Target < 1 µs: {'met' if w['table']['median_ns'] < 1000 else 'NOT MET'}")
        result["reads"], result["switch"] = [], []
        for ttl in ttls:
            r = reads_per_minute(session, server.endpoint_url, ttl, args.routers, args.threads, args.seconds)
            result["reads"].append(r)
            print(f"\nTTL {ttl} s: {r['routers']} routers x {r['threads_per_router']} threads for {r['seconds']} s,"
                  f" {r['table_calls']:,} table() calls; flag reads per router per minute: max"
                  f" {r['reads_per_router_per_minute_max']}, median {r['reads_per_router_per_minute_median']}"
                  f" (reads {r['reads']}); target <= {r['target']}:"
                  f" {'met' if r['reads_per_router_per_minute_max'] <= r['target'] else 'NOT MET'}")
            s = switch_time(session, server.endpoint_url, ddb, ttl, args.switch_threads, args.flips)
            result["switch"].append(s)
            print(f"TTL {ttl} s: {s['routers']} routers, {s['flips']} flips: slowest router switched after"
                  f" median {s['slowest_switch_median_s']} s, max {s['slowest_switch_max_s']} s"
                  f" (per flip {s['slowest_switch_s']}); slowest flag read {s['flag_read_max_s']} s"
                  f" (p50 {s['flag_read_p50_s']} s, {s['flag_reads']} reads); bound TTL + one read"
                  f" {s['bound_s']} s: {'met' if s['met'] else 'NOT MET'}")
    (HERE / "out").mkdir(exist_ok=True)
    save("router", info, result)


if __name__ == "__main__":
    main()
