"""The router library end to end, against the moto server: 20 service instances (threads, each
its own router) switch within TTL + one read of a flip and all acknowledge it in the control
table; a service process built from the environment alone (no client=, only the kernel
importable) follows a flip and keeps its last state when the control table disappears."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from keyshift.core.router import MigrationRouter
from unit.router_world import CONTROL, FLAG, NEW, OLD, control_items, create_control_table, flip, put_flag

pytestmark = pytest.mark.e2e


class ReadTimer:
    """The duration of every flag read (``before-call`` to ``after-call`` of GetItem), per thread."""

    def __init__(self, client) -> None:
        self.started: dict[int, float] = {}
        self.durations: list[float] = []
        self.lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb.GetItem", self.before)
        client.meta.events.register("after-call.dynamodb.GetItem", self.after)

    def before(self, **_):
        self.started[threading.get_ident()] = time.monotonic()

    def after(self, **_):
        t0 = self.started.pop(threading.get_ident(), None)
        if t0 is not None:
            with self.lock:
                self.durations.append(time.monotonic() - t0)


def test_twenty_routers_switch_within_ttl_plus_one_read(boto_clients):
    ddb = boto_clients.dynamodb
    create_control_table(ddb)
    put_flag(ddb, "old", 0)
    ttl = 0.5
    timer = ReadTimer(ddb)
    routers = [MigrationRouter(CONTROL, FLAG, OLD, NEW, service="billing", instance=f"worker-{n}",
                               ttl_seconds=ttl, client=ddb) for n in range(20)]
    assert {r.table() for r in routers} == {OLD}
    switched: dict[int, float] = {}
    started = threading.Barrier(21)
    stop = threading.Event()

    def serve(n: int, router: MigrationRouter) -> None:
        started.wait()
        while not stop.is_set():
            if router.table() == NEW and n not in switched:
                switched[n] = time.monotonic()
                return
            time.sleep(0.001)

    threads = [threading.Thread(target=serve, args=(n, r)) for n, r in enumerate(routers)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(ttl * 1.5)                    # every router well into its cache cycle
    flip(ddb, "new")
    flipped = time.monotonic()
    deadline = flipped + ttl + 5
    while len(switched) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join(5)
    assert len(switched) == 20, f"only {len(switched)} of 20 routers switched"
    slowest = max(switched.values()) - flipped
    one_read = max(timer.durations)
    # TTL + one read, plus a little for thread scheduling on a shared 2-core machine
    assert slowest <= ttl + one_read + 0.1, (slowest, one_read)
    # Every instance acknowledged the new version in the control table: no stragglers.
    reports = {r["instance"]["S"]: r for r in control_items(ddb, "router#billing#")}
    assert sorted(reports) == sorted(f"worker-{n}" for n in range(20))
    assert {(r["version"]["N"], r["state"]["S"]) for r in reports.values()} == {("1", "new")}


def test_one_shared_router_reads_once_per_ttl_across_threads(boto_clients):
    ddb = boto_clients.dynamodb
    create_control_table(ddb)
    put_flag(ddb, "shadow", 2)
    ttl = 0.2
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, ttl_seconds=ttl, client=ddb)
    timer = ReadTimer(ddb)
    seconds = 2.0
    stop = time.monotonic() + seconds
    answers: list[set[str]] = []

    def serve() -> None:
        seen = set()
        while True:  # at least one call, even for a thread a loaded machine starts after `stop`
            seen.add(router.table())
            if time.monotonic() >= stop:
                break
        answers.append(seen)

    threads = [threading.Thread(target=serve) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == [{OLD}] * 20
    assert 1 <= len(timer.durations) <= seconds / ttl + 1


SERVICE = r"""
import importlib.abc, json, sys, time
class NotInstalled(importlib.abc.MetaPathFinder):  # a service that installed keyshift --no-deps
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ("textual", "rich", "click", "orjson", "unicodedata2", "sqlite3", "moto"):
            raise ImportError(name)
sys.meta_path.insert(0, NotInstalled())
from keyshift.core.router import MigrationRouter
router = MigrationRouter(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], service="checkout", ttl_seconds=0.2)
print(json.dumps({"table": router.table(), "state": router.state()}), flush=True)
for line in sys.stdin:
    deadline = time.monotonic() + 5
    want = line.strip()
    while router.state() != want and time.monotonic() < deadline:
        time.sleep(0.01)
    print(json.dumps({"table": router.table(), "state": router.state(), "stale": router.stale_for() > 0}), flush=True)
"""


def test_a_service_process_built_from_the_environment(boto_clients, aws_env, tmp_path):
    """No client=: the router's own client, from AWS_ENDPOINT_URL and the region of the environment."""
    ddb = boto_clients.dynamodb
    create_control_table(ddb)
    put_flag(ddb, "old", 0)
    env = {k: v for k, v in aws_env.items()}
    import os

    env["PATH"] = os.environ.get("PATH", "")
    proc = subprocess.Popen([sys.executable, "-c", SERVICE, CONTROL, FLAG, OLD, NEW], env=env, cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(proc.stdout.readline()) == {"table": OLD, "state": "old"}
        flip(ddb, "new")
        proc.stdin.write("new\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"table": NEW, "state": "new", "stale": False}
        ddb.delete_table(TableName=CONTROL)
        time.sleep(0.5)
        proc.stdin.write("new\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"table": NEW, "state": "new", "stale": True}
        proc.stdin.close()
        assert proc.wait(10) == 0
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    # one log line for the failure streak, naming the table and the flag; no traceback
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and CONTROL in lines[0] and FLAG in lines[0], err
    assert "Traceback" not in err
