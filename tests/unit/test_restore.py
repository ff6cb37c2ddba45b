"""Restore internals: the throttle, the retry loop's deadline, the control file."""

import threading
import time

import pytest

from keyshift.core.migrate.restore import RestoreError, RestoreProgress, _batch_write
from keyshift.core.migrate.restore_control import RestoreControl, read_control, write_control
from keyshift.core.migrate.throttle import RateLimiter as _RateLimiter
from keyshift.core.store.workspace import Workspace


def test_rate_limiter_holds_the_ceiling():
    limiter = _RateLimiter(200.0)
    start = time.monotonic()
    for _ in range(20):
        limiter.acquire(25)  # 500 items at 200/s, with one batch of burst
    elapsed = time.monotonic() - start
    assert 1.8 <= elapsed <= 3.5


def test_rate_limiter_without_ceiling_never_waits_and_halves_on_pushback():
    limiter = _RateLimiter(None)
    start = time.monotonic()
    for _ in range(1000):
        limiter.acquire(25)
    assert time.monotonic() - start < 0.5
    limiter.pushback(observed_rate=1000.0)
    assert limiter.current == 500.0
    limiter.pushback(observed_rate=1000.0)
    assert limiter.current == 250.0


class _AlwaysUnprocessed:
    """A DynamoDB stand-in that never processes anything (a table refusing writes)."""

    def __init__(self):
        self.calls = 0

    def batch_write_item(self, RequestItems):  # noqa: N803 - boto3's parameter name
        self.calls += 1
        (table, requests), = RequestItems.items()
        return {"UnprocessedItems": {table: requests}, "ResponseMetadata": {"RetryAttempts": 0}}


class _ProcessesHalf:
    def __init__(self):
        self.written = []

    def batch_write_item(self, RequestItems):  # noqa: N803
        (table, requests), = RequestItems.items()
        keep = len(requests) // 2 or len(requests)
        self.written += requests[:keep]
        rest = requests[keep:]
        return {"UnprocessedItems": {table: rest} if rest else {}, "ResponseMetadata": {"RetryAttempts": 0}}


def test_unprocessed_items_are_retried_until_all_are_written():
    ddb = _ProcessesHalf()
    progress = RestoreProgress()
    items = [{"pk": {"S": str(i)}} for i in range(25)]
    _batch_write(ddb, "t", items, progress, _RateLimiter(None), 30, threading.Lock())
    assert [r["PutRequest"]["Item"] for r in ddb.written] == items
    assert progress.written == 25 and progress.retries > 0


def test_past_the_deadline_the_batch_fails_loudly_never_silently():
    ddb = _AlwaysUnprocessed()
    progress = RestoreProgress()
    with pytest.raises(RestoreError, match="unprocessed"):
        _batch_write(ddb, "t", [{"pk": {"S": "a"}}], progress, _RateLimiter(None), 0.3, threading.Lock())
    assert ddb.calls > 1 and progress.written == 0


def test_control_file_round_trip(tmp_path):
    ws = Workspace(tmp_path)
    assert read_control(ws) is None
    write_control(ws, RestoreControl(paused=True, rate=250.0, workers=3))
    assert read_control(ws) == RestoreControl(True, 250.0, 3)


def test_latest_restore_reports_an_unfinished_runs_counters(tmp_path):
    from keyshift.core.migrate.restore import _open_run, _save_checkpoint, latest_restore
    from keyshift.core.kernel.keymap import Keymap

    ws = Workspace(tmp_path)
    assert latest_restore(ws) is None
    run_id, _, _ = _open_run(ws, Keymap("v1", {}), "alice", False, {})
    _save_checkpoint(ws, run_id, {"f": 40}, {"written": 37, "skipped": 3}, "cancelled")
    latest = latest_restore(ws)
    assert (latest.state, latest.summary, latest.counters["written"], latest.totals["skipped"]) == (
        "cancelled", None, 37, 3)
    assert latest.unit("f").position == 40 and latest.kind == "restore" and latest.keymap == "v1"
