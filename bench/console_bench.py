"""The console's two numbers: start-up to first paint, and the worst frame while three runs work.

``python bench/console_bench.py`` (details in bench/README.md):

1. **Start-up to first paint.** A local moto server, the demo's table, dump and plan
   (``keyshift.console.demo.setup_demo``). Then, interleaved ``--repeat`` times, each in a fresh
   private tmux server (``-L``, 160×48): ``keyshift console`` on that workspace, timed from just
   before ``tmux new-session`` to the first ``capture-pane`` showing the overview's text (its step
   list and the plan's "reconciled"); and the reference, a bare Textual App (Header, one Static,
   Footer) timed the same way to its text. Also, outside tmux, ``python -c "import textual"`` and
   ``python -c "import keyshift.console.app"`` to exit. Medians; ratio console / bare App.
2. **Worst frame while restore, sync and verify run together.** The console App in this process,
   headless (``run_test(size=(160, 48))``), on the restore screen; restore, stream sync (follow)
   and verify started together through ``app.start_run`` (the same path as the keys; every
   confirmation answered yes), a writer thread updating the old table meanwhile so the sync has
   work. Measured while at least one of restore and verify runs:

   - **loop lateness**: an App interval timer every 10 ms records how late it fires (a blocked
     event loop delays every frame by as much);
   - **frame work**: ``Screen._compositor_refresh`` (the compositor's update for the top screen
     and its hand-off to the driver) and ``Screen._refresh_layout``, each timed by a wrapper.
     Headless, the driver writes nothing, so the terminal write itself is not in these.

   When the loop is late by more than ``--stall-ms`` (default 50), a watchdog thread samples the
   main thread's stack (``sys._current_frames``) and the report names the innermost keyshift and
   Textual frames seen most often (file:function:line): the culprit of a long frame.

Results are printed as Markdown and saved to ``bench/out/console-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
COLS, ROWS = 160, 48
BARE_APP = '''\
from textual.app import App
from textual.widgets import Footer, Header, Static


class Bare(App):
    def compose(self):
        yield Header()
        yield Static("bare textual app painted")
        yield Footer()


Bare().run()
'''


# -- start-up --------------------------------------------------------------------------------------
def _terminal_env() -> dict[str, str]:
    """This environment as a terminal has it (no forced width, no inherited tmux)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TMUX")}
    return {**env, "TERM": "xterm-256color"}


def time_to_text(command: list[str], needles: tuple[str, ...], cwd: Path, timeout: float = 30.0) -> float:
    """Seconds from spawning ``command`` in a fresh private tmux to the pane showing every needle."""
    socket = f"keyshift-bench-{uuid.uuid4().hex[:12]}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    env = _terminal_env()
    try:
        started = time.perf_counter()
        subprocess.run([*tmux, "new-session", "-d", "-x", str(COLS), "-y", str(ROWS), "-c", str(cwd),
                        shlex.join(command)], env=env, check=True, capture_output=True)
        deadline = started + timeout
        while True:
            screen = subprocess.run([*tmux, "capture-pane", "-p"], env=env, capture_output=True).stdout.decode(
                "utf-8", "replace")
            if all(n in screen for n in needles):
                return time.perf_counter() - started
            if "Traceback" in screen or time.perf_counter() > deadline:
                raise RuntimeError(f"{command[-1]}: {needles!r} not painted:\n{screen}")
            time.sleep(0.005)  # the poll's resolution: 5 ms
    finally:
        socket_path = subprocess.run([*tmux, "display-message", "-p", "#{socket_path}"], env=env,
                                     capture_output=True, text=True).stdout.strip()
        subprocess.run([*tmux, "kill-server"], env=env, capture_output=True)
        if socket_path:  # tmux leaves the socket file behind
            Path(socket_path).unlink(missing_ok=True)


def time_process(code: str) -> float:
    """Seconds for ``python -c code`` to exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def measure_startup(setup: Any, repeat: int) -> dict[str, Any]:
    bare = OUT / "bare_textual_app.py"
    bare.write_text(BARE_APP, encoding="utf-8")
    console = [sys.executable, "-m", "keyshift.console.cli", "--spec", str(setup.spec_path),
               "--workspace", str(setup.workspace_path), "console"]
    runs: dict[str, list[float]] = {"console": [], "bare_app": [], "import_textual": [], "import_console": []}
    time_to_text([sys.executable, str(bare)], ("bare textual app painted",), setup.directory)  # warm caches
    for _ in range(repeat):
        runs["bare_app"].append(time_to_text([sys.executable, str(bare)], ("bare textual app painted",),
                                             setup.directory))
        runs["console"].append(time_to_text(console, ("Migration steps", "reconciled"), setup.directory))
        runs["import_textual"].append(time_process("import textual.app"))
        runs["import_console"].append(time_process("import keyshift.console.app"))
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {"runs": runs, "median": med, "ratio_console_over_bare": med["console"] / med["bare_app"]}


# -- frames ----------------------------------------------------------------------------------------
class Watchdog(threading.Thread):
    """Samples the main thread's stack while the event loop is late (its heartbeat is old)."""

    def __init__(self, stall_s: float) -> None:
        super().__init__(daemon=True, name="bench-watchdog")
        self.stall_s = stall_s
        self.heartbeat = time.perf_counter()
        self.main = threading.main_thread().ident
        self.samples: list[list[str]] = []
        #: The other threads' innermost frames at each sample: who held the CPU (and the GIL).
        self.others: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            if time.perf_counter() - self.heartbeat > self.stall_s:
                frames = sys._current_frames()
                names = {t.ident: t.name for t in threading.enumerate()}
                for ident, other in frames.items():
                    if ident in (self.main, threading.get_ident()):
                        continue
                    stack = traceback.extract_stack(other)
                    mine = [f for f in stack if _package(f.filename) in ("keyshift",)]
                    inner = stack[-1]
                    if inner.name in _WAITING:
                        continue  # asleep: a lock, a socket, a queue; not what held the CPU
                    where = f"{Path(inner.filename).name}:{inner.name}:{inner.lineno}"
                    if mine:
                        where += f" ← {Path(mine[-1].filename).name}:{mine[-1].name}:{mine[-1].lineno}"
                    self.others[f"{names.get(ident, ident)}: {where}"] += 1
                frame = frames.get(self.main)
                if frame is not None:
                    self.samples.append([f"{Path(f.filename).name}:{f.name}:{f.lineno}"
                                         + (f" [{_package(f.filename)}]" if _package(f.filename) else "")
                                         for f in traceback.extract_stack(frame)])

    def culprits(self, top: int = 8) -> dict[str, list[tuple[str, int]]]:
        """The innermost keyshift frame and the innermost Textual frame, most frequent first."""
        inner: dict[str, Counter[str]] = {"keyshift": Counter(), "textual": Counter(), "innermost": Counter()}
        for stack in self.samples:
            inner["innermost"][stack[-1]] += 1
            for pkg in ("keyshift", "textual"):
                hit = next((f for f in reversed(stack) if f.endswith(f"[{pkg}]")), None)
                if hit:
                    inner[pkg][hit] += 1
        result = {k: c.most_common(top) for k, c in inner.items()}
        result["other_threads"] = self.others.most_common(top)
        return result


#: Innermost frames of a thread that is waiting, not computing.
_WAITING = {"wait", "select", "poll", "_wait_for_tstate_lock", "recv_into", "readinto", "sleep", "get",
            "acquire", "_recv", "recv", "accept", "read", "epoll", "wait_for", "_worker"}


def _package(filename: str) -> str:
    parts = Path(filename).parts
    for pkg in ("keyshift", "textual", "rich"):
        if pkg in parts:
            return pkg
    return ""


def _stats(values_ms: list[float]) -> dict[str, float]:
    if not values_ms:
        return {"n": 0}
    ordered = sorted(values_ms)
    return {"n": len(ordered), "median": statistics.median(ordered),
            "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], "max": ordered[-1]}


def _writer(ctx: Any, stop: threading.Event, rate: float, counter: list[int]) -> None:
    """Update demo orders in the old table at ``rate`` writes/s until ``stop``: the sync's work."""
    ddb = ctx.aws.client("dynamodb")
    items = ddb.scan(TableName="orders", Limit=200)["Items"]
    n = 0
    while not stop.is_set() and items:
        item = dict(items[n % len(items)])
        item["bench_touch"] = {"N": str(n)}
        ddb.put_item(TableName="orders", Item=item)
        n += 1
        counter[0] = n
        stop.wait(1.0 / rate)


async def _frames(ctx: Any, stall_s: float, writer_rate: float, timeout: float,
                  heap: list[dict[str, Any]] | None = None, gc_freeze: bool = False) -> dict[str, Any]:
    from textual.screen import Screen

    from keyshift.console.app import make_app
    from keyshift.screens.runs import RESTORE, STREAM_SYNC, VERIFY

    layout_ms: list[float] = []
    frame_ms: list[float] = []
    late_ms: list[float] = []
    stalls: list[tuple[float, float, str]] = []
    started = time.perf_counter()
    window = {"on": False}
    original_refresh, original_layout = Screen._compositor_refresh, Screen._refresh_layout

    def timed_refresh(self: Screen, *a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return original_refresh(self, *a, **k)
        finally:
            if window["on"]:
                frame_ms.append((time.perf_counter() - t) * 1000)

    def timed_layout(self: Screen, *a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return original_layout(self, *a, **k)
        finally:
            if window["on"]:
                layout_ms.append((time.perf_counter() - t) * 1000)

    Screen._compositor_refresh, Screen._refresh_layout = timed_refresh, timed_layout  # type: ignore[method-assign]
    dog = Watchdog(stall_s)
    gc_ms: list[tuple[int, float]] = []
    gc_start = [0.0, 0.0]
    gc_full: list[dict[str, Any]] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0], gc_start[1] = time.perf_counter(), time.thread_time()
        elif window["on"]:
            wall = (time.perf_counter() - gc_start[0]) * 1000
            gc_ms.append((info["generation"], wall))
            if info["generation"] == 2:  # wall against the collecting thread's CPU: was it the work?
                gc_full.append({"wall_ms": round(wall, 1), "cpu_ms": round((time.thread_time() - gc_start[1]) * 1000, 1),
                                "thread": threading.current_thread().name, "collected": info["collected"],
                                "uncollectable": info["uncollectable"]})
            if heap is not None and info["generation"] == 2:  # what the full collection had to walk (adds to lateness)
                objects = gc.get_objects()
                kinds = Counter(type(o).__qualname__ for o in objects)
                heap.append({"objects": len(objects), "top": kinds.most_common(8)})

    gc.callbacks.append(on_gc)
    app = make_app(ctx)
    app.ask = lambda question: True  # type: ignore[method-assign]  # every confirmation: yes
    stop_writer = threading.Event()
    writes = [0]
    try:
        async with app.run_test(size=(COLS, ROWS)) as pilot:
            await pilot.pause()
            await pilot.press("3")  # the restore screen: the busiest progress display
            await pilot.pause()
            expected = [time.perf_counter() + 0.01]

            def tick() -> None:
                now = time.perf_counter()
                dog.heartbeat = now
                if window["on"]:
                    late = max(0.0, (now - expected[0]) * 1000)
                    late_ms.append(late)
                    if late > 20:  # when, and on which screen, the long ones happened
                        stalls.append((round(now - started, 3), round(late, 1), type(app.screen).__name__))
                expected[0] = now + 0.01

            app.set_interval(0.01, tick)
            dog.start()
            writer = threading.Thread(target=_writer, args=(ctx, stop_writer, writer_rate, writes), daemon=True)
            writer.start()
            if gc_freeze:  # the experiment: start-up's objects out of every later full collection
                gc.collect()
                gc.freeze()
            await asyncio.sleep(0.05)  # a few ticks first, so no lateness of the set-up counts
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            window["on"] = True
            started = time.perf_counter()
            app.start_run(RESTORE)
            # Sync and verify need the new table, which the restore creates: start them once it writes.
            while app.slot(RESTORE).running and not app.slot(RESTORE).progress:
                await asyncio.sleep(0.01)
            app.start_run(STREAM_SYNC, follow=True)
            app.start_run(VERIFY)
            while any(app.slot(k).running for k in (RESTORE, VERIFY)):
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"restore/verify still running after {timeout:.0f}s")
                await asyncio.sleep(0.05)  # waiting for a condition; the App keeps running meanwhile
            window["on"] = False
            elapsed = time.perf_counter() - started
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            app.cancel_run(STREAM_SYNC)
            stop_writer.set()
            deadline = time.perf_counter() + 30
            while app.slot(STREAM_SYNC).running and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            outcomes = {k: {"outcome": app.slot(k).outcome, "summary": app.slot(k).summary,
                            "error": app.slot(k).error or None}
                        for k in (RESTORE, STREAM_SYNC, VERIFY)}
    finally:
        dog.stop.set()
        stop_writer.set()
        gc.callbacks.remove(on_gc)
        Screen._compositor_refresh, Screen._refresh_layout = original_refresh, original_layout  # type: ignore[method-assign]
    return {"window_seconds": elapsed, "writer_writes": writes[0], "outcomes": outcomes,
            "loop_lateness_ms": _stats(late_ms), "compositor_refresh_ms": _stats(frame_ms),
            "refresh_layout_ms": _stats(layout_ms),
            "gc_ms": _stats([ms for _, ms in gc_ms]), "gc_gen2": sorted(round(ms, 1) for g, ms in gc_ms if g == 2), "gc_full": gc_full,
            "cpu_seconds": round(usage1.ru_utime + usage1.ru_stime - usage0.ru_utime - usage0.ru_stime, 2),
            "involuntary_switches": usage1.ru_nivcsw - usage0.ru_nivcsw, "loadavg_after": os.getloadavg()[0],
            "switch_interval_s": sys.getswitchinterval(), "heap_at_full_collections": heap, "stall_samples": len(dog.samples), "stalls_over_20ms": stalls,
            "culprits": dog.culprits()}


# -- report ----------------------------------------------------------------------------------------
def _machine() -> dict[str, str]:
    def out(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""
    model = next((line.split(":", 1)[1].strip() for line in out("lscpu").splitlines()
                  if line.startswith("Model name")), "")
    mem = next((line.split()[1] for line in out("free", "-g").splitlines() if line.startswith("Mem")), "")
    import textual
    return {"nproc": str(os.cpu_count()), "cpu": model, "mem_gib": mem, "python": platform.python_version(),
            "kernel": platform.release(), "textual": getattr(textual, "__version__", "?"),
            "commit": out("git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"),
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def _print(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\nmachine: {m['nproc']} CPU {m['cpu']}, {m['mem_gib']} GiB, Python {m['python']}, "
          f"Textual {m['textual']}, commit {m['commit']}, load {m['loadavg']}")
    if "startup" in result:
        s = result["startup"]
        print("\n| start-up (s) | median | runs |\n|---|---:|---|")
        for k in ("console", "bare_app", "import_textual", "import_console"):
            print(f"| {k} | {s['median'][k]:.3f} | {', '.join(f'{v:.3f}' for v in s['runs'][k])} |")
        print(f"\nconsole / bare Textual App: {s['ratio_console_over_bare']:.2f} "
              f"(target: console under 1.5 s: {'met' if s['median']['console'] < 1.5 else 'NOT met'})")
    if "frames" in result:
        f = result["frames"]
        print(f"\nframes while restore + sync + verify ran ({f['window_seconds']:.1f} s, "
              f"{f['writer_writes']} live writes):\n\n| measure (ms) | n | median | p99 | max |\n|---|---:|---:|---:|---:|")
        for k in ("loop_lateness_ms", "compositor_refresh_ms", "refresh_layout_ms", "gc_ms"):
            st = f[k]
            if st.get("n"):
                print(f"| {k} | {st['n']} | {st['median']:.1f} | {st['p99']:.1f} | {st['max']:.1f} |")
        worst = max(f["loop_lateness_ms"].get("max", 0), f["compositor_refresh_ms"].get("max", 0))
        print(f"\nworst: {worst:.1f} ms (target under 100 ms: {'met' if worst < 100 else 'NOT met'}); "
              f"{f['stall_samples']} stack samples while the loop was late")
        for k, rows in f["culprits"].items():
            if rows:
                print(f"  innermost {k} frames while late: " + "; ".join(f"{name} ×{n}" for name, n in rows[:5]))
        print("full (gen 2) collections, wall / CPU of the collecting thread: "
              + ", ".join(f"{g['wall_ms']}/{g['cpu_ms']} ms ({g['thread']})" for g in f["gc_full"])
              + f"; switch interval {f['switch_interval_s'] * 1000:g} ms; process CPU {f['cpu_seconds']} s in "
              f"{f['window_seconds']:.1f} s; {f['involuntary_switches']} involuntary context switches; "
              f"load average {f['loadavg_after']:.2f}")
        print("late ticks over 20 ms (s into the window, ms, screen): "
              + ", ".join(f"{t}s {ms}ms {name}" for t, ms, name in f["stalls_over_20ms"]))
        print("outcomes: " + ", ".join(f"{k} {v['outcome']}" + (f" ({v['error']})" if v["error"] else "")
                                       for k, v in f["outcomes"].items()))


class _Setup:
    """Where a subprocess's ``setup_demo`` put the spec and the workspace."""

    def __init__(self, directory: Path, spec_path: Path, workspace_path: Path) -> None:
        self.directory, self.spec_path, self.workspace_path = directory, spec_path, workspace_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="demo orders (default: the demo's 2000)")
    parser.add_argument("--repeat", type=int, default=7, help="start-up runs of each (median)")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--no-frames", action="store_true")
    parser.add_argument("--stall-ms", type=float, default=50.0, help="loop lateness that samples the stack")
    parser.add_argument("--writer-rate", type=float, default=50.0, help="live writes per second during the runs")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="sys.setswitchinterval for the frames run (default: Python's 5 ms)")
    parser.add_argument("--setup-in-process", action="store_true",
                        help="build and plan the demo in the measured process, as `keyshift demo` does")
    parser.add_argument("--heap", action="store_true",
                        help="count the objects (by type) after each full collection (slows those frames)")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="experiment: gc.collect() + gc.freeze() once the console is up, before the runs")
    parser.add_argument("--setup-only", metavar="DIR", help=argparse.SUPPRESS)  # the child of the default setup
    args = parser.parse_args()
    if args.setup_only:
        from keyshift.console.context import Context
        from keyshift.console.demo import setup_demo
        from keyshift.core.aws import AwsContext

        setup_demo(Context(aws=AwsContext(endpoint_url=os.environ["AWS_ENDPOINT_URL"]), operator="bench"),
                   Path(args.setup_only), args.records, say=lambda message: None)
        return
    if not args.no_startup and shutil.which("tmux") is None:
        sys.exit("the start-up measurement needs tmux (apt-get install tmux), or pass --no-startup")

    from keyshift.console.context import Context
    from keyshift.console.demo import DEMO_ENV, LocalMotoServer, setup_demo
    from keyshift.core.aws import AwsContext

    OUT.mkdir(exist_ok=True)
    for k in [k for k in os.environ if k.startswith(("AWS_", "KEYSHIFT_"))]:
        del os.environ[k]  # never a real account
    os.environ.update(DEMO_ENV)
    directory = Path(tempfile.mkdtemp(prefix="console-bench-", dir=OUT))
    with LocalMotoServer(log=directory / "moto-server.log") as server:
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
        ctx = Context(aws=AwsContext(endpoint_url=server.endpoint_url, region=DEMO_ENV["AWS_DEFAULT_REGION"]),
                      operator="bench")
        t = time.perf_counter()
        if args.setup_in_process:  # what `keyshift demo` does: the demo's data built in the console's process
            setup = setup_demo(ctx, directory, args.records, say=lambda message: None)
        else:  # what `keyshift console` is: a process that only opens the planned workspace
            subprocess.run([sys.executable, __file__, "--setup-only", str(directory), "--records", str(args.records)],
                           check=True)
            setup = _Setup(directory, directory / "keyshift.toml", directory / ".keyshift")
        print(f"demo set up: {args.records} orders planned in {time.perf_counter() - t:.1f}s ({directory})")
        ctx = Context(spec_path=setup.spec_path, workspace_path=setup.workspace_path, operator="bench",
                      aws=ctx.aws)
        result: dict[str, Any] = {"machine": _machine(), "records": args.records,
                                  "setup_in_process": args.setup_in_process,
                                  "gc_tracked_objects_before_frames": len(gc.get_objects())}
        if not args.no_startup:
            result["startup"] = measure_startup(setup, args.repeat)
        if not args.no_frames:
            if args.switch_interval_ms:
                sys.setswitchinterval(args.switch_interval_ms / 1000)
            result["frames"] = asyncio.run(_frames(ctx, args.stall_ms / 1000, args.writer_rate, args.timeout,
                                                   [] if args.heap else None, args.gc_freeze))
            result["frames"]["gc_freeze"] = args.gc_freeze
    _print(result)
    path = OUT / f"console-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
