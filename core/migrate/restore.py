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

import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Iterator

from .batch_write import MAX_BATCH, BatchWriteTimeout, write_batch
from ..aws import sends_wire_json
from ..dumps import open_dump
from ..errors import KeyshiftError
from ..kernel.items import for_botocore
from ..spec import Spec
from ..kernel.keymap import Keymap
from ..kernel.transform import KeyNames, Put, transform
from ..plan.queries import superseded_lines
from ..store import runs
from ..store.workspace import Workspace
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
    skipped: int = 0  # every line not written and not dropped by a decision (unreadable included)
    dropped_by_decision: int = 0
    unreadable: int = 0  # of skipped: lines the plan quarantined
    retries: int = 0
    throttles: int = 0
    rate_limit: float | None = None
    workers: int = 1
    paused: bool = False
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)
    skip_reasons: dict[str, int] = field(default_factory=dict)  # skipped, by kind
    written_before: int = 0  # written by the interrupted run this one resumes (not this one's rate)

    @property
    def rate(self) -> float:
        """Items written per second by this invocation."""
        return (self.written - self.written_before) / self.elapsed if self.elapsed > 0 else 0.0

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

    # Binary stays base64 text for a client that sends wire JSON (AwsContext.writer_client);
    # any other client must be handed bytes, or it would store the base64 characters.
    if sends_wire_json(ddb):
        requests = [{"PutRequest": {"Item": item}} for item in items]
    else:
        requests = [{"PutRequest": {"Item": for_botocore(item)}} for item in items]
    try:
        write_batch(ddb, table, requests, deadline_s=deadline_s, acquire=limiter.acquire, on_response=counted)
    except BatchWriteTimeout as exc:
        raise RestoreError(
            f"{exc}; the checkpoint is kept: fix the cause and run `keyshift restore --resume`") from exc


#: What a checkpoint's counters hold: every line acknowledged so far, by what became of it.
_LINE_COUNTERS = ("lines", "written", "skipped", "dropped_by_decision", "unreadable")


class _Tally:
    """Counts of dump lines by outcome, with the skips by kind: one per checkpoint segment."""

    __slots__ = ("counts", "reasons")

    def __init__(self, counts: dict[str, int] | None = None, reasons: dict[str, int] | None = None) -> None:
        self.counts = dict.fromkeys(_LINE_COUNTERS, 0) | (counts or {})
        self.reasons = dict(reasons or {})

    def line(self, outcome: str, reason: str | None = None) -> None:
        counts = self.counts
        counts["lines"] += 1
        counts[outcome] += 1
        if outcome == "unreadable":
            counts["skipped"] += 1
            reason = "unreadable"
        if reason is not None:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def add(self, other: _Tally) -> None:
        for k, n in other.counts.items():
            self.counts[k] += n
        for k, n in other.reasons.items():
            self.reasons[k] = self.reasons.get(k, 0) + n

    def __bool__(self) -> bool:
        return self.counts["lines"] > 0

    def to_counters(self) -> dict[str, Any]:
        return {**self.counts, "skip_reasons": dict(sorted(self.reasons.items()))}


@dataclass
class _Pending:
    """Lines of one file, up to ``last_line``, whose fate is settled once ``future`` (their batch,
    or None for lines with nothing to write) is acknowledged; ``tally`` counts exactly them."""

    file: str
    last_line: int
    future: Future | None
    tally: _Tally


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

    The checkpoint is, per file, the highest line such that every line up to it is settled
    (written and acknowledged, or skipped), and its counters count exactly those lines: so however
    often a run is killed and resumed, ``written + skipped + dropped_by_decision == lines`` and
    ``written`` is what the table received once.
    """
    started = time.monotonic()
    names = KeyNames.from_spec(spec)
    table = spec.target.table
    run_id, done_lines, acked = _open_run(ws, keymap, operator, resume,
                                          {"dump": dump_uri, "workers": workers, "rate": rate})
    # A control file left by an earlier run must not steer this one (a stale "paused" would
    # freeze it): start from this run's own settings.
    write_control(ws, RestoreControl(paused=False, rate=rate, workers=workers))
    progress = RestoreProgress(total_lines=total_lines, workers=workers, rate_limit=rate)
    for k in _LINE_COUNTERS:
        setattr(progress, k, acked.counts[k])
    progress.skip_reasons = dict(acked.reasons)
    progress.written_before = progress.written
    for k in ("retries", "throttles"):
        setattr(progress, k, int(_saved_extra(ws, run_id).get(k, 0)))
    limiter = RateLimiter(rate)
    lock = threading.Lock()
    pool = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="keyshift-restore")
    pending: deque[_Pending] = deque()
    failure: list[BaseException] = []
    watermark: dict[str, int] = dict(done_lines)
    last_checkpoint = time.monotonic()
    control_mtime = 0.0
    reader = open_dump(dump_uri, fmt, s3=s3)
    superseded = superseded_lines(ws.connect())  # the earlier copies of a repeated item
    segment = _Tally()  # lines read since the last batch was handed on (or settled)

    def settle(block: bool) -> None:
        """Advance per-file watermarks (and the acknowledged counts) over the settled prefix;
        ``block``: wait for every pending batch (the end of the run, a cancel)."""
        while pending and (block or pending[0].future is None or pending[0].future.done()):
            head = pending[0]
            if head.future is not None:
                try:
                    head.future.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after the checkpoint
                    failure.append(exc)
                    return
            pending.popleft()
            watermark[head.file] = max(watermark.get(head.file, 0), head.last_line)
            acked.add(head.tally)

    def checkpoint(state: str = "running", audit: tuple[str, str, dict] | None = None) -> None:
        with lock:
            extra = {"retries": progress.retries, "throttles": progress.throttles}
        _save_checkpoint(ws, run_id, watermark, {**acked.to_counters(), **extra}, state, audit)

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

        def hand_on() -> None:
            """Queue the lines read so far: with the batch that writes them, or on their own."""
            nonlocal segment
            if batch:
                submit()
            elif segment:
                pending.append(_Pending(batch_file, batch_last, None, segment))
                segment = _Tally()

        def submit() -> None:
            nonlocal batch, batch_keys, segment
            while True:
                settle(block=False)
                running = [p.future for p in pending if p.future is not None and not p.future.done()]
                if failure or (len(pending) < progress.workers * 2 and len(running) < progress.workers):
                    break
                # Sleep until a batch finishes (no polling: the main thread shares the GIL).
                wait(running or [p.future for p in pending if p.future is not None][:1], timeout=1.0,
                     return_when=FIRST_COMPLETED)
            if failure:
                return
            items = batch
            pending.append(_Pending(batch_file, batch_last,
                                    pool.submit(_batch_write, ddb, table, items, progress, limiter,
                                                deadline_s, lock), segment))
            batch, batch_keys, segment = [], set(), _Tally()

        for entry in reader:
            if entry.line <= done_lines.get(entry.file, 0):
                continue  # settled by the interrupted run (its checkpoint says so)
            if cancel is not None and cancel.is_set():
                raise RestoreCancelled("restore cancelled by the operator")
            if failure:
                break
            if entry.file != batch_file:
                hand_on()  # a segment never spans two files: each file has its own watermark
                batch_file = entry.file
            progress.lines += 1
            if entry.item is None:
                progress.unreadable += 1  # quarantined at plan time: reported there
                progress.skipped += 1
                segment.line("unreadable")
            elif (entry.file, entry.line) in superseded:
                progress.skipped += 1  # a later line of the dump holds the same item: it wins
                segment.line("skipped", "superseded")
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
                    segment.line("written")
                elif outcome.kind == "dropped":
                    progress.dropped_by_decision += 1
                    segment.line("dropped_by_decision")
                else:
                    progress.skipped += 1
                    segment.line("skipped", outcome.kind or "other")
            batch_last = entry.line
            if len(batch) >= BATCH_SIZE:
                submit()
            elif not batch and not pending:
                hand_on()  # nothing to write and nothing before it in flight: settled at once
            # Batches settle when the next one is submitted (submit() waits for a free slot);
            # checking every line cost a Future.done() per line on the main thread, which shares
            # the GIL with the writers.
            now = time.monotonic()
            if now - last_checkpoint >= checkpoint_every:
                settle(block=False)
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
                progress.skip_reasons = dict(acked.reasons) | _merge_reasons(pending, segment)
                yield progress
        if not failure:
            hand_on()
        settle(block=True)
        if not failure:
            # Every line of every file is acknowledged: mark files fully done.
            for uri in reader.info.files:
                watermark[uri] = max(watermark.get(uri, 0), 1 << 40)
    except RestoreCancelled:
        settle(block=True)
        checkpoint("cancelled", (operator, "restore.cancel", {"run_id": run_id, "lines": acked.counts["lines"]}))
        raise
    finally:
        pool.shutdown(wait=True)
        # The control file steers a running restore only: none is left behind to surprise the next.
        (ws.path / CONTROL_FILE).unlink(missing_ok=True)
    if failure:
        checkpoint("failed", (operator, "restore.fail", {"run_id": run_id, "error": str(failure[0])}))
        if isinstance(failure[0], KeyshiftError):
            raise failure[0]
        raise RestoreError(f"restore stopped: {failure[0]}") from failure[0]
    progress.elapsed = time.monotonic() - started
    for k in _LINE_COUNTERS:  # every line settled: the acknowledged counts are the run's counts
        setattr(progress, k, acked.counts[k])
    progress.skip_reasons = dict(sorted(acked.reasons.items()))
    summary = {
        "written": progress.written, "skipped": progress.skipped,
        "dropped_by_decision": progress.dropped_by_decision, "unreadable": progress.unreadable,
        "skip_reasons": progress.skip_reasons,
        "retries": progress.retries, "throttles": progress.throttles,
        "lines": progress.lines, "seconds": round(progress.elapsed, 3), "keymap": keymap.version,
        "table": table, "run_id": run_id, "resumed": bool(done_lines) or resume,
        "reconciled": progress.written + progress.skipped + progress.dropped_by_decision == progress.lines,
    }
    with ws.transaction() as conn:
        _save_units(conn, run_id, watermark, {**acked.to_counters(), "retries": progress.retries,
                                              "throttles": progress.throttles})
        runs.finish(conn, run_id, "complete", summary)
        ws.audit(operator, "restore.complete", summary)
    yield progress
    return summary


def _merge_reasons(pending: deque[_Pending], segment: _Tally) -> dict[str, int]:
    """Skips by kind of the lines read but not yet settled (for the live display only)."""
    out: dict[str, int] = {}
    for tally in [p.tally for p in pending] + [segment]:
        for k, n in tally.reasons.items():
            out[k] = out.get(k, 0) + n
    return out


def _open_run(ws: Workspace, keymap: Keymap, operator: str, resume: bool,
              params: dict[str, Any]) -> tuple[int, dict[str, int], _Tally]:
    """(run id, lines settled per file, their counts) — a new run, or the interrupted one to resume."""
    if resume:
        run, problem = runs.resumable(ws, "restore", keymap.version)
        if problem is not None or run is None:
            raise RestoreError(problem or "nothing to resume")
        done = {name: int(unit.position or 0) for name, unit in run.units.items() if not name.startswith("_")}
        counters = dict(run.counters)
        tally = _Tally({k: int(counters.get(k, 0)) for k in _LINE_COUNTERS}, counters.get("skip_reasons"))
        with ws.transaction():
            runs.reopen(ws.connect(), run.id)
            ws.audit(operator, "restore.resume", {"run_id": run.id, "lines_settled": tally.counts["lines"]})
        return run.id, done, tally
    with ws.transaction() as conn:
        run_id = runs.start(conn, "restore", operator=operator, keymap=keymap.version, params=params)
        ws.audit(operator, "restore.start", {"run_id": run_id, "keymap": keymap.version, **params})
    return run_id, {}, _Tally()


def _saved_extra(ws: Workspace, run_id: int) -> dict[str, Any]:
    run = runs.get(ws, run_id)
    return dict(run.counters) if run is not None else {}


def _save_units(conn: Any, run_id: int, watermark: dict[str, int], counters: dict[str, Any]) -> None:
    for unit, line in watermark.items():
        runs.checkpoint(conn, run_id, unit, position=line)
    runs.checkpoint(conn, run_id, "_counters", counters=counters)


def _save_checkpoint(ws: Workspace, run_id: int, watermark: dict[str, int], counters: dict[str, Any],
                     state: str, audit: tuple[str, str, dict] | None = None) -> None:
    """The checkpoint and the run's state (and, when the run ends, its audit entry) in one transaction."""
    with ws.transaction() as conn:
        _save_units(conn, run_id, watermark, counters)
        runs.set_state(conn, run_id, state)
        if audit is not None:
            ws.audit(*audit)


def plan_to_restore_args(plan_row: Any) -> dict[str, Any]:
    """``dump_uri``, ``fmt`` and ``total_lines`` for :func:`run_restore`, from the plan it restores."""
    return {"dump_uri": plan_row.dump_uri, "fmt": plan_row.format or "auto",
            "total_lines": (plan_row.summary or {}).get("lines")}


def latest_restore(ws: Workspace) -> runs.Run | None:
    """The newest restore run from the ledger (None: never run); ``run.totals`` is its summary
    when complete, else the counters of its last checkpoint."""
    return runs.latest(ws, "restore")
