"""The router's flag cache, against the moto server: one read per TTL, reports, the last known
state when the control table goes away, failing closed on a first start, the default client."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from keyshift.core.kernel import router as router_mod
from keyshift.core.router import MigrationRouter, RouterError, RouterUnavailable

from .router_world import (CONTROL, FLAG, NEW, OLD, FakeClock, control_items, counted, create_control_table,
                           flip, put_flag)


@pytest.fixture
def ddb(boto_clients):
    create_control_table(boto_clients.dynamodb)
    put_flag(boto_clients.dynamodb, "old", 0)
    return boto_clients.dynamodb


def make(ddb, clock=None, **kwargs):
    return MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, clock=clock or FakeClock(), **kwargs)


def test_table_follows_the_flag_after_the_ttl(ddb):
    clock = FakeClock()
    router = make(ddb, clock, ttl_seconds=1.0)
    assert (router.table(), router.state(), router.version()) == (OLD, "old", 0)
    flip(ddb, "shadow")
    clock.advance(0.9)
    assert router.state() == "old"          # still inside the TTL: the cached value
    clock.advance(0.2)
    assert (router.table(), router.state(), router.version()) == (OLD, "shadow", 1)
    flip(ddb, "new")
    clock.advance(1.0)
    assert (router.table(), router.state(), router.version()) == (NEW, "new", 2)
    assert router.stale_for() == 0.0


def test_one_flag_read_per_ttl_whatever_the_calls(ddb):
    clock = FakeClock()
    router = make(ddb, clock, ttl_seconds=2.0)
    calls = counted(ddb)
    for _ in range(500):
        router.table()
        router.state()
    assert calls.count("GetItem", CONTROL) == 1
    for step in range(10):           # 10 TTLs, many calls in each
        clock.advance(2.0)
        for _ in range(100):
            router.table()
        assert calls.count("GetItem", CONTROL) == step + 2
    # the read is consistent and of the flag item only
    assert all(op != "Scan" and op != "Query" for op, _, _ in calls.seen)


def test_threads_after_expiry_trigger_one_read_and_never_wait(ddb):
    """20 threads hit an expired cache while the one read is slow: exactly one GetItem, and the
    others are answered at once from the previous value (they do not wait for the read)."""
    clock = FakeClock()
    router = make(ddb, clock, ttl_seconds=1.0)
    router.table()
    calls = counted(ddb)
    release = threading.Event()

    def slow(model, **_):
        if model.name == "GetItem":
            release.wait(5)

    ddb.meta.events.register("before-call.dynamodb.GetItem", slow)
    try:
        clock.advance(1.5)
        results, took = [], []

        def worker():
            t0 = time.perf_counter()
            results.append(router.table())
            took.append(time.perf_counter() - t0)

        reader = threading.Thread(target=router.table)
        reader.start()
        deadline = time.monotonic() + 5
        while calls.count("GetItem") == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert results == [OLD] * 20
        assert max(took) < 0.5, took          # not held by the slow read
        release.set()
        reader.join(5)
    finally:
        release.set()
        ddb.meta.events.unregister("before-call.dynamodb.GetItem", slow)
    assert calls.count("GetItem", CONTROL) == 1


def test_first_start_waits_for_the_single_read(ddb):
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, ttl_seconds=30)
    calls = counted(ddb)
    barrier = threading.Barrier(20)
    got = []

    def worker():
        barrier.wait()
        got.append(router.table())

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == [OLD] * 20
    assert calls.count("GetItem", CONTROL) == 1


def test_reports_once_per_version_change_and_a_heartbeat_a_minute(ddb):
    clock = FakeClock()
    router = make(ddb, clock, ttl_seconds=1.0, service="billing", instance="host-a:1")
    calls = counted(ddb)
    router.table()
    assert calls.count("PutItem", CONTROL) == 1
    (report,) = control_items(ddb, "router#")
    assert report["sk"]["S"] == "router#billing#host-a:1"
    assert {k: report[k] for k in ("service", "instance", "version", "state")} == {
        "service": {"S": "billing"}, "instance": {"S": "host-a:1"}, "version": {"N": "0"}, "state": {"S": "old"}}
    assert report["pid"]["N"].isdigit() and report["host"]["S"]
    first_ack = report["acked_at"]["S"]
    assert first_ack.endswith("Z") and report["last_seen"]["S"].endswith("Z")
    for _ in range(50):              # 50 flag reads within the minute: no more reports
        clock.advance(1.0)
        router.table()
    assert calls.count("GetItem", CONTROL) == 51
    assert calls.count("PutItem", CONTROL) == 1
    clock.advance(10.0)              # past the minute since the report: the heartbeat
    router.table()
    assert calls.count("PutItem", CONTROL) == 2
    flip(ddb, "new")
    clock.advance(1.0)
    assert router.table() == NEW
    assert calls.count("PutItem", CONTROL) == 3   # the version change reports at once
    for _ in range(30):
        clock.advance(1.0)
        router.table()
    assert calls.count("PutItem", CONTROL) == 3
    (report,) = control_items(ddb, "router#")
    assert (report["version"]["N"], report["state"]["S"]) == ("1", "new")


def test_acked_at_is_when_the_version_was_first_acted_on(ddb):
    from datetime import datetime, timedelta, timezone

    clock = FakeClock()
    wall = [datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)]
    router = make(ddb, clock, instance="i-1", now=lambda: wall[0])
    router.table()
    clock.advance(61)
    wall[0] += timedelta(seconds=61)
    router.table()                    # heartbeat: last_seen moves, acked_at does not
    (report,) = control_items(ddb, "router#")
    assert report["acked_at"]["S"] == "2026-12-01T12:00:00Z"
    assert report["last_seen"]["S"] == "2026-12-01T12:01:01Z"


def test_a_failed_report_never_fails_the_caller(ddb, caplog):
    clock = FakeClock()
    router = make(ddb, clock, instance="i-1")

    def refuse(model, **_):
        if model.name == "PutItem":
            raise RuntimeError("report store down")

    ddb.meta.events.register("before-call.dynamodb.PutItem", refuse)
    caplog.set_level(logging.WARNING, logger="keyshift.router")
    for _ in range(5):
        assert router.table() == OLD
        clock.advance(1.0)
    lines = [r for r in caplog.records if "report" in r.getMessage()]
    assert len(lines) == 1 and CONTROL in lines[0].getMessage()
    ddb.meta.events.unregister("before-call.dynamodb.PutItem", refuse)
    router.table()                    # retried at the next flag read, then written
    assert len(control_items(ddb, "router#")) == 1


def test_control_table_gone_keeps_the_last_state(ddb, caplog):
    clock = FakeClock()
    router = make(ddb, clock, ttl_seconds=1.0)
    flip(ddb, "new")
    assert router.table() == NEW
    ddb.delete_table(TableName=CONTROL)
    caplog.set_level(logging.INFO, logger="keyshift.router")
    calls = counted(ddb)
    stale = []
    for _ in range(10):
        clock.advance(1.0)
        for _ in range(20):
            assert router.table() == NEW and router.state() == "new" and router.version() == 1
        stale.append(router.stale_for())
    assert calls.count("GetItem", CONTROL) == 10       # still one read per TTL while failing
    assert stale == sorted(stale) and stale[0] == pytest.approx(1.0) and stale[-1] == pytest.approx(10.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings                # one line per failure streak
    assert CONTROL in warnings[0] and FLAG in warnings[0] and "'new'" in warnings[0]
    create_control_table(ddb)
    put_flag(ddb, "old", 7)
    clock.advance(1.0)
    assert router.table() == OLD and router.version() == 7
    assert router.stale_for() == 0.0
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("readable again" in m for m in infos)


def test_first_start_without_the_table_fails_closed(boto_clients, caplog):
    ddb = boto_clients.dynamodb
    clock = FakeClock()
    router = make(ddb, clock)
    calls = counted(ddb)
    caplog.set_level(logging.WARNING, logger="keyshift.router")
    for _ in range(5):
        with pytest.raises(RouterUnavailable) as info:
            router.table()
        assert CONTROL in str(info.value) and FLAG in str(info.value) and "default=" in str(info.value)
    assert calls.count("GetItem") == 1                 # no read per call: one per TTL
    assert len(caplog.records) == 1
    clock.advance(1.0)
    with pytest.raises(RouterUnavailable):
        router.state()
    assert calls.count("GetItem") == 2
    create_control_table(ddb)
    put_flag(ddb, "shadow", 3)
    clock.advance(1.0)
    assert router.state() == "shadow" and router.table() == OLD


def test_first_start_without_the_table_serves_the_default(boto_clients):
    ddb = boto_clients.dynamodb
    clock = FakeClock()
    router = make(ddb, clock, default="new")
    assert (router.table(), router.state(), router.version()) == (NEW, "new", None)
    clock.advance(3.0)
    assert router.table() == NEW
    assert router.stale_for() == pytest.approx(3.0)
    create_control_table(ddb)
    put_flag(ddb, "old", 4)
    clock.advance(1.0)
    assert (router.table(), router.version(), router.stale_for()) == (OLD, 4, 0.0)


def test_missing_or_malformed_flag_item_is_unavailable(boto_clients):
    ddb = boto_clients.dynamodb
    create_control_table(ddb)
    router = make(ddb)
    with pytest.raises(RouterUnavailable, match="flag init"):
        router.table()
    put_flag(ddb, "sideways", 1)
    router2 = make(ddb)
    with pytest.raises(RouterUnavailable, match="sideways"):
        router2.table()


def test_refresh_reads_now(ddb):
    clock = FakeClock()
    router = make(ddb, clock, ttl_seconds=60)
    assert router.state() == "old"
    flip(ddb, "new")
    assert router.state() == "old"
    assert router.refresh().state == "new" and router.table() == NEW


def test_default_client_comes_from_the_environment(ddb, aws_env):
    """No client=: boto3 builds one from the environment, AWS_ENDPOINT_URL included (the moto server)."""
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW)
    assert router.client.meta.endpoint_url == aws_env["AWS_ENDPOINT_URL"]
    assert router.client.meta.config.connect_timeout == router_mod.CONNECT_TIMEOUT_S
    assert router.table() == OLD


@pytest.mark.parametrize("kwargs, word", [
    ({"default": "shadow"}, "default"), ({"ttl_seconds": 0}, "ttl_seconds"), ({"ttl_seconds": "x"}, "ttl_seconds"),
    ({"service": ""}, "service"), ({"keymap": {"format": "nope"}}, "keymap"),
])
def test_bad_arguments_are_one_clear_error(boto_clients, kwargs, word):
    with pytest.raises(RouterError, match=word):
        MigrationRouter(CONTROL, FLAG, OLD, NEW, client=boto_clients.dynamodb, **kwargs)


def test_many_threads_share_one_read_per_ttl_on_the_real_clock(ddb):
    """Thread safety under the real clock: 16 threads calling for 2 s with a 0.25 s TTL."""
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, ttl_seconds=0.25)
    router.table()
    calls = counted(ddb)
    stop = time.monotonic() + 2.0
    errors, done = [], []

    def worker():
        n = 0
        try:
            while time.monotonic() < stop:
                assert router.table() == OLD
                n += 1
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        done.append(n)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and len(done) == 16 and sum(done) > 1000
    assert 1 <= calls.count("GetItem", CONTROL) <= 2.0 / 0.25 + 1


def test_a_forked_child_gets_fresh_locks_and_reads_for_itself(ddb):
    """A fork while another thread held the read lock must not leave the child serving the
    inherited state forever (the hook registered with os.register_at_fork runs _after_fork)."""
    clock = FakeClock()
    router = make(ddb, clock, ttl_seconds=1.0, instance="i-1")
    router.table()
    router._lock.acquire()                       # as if a thread was mid-read at the fork
    flip(ddb, "new")
    calls = counted(ddb)
    clock.advance(1.0)
    assert router.table() == OLD                 # the lock is taken: the cached value is served
    router_mod._after_fork_in_child()            # what the child runs right after the fork
    assert router.table() == NEW                 # the child read the flag itself (no TTL wait)
    assert calls.count("GetItem", CONTROL) == 1 and calls.count("PutItem", CONTROL) == 1
