#!/usr/bin/env python3
"""How fast is ``keyshift plan`` next to the bare cost of reading the same dump?

    python bench/plan_bench.py                          # light 100k + 1M, orders 200k, 3 runs each
    python bench/plan_bench.py --orders 200000 --repeat 5   # only the realistic orders dump
    python bench/plan_bench.py --records 1000000        # only the light dump, one size
    python bench/plan_bench.py --orders 200000 --profile    # + cProfile of the parent and children
    python bench/plan_bench.py --baseline /tmp/old          # + an older tree's plan, interleaved
    python bench/plan_bench.py --quiet-wait 60              # wait for an idle machine before each run
    python bench/plan_bench.py --instructions --baseline /tmp/old   # instructions per line (valgrind)

``--baseline`` takes a directory holding ``keyshift/core``, ``keyshift/console`` and
``keyshift/screens`` of another checkout (``git archive <commit>`` unpacked, three symlinks), put
first on ``PYTHONPATH`` for the plan and its children: before and after in the same run.

Two dump shapes, each a native Export-to-S3 layout in a local directory (gzipped data files with
``manifest-summary.json`` and ``manifest-files.json``, counts and MD5s), built once and cached in
``bench/out/``:

* **light** (``--records``): orders of ~50,000 distinct customers with Zipf-like popularity, ~5%
  of the records carrying a dirty identifier, files of 125,000 lines (at least 4);
* **orders** (``--orders``): exactly what the demo generates (``demo_data.build_demo_data``): an
  eighth as many customers as orders, about 18% of them also or only in a dirty form, the curated
  traps, the demo's bad lines (quarantined), nested maps, lists, string sets, nulls and binary
  (``B`` at the top level and ``BS`` inside a map on about one order in ten), dealt into 4 data
  files plus one empty file (an empty partition), as ``demo_data.export_objects`` writes them.

Then, per dump, ``--repeat`` times, interleaved, each in a fresh subprocess:

* the **bare loop**: gunzip every data file, read every line, ``orjson.loads`` it, nothing else;
* **keyshift plan --json** on a fresh workspace, default settings (no ``--workers``), with a spec
  without reference data.

It reports the medians of lines/s of both (each timed inside its process, so interpreter start-up
is left out of both; the plan's wall time is shown too), the ratio of the medians (target: the plan
at >= 25% of the bare loop) and peak RSS: ``ru_maxrss`` from ``wait4`` on the measured process (the
largest of it and its reaped children), CPU seconds of each measured process tree (steadier than
rates on a shared machine), and, sampled from ``/proc`` every 20 ms, the peak of the
plan's parent and of its largest extraction child separately.
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
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
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
ORDERS_VERSION = 1  # the same for the orders shape

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


# -- the dumps -----------------------------------------------------------------------------------
def dump_dir(shape: str, records: int) -> Path:
    if shape == "light":
        return OUT / f"export-{records}-v{FORMAT_VERSION}"
    return OUT / f"orders-{records}-v{ORDERS_VERSION}"


def build_dump(shape: str, records: int) -> Path:
    """Build (or reuse) the dump of ``shape`` for ``records``; returns the ``--dump`` directory."""
    root = dump_dir(shape, records)
    if (root / ".complete").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    n_files = (build_light if shape == "light" else build_orders)(root, records)
    (root / ".complete").write_text(json.dumps({"records": records, "files": n_files,
                                                "seconds": round(time.perf_counter() - t0, 1)}))
    print(f"  {shape} dump of {records:,} records built in {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)
    return root


def build_light(root: Path, records: int, seed: int = 7) -> int:
    """The light shape, streamed to disk file by file (see the module docstring)."""
    from keyshift.console import demo_data as dd

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
    return n_files


def build_orders(root: Path, records: int) -> int:
    """The demo's own data and export writer (holds the dump in memory while building: ~1 GB
    at 200,000 records, once; the result is cached)."""
    from keyshift.console import demo_data as dd

    data = dd.build_demo_data(records)
    lines = [dd.item_line(item) for item in data.items] + data.extra_lines
    del data
    _, objects = dd.export_objects(lines, bucket="bench", prefix="", table="orders", files=4,
                                   empty_files=1)
    for key, body in objects.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return sum(1 for key in objects if "/data/" in key)


def data_files(root: Path) -> list[Path]:
    (manifest,) = root.glob("AWSDynamoDB/*/manifest-files.json")
    return [root / json.loads(line)["dataFileS3Key"] for line in manifest.read_text().splitlines() if line]


# -- the measured processes ----------------------------------------------------------------------
def bare_loop(root: Path) -> None:
    """Child mode: the floor. gunzip + read lines + orjson.loads, nothing else; prints JSON.

    A line orjson cannot parse (the orders dump holds the demo's truncated line) is counted too:
    the bare loop reads every line, as the plan does."""
    t0 = time.perf_counter()
    lines = 0
    loads = orjson.loads
    for path in data_files(root):
        with gzip.open(path, "rb") as f:
            for line in f:
                if line.strip():
                    try:
                        loads(line)
                    except orjson.JSONDecodeError:
                        pass
                    lines += 1
    print(json.dumps({"lines": lines, "seconds": time.perf_counter() - t0}))


class TreeRss(threading.Thread):
    """Samples VmHWM (peak RSS) of a process and of its direct children from /proc, every 20 ms.

    A process's last sample is taken at most 20 ms before it ends, so a peak reached in its very
    last moments can be missed; ``wait4``'s ``ru_maxrss`` is the exact maximum over the tree.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peaks: dict[int, int] = {}
        self.stop = threading.Event()

    @staticmethod
    def _hwm(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"VmHWM:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            return None
        return None

    def run(self) -> None:
        while not self.stop.wait(0.02):
            try:
                kids = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            except OSError:
                kids = []
            for pid in (self.pid, *map(int, kids)):
                kib = self._hwm(pid)
                if kib is not None:
                    self.peaks[pid] = max(kib, self.peaks.get(pid, 0))

    def parent_kib(self) -> int:
        return self.peaks.get(self.pid, 0)

    def child_kib(self) -> int:
        return max((v for k, v in self.peaks.items() if k != self.pid), default=0)


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy (all CPUs; steal time included)."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")


def run_measured(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``argv``: exit code, stdout, stderr, wall seconds, CPU seconds (user + system, the
    process and its reaped children: what ``wait4`` reports), the CPU seconds everything else
    on the machine took meanwhile (``others_cpu``: other engineers' tests, the hypervisor's
    steal), peak RSS (KiB) of the tree, the parent and its largest child."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        busy0 = _busy_seconds()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        sampler = TreeRss(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        busy1 = _busy_seconds()
        cpu = usage.ru_utime + usage.ru_stime
        others = max(0.0, busy1 - busy0 - cpu) if busy0 is not None and busy1 is not None else 0.0
        sampler.stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        return {"code": proc.returncode, "stdout": out.read().decode(), "stderr": err.read().decode(),
                "wall": wall, "cpu": cpu, "others_cpu": others,
                "rss_kib": usage.ru_maxrss, "parent_kib": sampler.parent_kib(),
                "child_kib": sampler.child_kib()}


def plan_argv(spec: Path, workspace: Path, root: Path, profile: Path | None = None) -> list[str]:
    head = [sys.executable]
    if profile is not None:
        head += ["-m", "cProfile", "-o", str(profile)]
    return [*head, "-m", "keyshift.console.cli", "--spec", str(spec), "--workspace", str(workspace),
            "plan", "--dump", str(root), "--json"]


def _cpu_idle(seconds: float = 0.5) -> float:
    """Share of all CPUs idle over ``seconds`` (from /proc/stat; 1.0 where it cannot be read)."""
    def snap() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # idle + iowait

    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
    except (OSError, ValueError, IndexError):
        return 1.0
    return (i1 - i0) / max(1, t1 - t0)


QUIET = {"wait": 0.0, "waited": 0.0, "noisy_runs": 0}


#: A run is quiet when everything else on the machine used less than this share of one CPU.
QUIET_SHARE = 0.10


def wait_quiet() -> None:
    """With ``--quiet-wait S``: before a measured run, wait up to S seconds for the machine to be
    at least 90% idle (other engineers' test runs share its cores); count the runs that were not."""
    if QUIET["wait"] <= 0:
        return
    deadline = time.monotonic() + QUIET["wait"]
    t0 = time.monotonic()
    while _cpu_idle() < 0.9:
        if time.monotonic() > deadline:
            QUIET["noisy_runs"] += 1
            break
    QUIET["waited"] += time.monotonic() - t0


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYSHIFT_"))}


def ensure_dump(shape: str, records: int) -> Path:
    """The dump's directory, built in a subprocess when missing: building the orders shape takes
    about 1 GB, and Linux hands a process's peak RSS on to the children it starts (``ru_maxrss``
    survives ``exec``), which would inflate every measured process after it."""
    root = dump_dir(shape, records)
    if not (root / ".complete").exists():
        code = subprocess.call([sys.executable, __file__, "--_build", shape, str(records)])
        if code:
            raise SystemExit(f"building the {shape} dump failed ({code})")
    return root


def _plan_run(root: Path, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="keyshift-bench-") as tmp:
        spec = Path(tmp) / "keyshift.toml"
        spec.write_text(SPEC)
        wait_quiet()
        r = run_measured(plan_argv(spec, Path(tmp) / ".keyshift", root), env)
        if r["code"]:
            raise SystemExit(f"keyshift plan failed ({r['code']}):\n{r['stderr']}")
        summary = json.loads(r["stdout"])
    if not summary["reconciled"]:
        raise SystemExit(f"plan does not reconcile: {summary}")
    return {"records": summary["records"], "quarantined": summary["quarantined"],
            "lines": summary["lines"], "seconds": summary["seconds"], "wall": r["wall"],
            "cpu": r["cpu"], "others_cpu": r["others_cpu"], "rss_kib": r["rss_kib"], "parent_kib": r["parent_kib"], "child_kib": r["child_kib"],
            "identifiers": summary["identifiers"]}


def measure(shape: str, records: int, repeat: int, profile: bool, baseline: Path | None = None) -> dict:
    root = ensure_dump(shape, records)
    env = _env()
    bases = None
    if baseline is not None:
        # Another keyshift tree (for example ``git archive`` of an older commit laid out as
        # keyshift/{core,console,screens}) found first on PYTHONPATH, children included.
        base_env = {**env, "PYTHONPATH": str(baseline)}
        bases = []
    bares, plans = [], []
    for _ in range(repeat):  # interleaved: a slow moment of the shared VM hits both alike
        wait_quiet()
        r = run_measured([sys.executable, __file__, "--_bare", str(root)], env)
        if r["code"]:
            raise SystemExit(f"bare loop failed ({r['code']}):\n{r['stderr']}")
        doc = json.loads(r["stdout"])
        bares.append({"lines": doc["lines"], "seconds": doc["seconds"], "wall": r["wall"],
                      "cpu": r["cpu"], "others_cpu": r["others_cpu"], "rss_kib": r["rss_kib"]})
        plans.append(_plan_run(root, env))
        if bases is not None:
            bases.append(_plan_run(root, base_env))
    med = statistics.median
    bare_rates = [b["lines"] / b["seconds"] for b in bares]
    plan_rates = [p["lines"] / p["seconds"] for p in plans]
    result = {
        "shape": shape, "records": records, "lines": plans[0]["lines"], "repeat": repeat,
        "bare_runs": bares, "plan_runs": plans,
        "bare_rate": med(bare_rates), "plan_rate": med(plan_rates),
        "bare_rates": bare_rates, "plan_rates": plan_rates,
        "plan_wall": med(p["wall"] for p in plans),
        "plan_cpu": med(p["cpu"] for p in plans), "bare_cpu": med(b["cpu"] for b in bares),
        "plan_rss_kib": max(p["rss_kib"] for p in plans),
        "plan_parent_kib": max(p["parent_kib"] for p in plans),
        "plan_child_kib": max(p["child_kib"] for p in plans),
        "bare_rss_kib": max(b["rss_kib"] for b in bares),
        "identifiers": plans[0]["identifiers"], "quarantined": plans[0]["quarantined"],
    }
    result["ratio"] = result["plan_rate"] / result["bare_rate"]
    # Quiet runs: the rest of the machine used under 10% of one CPU meanwhile.
    clean = lambda runs: [x["lines"] / x["seconds"] for x in runs  # noqa: E731
                          if x["others_cpu"] < QUIET_SHARE * x["wall"]]
    result["bare_clean"], result["plan_clean"] = clean(bares), clean(plans)
    if bases is not None:
        result["base_clean"] = clean(bases)
        if [b["identifiers"] for b in bases] != [p["identifiers"] for p in plans]:
            raise SystemExit("the baseline's plan differs from this one's")
        result["baseline"] = str(baseline)
        result["base_runs"] = bases
        result["base_rates"] = [b["lines"] / b["seconds"] for b in bases]
        result["base_rate"] = med(result["base_rates"])
        result["base_ratio"] = result["base_rate"] / result["bare_rate"]
        result["base_rss_kib"] = max(b["rss_kib"] for b in bases)
        result["base_cpu"] = med(b["cpu"] for b in bases)
    if profile:
        result["profile"] = profile_plan(root)
    return result


def profile_plan(root: Path, top: int = 20) -> dict[str, str]:
    """cProfile the plan on a fresh workspace: the parent (``-m cProfile``) and every extraction
    child (``KEYSHIFT_PROFILE_DIR``: each child writes its own profile before it ends). Returns the
    top functions by own time of the parent and of the children merged, as text."""
    import io
    import pstats

    env = _env()
    with tempfile.TemporaryDirectory(prefix="keyshift-bench-") as tmp:
        spec = Path(tmp) / "keyshift.toml"
        spec.write_text(SPEC)
        prof = Path(tmp) / "plan.prof"
        kids = Path(tmp) / "children"
        kids.mkdir()
        env["KEYSHIFT_PROFILE_DIR"] = str(kids)
        r = run_measured(plan_argv(spec, Path(tmp) / ".keyshift", root, prof), env)
        if r["code"]:
            raise SystemExit(f"profiled plan failed ({r['code']}):\n{r['stderr']}")
        out = {}
        for label, files in (("parent", [prof]), ("children", sorted(kids.glob("*.prof")))):
            if not files:
                out[label] = "(no profile: the plan ran in one process)\n"
                continue
            text = io.StringIO()
            stats = pstats.Stats(*map(str, files), stream=text)
            stats.sort_stats("tottime").print_stats(top)
            out[label] = f"{len(files)} process(es)\n" + text.getvalue()
        return out



# -- instructions (deterministic) ----------------------------------------------------------------
def _valgrind(argv: list[str], env: dict[str, str], logdir: Path) -> dict[str, int]:
    """Run ``argv`` under cachegrind (children too); instructions executed, by kind of process:
    ``parent`` (the keyshift command or the bare loop) and ``children`` (extraction, summed)."""
    for old in logdir.glob("log.*"):
        old.unlink()
    code = subprocess.call(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
                            "--cachegrind-out-file=/dev/null", f"--log-file={logdir}/log.%p", *argv],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if code:
        raise SystemExit(f"valgrind run failed ({code}): {' '.join(argv)}")
    out = {"parent": 0, "children": 0}
    for log in logdir.glob("log.*"):
        text = log.read_text(errors="replace")
        refs = [line for line in text.splitlines() if "I   refs:" in line or "I refs:" in line]
        if not refs:
            continue
        n = int(refs[-1].rsplit(":", 1)[1].replace(",", "").strip())
        out["children" if "keyshift.core.plan.extract" in text else "parent"] += n
    return out


_LET_CHILDREN_EXIT = """\
import subprocess
try:
    from keyshift.core.plan import extract as _x
except Exception:  # not a keyshift process
    _x = None
if _x is not None and hasattr(_x, "ChildExtraction"):
    def _close(self):
        try:
            self._proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._out.close()
        self._proc.wait()
    _x.ChildExtraction.close = _close
"""


def instructions(n: int, baseline: Path | None) -> dict:
    """Instructions per line of the bare loop and of the plan (parent, children), on the orders
    shape at ``n`` records minus the same at 100 records (interpreter start-up and imports cancel
    out). Two extraction processes (``--workers 2``), as the default gives larger dumps."""
    import shutil as _sh

    if _sh.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    small, big = ensure_dump("orders", 100), ensure_dump("orders", n)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="keyshift-bench-") as tmp:
        # valgrind reports a process's count when it exits; keyshift before 2026-12-02 killed an
        # extraction child right after its last message, so every tree's parent is made to wait
        # for its children here (a sitecustomize on PYTHONPATH, for the measured runs only).
        site = Path(tmp) / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(_LET_CHILDREN_EXIT)
        trees: list[tuple[str, dict[str, str]]] = [("this tree", {**_env(), "PYTHONPATH": str(site)})]
        if baseline is not None:
            trees.append((f"baseline {baseline}", {**_env(), "PYTHONPATH": f"{site}:{baseline}"}))
        logdir = Path(tmp) / "logs"
        logdir.mkdir()
        spec = Path(tmp) / "keyshift.toml"
        spec.write_text(SPEC)
        lines = {}
        for root in (small, big):
            with open(data_files(root)[0].parent.parent / "manifest-summary.json", "rb") as fh:
                lines[root] = json.loads(fh.read())["itemCount"]
        span = lines[big] - lines[small]
        bare = [_valgrind([sys.executable, __file__, "--_bare", str(root)], trees[0][1], logdir)["parent"]
                for root in (small, big)]
        rows["bare loop"] = {"parent": (bare[1] - bare[0]) / span, "children": 0.0}
        for label, env in trees:
            runs = []
            for root in (small, big):
                ws = Path(tmp) / f"ws-{len(runs)}-{len(rows)}"
                runs.append(_valgrind([*plan_argv(spec, ws, root), "--workers", "2"], env, logdir))
            rows[f"plan, {label}"] = {k: (runs[1][k] - runs[0][k]) / span for k in ("parent", "children")}
    return {"records": n, "lines": span, "per_line": rows}


def instructions_report(res: dict) -> str:
    out = [f"Instructions per dump line (cachegrind; orders {res['records']:,} minus orders 100, "
           f"{res['lines']:,} lines; plan with --workers 2):", "",
           "| process | parent | extraction children | total | bare loop / total |",
           "|---|---:|---:|---:|---:|"]
    bare = res["per_line"]["bare loop"]["parent"]
    for label, r in res["per_line"].items():
        total = r["parent"] + r["children"]
        out.append(f"| {label} | {r['parent']:,.0f} | {r['children']:,.0f} | {total:,.0f} | "
                   f"{bare / total:.2f} |")
    return "\n".join(out)


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
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "orjson": getattr(orjson, "__version__", "?"), "platform": platform.platform(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def report(results: list[dict], info: dict[str, str]) -> str:
    lines = [
        f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']} RAM, Python {info['python']}, "
        f"SQLite {info['sqlite']}, orjson {info['orjson']}, {info['platform']}; {info['date']}",
        "",
        "| dump | lines | runs | bare loop lines/s | plan lines/s | ratio | plan wall s "
        "| CPU s (bare / plan) | plan peak RSS (parent / child) | bare peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ok = "ok" if r["ratio"] >= TARGET_RATIO else "BELOW TARGET"
        lines.append(
            f"| {r['shape']} {r['records']:,} | {r['lines']:,} | {r['repeat']} | {r['bare_rate']:,.0f} | "
            f"{r['plan_rate']:,.0f} | {r['ratio']:.2f} ({ok}) | {r['plan_wall']:.1f} | "
            f"{r['bare_cpu']:.2f} / {r['plan_cpu']:.2f} | "
            f"{_mib(r['plan_rss_kib'])} ({_mib(r['plan_parent_kib'])} / {_mib(r['plan_child_kib'])}) | "
            f"{_mib(r['bare_rss_kib'])} |"
        )
    based = [r for r in results if "base_rate" in r]
    if based:
        lines += ["", f"Baseline (PYTHONPATH={based[0]['baseline']}), interleaved with the runs above:", "",
                  "| dump | baseline plan lines/s | ratio | this plan lines/s | ratio | speed-up | "
                  "CPU s (baseline / this) | baseline peak RSS |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in based:
            lines.append(f"| {r['shape']} {r['records']:,} | {r['base_rate']:,.0f} | {r['base_ratio']:.2f} | "
                         f"{r['plan_rate']:,.0f} | {r['ratio']:.2f} | {r['plan_rate'] / r['base_rate']:.2f}x | "
                         f"{r['base_cpu']:.2f} / {r['plan_cpu']:.2f} | "
                         f"{_mib(r['base_rss_kib'])} |")
    lines += ["", f"Quiet runs only (the rest of the machine used under {QUIET_SHARE:.0%} of one CPU meanwhile):",
              "", "| dump | quiet runs (bare / plan / baseline) | bare loop lines/s | plan lines/s | ratio "
              "| baseline plan lines/s | ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        b, p, o = r["bare_clean"], r["plan_clean"], r.get("base_clean")
        mb = statistics.median(b) if b else None
        mp = statistics.median(p) if p else None
        mo = statistics.median(o) if o else None
        cell = lambda x: f"{x:,.0f}" if x else "–"  # noqa: E731
        ratio = lambda x: f"{x / mb:.2f}" if x and mb else "–"  # noqa: E731
        lines.append(f"| {r['shape']} {r['records']:,} | {len(b)} / {len(p)} / "
                     f"{len(o) if o is not None else '–'} | {cell(mb)} | {cell(mp)} | {ratio(mp)} | "
                     f"{cell(mo)} | {ratio(mo)} |")
    lines.append("")
    lines.append("Medians of the runs; single runs (lines/s):")
    for r in results:
        lines.append(f"- {r['shape']} {r['records']:,}: bare "
                     + ", ".join(f"{x:,.0f}" for x in r["bare_rates"]) + "; plan "
                     + ", ".join(f"{x:,.0f}" for x in r["plan_rates"])
                     + ("; baseline " + ", ".join(f"{x:,.0f}" for x in r["base_rates"])
                        if "base_rates" in r else ""))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=None,
                        help="light dump sizes [default: 100000 1000000, unless --orders alone]")
    parser.add_argument("--orders", type=int, nargs="+", default=None,
                        help="realistic orders dump sizes [default: 200000, unless --records alone]")
    parser.add_argument("--repeat", type=int, default=3, help="runs per dump; medians are reported")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the plan's parent and extraction children (top 20 by own time)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="also run the plan of another keyshift tree (a directory holding "
                             "keyshift/{core,console,screens}, put first on PYTHONPATH), interleaved")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="S",
                        help="before each measured run, wait up to S seconds for the CPUs to be "
                             ">= 90%% idle (the report counts runs that were not)")
    parser.add_argument("--instructions", type=int, nargs="?", const=20_000, default=None, metavar="N",
                        help="instead: count instructions per line under valgrind (orders N, default "
                             "20000, minus orders 100), with --baseline too; deterministic, unlike rates")
    parser.add_argument("--_bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_build", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._bare:
        bare_loop(args._bare)
        return
    if args._build:
        OUT.mkdir(exist_ok=True)
        build_dump(args._build[0], int(args._build[1]))
        return
    if args.instructions:
        OUT.mkdir(exist_ok=True)
        res = instructions(args.instructions, args.baseline)
        text = instructions_report(res)
        print(text)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        (OUT / f"instructions-{stamp}.json").write_text(json.dumps({"machine": machine(), **res}, indent=2))
        return
    if args.records is None and args.orders is None:
        args.records, args.orders = [100_000, 1_000_000], [200_000]
    runs = [("orders", n) for n in args.orders or ()] + [("light", n) for n in args.records or ()]
    OUT.mkdir(exist_ok=True)
    QUIET["wait"] = args.quiet_wait
    info = machine()
    results = []
    for shape, n in runs:
        print(f"measuring {shape} {n:,} records...", file=sys.stderr, flush=True)
        r = measure(shape, n, args.repeat, args.profile, args.baseline)
        print(f"  bare {r['bare_rate']:,.0f} lines/s, plan {r['plan_rate']:,.0f} lines/s "
              f"({r['ratio']:.2f}), plan RSS {_mib(r['plan_rss_kib'])}", file=sys.stderr, flush=True)
        results.append(r)
    text = report(results, info)
    if QUIET["wait"] > 0:
        text += (f"\n\nWaited {QUIET['waited']:.0f} s in all for an idle machine (>= 90% idle CPU) before "
                 f"the runs; {QUIET['noisy_runs']} run(s) started without it after {QUIET['wait']:.0f} s.")
    info["quiet"] = dict(QUIET)
    print(text)
    for r in results:
        for label, prof in r.get("profile", {}).items():
            print(f"\ncProfile of the plan's {label}, {r['shape']} {r['records']:,} (top 20 by own time): "
                  f"{prof}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"results-{stamp}.json").write_text(json.dumps({"machine": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
