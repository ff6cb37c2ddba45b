#!/usr/bin/env python3
"""How fast is ``run_restore`` next to a raw boto3 ``batch_write_item`` loop writing the same items?

    python bench/restore_bench.py                        # 20,000 items, 4 workers
    python bench/restore_bench.py --items 5000 --workers 2
    python bench/restore_bench.py --profile              # + cProfile of keyshift's stubbed run

One run does everything:

1. builds ``--items`` realistic orders (``keyshift.console.demo_data``: ~2,000 clean customers with
   Zipf-like popularity, unique order ids, so the plan has no case to decide) as one local DynamoDB
   JSON dump file, plans it into a fresh workspace and builds the keymap;
2. against ONE local moto server (a child process on 127.0.0.1), into fresh tables:
   * **keyshift**: ``run_restore`` with ``--workers`` threads (reads the dump again, transforms,
     batches of 25, rate limiter, checkpoints, audit), timed from the call to its summary;
   * **raw loop**: the same transformed items (transform done before the clock starts) written with
     ``batch_write_item`` in batches of 25 from a ``ThreadPoolExecutor`` of as many threads,
     retrying ``UnprocessedItems`` naively;
   target: keyshift at >= 90% of the raw loop's items/s;
3. the same two with the network stubbed: a ``before-send`` hook on ``BatchWriteItem`` answers
   instantly (HTTP 200, ``{"UnprocessedItems":{}}``), so what is left is client-side cost
   (serializing, signing, parsing, and for keyshift reading and transforming the dump);
   target: keyshift at >= 80% of the raw loop. Best of ``--stub-repeat`` runs each, interleaved.

Prints a Markdown table and saves JSON to ``bench/out/restore-<UTC time>.json``. When keyshift
misses a target (or with ``--profile``) the stubbed keyshift run is profiled with cProfile: the
main thread (reading, transforming, batching) and the writer threads (merged) separately.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import itertools
import json
import os
import pstats
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from plan_bench import machine  # noqa: E402  (same machine line as the plan benchmark)

import boto3  # noqa: E402
from botocore.awsrequest import AWSResponse  # noqa: E402
from botocore.config import Config  # noqa: E402

from keyshift.console import demo_data as dd  # noqa: E402
from keyshift.console.demo import DEMO_ENV, LocalMotoServer  # noqa: E402
from keyshift.core.migrate import restore as restore_mod  # noqa: E402
from keyshift.core.aws import AwsContext  # noqa: E402
from keyshift.core.dumps import open_dump  # noqa: E402
from keyshift.core.resolve.keymap_build import build_keymap  # noqa: E402
from keyshift.core.progress import run_to_completion  # noqa: E402
from keyshift.core.plan.planner import plan_to_completion  # noqa: E402
from keyshift.core.plan.queries import latest_plan  # noqa: E402
from keyshift.core.migrate.restore import plan_to_restore_args, run_restore  # noqa: E402
from keyshift.core.spec import Spec, parse_spec  # noqa: E402
from keyshift.core.migrate.tables import create_target_table, target_key_schema  # noqa: E402
from keyshift.core.kernel.transform import KeyNames, Put, transform  # noqa: E402
from keyshift.core.store.workspace import Workspace  # noqa: E402

TARGET_MOTO = 0.90
TARGET_STUB = 0.80
BATCH = 25
CUSTOMERS = 2_000
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

STUB_BODY = b'{"UnprocessedItems":{}}'
STUB_HEADERS = {"x-amzn-RequestId": "stub", "Content-Type": "application/x-amz-json-1.0"}


# -- data ----------------------------------------------------------------------------------------
def build_dump(path: Path, n: int, seed: int = 11) -> None:
    """``n`` orders of ``CUSTOMERS`` clean customers (Zipf-like), one ``{"Item": ...}`` per line."""
    rng = random.Random(seed)
    names = dd.customer_names(CUSTOMERS, rng)
    cum, total = [], 0.0
    for i in range(len(names)):
        total += 1.0 / (i + 1) ** 0.6
        cum.append(total)
    picks = rng.choices(names, cum_weights=cum, k=n)
    with open(path, "wb") as out:
        out.write(b"".join(dd.item_line(dd.order_item(name, f"ORD-{i:09d}", rng)) + b"\n"
                           for i, name in enumerate(picks, 1)))


def transformed_items(dump: str, spec: Spec, keymap: Any) -> list[dict]:
    """transform(dump): what both writers must put (the raw loop gets it precomputed)."""
    names = KeyNames.from_spec(spec)
    items = []
    for entry in open_dump(dump):
        outcome = transform(entry.item, keymap, names)
        if not isinstance(outcome, Put):
            raise SystemExit(f"bench data must transform cleanly; line {entry.line}: {outcome}")
        items.append(outcome.item)
    return items


def read_transform(dump: str, spec: Spec, keymap: Any, rounds: int = 3) -> dict:
    """Best of ``rounds``: keyshift's reader and transform alone, one thread, nothing written.
    The raw loop is spared this part; it is what keyshift adds before the first request."""
    names = KeyNames.from_spec(spec)
    runs = []
    for _ in range(rounds):
        t0, n = time.perf_counter(), 0
        for entry in open_dump(dump, "ddbjson"):
            if isinstance(transform(entry.item, keymap, names), Put):
                n += 1
        seconds = time.perf_counter() - t0
        runs.append({"items": n, "seconds": seconds, "rate": n / seconds})
    return best(runs)


def with_table(spec: Spec, table: str) -> Spec:
    return dataclasses.replace(spec, target=dataclasses.replace(spec.target, table=table))


# -- the stub ------------------------------------------------------------------------------------
class _Raw:
    """Just enough of a urllib3 response for botocore to read a canned body."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any):
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def make_stub() -> tuple[Callable[..., AWSResponse], Callable[[], int]]:
    """A before-send handler answering every BatchWriteItem at once, and a call counter."""
    calls = itertools.count()

    def stub(request: Any, **_: Any) -> AWSResponse:
        next(calls)
        return AWSResponse(request.url, 200, STUB_HEADERS, _Raw(STUB_BODY))

    def count() -> int:
        return next(calls)  # after k calls this is k; read it once, at the end

    return stub, count


# -- the two writers -----------------------------------------------------------------------------
def keyshift_restore(ws: Workspace, spec: Spec, keymap: Any, endpoint: str, workers: int,
                     hooks: list[tuple[str, Any]] | None = None, validated: bool = False) -> dict:
    """run_restore to the end; wall time from the call to the summary, and process CPU time.

    keyshift restores through ``AwsContext.writer_client()`` (botocore's parameter validation off:
    the reader validated every item). ``validated=True`` uses the ordinary client instead, to show
    what that choice is worth.
    """
    aws = AwsContext(endpoint_url=endpoint, region=REGION, hooks=list(hooks or []))
    ddb = aws.client("dynamodb") if validated else aws.writer_client()  # built before the clock starts, like the raw loop's client
    args = plan_to_restore_args(latest_plan(ws))
    cpu0, t0 = time.process_time(), time.perf_counter()
    summary = run_to_completion(run_restore(ws, spec, keymap, ddb=ddb, operator="bench", workers=workers, **args))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"items": summary["written"], "seconds": wall, "cpu_seconds": cpu,
            "rate": summary["written"] / wall, "retries": summary["retries"],
            "throttles": summary["throttles"], "restore_seconds": summary["seconds"]}


def raw_loop(items: list[dict], table: str, endpoint: str, workers: int,
             stub: Callable[..., AWSResponse] | None = None) -> dict:
    """The plainest correct writer: batches of 25 from ``workers`` threads, naive retries."""
    client = boto3.session.Session(region_name=REGION).client(
        "dynamodb", endpoint_url=endpoint, config=Config(max_pool_connections=max(10, workers)))
    if stub is not None:
        client.meta.events.register("before-send.dynamodb.BatchWriteItem", stub)
    retried = [0]

    def write(batch: list[dict]) -> int:
        request = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while request:
            unprocessed = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if unprocessed:
                retried[0] += sum(len(v) for v in unprocessed.values())
            request = unprocessed
        return len(batch)

    batches = [items[i:i + BATCH] for i in range(0, len(items), BATCH)]
    cpu0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        written = sum(pool.map(write, batches))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"items": written, "seconds": wall, "cpu_seconds": cpu, "rate": written / wall,
            "retries": retried[0]}


# -- profiling -----------------------------------------------------------------------------------
def profile_keyshift(ws: Workspace, spec: Spec, keymap: Any, endpoint: str, workers: int,
                     top: int = 20) -> dict[str, str]:
    """cProfile the stubbed keyshift run: the main thread, and the writer threads merged.

    cProfile sees one thread only, so each writer thread gets its own profiler: the bench wraps
    ``restore._batch_write`` (looked up at call time by ``run_restore``) for this run only.
    """
    stub, _ = make_stub()
    original = restore_mod._batch_write
    local = threading.local()
    profiles: list[cProfile.Profile] = []
    plock = threading.Lock()

    def profiled(*args: Any, **kwargs: Any) -> Any:
        prof = getattr(local, "prof", None)
        if prof is None:
            prof = local.prof = cProfile.Profile()
            with plock:
                profiles.append(prof)
        prof.enable()
        try:
            return original(*args, **kwargs)
        finally:
            prof.disable()

    main = cProfile.Profile()
    restore_mod._batch_write = profiled
    try:
        main.enable()
        keyshift_restore(ws, spec, keymap, endpoint, workers,
                         hooks=[("before-send.dynamodb.BatchWriteItem", stub)])
        main.disable()
    finally:
        restore_mod._batch_write = original

    def text(stats: pstats.Stats) -> str:
        buf = io.StringIO()
        stats.stream = buf
        stats.sort_stats("tottime").print_stats(top)
        return buf.getvalue()

    out = {"main_thread": text(pstats.Stats(main))}
    buf = io.StringIO()
    pstats.Stats(main, stream=buf).sort_stats("cumulative").print_stats(r"core/|json|futures|restore_bench", top)
    out["main_thread_cumulative"] = buf.getvalue()
    if profiles:
        merged = pstats.Stats(profiles[0])
        for p in profiles[1:]:
            merged.add(p)
        out["writer_threads"] = text(merged)
    return out


# -- the run -------------------------------------------------------------------------------------
def best(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["rate"])


def measure(n_items: int, workers: int, repeat: int, stub_repeat: int, profile: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="keyshift-restore-bench-") as tmp:
        root = Path(tmp)
        dump = root / "orders.json"
        t0 = time.perf_counter()
        build_dump(dump, n_items)
        spec = parse_spec(SPEC)
        ws = Workspace(root / ".keyshift")
        plan = plan_to_completion(ws, spec, str(dump), fmt="ddbjson", operator="bench", parallel=False)
        build = build_keymap(ws)  # refuses if anything needed a decision: the data is clean
        keymap = build.keymap
        items = transformed_items(str(dump), spec, keymap)
        if len(items) != n_items:
            raise SystemExit(f"expected {n_items} transformed items, got {len(items)}")
        print(f"  data: {n_items:,} items, {dump.stat().st_size / 1e6:.1f} MB dump, "
              f"{plan.summary['identifiers']['total']:,} identifiers, keymap {keymap.version} "
              f"({time.perf_counter() - t0:.1f}s)", file=sys.stderr, flush=True)

        result: dict[str, Any] = {"items": n_items, "workers": workers,
                                  "dump_bytes": dump.stat().st_size, "keymap": build.summary,
                                  "read_transform": read_transform(str(dump), spec, keymap)}
        print(f"  read + transform alone: {result['read_transform']['rate']:,.0f} items/s",
              file=sys.stderr, flush=True)
        server = LocalMotoServer(log=root / "moto.log")
        server.start()
        try:
            endpoint = server.endpoint_url
            setup = AwsContext(endpoint_url=endpoint, region=REGION).client("dynamodb")

            # (2) real HTTP against the one moto server, each run into its own fresh table.
            moto_ks, moto_raw = [], []
            for r in range(repeat):
                for who in (("keyshift", "raw") if r % 2 == 0 else ("raw", "keyshift")):
                    table = f"orders_v2_{who}_{r}"
                    server.reset()  # every run starts from an empty server (moto slows as it fills)
                    create_target_table(setup, with_table(spec, table), target_key_schema(spec))
                    if who == "keyshift":
                        run = keyshift_restore(ws, with_table(spec, table), keymap, endpoint, workers)
                        moto_ks.append(run)
                    else:
                        run = raw_loop(items, table, endpoint, workers)
                        moto_raw.append(run)
                    count = setup.describe_table(TableName=table)["Table"]["ItemCount"]
                    if count != n_items:
                        raise SystemExit(f"{who}: table {table} holds {count} items, not {n_items}")
                    run["table_items"] = count
                    print(f"  moto {who:8s} {run['rate']:8,.0f} items/s ({run['seconds']:.1f}s, "
                          f"{run['cpu_seconds']:.1f} CPU-s in this process)", file=sys.stderr, flush=True)
            result["moto"] = {"keyshift": best(moto_ks), "raw": best(moto_raw),
                              "runs": {"keyshift": moto_ks, "raw": moto_raw}}
            result["moto"]["ratio"] = result["moto"]["keyshift"]["rate"] / result["moto"]["raw"]["rate"]

            # (3) network stubbed: only BatchWriteItem, answered before it is sent.
            stub_ks, stub_raw, stub_validated = [], [], []
            for r in range(stub_repeat):
                order = ("keyshift", "raw", "validated") if r % 2 == 0 else ("validated", "raw", "keyshift")
                for who in order:
                    stub, calls = make_stub()
                    if who in ("keyshift", "validated"):
                        run = keyshift_restore(ws, spec, keymap, endpoint, workers,
                                               hooks=[("before-send.dynamodb.BatchWriteItem", stub)],
                                               validated=who == "validated")
                        (stub_ks if who == "keyshift" else stub_validated).append(run)
                    else:
                        run = raw_loop(items, spec.target.table, endpoint, workers, stub=stub)
                        stub_raw.append(run)
                    run["requests"] = calls()
                    if run["items"] != n_items:
                        raise SystemExit(f"stubbed {who}: {run['items']} items written, not {n_items}")
                    print(f"  stub {who:8s} {run['rate']:8,.0f} items/s ({run['seconds']:.2f}s, "
                          f"{run['cpu_seconds']:.2f} CPU-s, {run['requests']} requests)",
                          file=sys.stderr, flush=True)
            result["stub"] = {"keyshift": best(stub_ks), "raw": best(stub_raw),
                              "runs": {"keyshift": stub_ks, "raw": stub_raw, "validated": stub_validated}}
            result["stub"]["ratio"] = result["stub"]["keyshift"]["rate"] / result["stub"]["raw"]["rate"]
            result["stub_validated"] = {"keyshift": best(stub_validated), "raw": best(stub_raw)}
            result["stub_validated"]["ratio"] = (result["stub_validated"]["keyshift"]["rate"]
                                                 / result["stub_validated"]["raw"]["rate"])

            below = result["moto"]["ratio"] < TARGET_MOTO or result["stub"]["ratio"] < TARGET_STUB
            if profile or below:
                print("  profiling keyshift's stubbed run...", file=sys.stderr, flush=True)
                result["profile"] = profile_keyshift(ws, spec, keymap, endpoint, workers)
        finally:
            server.stop()
        ws.close()
    return result


def report(r: dict, info: dict[str, str]) -> str:
    def row(label: str, part: dict, target: float) -> str:
        ks, raw, ratio = part["keyshift"], part["raw"], part["ratio"]
        ok = "ok" if ratio >= target else "BELOW TARGET"
        return (f"| {label} | {ks['rate']:,.0f} | {raw['rate']:,.0f} | **{ratio:.0%}** ({ok}) | "
                f"≥ {target:.0%} | {ks['seconds']:.2f} / {raw['seconds']:.2f} | "
                f"{ks['cpu_seconds']:.2f} / {raw['cpu_seconds']:.2f} |")

    return "\n".join([
        f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']} RAM, Python {info['python']}, "
        f"{info['platform']}; {info['date']}",
        f"{r['items']:,} items ({r['dump_bytes'] / 1e6:.1f} MB DynamoDB JSON dump), {r['workers']} workers, "
        "batches of 25",
        "",
        "| run | keyshift items/s | raw boto3 items/s | ratio | target | wall s (keyshift / raw) "
        "| CPU s in the client process (keyshift / raw) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("moto server, real HTTP", r["moto"], TARGET_MOTO),
        row("network stubbed (`before-send`)", r["stub"], TARGET_STUB),
        row("stubbed, keyshift with botocore's parameter validation on (not what it ships)",
            r["stub_validated"], TARGET_STUB),
        "",
        f"keyshift's reader + transform alone (one thread, nothing sent): "
        f"{r['read_transform']['rate']:,.0f} items/s ({r['read_transform']['seconds']:.2f} s); "
        "the raw loop gets its items precomputed",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000, help="items in the dump [default: 20000]")
    parser.add_argument("--workers", type=int, default=4, help="writer threads for both [default: 4]")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each writer against moto, interleaved; the best is kept [default: 1]")
    parser.add_argument("--stub-repeat", type=int, default=3,
                        help="runs of each writer with the network stubbed; the best is kept [default: 3]")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile keyshift's stubbed run even when both targets are met")
    args = parser.parse_args()
    # Dummy credentials for the local server; nothing from the caller's AWS setup leaks in.
    for key in [k for k in os.environ if k.startswith(("AWS_", "KEYSHIFT_"))]:
        del os.environ[key]
    os.environ.update(DEMO_ENV)
    OUT.mkdir(exist_ok=True)
    info = machine()
    print(f"restore bench: {args.items:,} items, {args.workers} workers", file=sys.stderr, flush=True)
    result = measure(args.items, args.workers, max(1, args.repeat), max(1, args.stub_repeat), args.profile)
    print(report(result, info))
    titles = {"main_thread": "main thread (reader, transform, batching), top 20 by own time",
              "main_thread_cumulative": "main thread, keyshift/json/futures frames by cumulative time",
              "writer_threads": "writer threads merged (botocore), top 20 by own time"}
    for name, text in (result.get("profile") or {}).items():
        print(f"\ncProfile of keyshift's stubbed run, {titles[name]}:\n{text}")
    save("restore", info, result)


def save(prefix: str, info: dict[str, str], result: dict) -> Path:
    """Write ``bench/out/<prefix>-<UTC time>.json`` (machine and result) and say where."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = OUT / f"{prefix}-{stamp}.json"
    path.write_text(json.dumps({"machine": info, "result": result}, indent=2))
    print(f"\nsaved {path.relative_to(HERE.parent)}", file=sys.stderr)
    return path


if __name__ == "__main__":
    main()
