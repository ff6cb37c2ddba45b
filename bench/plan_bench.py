#!/usr/bin/env python3
"""How fast is ``keyshift plan`` next to the bare cost of reading the same dump?

    python bench/plan_bench.py                       # 100k and 1M records
    python bench/plan_bench.py --records 1000000     # one size
    python bench/plan_bench.py --records 100000 --profile   # + cProfile top 15 of the plan

For each size it builds (once; cached in ``bench/out/``) a native Export-to-S3 dump in a local
directory: several gzipped data files with ``manifest-summary.json`` and ``manifest-files.json``,
realistic orders of ~50,000 distinct customers, ~5% of the records carrying a dirty identifier.
Then, in the same run and each in a fresh subprocess:

* the **bare loop**: gunzip every data file, read every line, ``orjson.loads`` it, nothing else;
* **keyshift plan --json** on a fresh workspace (no reference data).

It reports records/s of both (each timed inside its process, so interpreter start-up is left out of
both; the plan's wall time is shown too), their ratio (target: the plan at >= 25% of the bare
loop) and the peak RSS of each process (``ru_maxrss`` from ``wait4`` on that very child).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TARGET_RATIO = 0.25
CUSTOMERS = 50_000
DIRTY_SHARE = 0.05
FORMAT_VERSION = 1  # bump when the generated data changes: invalidates the cache

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


# -- the dump ------------------------------------------------------------------------------------
def dump_dir(records: int) -> Path:
    return OUT / f"export-{records}-v{FORMAT_VERSION}"


def build_dump(records: int, seed: int = 7) -> Path:
    """Build (or reuse) the export for ``records``; returns the directory to pass to ``--dump``."""
    from keyshift.console import demo_data as dd

    root = dump_dir(records)
    if (root / ".complete").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    rng = random.Random(seed)
    when = datetime(2024, 6, 11, 9, 30, tzinfo=timezone.utc)
    base = f"AWSDynamoDB/{dd.export_id(rng, when)}"
    (root / base / "data").mkdir(parents=True)
    names = dd.customer_names(CUSTOMERS, rng)
    # Zipf-like popularity: a few big customers, a long tail that still appears at 1M records.
    cum, total = [], 0.0
    for i in range(len(names)):
        total += 1.0 / (i + 1) ** 0.6
        cum.append(total)
    dirty_forms: dict[int, list[str]] = {}
    n_files = max(4, records // 125_000)
    per_file = -(-records // n_files)
    files = []
    seq = 0
    for f in range(n_files):
        key = f"{base}/data/{''.join(rng.choice('abcdefghijklmnopqrstuvwxyz234567') for _ in range(26))}.json.gz"
        path = root / key
        count = 0
        with gzip.open(path, "wb", compresslevel=6) as out:
            picks = rng.choices(range(len(names)), cum_weights=cum, k=min(per_file, records - seq))
            buf = []
            for idx in picks:
                seq += 1
                name = names[idx]
                if rng.random() < DIRTY_SHARE:
                    forms = dirty_forms.setdefault(idx, [dd.dirty(name, rng)])
                    if len(forms) < 3 and rng.random() < 0.1:
                        forms.append(dd.dirty(name, rng))
                    name = rng.choice(forms)
                buf.append(dd.item_line(dd.order_item(name, f"ORD-{seq:09d}", rng)))
                buf.append(b"\n")
                count += 1
                if len(buf) >= 20_000:
                    out.write(b"".join(buf))
                    buf.clear()
            out.write(b"".join(buf))
        files.append(dd.ExportFile(key, count, hashlib.md5(path.read_bytes()).digest()))
        print(f"  built {key} ({count:,} lines)", file=sys.stderr, flush=True)
    objects = dd.export_manifests(files, base=base, bucket="bench", prefix="", table="orders", when=when)
    for key, body in objects.items():
        (root / key).write_bytes(body)
    (root / ".complete").write_text(json.dumps({"records": records, "files": n_files,
                                                "seconds": round(time.perf_counter() - t0, 1)}))
    print(f"  dump for {records:,} records built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return root


def data_files(root: Path) -> list[Path]:
    (manifest,) = root.glob("AWSDynamoDB/*/manifest-files.json")
    return [root / json.loads(line)["dataFileS3Key"] for line in manifest.read_text().splitlines() if line]


# -- the measured processes ----------------------------------------------------------------------
def bare_loop(root: Path) -> None:
    """Child mode: the floor. gunzip + read lines + orjson.loads, nothing else; prints JSON."""
    t0 = time.perf_counter()
    lines = 0
    loads = orjson.loads
    for path in data_files(root):
        with gzip.open(path, "rb") as f:
            for line in f:
                if line.strip():
                    loads(line)
                    lines += 1
    print(json.dumps({"lines": lines, "seconds": time.perf_counter() - t0}))


def run_measured(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str, float, int]:
    """Run ``argv``; return (exit code, stdout, stderr, wall seconds, peak RSS in KiB of that child)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        return proc.returncode, out.read().decode(), err.read().decode(), wall, usage.ru_maxrss


def plan_argv(spec: Path, workspace: Path, root: Path, profile: Path | None = None) -> list[str]:
    head = [sys.executable]
    if profile is not None:
        head += ["-m", "cProfile", "-o", str(profile)]
    return [*head, "-m", "keyshift.console.cli", "--spec", str(spec), "--workspace", str(workspace),
            "plan", "--dump", str(root), "--json"]


def measure(records: int, repeat: int, profile: bool) -> dict:
    root = build_dump(records)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYSHIFT_"))}
    best_bare = best_plan = None
    for _ in range(repeat):
        code, out, err, wall, rss = run_measured([sys.executable, __file__, "--_bare", str(root)], env)
        if code:
            raise SystemExit(f"bare loop failed ({code}):\n{err}")
        doc = json.loads(out)
        bare = {"lines": doc["lines"], "seconds": doc["seconds"], "wall": wall, "rss_kib": rss}
        if best_bare is None or bare["seconds"] < best_bare["seconds"]:
            best_bare = bare
        with tempfile.TemporaryDirectory(prefix="keyshift-bench-") as tmp:
            spec = Path(tmp) / "keyshift.toml"
            spec.write_text(SPEC)
            code, out, err, wall, rss = run_measured(plan_argv(spec, Path(tmp) / ".keyshift", root), env)
            if code:
                raise SystemExit(f"keyshift plan failed ({code}):\n{err}")
            summary = json.loads(out)
        plan = {"records": summary["records"], "lines": summary["lines"], "seconds": summary["seconds"],
                "wall": wall, "rss_kib": rss, "identifiers": summary["identifiers"]}
        if best_plan is None or plan["seconds"] < best_plan["seconds"]:
            best_plan = plan
    result = {"records": records, "bare": best_bare, "plan": best_plan,
              "bare_rate": best_bare["lines"] / best_bare["seconds"],
              "plan_rate": best_plan["lines"] / best_plan["seconds"],
              "plan_wall_rate": best_plan["lines"] / best_plan["wall"]}
    result["ratio"] = result["plan_rate"] / result["bare_rate"]
    if profile:
        result["profile"] = profile_plan(root)
    return result


def profile_plan(root: Path, top: int = 15) -> str:
    """cProfile the plan (a fresh workspace); the top functions by own time, as text."""
    import io
    import pstats

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYSHIFT_"))}
    with tempfile.TemporaryDirectory(prefix="keyshift-bench-") as tmp:
        spec = Path(tmp) / "keyshift.toml"
        spec.write_text(SPEC)
        prof = Path(tmp) / "plan.prof"
        code, _, err, _, _ = run_measured(plan_argv(spec, Path(tmp) / ".keyshift", root, prof), env)
        if code:
            raise SystemExit(f"profiled plan failed ({code}):\n{err}")
        text = io.StringIO()
        pstats.Stats(str(prof), stream=text).sort_stats("tottime").print_stats(top)
        return text.getvalue()


# -- reporting -----------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        ram = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu or platform.processor(), "ram": ram,
            "python": platform.python_version(), "platform": platform.platform(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def report(results: list[dict], info: dict[str, str]) -> str:
    lines = [
        f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']} RAM, Python {info['python']}, "
        f"{info['platform']}; {info['date']}",
        "",
        "| records | bare loop rec/s | plan rec/s | ratio | plan wall s | plan peak RSS | bare peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ok = "ok" if r["ratio"] >= TARGET_RATIO else "BELOW TARGET"
        lines.append(
            f"| {r['records']:,} | {r['bare_rate']:,.0f} | {r['plan_rate']:,.0f} | "
            f"{r['ratio']:.0%} ({ok}) | {r['plan']['wall']:.1f} | {r['plan']['rss_kib'] / 1024:,.0f} MiB | "
            f"{r['bare']['rss_kib'] / 1024:,.0f} MiB |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="dump sizes to measure [default: 100000 1000000]")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the best is kept")
    parser.add_argument("--profile", action="store_true", help="also cProfile the plan (top 15 by own time)")
    parser.add_argument("--_bare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._bare:
        bare_loop(args._bare)
        return
    OUT.mkdir(exist_ok=True)
    info = machine()
    results = []
    for n in args.records:
        print(f"measuring {n:,} records...", file=sys.stderr, flush=True)
        r = measure(n, args.repeat, args.profile)
        print(f"  bare {r['bare_rate']:,.0f} rec/s, plan {r['plan_rate']:,.0f} rec/s "
              f"({r['ratio']:.0%}), plan RSS {r['plan']['rss_kib'] / 1024:,.0f} MiB", file=sys.stderr, flush=True)
        results.append(r)
    text = report(results, info)
    print(text)
    for r in results:
        if "profile" in r:
            print(f"\ncProfile of plan at {r['records']:,} records (top 15 by own time):\n{r['profile']}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"results-{stamp}.json").write_text(json.dumps({"machine": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
