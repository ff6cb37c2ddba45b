#!/usr/bin/env python3
"""How fast is ``run_verify`` next to a raw parallel scan of both tables, on one moto server?

    python bench/verify_bench.py                     # 20,000 items, 4 segments, 3 runs each
    python bench/verify_bench.py --repeat 5 --segments 4
    python bench/verify_bench.py --profile           # + cProfile (CPU time) of keyshift, every thread
    python bench/verify_bench.py --spy-moto          # + py-spy of the moto server during each run

The method: one process, one local moto server, and

1. **data** (as ``restore_bench.py``): ``--items`` realistic orders as a native Export-to-S3 dump
   in moto's S3, planned into a workspace, the keymap built; the old table ``orders`` holds the
   orders and the new table ``orders_v2`` (``create_target_table``) holds exactly their
   transform: a correct restore, so verify must find nothing;
2. **keyshift**: ``run_verify(ws, spec, ddb, segments=N)`` to its report (both passes, every
   check, its checkpoints and offenders in the workspace), which must say ``equal``;
3. **raw scan**: ``scan`` with ``Segment``/``TotalSegments`` = N from N threads over the old table,
   then the same over the new table (the phases verify has), every page consumed, nothing compared,
   a default boto3 client;
4. runs alternated k, r, k, r...; medians and their ratio (target: keyshift ≥ 0.85 of the raw
   scan's items scanned per second, both tables counted).

Per run: wall time, items scanned/s, this process's CPU seconds, moto's CPU seconds and RSS
(``/proc/<pid>``), requests by operation. Prints Markdown, saves ``bench/out/verify-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

import restore_bench as rb  # noqa: E402  (data, moto server, measuring, reporting)
from keyshift.console.demo import DEMO_ENV  # noqa: E402
from keyshift.core.aws import AwsContext  # noqa: E402
from keyshift.core.migrate.tables import create_target_table, target_key_schema  # noqa: E402
from keyshift.core.migrate.verify.run import run_verify  # noqa: E402
from keyshift.core.progress import run_to_completion  # noqa: E402

TARGET = 0.85
SOURCE, TARGET_TABLE = "orders", "orders_v2"


def create_source(ddb: Any) -> None:
    ddb.create_table(
        TableName=SOURCE,
        KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                   {"AttributeName": "order_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                              {"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def fill(world: rb.World, workers: int) -> None:
    """The old table and its correctly restored new table."""
    ddb, _ = world.clients()
    create_source(ddb)
    create_target_table(ddb, world.spec, target_key_schema(world.spec))
    transformed = world.items
    try:
        world.items = world.source_items
        rb.raw_run(world, SOURCE, workers)
    finally:
        world.items = transformed
    rb.raw_run(world, TARGET_TABLE, workers)
    for table in (SOURCE, TARGET_TABLE):
        count = ddb.describe_table(TableName=table)["Table"]["ItemCount"]
        if count != world.n_items:
            raise SystemExit(f"{table} holds {count} items, not {world.n_items}")


def keyshift_run(world: rb.World, segments: int, *, spy: Path | None = None, profiler: Any = None) -> dict:
    requests = rb.Requests()
    ddb = AwsContext(endpoint_url=world.endpoint, region=rb.REGION,
                     hooks=[("before-send", requests)]).client("dynamodb")
    summary: dict[str, Any] = {}

    def run() -> int:
        if profiler is not None:
            profiler.start()
        try:
            result = run_to_completion(run_verify(world.ws, world.spec, ddb, segments=segments,
                                                  keymap=world.keymap, operator="bench"))
        finally:
            if profiler is not None:
                profiler.stop()
        summary.update(result.summary)
        return summary["scanned"]["source"] + summary["scanned"]["target"]

    out = rb.timed(world, run, requests, spy)
    if not (summary["equal"] and summary["compared"] == world.n_items):
        raise SystemExit(f"keyshift verify did not find the tables equal: {summary}")
    return out


def raw_run(world: rb.World, segments: int, *, spy: Path | None = None) -> dict:
    requests = rb.Requests()
    client = boto3.session.Session(region_name=rb.REGION).client(
        "dynamodb", endpoint_url=world.endpoint, config=Config(max_pool_connections=max(10, segments)))
    client.meta.events.register("before-send", requests)

    def scan(table: str, segment: int) -> int:
        n, kwargs = 0, {"TableName": table, "Segment": segment, "TotalSegments": segments}
        while True:
            page = client.scan(**kwargs)
            n += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                return n
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def run() -> int:
        total = 0
        with ThreadPoolExecutor(max_workers=segments) as pool:
            for table in (SOURCE, TARGET_TABLE):  # one table after the other, like verify's passes
                total += sum(pool.map(lambda i: scan(table, i), range(segments)))
        return total

    out = rb.timed(world, run, requests, spy)
    if out["items"] != 2 * world.n_items:
        raise SystemExit(f"raw scan saw {out['items']} items, not {2 * world.n_items}")
    return out


def measure(world: rb.World, repeat: int, segments: int, spy: bool, moto_gc: str = "collect") -> dict:
    runs: dict[str, list[dict]] = {"keyshift": [], "raw": []}
    spies: dict[str, list[Path]] = {"keyshift": [], "raw": []}
    for r, who in enumerate(itertools.islice(itertools.cycle(("keyshift", "raw")), 2 * repeat)):
        spy_path = world.root / f"spy-verify-{who}-{r}.txt" if spy else None
        gc_before = rb.settle_gc(world, moto_gc)
        run = keyshift_run(world, segments, spy=spy_path) if who == "keyshift" else raw_run(world, segments,
                                                                                           spy=spy_path)
        run["moto_gc_before_seconds"] = gc_before
        runs[who].append(run)
        if spy_path is not None:
            spies[who].append(spy_path)
        reqs = ", ".join(f"{n['requests']} {op}" for op, n in run["requests"].items())
        print(f"  verify {who:8s} {run['rate']:6,.0f} items/s  {run['seconds']:6.1f} s  client "
              f"{run['cpu_seconds']:5.1f} CPU-s  moto {run['moto_cpu_seconds']:5.1f} CPU-s  RSS "
              f"{run['moto_rss'] / 2**20:,.0f} MiB  GC {run['moto_gc_seconds']:.2f} s ({run['moto_gc_full']} full)  ({reqs})", file=sys.stderr, flush=True)
    out = rb.summarize(runs)
    out["condition"] = "verify"
    if spy:
        out["moto_profile"] = {who: rb._merge_spy(paths) for who, paths in spies.items() if paths}
    return out


def report(c: dict, info: dict[str, str], n_items: int, segments: int) -> str:
    lines = [
        f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']} RAM, Python {info['python']}, "
        f"boto3 {info['boto3']}, botocore {info['botocore']}, moto {info['moto']}, {info['platform']}; "
        f"{info['date']}",
        f"{n_items:,} items in each table, {segments} segments; rates are items scanned per second, "
        "both tables counted",
        "",
        "| run | reader | wall s | items/s | client CPU s | moto CPU s | moto GC s (full) | moto RSS MiB | requests |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    order = [(who, c["runs"][who][i]) for i in range(len(c["runs"]["raw"])) for who in ("keyshift", "raw")
             if i < len(c["runs"][who])]
    for n, (who, r) in enumerate(order, 1):
        reqs = ", ".join(f"{v['requests']} {op}" for op, v in r["requests"].items())
        lines.append(f"| {n} | {who} | {r['seconds']:.1f} | {r['rate']:,.0f} | {r['cpu_seconds']:.1f} | "
                     f"{r['moto_cpu_seconds']:.1f} | {r['moto_gc_seconds']:.2f} ({r['moto_gc_full']}) | "
                     f"{r['moto_rss'] / 2**20:,.0f} | {reqs} |")
    k, r = c["keyshift"], c["raw"]
    ok = "met" if c["ratio"] >= TARGET else "BELOW TARGET"
    lines += ["", f"medians: keyshift {k['rate']:,.0f} items/s, raw {r['rate']:,.0f} items/s, ratio "
              f"**{c['ratio']:.2f}** ({ok}, target ≥ {TARGET}); per-pair ratios "
              f"{', '.join(f'{x:.2f}' for x in c['pair_ratios'])}; client CPU {k['cpu_ms_per_item']:.3f} / "
              f"{r['cpu_ms_per_item']:.3f} ms per item scanned, moto CPU {k['moto_cpu_ms_per_item']:.3f} / "
              f"{r['moto_cpu_ms_per_item']:.3f} ms (keyshift / raw)", ""]
    for who, top in (c.get("moto_profile") or {}).items():
        lines.append(f"moto's CPU during the {who} runs (py-spy, % of busy samples; self / inclusive):")
        lines += [f"    {s:5.1f}% {i:5.1f}%  {f}" for f, s, i in top]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000, help="items in each table [default: 20000]")
    parser.add_argument("--segments", type=int, default=4, help="scan segments for both [default: 4, verify's]")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each [default: 3]")
    parser.add_argument("--profile", action="store_true", help="cProfile (CPU time) one keyshift run, every thread")
    parser.add_argument("--profile-only", action="store_true", help="only the profiled run")
    parser.add_argument("--spy-moto", action="store_true", help="py-spy the moto server during each run")
    parser.add_argument("--moto-gc", choices=("collect", "asis"), default="collect",
                        help="collect: a full garbage collection in moto before every run, outside the clock "
                             "[default: collect]")
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith(("AWS_", "KEYSHIFT_"))]:
        del os.environ[key]
    os.environ.update(DEMO_ENV)
    rb.OUT.mkdir(exist_ok=True)
    info = rb.machine()
    print(f"verify bench: {args.items:,} items, {args.segments} segments, {args.repeat} runs each",
          file=sys.stderr, flush=True)
    result: dict[str, Any] = {"items": args.items, "segments": args.segments}
    with tempfile.TemporaryDirectory(prefix="keyshift-verify-bench-") as tmp:
        world = rb.make_world(Path(tmp), args.items)
        try:
            t0 = time.perf_counter()
            fill(world, 4)
            print(f"  tables filled ({time.perf_counter() - t0:.1f} s), moto RSS "
                  f"{world.moto.rss() / 2**20:,.0f} MiB", file=sys.stderr, flush=True)
            gc.collect()
            gc.freeze()  # the bench's own data out of the client's collector (see restore_bench)
            if args.profile or args.profile_only:
                prof = rb.ThreadProfiler()
                run = keyshift_run(world, args.segments, profiler=prof)
                print(f"  profiled keyshift run: {run['rate']:,.0f} items/s (cProfile slows it)", file=sys.stderr)
                result["profile"] = prof.report()
            if not args.profile_only:
                result["verify"] = measure(world, max(1, args.repeat), args.segments, args.spy_moto, args.moto_gc)
        finally:
            world.server.stop()
            world.ws.close()
    if "verify" in result:
        print(report(result["verify"], info, args.items, args.segments))
    for name, text in (result.get("profile") or {}).items():
        print(f"\ncProfile (thread CPU time) of one keyshift verify, {name}, top 20 by own time:\n{text}")
    rb.save("verify", info, result)


if __name__ == "__main__":
    main()
