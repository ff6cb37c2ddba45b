#!/usr/bin/env python3
"""How fast is ``run_restore`` next to a raw boto3 ``batch_write_item`` loop, on one moto server?

    python bench/restore_bench.py                          # 20,000 items, 4 workers, 3 runs each
    python bench/restore_bench.py --conditions loaded --repeat 5
    python bench/restore_bench.py --profile                # + cProfile (CPU time) of keyshift, every thread
    python bench/restore_bench.py --spy-moto               # + py-spy of the moto server during each run

The method (the issue's): one process, one local moto server (``python -m moto.server``, a child
on 127.0.0.1), and:

1. **data**: ``--items`` realistic orders (``keyshift.console.demo_data.order_item``: nested maps,
   a list of maps, string sets, nulls, binary on about one order in ten) of 2,000 clean customers,
   as a native Export-to-S3 dump (``demo_data.export_objects``: gzipped ``data/*.json.gz``,
   ``manifest-summary.json``, ``manifest-files.json`` with counts and MD5s) **in S3 on the moto
   server**, planned into a fresh workspace from S3 and compiled into a keymap;
2. **keyshift**: ``run_restore(..., workers=N)``, reading the dump *from S3 inside the clock*
   (get_object, gunzip, validation, transform, batching, rate limiter, checkpoints, audit);
3. **raw loop**: the same transformed items, prepared *outside* the clock (read, transform and
   binary decoded beforehand), ``batch_write_item`` in batches of 25 from a ``ThreadPoolExecutor``
   of N threads, naive retries, a default boto3 client;
4. both into fresh tables made by ``create_target_table`` (same stream: NEW_AND_OLD_IMAGES), each
   checked to hold every item; runs alternated k, r, k, r...; medians and their ratio;
5. two conditions: **fresh** (the server is reset and the dump uploaded again before each run)
   and **loaded** (before the runs the server is filled with ``--load-tables`` other tables of
   ``--items`` items each, with streams, so moto holds gigabytes; each run's table is deleted
   after it, so every run sees the same load); optionally **stubbed** (``BatchWriteItem``
   answered by a ``before-send`` hook, S3 still read from moto: client cost only).

Per run: wall time, items/s, this process's CPU seconds (all threads), moto's CPU seconds
(utime + stime from ``/proc/<pid>/stat`` before and after) and RSS, and the requests each writer
sent (count and body bytes by operation, from a ``before-send`` counter). Prints Markdown tables,
saves JSON to ``bench/out/restore-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import itertools
import json
import os
import pstats
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from plan_bench import machine as _machine  # noqa: E402  (same machine line as the plan benchmark)

import boto3  # noqa: E402
import botocore  # noqa: E402
import moto  # noqa: E402
from botocore.awsrequest import AWSResponse  # noqa: E402
from botocore.config import Config  # noqa: E402

from keyshift.console import demo_data as dd  # noqa: E402
from keyshift.console.demo import DEMO_ENV, LocalMotoServer  # noqa: E402
from keyshift.core.aws import AwsContext  # noqa: E402
from keyshift.core.dumps import open_dump  # noqa: E402
from keyshift.core.kernel.items import for_botocore  # noqa: E402
from keyshift.core.kernel.transform import KeyNames, Put, transform  # noqa: E402
from keyshift.core.migrate.restore import plan_to_restore_args, run_restore  # noqa: E402
from keyshift.core.migrate.tables import create_target_table, target_key_schema  # noqa: E402
from keyshift.core.plan.planner import plan_to_completion  # noqa: E402
from keyshift.core.plan.queries import latest_plan  # noqa: E402
from keyshift.core.progress import run_to_completion  # noqa: E402
from keyshift.core.resolve.keymap_build import build_keymap  # noqa: E402
from keyshift.core.spec import Spec, parse_spec  # noqa: E402
from keyshift.core.store.workspace import Workspace  # noqa: E402

TARGET = 0.90
BATCH = 25
CUSTOMERS = 2_000
REGION = "us-east-1"
BUCKET = "bench-dumps"
PREFIX = "exports/orders"
DUMP_FILES = 4

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


def machine() -> dict[str, str]:
    info = _machine()
    info.update(boto3=boto3.__version__, botocore=botocore.__version__, moto=moto.__version__)
    return info


# -- data ----------------------------------------------------------------------------------------
def order_items(n: int, seed: int = 11) -> list[dict]:
    """``n`` orders of ``CUSTOMERS`` clean customers (Zipf-like), unique order ids, wire format."""
    rng = random.Random(seed)
    names = dd.customer_names(CUSTOMERS, rng)
    cum, total = [], 0.0
    for i in range(len(names)):
        total += 1.0 / (i + 1) ** 0.6
        cum.append(total)
    picks = rng.choices(names, cum_weights=cum, k=n)
    return [dd.order_item(name, f"ORD-{i:09d}", rng) for i, name in enumerate(picks, 1)]


def with_table(spec: Spec, table: str) -> Spec:
    return dataclasses.replace(spec, target=dataclasses.replace(spec.target, table=table))


#: Runs moto's server with a gc callback that keeps, per generation, how many collections ran and
#: how long they took, in a JSON file (rewritten after every collection of generation 1 or 2 and
#: every 0.2 s): the bench reads it before and after each run. moto itself is unchanged.
_MOTO_WITH_GC_STATS = """
import gc, json, os, signal, sys, threading, time
path = os.environ["BENCH_MOTO_GC_FILE"]
stats = {"count": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "max_seconds": [0.0, 0.0, 0.0]}
lock = threading.Lock()
started = [0.0]
def dump():
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(stats, f)
    os.replace(tmp, path)
def on_gc(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
        return
    gen, took = info["generation"], time.perf_counter() - started[0]
    stats["count"][gen] += 1
    stats["seconds"][gen] += took
    stats["max_seconds"][gen] = max(stats["max_seconds"][gen], took)
    if gen:
        dump()
def ticker():
    while True:
        time.sleep(0.2)
        dump()
def collect(signum, frame):  # SIGUSR1 from the bench, between runs: pay the GC debt now
    gc.collect()
    dump()
gc.callbacks.append(on_gc)
signal.signal(signal.SIGUSR1, collect)
threading.Thread(target=ticker, daemon=True).start()
from moto.server import main
main(sys.argv[1:])
"""


class GcMotoServer(LocalMotoServer):
    """:class:`LocalMotoServer` whose process records its garbage collections (see above)."""

    def _spawn_and_wait(self) -> bool:
        import subprocess as sp
        from keyshift.console import demo as demo_mod

        out = sp.DEVNULL
        if self.log is not None:
            self._log_file = open(self.log, "ab")
            out = self._log_file
        env = {**os.environ, "MOTO_PORT": str(self.port), "BENCH_MOTO_GC_FILE": str(self.gc_file)}
        self.process = sp.Popen(
            [sys.executable, "-c", _MOTO_WITH_GC_STATS, "-H", demo_mod.HOST, "-p", str(self.port)],
            stdin=sp.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True,
            preexec_fn=demo_mod._die_with_parent)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.answers():
                return True
            time.sleep(0.05)
        return False

    @property
    def gc_file(self) -> Path:
        return Path(tempfile.gettempdir()) / f"keyshift-bench-moto-gc-{os.getpid()}.json"


class MotoProc:
    """CPU seconds, RSS and garbage collections of the moto server process."""

    def __init__(self, pid: int, gc_file: Path | None = None) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")
        self.gc_file = gc_file

    def gc(self) -> dict:
        """Collections and their seconds per generation so far (zeros when unknown)."""
        if self.gc_file is not None:
            time.sleep(0.25)  # one ticker period: the file covers everything up to now
            try:
                return json.loads(self.gc_file.read_text())
            except (OSError, ValueError):
                pass
        return {"count": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "max_seconds": [0.0, 0.0, 0.0]}

    def collect(self, timeout: float = 300.0) -> float:
        """Make moto run a full collection now (SIGUSR1, see above); returns its seconds."""
        before = self.gc()
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            after = self.gc()
            if after["count"][2] > before["count"][2]:
                return after["seconds"][2] - before["seconds"][2]
        raise RuntimeError("moto did not report a full collection after SIGUSR1")

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime (fields 14, 15)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


class Requests:
    """A ``before-send`` counter: requests and body bytes by operation (returns None: sends)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: Counter = Counter()
        self.bytes: Counter = Counter()

    def __call__(self, request: Any = None, event_name: str = "", **_: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        body = getattr(request, "body", b"") or b""
        with self.lock:
            self.count[op] += 1
            self.bytes[op] += len(body)

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {op: {"requests": n, "bytes": self.bytes[op]} for op, n in sorted(self.count.items())}


@dataclasses.dataclass
class World:
    """The moto server, the dump in its S3, the planned workspace, the keymap, the raw loop's items."""

    root: Path
    server: LocalMotoServer
    moto: MotoProc
    spec: Spec
    ws: Workspace
    keymap: Any
    objects: dict[str, bytes]
    dump_uri: str
    items: list[dict]  # transform(dump), binary decoded: what the raw loop sends
    n_items: int
    source_items: list[dict] = dataclasses.field(default_factory=list)  # the old table's items

    @property
    def endpoint(self) -> str:
        return self.server.endpoint_url

    def clients(self) -> tuple[Any, Any]:
        aws = AwsContext(endpoint_url=self.endpoint, region=REGION)
        return aws.client("dynamodb"), aws.client("s3")

    def upload(self) -> None:
        dd.put_objects(self.clients()[1], BUCKET, self.objects)

    def reset(self) -> None:
        """An empty server again, holding only the dump."""
        self.server.reset()
        self.upload()


def make_world(root: Path, n_items: int, log: bool = False) -> World:
    t0 = time.perf_counter()
    source = order_items(n_items)
    lines = [dd.item_line(item) for item in source]
    base, objects = dd.export_objects(lines, bucket=BUCKET, prefix=PREFIX, table="orders",
                                      files=DUMP_FILES, empty_files=1)
    server = GcMotoServer(log=root / "moto.log" if log else None)
    server.start()
    assert server.process is not None
    dump_uri = f"s3://{BUCKET}/{base}/"
    spec = parse_spec(SPEC)
    ws = Workspace(root / ".keyshift")
    world = World(root, server, MotoProc(server.process.pid, server.gc_file), spec, ws, None, objects, dump_uri, [], n_items,
                  source)
    world.upload()
    _, s3 = world.clients()
    plan_to_completion(ws, spec, dump_uri, s3=s3, operator="bench", parallel=False)
    world.keymap = build_keymap(ws).keymap  # refuses if anything needed a decision: the data is clean
    names = KeyNames.from_spec(spec)
    for entry in open_dump(dump_uri, s3=s3):
        outcome = transform(entry.item, world.keymap, names)
        if not isinstance(outcome, Put):
            raise SystemExit(f"bench data must transform cleanly; line {entry.line}: {outcome}")
        world.items.append(for_botocore(outcome.item))
    if len(world.items) != n_items:
        raise SystemExit(f"expected {n_items} transformed items, got {len(world.items)}")
    gz = sum(len(v) for k, v in objects.items() if "/data/" in k)
    print(f"  data: {n_items:,} orders, {sum(map(len, lines)) / 1e6:.1f} MB of DynamoDB JSON, "
          f"{gz / 1e6:.1f} MB gzipped in {DUMP_FILES} S3 objects, keymap {world.keymap.version} "
          f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    return world


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


def stub(request: Any, **_: Any) -> AWSResponse:
    """before-send: every BatchWriteItem answered at once, all processed."""
    return AWSResponse(request.url, 200, STUB_HEADERS, _Raw(STUB_BODY))


# -- measuring one run ---------------------------------------------------------------------------
def timed(world: World, run: Callable[[], int], requests: Requests, spy: Path | None = None) -> dict:
    """Run ``run`` (returns items written): wall, client CPU, moto CPU and RSS, requests."""
    spy_proc = _start_spy(world.moto.pid, spy) if spy is not None else None
    gc0 = world.moto.gc()
    m_cpu0 = world.moto.cpu()
    cpu0, t0 = time.process_time(), time.perf_counter()
    written = run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    m_cpu = world.moto.cpu() - m_cpu0
    gc1 = world.moto.gc()
    if spy_proc is not None:
        _stop_spy(spy_proc)
    return {"items": written, "seconds": wall, "rate": written / wall, "cpu_seconds": cpu,
            "moto_cpu_seconds": m_cpu, "moto_rss": world.moto.rss(), "requests": requests.to_dict(),
            "moto_gc_seconds": sum(gc1["seconds"]) - sum(gc0["seconds"]),
            "moto_gc_full": gc1["count"][2] - gc0["count"][2],
            "moto_gc_full_seconds": gc1["seconds"][2] - gc0["seconds"][2]}


def keyshift_run(world: World, table: str, workers: int, *, stubbed: bool = False,
                 spy: Path | None = None, profiler: Any = None) -> dict:
    """run_restore to the end, reading the dump from S3 inside the clock."""
    requests = Requests()
    hooks: list[tuple[str, Any]] = [("before-send", requests)]
    if stubbed:
        hooks.insert(0, ("before-send.dynamodb.BatchWriteItem", stub))
    aws = AwsContext(endpoint_url=world.endpoint, region=REGION, hooks=hooks)
    ddb, s3 = aws.writer_client(), aws.client("s3")  # built before the clock, like the raw loop's
    args = plan_to_restore_args(latest_plan(world.ws))
    spec = with_table(world.spec, table)
    summary: dict[str, Any] = {}

    def run() -> int:
        if profiler is not None:
            profiler.start()
        try:
            summary.update(run_to_completion(run_restore(world.ws, spec, world.keymap, ddb=ddb, s3=s3,
                                                         operator="bench", workers=workers, **args)))
        finally:
            if profiler is not None:
                profiler.stop()
        return summary["written"]

    out = timed(world, run, requests, spy)
    out.update(retries=summary["retries"], throttles=summary["throttles"])
    return out


def raw_run(world: World, table: str, workers: int, *, stubbed: bool = False,
            spy: Path | None = None) -> dict:
    """The plainest correct writer: precomputed items, batches of 25 from ``workers`` threads."""
    requests = Requests()
    client = boto3.session.Session(region_name=REGION).client(
        "dynamodb", endpoint_url=world.endpoint, config=Config(max_pool_connections=max(10, workers)))
    if stubbed:
        client.meta.events.register("before-send.dynamodb.BatchWriteItem", stub)
    client.meta.events.register("before-send", requests)
    retried = [0]

    def write(batch: list[dict]) -> int:
        request = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while request:
            unprocessed = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if unprocessed:
                retried[0] += sum(len(v) for v in unprocessed.values())
            request = unprocessed
        return len(batch)

    items = world.items
    batches = [items[i:i + BATCH] for i in range(0, len(items), BATCH)]

    def run() -> int:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return sum(pool.map(write, batches))

    out = timed(world, run, requests, spy)
    out["retries"] = retried[0]
    return out


# -- py-spy on moto ------------------------------------------------------------------------------
def _start_spy(pid: int, path: Path) -> subprocess.Popen | None:
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        print("  (py-spy not installed: pip install py-spy)", file=sys.stderr)
        return None
    proc = subprocess.Popen([str(exe), "record", "--pid", str(pid), "--rate", "100", "--format", "raw",
                             "--nonblocking", "--output", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached
    return proc


def _stop_spy(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def spy_top(path: Path, top: int = 15) -> list[tuple[str, float, float]]:
    """(function, self %, inclusive %) from py-spy's raw (collapsed) output, busiest first."""
    if not path.exists():
        return []
    self_n: Counter = Counter()
    incl: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        frames = stack.split(";")
        if frames and frames[-1].startswith(("select ", "accept ", "wait ", "_wait_for_tstate_lock",
                                             "readinto (socket")):
            continue  # idle threads (nonblocking sampling without --idle shows few)
        total += count
        self_n[_short(frames[-1])] += count
        for f in set(map(_short, frames)):
            incl[f] += count
    if not total:
        return []
    return [(f, 100 * n / total, 100 * incl[f] / total) for f, n in self_n.most_common(top)]


def _short(frame: str) -> str:
    # "put_item (moto/dynamodb/models/table.py:668)" -> keep the path from the package on.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    where = where.rsplit(":", 1)[0]
    return f"{name} ({where})"


# -- cProfile of every thread --------------------------------------------------------------------
class ThreadProfiler:
    """cProfile with ``time.thread_time`` (CPU, not wall) in the calling thread and every thread
    started while it runs; stats per thread-name prefix."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.profiles: list[tuple[str, cProfile.Profile]] = []
        self.main: cProfile.Profile | None = None

    def _hook(self, *_: Any) -> None:
        prof = cProfile.Profile(time.thread_time)
        with self.lock:
            self.profiles.append((threading.current_thread().name, prof))
        prof.enable()  # replaces this hook for this thread

    def start(self) -> None:
        threading.setprofile(self._hook)
        self.main = cProfile.Profile(time.thread_time)
        self.main.enable()

    def stop(self) -> None:
        assert self.main is not None
        self.main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]

    def report(self, top: int = 20) -> dict[str, str]:
        groups: dict[str, list[cProfile.Profile]] = {"main thread": [self.main]}  # type: ignore[list-item]
        for name, prof in self.profiles:
            groups.setdefault(name.rstrip("0123456789_").rstrip("_") + " threads", []).append(prof)
        out = {}
        for name, profs in groups.items():
            stats = pstats.Stats(profs[0])
            for p in profs[1:]:
                stats.add(p)
            buf = io.StringIO()
            stats.stream = buf
            total = stats.total_tt  # type: ignore[attr-defined]
            stats.sort_stats("tottime").print_stats(top)
            out[f"{name} ({len(profs)}; {total:.2f} CPU-s)"] = _trim(buf.getvalue())
        return out


def _trim(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(lines[start:]).replace(str(Path(sys.executable).parent.parent), "")


# -- the conditions ------------------------------------------------------------------------------
def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def summarize(runs: dict[str, list[dict]]) -> dict:
    out: dict[str, Any] = {"runs": runs}
    for who, rs in runs.items():
        out[who] = {k: median(rs, k) for k in ("rate", "seconds", "cpu_seconds", "moto_cpu_seconds",
                                               "moto_rss", "moto_gc_seconds")}
        out[who]["cpu_ms_per_item"] = 1000 * out[who]["cpu_seconds"] / rs[0]["items"]
        out[who]["moto_cpu_ms_per_item"] = 1000 * out[who]["moto_cpu_seconds"] / rs[0]["items"]
    out["ratio"] = out["keyshift"]["rate"] / out["raw"]["rate"]
    pairs = [k["rate"] / r["rate"] for k, r in zip(runs["keyshift"], runs["raw"])]
    out["pair_ratios"] = pairs
    return out


def check_table(world: World, table: str, who: str) -> None:
    ddb, _ = world.clients()
    count = ddb.describe_table(TableName=table)["Table"]["ItemCount"]
    if count != world.n_items:
        raise SystemExit(f"{who}: table {table} holds {count} items, not {world.n_items}")


def load_server(world: World, tables: int, workers: int) -> list[str]:
    """``tables`` other tables of the dump's items, streamed: what a long session leaves in moto."""
    names = []
    ddb, _ = world.clients()
    for i in range(tables):
        name = f"load_{i}"
        create_target_table(ddb, with_table(world.spec, name), target_key_schema(world.spec))
        run = raw_run(world, name, workers)
        names.append(name)
        print(f"  load: {name} {run['rate']:,.0f} items/s, moto RSS {run['moto_rss'] / 2**20:,.0f} MiB",
              file=sys.stderr, flush=True)
    return names


def settle_gc(world: World, moto_gc: str) -> float:
    """Before a run (outside its clock): the client's and, with ``moto_gc="collect"``, moto's
    garbage collected, so no run inherits another's GC debt. Returns moto's seconds."""
    gc.collect()
    return world.moto.collect() if moto_gc == "collect" else 0.0


def condition(world: World, name: str, repeat: int, workers: int, spy: bool,
              load_tables: int = 0, moto_gc: str = "collect") -> dict:
    ddb, _ = world.clients()
    result: dict[str, Any] = {"condition": name, "moto_gc": moto_gc}
    if name == "loaded":
        world.reset()
        t0 = time.perf_counter()
        result["load_tables"] = load_server(world, load_tables, workers)
        result["load_seconds"] = time.perf_counter() - t0
        result["moto_rss_loaded"] = world.moto.rss()
    runs: dict[str, list[dict]] = {"keyshift": [], "raw": []}
    spies: dict[str, list[Path]] = {"keyshift": [], "raw": []}
    for r, who in enumerate(itertools.islice(itertools.cycle(("keyshift", "raw")), 2 * repeat)):
        if name == "fresh":
            world.reset()
        table = f"orders_v2_{name}_{who}_{r}"
        if name != "stubbed":
            create_target_table(ddb, with_table(world.spec, table), target_key_schema(world.spec))
        spy_path = world.root / f"spy-{name}-{who}-{r}.txt" if spy and name != "stubbed" else None
        stubbed = name == "stubbed"
        gc_before = settle_gc(world, moto_gc)
        run = (keyshift_run(world, table, workers, stubbed=stubbed, spy=spy_path) if who == "keyshift"
               else raw_run(world, table, workers, stubbed=stubbed, spy=spy_path))
        run["moto_gc_before_seconds"] = gc_before
        if run["items"] != world.n_items:
            raise SystemExit(f"{name} {who}: {run['items']} items written, not {world.n_items}")
        if name != "stubbed":
            check_table(world, table, who)
        if name == "loaded":
            # The next run sees the same load (moto frees a deleted table only in a full collection:
            # a table and its stream refer to each other).
            ddb.delete_table(TableName=table)
        if spy_path is not None:
            spies[who].append(spy_path)
        runs[who].append(run)
        bwi = run["requests"].get("BatchWriteItem", {})
        print(f"  {name:7s} {who:8s} {run['rate']:7,.0f} items/s  {run['seconds']:6.2f} s  "
              f"client {run['cpu_seconds']:5.2f} CPU-s  moto {run['moto_cpu_seconds']:5.2f} CPU-s  "
              f"RSS {run['moto_rss'] / 2**20:6,.0f} MiB  GC {run['moto_gc_seconds']:5.2f} s "
              f"({run['moto_gc_full']} full)  {bwi.get('requests', 0)} BatchWriteItem "
              f"({bwi.get('bytes', 0) / 1e6:.1f} MB)", file=sys.stderr, flush=True)
    result.update(summarize(runs))
    if spy:
        result["moto_profile"] = {who: _merge_spy(paths) for who, paths in spies.items() if paths}
    return result


def _merge_spy(paths: list[Path]) -> list[tuple[str, float, float]]:
    merged = paths[0].with_name(paths[0].stem.rsplit("-", 1)[0] + "-all.txt")
    merged.write_text("".join(p.read_text() for p in paths if p.exists()))
    return spy_top(merged)


def profile_run(world: World, workers: int) -> dict[str, str]:
    """One keyshift run on a fresh server under :class:`ThreadProfiler`."""
    world.reset()
    ddb, _ = world.clients()
    table = "orders_v2_profiled"
    create_target_table(ddb, with_table(world.spec, table), target_key_schema(world.spec))
    prof = ThreadProfiler()
    run = keyshift_run(world, table, workers, profiler=prof)
    print(f"  profiled keyshift run: {run['rate']:,.0f} items/s (cProfile slows it)", file=sys.stderr)
    return prof.report()


# -- report --------------------------------------------------------------------------------------
def table_md(c: dict, n_items: int) -> str:
    lines = [
        f"**{c['condition']}**" + (f" (server loaded with {len(c['load_tables'])} tables of {n_items:,} items, "
                                   f"moto RSS {c['moto_rss_loaded'] / 2**30:.2f} GiB before the runs)"
                                   if c["condition"] == "loaded" else ""),
        "",
        "| run | writer | wall s | items/s | client CPU s | moto CPU s | moto GC s (full collections) "
        "| moto RSS MiB | BatchWriteItem requests (MB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = []
    for i in range(max(len(c["runs"]["keyshift"]), len(c["runs"]["raw"]))):
        for who in ("keyshift", "raw"):
            if i < len(c["runs"][who]):
                order.append((who, c["runs"][who][i]))
    for n, (who, r) in enumerate(order, 1):
        bwi = r["requests"].get("BatchWriteItem", {})
        lines.append(f"| {n} | {who} | {r['seconds']:.2f} | {r['rate']:,.0f} | {r['cpu_seconds']:.2f} | "
                     f"{r['moto_cpu_seconds']:.2f} | {r['moto_gc_seconds']:.2f} ({r['moto_gc_full']}) | "
                     f"{r['moto_rss'] / 2**20:,.0f} | {bwi.get('requests', 0)} ({bwi.get('bytes', 0) / 1e6:.1f}) |")
    k, r = c["keyshift"], c["raw"]
    ok = "met" if c["ratio"] >= TARGET else "BELOW TARGET"
    lines += [
        "",
        f"medians: keyshift {k['rate']:,.0f} items/s, raw {r['rate']:,.0f} items/s, ratio **{c['ratio']:.2f}** "
        f"({ok}, target ≥ {TARGET}); per-pair ratios {', '.join(f'{x:.2f}' for x in c['pair_ratios'])}; "
        f"client CPU {k['cpu_ms_per_item']:.3f} / {r['cpu_ms_per_item']:.3f} ms per item, moto CPU "
        f"{k['moto_cpu_ms_per_item']:.3f} / {r['moto_cpu_ms_per_item']:.3f} ms per item (keyshift / raw)",
    ]
    return "\n".join(lines)


def report(result: dict, info: dict[str, str]) -> str:
    out = [
        f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']} RAM, Python {info['python']}, "
        f"boto3 {info['boto3']}, botocore {info['botocore']}, moto {info['moto']}, {info['platform']}; "
        f"{info['date']}",
        f"{result['items']:,} items, {result['workers']} workers, batches of 25, dump read from S3 on moto",
        "",
    ]
    for c in result["conditions"]:
        out += [table_md(c, result["items"]), ""]
        for who, top in (c.get("moto_profile") or {}).items():
            out.append(f"moto's CPU during the {who} runs (py-spy, % of busy samples; self / inclusive):")
            out += [f"    {s:5.1f}% {i:5.1f}%  {f}" for f, s, i in top]
            out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000, help="items in the dump [default: 20000]")
    parser.add_argument("--workers", type=int, default=4, help="writer threads for both [default: 4]")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each writer per condition [default: 3]")
    parser.add_argument("--conditions", default="fresh,loaded",
                        help="comma-separated: fresh, loaded, stubbed [default: fresh,loaded]")
    parser.add_argument("--load-tables", type=int, default=12,
                        help="tables of --items items that load the server in the loaded condition [default: 12]")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile (CPU time) one keyshift run on a fresh server, every thread")
    parser.add_argument("--profile-only", action="store_true", help="only the profiled run")
    parser.add_argument("--spy-moto", action="store_true", help="py-spy the moto server during each run")
    parser.add_argument("--moto-gc", choices=("collect", "asis"), default="collect",
                        help="collect: moto runs a full garbage collection before every run (outside the "
                             "clock), so a multi-second collection of a loaded server never lands inside one "
                             "writer's run; asis: leave moto's collector alone [default: collect]")
    args = parser.parse_args()
    # Dummy credentials for the local server; nothing from the caller's AWS setup leaks in.
    for key in [k for k in os.environ if k.startswith(("AWS_", "KEYSHIFT_"))]:
        del os.environ[key]
    os.environ.update(DEMO_ENV)
    OUT.mkdir(exist_ok=True)
    info = machine()
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    print(f"restore bench: {args.items:,} items, {args.workers} workers, {args.repeat} runs each, "
          f"conditions {conditions}", file=sys.stderr, flush=True)
    result: dict[str, Any] = {"items": args.items, "workers": args.workers, "conditions": []}
    with tempfile.TemporaryDirectory(prefix="keyshift-restore-bench-") as tmp:
        world = make_world(Path(tmp), args.items)
        # The bench's own data (the raw loop's prepared items, the source items) out of the
        # client's collector: keyshift's runs allocate more than the raw loop's, and would
        # otherwise pay for scanning the bench's objects in every full collection.
        gc.collect()
        gc.freeze()
        try:
            if args.profile or args.profile_only:
                result["profile"] = profile_run(world, args.workers)
            if not args.profile_only:
                for name in conditions:
                    result["conditions"].append(condition(world, name, max(1, args.repeat), args.workers,
                                                          args.spy_moto, args.load_tables, args.moto_gc))
        finally:
            world.server.stop()
            world.ws.close()
    print(report(result, info))
    for name, text in (result.get("profile") or {}).items():
        print(f"\ncProfile (thread CPU time) of one keyshift run on a fresh server, {name}, top 20 by own time:\n"
              f"{text}")
    save("restore", info, result)


def save(prefix: str, info: dict[str, str], result: dict) -> Path:
    """Write ``bench/out/<prefix>-<UTC time>.json`` (machine and result) and say where."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = OUT / f"{prefix}-{stamp}.json"
    path.write_text(json.dumps({"machine": info, "result": result}, indent=2, default=str))
    print(f"\nsaved {path.relative_to(HERE.parent)}", file=sys.stderr)
    return path


if __name__ == "__main__":
    main()
