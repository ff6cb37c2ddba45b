"""Restore: write transform(dump) into the new table, in parallel, throttled, resumable.

Design (docs/design.md, "Backfill and the live stream"): the old table's stream is on before the
dump's point in time; restore writes the dump's items with blind batched puts; stream sync then
replays the stream from its trim horizon, in sequence order, through the same transform, so every
item ends at the source's latest version and deleted items are deleted. Restore must therefore
finish inside the stream's 24-hour retention; it says how long it took.

Mechanics:

* the planned dump is read again, streamed, file by file; each readable item goes through the
  shared :func:`~keyshift.core.kernel.transform.transform` (nothing else rewrites items);
* puts go out in ``BatchWriteItem`` batches of at most 25 from ``workers`` threads; every
  ``UnprocessedItems`` entry is retried with exponential backoff and full jitter until a deadline,
  never dropped; past the deadline the run stops with an error and a resumable checkpoint;
* an additive-increase / multiplicative-decrease rate limiter slows down on unprocessed items and
  throttles and speeds up again (like gh-ost's throttle);
* the checkpoint is, per file, the highest line such that every put up to it is acknowledged;
  resuming skips those lines and re-puts the rest (puts are idempotent), so a run killed at any
  point (SIGKILL included) and resumed ends with the same table as an uninterrupted one;
* operators steer a running restore through a control file in the workspace (pause, resume, rate,
  workers): the CLI's ``restore-control`` writes it, the console's keys too.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Iterator

from .batch_write import MAX_BATCH, BatchWriteTimeout, write_batch
from ..dumps import open_dump
from ..errors import KeyshiftError
from ..kernel.items import for_botocore
from ..spec import Spec
from ..kernel.keymap import Keymap
from ..kernel.transform import KeyNames, Put, transform
from ..store.workspace import Workspace, utcnow
from .restore_control import CONTROL_FILE, RestoreControl, read_control, write_control
from .throttle import RateLimiter

__all__ = ["RestoreError", "RestoreCancelled", "RestoreProgress", "run_restore", "latest_restore",
           "plan_to_restore_args"]

BATCH_SIZE = MAX_BATCH  # DynamoDB's BatchWriteItem limit (moto accepts 26: keep our own)
_MAX_WORKERS = 64


class RestoreError(KeyshiftError):
    """Restore cannot go on (deadline passed, table refused writes); the checkpoint is kept."""

    title = "Restore stopped"


class RestoreCancelled(Exception):
    """The operator cancelled; the run is resumable with ``--resume``."""


@dataclass
class RestoreProgress:
    """Where a running restore is (for the status line and the console)."""

    lines: int = 0
    total_lines: int | None = None
    written: int = 0
    skipped: int = 0
    dropped_by_decision: int = 0
    unreadable: int = 0
    retries: int = 0
    throttles: int = 0
    rate_limit: float | None = None
    workers: int = 1
    paused: bool = False
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Items written per second so far."""
        return self.written / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, from lines read so far."""
        if not self.total_lines or not self.lines or self.elapsed <= 0:
            return None
        return self.elapsed * max(0, self.total_lines - self.lines) / self.lines


def _batch_write(ddb: Any, table: str, items: list[dict[str, Any]], progress: RestoreProgress,
                 limiter: RateLimiter, deadline_s: float, lock: threading.Lock) -> None:
    """Put ``items`` (≤ 25) until every one is acknowledged, or raise past the deadline."""

    def counted(acknowledged: int, unprocessed: int, botocore_retries: int) -> None:
        with lock:
            progress.written += acknowledged
            progress.retries += unprocessed
            progress.throttles += botocore_retries  # botocore's own retries: throttles or transient errors
        if unprocessed or botocore_retries:
            limiter.pushback(progress.rate)

    try:
        write_batch(ddb, table, [{"PutRequest": {"Item": for_botocore(item)}} for item in items],
                    deadline_s=deadline_s, acquire=limiter.acquire, on_response=counted)
    except BatchWriteTimeout as exc:
        raise RestoreError(
            f"{exc}; the checkpoint is kept: fix the cause and run `keyshift restore --resume`") from exc


@dataclass
class _Pending:
    file: str
    last_line: int
    future: Future


def run_restore(
    ws: Workspace,
    spec: Spec,
    keymap: Keymap,
    *,
    ddb: Any,
    s3: Any = None,
    dump_uri: str,
    fmt: str = "auto",
    operator: str = "unknown",
    workers: int = 4,
    rate: float | None = None,
    resume: bool = False,
    deadline_s: float = 600.0,
    total_lines: int | None = None,
    cancel: threading.Event | None = None,
    checkpoint_every: float = 1.0,
) -> Iterator[RestoreProgress]:
    """Restore ``dump_uri`` into ``spec.target.table``; yields progress, returns the summary dict.

    Raises :class:`RestoreError` when writes cannot complete before the deadline and
    :class:`RestoreCancelled` when ``cancel`` is set; both leave a resumable checkpoint.
    """
    started = time.monotonic()
    names = KeyNames.from_spec(spec)
    table = spec.target.table
    run_id, done_lines, counters = _open_run(ws, keymap, operator, resume,
                                             {"dump": dump_uri, "workers": workers, "rate": rate})
    # A control file left by an earlier run must not steer this one (a stale "paused" would
    # freeze it): start from this run's own settings.
    write_control(ws, RestoreControl(paused=False, rate=rate, workers=workers))
    progress = RestoreProgress(total_lines=total_lines, workers=workers, rate_limit=rate)
    for k in ("written", "skipped", "dropped_by_decision", "unreadable", "retries", "throttles"):
        setattr(progress, k, counters.get(k, 0))
    progress.lines = sum(done_lines.values())
    limiter = RateLimiter(rate)
    lock = threading.Lock()
    pool = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="keyshift-restore")
    pending: deque[_Pending] = deque()
    failure: list[BaseException] = []
    watermark: dict[str, int] = dict(done_lines)
    last_checkpoint = time.monotonic()
    control_mtime = 0.0
    reader = open_dump(dump_uri, fmt, s3=s3)
    superseded = _superseded_lines(ws)

    def settle(block: bool) -> None:
        """Advance per-file watermarks over the acknowledged prefix of the pending batches."""
        while pending and (block or pending[0].future.done()):
            head = pending[0]
            try:
                head.future.result()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the checkpoint
                failure.append(exc)
                return
            pending.popleft()
            watermark[head.file] = max(watermark.get(head.file, 0), head.last_line)
            block = False

    def checkpoint(state: str = "running") -> None:
        with lock:
            snapshot = {k: getattr(progress, k) for k in
                        ("written", "skipped", "dropped_by_decision", "unreadable", "retries", "throttles")}
        _save_checkpoint(ws, run_id, watermark, snapshot, state)

    def poll_control() -> None:
        nonlocal control_mtime
        path = ws.path / CONTROL_FILE
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return
        if mtime == control_mtime:
            return
        control_mtime = mtime
        control = read_control(ws)
        if control is None:
            return
        progress.paused = control.paused
        if control.workers:
            progress.workers = max(1, min(_MAX_WORKERS, int(control.workers)))
        limiter.set_ceiling(control.rate)
        progress.rate_limit = control.rate

    try:
        batch: list[dict[str, Any]] = []
        batch_keys: set[tuple] = set()
        batch_file, batch_last = "", 0

        def submit() -> None:
            nonlocal batch, batch_keys
            while True:
                settle(block=False)
                running = [p.future for p in pending if not p.future.done()]
                if failure or (len(pending) < progress.workers * 2 and len(running) < progress.workers):
                    break
                # Sleep until a batch finishes (no polling: the main thread shares the GIL).
                wait(running or [pending[0].future], timeout=1.0, return_when=FIRST_COMPLETED)
            if failure:
                return
            items = batch
            pending.append(_Pending(batch_file, batch_last,
                                    pool.submit(_batch_write, ddb, table, items, progress, limiter,
                                                deadline_s, lock)))
            batch, batch_keys = [], set()

        for entry in reader:
            if entry.line <= done_lines.get(entry.file, 0):
                continue  # written by the interrupted run (its checkpoint says so)
            if cancel is not None and cancel.is_set():
                raise RestoreCancelled("restore cancelled by the operator")
            if failure:
                break
            if batch and entry.file != batch_file:
                submit()
            batch_file = entry.file
            progress.lines += 1
            if entry.item is None:
                progress.unreadable += 1  # quarantined at plan time: reported there
            elif (entry.file, entry.line) in superseded:
                progress.skipped += 1  # a later line of the dump holds the same item: it wins
            else:
                outcome = transform(entry.item, keymap, names)
                if isinstance(outcome, Put):
                    new_item = outcome.item
                    sk_value = new_item.get(names.source_sk) if names.source_sk else None
                    key = (new_item[names.target_pk]["S"], *(next(iter(sk_value.items())) if sk_value else ()))
                    if key in batch_keys:  # BatchWriteItem refuses one key twice: keep dump order
                        submit()
                    batch.append(outcome.item)
                    batch_keys.add(key)
                elif outcome.kind == "dropped":
                    progress.dropped_by_decision += 1
                else:
                    progress.skipped += 1
            batch_last = entry.line
            if len(batch) >= BATCH_SIZE:
                submit()
            elif not batch:
                # Lines with nothing to write are "done" as soon as everything before them is.
                if not pending:
                    watermark[entry.file] = max(watermark.get(entry.file, 0), entry.line)
            settle(block=False)
            now = time.monotonic()
            if now - last_checkpoint >= checkpoint_every:
                poll_control()
                while progress.paused and not (cancel is not None and cancel.is_set()):
                    settle(block=False)
                    checkpoint("paused")
                    progress.elapsed = time.monotonic() - started
                    yield progress
                    time.sleep(0.2)
                    poll_control()
                checkpoint()
                last_checkpoint = now
                progress.elapsed = now - started
                yield progress
        if batch and not failure:
            submit()
        settle(block=True)
        if not failure:
            # Every line of every file is acknowledged: mark files fully done.
            for uri in reader.info.files:
                watermark[uri] = max(watermark.get(uri, 0), 1 << 40)
    except RestoreCancelled:
        settle(block=True)
        checkpoint("cancelled")
        ws.audit(operator, "restore.cancel", {"run_id": run_id, "lines": progress.lines})
        raise
    finally:
        pool.shutdown(wait=True)
        # The control file steers a running restore only: none is left behind to surprise the next.
        (ws.path / CONTROL_FILE).unlink(missing_ok=True)
    if failure:
        checkpoint("failed")
        ws.audit(operator, "restore.fail", {"run_id": run_id, "error": str(failure[0])})
        if isinstance(failure[0], KeyshiftError):
            raise failure[0]
        raise RestoreError(f"restore stopped: {failure[0]}") from failure[0]
    progress.elapsed = time.monotonic() - started
    summary = {
        "written": progress.written, "skipped": progress.skipped,
        "dropped_by_decision": progress.dropped_by_decision, "unreadable": progress.unreadable,
        "retries": progress.retries, "throttles": progress.throttles,
        "lines": progress.lines, "seconds": round(progress.elapsed, 3), "keymap": keymap.version,
        "table": table, "run_id": run_id, "resumed": bool(done_lines),
    }
    checkpoint("complete")
    _finish_run(ws, run_id, summary)
    ws.audit(operator, "restore.complete", summary)
    yield progress
    return summary


def _superseded_lines(ws: Workspace) -> set[tuple[str, int]]:
    """(file, line) of dump lines repeating an item (same identifier and sort key) that a later
    line repeats again: only the last one is written, so parallel batches cannot reorder them."""
    rows = ws.connect().execute(
        "SELECT f.uri, r.line FROM records r JOIN files f ON f.id = r.file_id JOIN"
        " (SELECT ident, sort_key, max(seq) AS last FROM records GROUP BY ident, sort_key"
        "  HAVING count(*) > 1) d ON d.ident = r.ident AND d.sort_key IS r.sort_key"
        " WHERE r.seq != d.last"
    )
    return {(uri, line) for uri, line in rows}


def _open_run(ws: Workspace, keymap: Keymap, operator: str, resume: bool,
              params: dict[str, Any]) -> tuple[int, dict[str, int], dict[str, int]]:
    """(run id, lines done per file, counters) — a new run, or the interrupted one to resume."""
    conn = ws.connect()
    if resume:
        row = conn.execute(
            "SELECT id, keymap FROM runs WHERE kind = 'restore' AND state != 'complete' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise RestoreError("nothing to resume: no interrupted restore in this workspace")
        if row[1] != keymap.version:
            raise RestoreError(
                f"the interrupted restore used keymap {row[1]}, the workspace now builds {keymap.version};"
                " resuming would mix two mappings: start a new restore instead"
            )
        done: dict[str, int] = {}
        counters: dict[str, int] = {}
        for unit, position, c in conn.execute(
            "SELECT unit, position, counters FROM checkpoints WHERE run_id = ?", (row[0],)
        ):
            if unit == "_counters":
                counters = json.loads(c)
            else:
                done[unit] = int(json.loads(position) or 0)
        with ws.transaction():
            conn.execute("UPDATE runs SET state = 'running', finished_at = NULL WHERE id = ?", (row[0],))
        ws.audit(operator, "restore.resume", {"run_id": row[0]})
        return row[0], done, counters
    with ws.transaction():
        cur = conn.execute(
            "INSERT INTO runs(kind, state, operator, keymap, params, started_at)"
            " VALUES ('restore', 'running', ?, ?, ?, ?)",
            (operator, keymap.version, json.dumps(params), utcnow()),
        )
    run_id = int(cur.lastrowid)
    ws.audit(operator, "restore.start", {"run_id": run_id, "keymap": keymap.version, **params})
    return run_id, {}, {}


def _save_checkpoint(ws: Workspace, run_id: int, watermark: dict[str, int], counters: dict[str, int],
                     state: str) -> None:
    with ws.transaction() as conn:
        conn.executemany(
            "INSERT INTO checkpoints(run_id, unit, position, done) VALUES (?, ?, ?, 0)"
            " ON CONFLICT(run_id, unit) DO UPDATE SET position = excluded.position",
            [(run_id, unit, json.dumps(line)) for unit, line in watermark.items()],
        )
        conn.execute(
            "INSERT INTO checkpoints(run_id, unit, counters) VALUES (?, '_counters', ?)"
            " ON CONFLICT(run_id, unit) DO UPDATE SET counters = excluded.counters",
            (run_id, json.dumps(counters)),
        )
        conn.execute("UPDATE runs SET state = ? WHERE id = ?", (state, run_id))


def _finish_run(ws: Workspace, run_id: int, summary: dict[str, Any]) -> None:
    with ws.transaction() as conn:
        conn.execute("UPDATE runs SET state = 'complete', summary = ?, finished_at = ? WHERE id = ?",
                      (json.dumps(summary), utcnow(), run_id))


def plan_to_restore_args(plan_row: Any) -> dict[str, Any]:
    """``dump_uri``, ``fmt`` and ``total_lines`` for :func:`run_restore`, from the plan it restores."""
    return {"dump_uri": plan_row.dump_uri, "fmt": plan_row.format or "auto",
            "total_lines": (plan_row.summary or {}).get("lines")}


def latest_restore(ws: Workspace) -> dict[str, Any] | None:
    """The newest restore run: id, state, keymap, started/finished, summary (None: never run)."""
    row = ws.connect().execute(
        "SELECT id, state, keymap, started_at, finished_at, summary FROM runs WHERE kind = 'restore'"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    counters = ws.connect().execute(
        "SELECT counters FROM checkpoints WHERE run_id = ? AND unit = '_counters'", (row[0],)
    ).fetchone()
    return {"id": row[0], "state": row[1], "keymap": row[2], "started_at": row[3], "finished_at": row[4],
            "summary": json.loads(row[5]) if row[5] else None,
            # An unfinished run has no summary yet; its last checkpoint says how far it got.
            "counters": json.loads(counters[0]) if counters else {}}

