"""Stream sync: replay the old table's DynamoDB Stream into the new table through the shared transform.

This is design (a) of docs/design.md ("Backfill and the live stream"): the stream was enabled
before the dump's point in time, the restore writes transform(dump) with blind puts, and this
replay applies every stream record from the **trim horizon**, per shard in ``SequenceNumber``
order, parents before children, *after* the restore has completed. A replay that was running
while a restore completed starts again from the trim horizon by itself (``restarts``), so the
last operation applied to any new item is always the replay of its source item's last stream
record, or the restore's put of a version nothing has changed since. Every apply is idempotent
(a put of the new image, a delete of the old key): replaying twice, or after a crash between a
write and its checkpoint, is harmless.

- A record becomes :class:`~keyshift.core.kernel.transform.Put` (``INSERT``/``MODIFY``: transform of the
  new image), :class:`~keyshift.core.kernel.transform.Delete` (``REMOVE``: transform of the keys) or
  :class:`~keyshift.core.kernel.transform.Skip` (unresolved, dropped, conflict loser...), exactly as
  the restore would have decided for that item: :func:`record_outcome`.
- One ``GetRecords`` page is reduced to the last outcome per new key (stream order is per item,
  and a batch may not name a key twice), then written with ``BatchWriteItem`` puts and deletes
  through :func:`~keyshift.core.migrate.batch_write.write_batch` (unprocessed items retried, never dropped).
- The stream's ARN, shards and design (a)'s window live in :mod:`~keyshift.core.migrate.stream.source`;
  records to writes in :mod:`~keyshift.core.kernel.stream_records`. This module is the replay loop and
  its bookkeeping.
- Progress goes to the workspace (``runs`` kind ``stream-sync``): one checkpoint per shard (the
  last applied sequence number, ``done`` once a closed shard is drained), the counters, and a
  **watermark**: ``caught_up_at``, the start of the last pass that reached the tip of every shard
  (every source write before it has been applied), and ``heartbeat``. Verify reads the watermark
  (:func:`sync_watermark`) to re-check a mismatch only after the replay has caught up past it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..batch_write import MAX_BATCH, BatchWriteTimeout, write_batch
from ...kernel.echo import EchoLog
from ...kernel.reverse_records import old_key, reduce_reverse, reverse_outcome
from ...kernel.stream_records import approx_time, record_outcome, reduce_outcomes, write_request
from .echo_log import WorkspaceEchoLog, write_note
from .reverse import StartPosition, restore_floor
from .source import (
    StreamSyncError,
    list_shards,
    replay_window_problems,
    stream_arn,
    window_check,
)
from ...kernel.items import for_botocore
from ...kernel.keymap import Keymap
from ...kernel.merged import new_key_of, settle_shared_key, shared_new_id
from ...kernel.transform import Delete, KeyNames, Put, Skip
from ...store import runs
from ...store.workspace import Workspace

__all__ = [
    "DIRECTIONS",
    "HEARTBEAT_STALE_S",
    "StartPosition",
    "StreamSyncError",
    "SyncProgress",
    "latest_stream_sync",
    "list_shards",
    "record_outcome",
    "reduce_outcomes",
    "replay_window_problems",
    "run_stream_sync",
    "stream_arn",
    "sync_watermark",
]

#: The run ledger's kind of each direction (a forward and a reverse run may be live at once).
DIRECTIONS = {"forward": "stream-sync", "reverse": "reverse-sync"}
#: Records per GetRecords call (DynamoDB Streams' maximum).
RECORDS_PER_CALL = 1000
#: A running sync whose heartbeat is older than this is presumed dead (verify stops waiting for it).
HEARTBEAT_STALE_S = runs.STALE_S


@dataclass
class SyncProgress:
    """A snapshot of a running replay, yielded after every page and every idle poll."""

    records: int = 0
    puts: int = 0
    deletes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    throttles: int = 0
    shards: int = 0
    shards_done: int = 0
    restarts: int = 0
    settled: int = 0  # writes to keys several raw identifiers share, settled from the old table
    echoes: int = 0  # records that were the other direction's own writes (not replayed)
    direction: str = "forward"
    caught_up_at: float | None = None  # epoch seconds: every source write before it is applied
    last_record_at: float | None = None  # ApproximateCreationDateTime of the newest record applied
    elapsed: float = 0.0

    @property
    def caught_up(self) -> bool:
        """Whether a pass has reached the tip of every shard (since the last restart)."""
        return self.caught_up_at is not None

    @property
    def lag_seconds(self) -> float | None:
        """How far behind now the replay is known to be caught up (None: not yet once)."""
        return None if self.caught_up_at is None else max(0.0, time.time() - self.caught_up_at)

    def counters(self) -> dict[str, Any]:
        return {"records": self.records, "puts": self.puts, "deletes": self.deletes,
                "skipped": dict(self.skipped), "retries": self.retries, "throttles": self.throttles,
                "restarts": self.restarts, "echoes": self.echoes, "settled": self.settled}


# -- the workspace -----------------------------------------------------------------------------
def latest_stream_sync(ws: Workspace, direction: str = "forward") -> runs.Run | None:
    """The newest stream-sync run of ``direction`` from the ledger (None: never run; reverse runs
    are kind ``reverse-sync``). Its units are the shards (``shard:<id>``: the last applied
    sequence number, ``done`` once a closed shard is drained), ``_counters`` and ``_watermark``
    (see :func:`shard_positions`, :func:`watermark`)."""
    return runs.latest(ws, DIRECTIONS[direction])


def shard_positions(run: runs.Run) -> dict[str, dict[str, Any]]:
    """shard id -> ``{"sequence": last applied sequence number or None, "done": drained}``."""
    return {name.removeprefix("shard:"): {"sequence": u.position, "done": u.done}
            for name, u in run.units.items() if name.startswith("shard:")}


def watermark(run: runs.Run) -> dict[str, Any]:
    """``caught_up_at`` (every source write before it is applied; None: not caught up since the
    last restart), ``last_record_at`` and ``heartbeat`` (epoch seconds)."""
    unit = run.unit("_watermark")
    mark = dict(unit.position or {}) if unit is not None else {}
    return {"caught_up_at": mark.get("caught_up_at"), "last_record_at": mark.get("last_record_at"),
            "heartbeat": run.heartbeat}


def sync_watermark(ws: Workspace) -> dict[str, Any] | None:
    """How far the newest stream sync has got: ``run_id``, ``state``, ``caught_up_at`` and
    ``heartbeat`` (epoch seconds or None) and ``live`` (running with a fresh heartbeat)."""
    run = latest_stream_sync(ws)
    if run is None:
        return None
    mark = watermark(run)
    live = run.state == "running" and run.alive()
    return {"run_id": run.id, "state": run.state, "caught_up_at": mark["caught_up_at"],
            "heartbeat": run.heartbeat, "live": live}


@dataclass
class _Run:
    """One stream-sync run's identity and where each shard stands."""

    id: int
    positions: dict[str, str | None]  # shard id -> last applied sequence number (None: from trim horizon)
    done: set[str]
    origin: str  # "trim-horizon" | "checkpoint of run N"
    restores_seen: set[int]  # complete restore runs when the replay last started from the trim horizon
    params: dict[str, Any] = field(default_factory=dict)
    skip_before: float | None = None  # reverse: records created before this second are not replayed


def _open_reverse_run(ws: Workspace, keymap: Keymap, arn: str, operator: str, restart: bool,
                      start: StartPosition | None, params: dict[str, Any]) -> _Run:
    """Reverse sync's run: from ``start``, or continuing the previous reverse run's checkpoints.
    There is no default start (the writes since the flip would be lost or the restore's replayed):
    the first run names one. Design (a)'s restart after a restore is forward's alone."""
    previous = latest_stream_sync(ws, "reverse")
    if previous is not None and previous.state == "running" and previous.alive():
        raise StreamSyncError(f"reverse-sync run {previous.id} is still running: stop it first (SIGINT/SIGTERM,"
                              " or Escape in the console)")
    positions: dict[str, str | None] = {}
    done: set[str] = set()
    skip_before: float | None = None
    if start is None and restart:
        raise StreamSyncError("reverse sync restarts only from a named start: give --from")
    if start is None:
        if previous is None or not previous.units:
            raise StreamSyncError("reverse sync needs a start the first time: --from latest|trim-horizon|<ISO"
                                  " timestamp> (or recorded positions), the moment writes went to the new table")
        if previous.params.get("stream_arn") != arn:
            raise StreamSyncError(f"reverse-sync run {previous.id} read another stream of the new table: give --from")
        if previous.keymap != keymap.version:
            raise StreamSyncError(f"reverse-sync run {previous.id} applied keymap {previous.keymap}, the workspace now"
                                  f" builds {keymap.version}: give --from to start again under the new one")
        shards = shard_positions(previous)
        positions = {s: v["sequence"] for s, v in shards.items()}
        done = {s for s, v in shards.items() if v["done"]}
        skip_before = previous.params.get("skip_before")
        origin = f"checkpoint of run {previous.id}"
    else:
        positions = dict(start.positions)
        skip_before = start.skip_before()
        origin = start.describe()
    floor = restore_floor(ws)
    skip_kind = "before-start"
    if floor is not None and (skip_before is None or skip_before < floor):
        skip_before, skip_kind = floor, "restore"  # never the restore's own writes (older than this)
    params = {**params, "stream_arn": arn, "origin": origin, "skip_before": skip_before, "skip_kind": skip_kind,
              "direction": "reverse"}
    with ws.transaction() as conn:
        if previous is not None and previous.state == "running":
            runs.set_state(conn, previous.id, "stopped")  # it died without saying so
        run_id = runs.start(conn, "reverse-sync", operator=operator, keymap=keymap.version, params=params)
        ws.audit(operator, "reverse-sync.start", {"run_id": run_id, "keymap": keymap.version, **params})
    return _Run(run_id, positions, done, origin, set(), params, skip_before)


def _open_run(ws: Workspace, keymap: Keymap, arn: str, operator: str, restart: bool,
              params: dict[str, Any]) -> _Run:
    previous = latest_stream_sync(ws)
    positions: dict[str, str | None] = {}
    done: set[str] = set()
    origin = "trim-horizon"
    why = "first run" if previous is None else "--restart"
    if previous is not None and previous.state == "running" and previous.alive():
        # Two replays at once would interleave stale and fresh writes of one item (and a shard
        # allows only two readers): one at a time.
        raise StreamSyncError(
            f"stream-sync run {previous.id} is still running (heartbeat {time.time() - (previous.heartbeat or 0):.0f}"
            " s ago): stop it first (SIGINT/SIGTERM, or Escape in the console)")
    if previous is not None and not restart:
        shards = shard_positions(previous)
        if previous.params.get("stream_arn") != arn:
            why = "the source table has a new stream"
        elif previous.keymap != keymap.version:
            raise StreamSyncError(
                f"stream-sync run {previous.id} applied keymap {previous.keymap}, the workspace now builds"
                f" {keymap.version}: items already written follow the old mapping. Restore again with the new"
                " keymap, then run stream-sync (it replays from the trim horizon after a restore)")
        elif runs.completed_ids(ws, "restore") - set(previous.params.get("restores_seen", [])):
            why = f"a restore completed after run {previous.id} started"
        elif not shards:
            why = f"run {previous.id} read nothing"  # a refused or failed start: check everything again
        else:
            positions = {s: v["sequence"] for s, v in shards.items()}
            done = {s for s, v in shards.items() if v["done"]}
            origin = f"checkpoint of run {previous.id}"
    restores_seen = runs.completed_ids(ws, "restore")
    params = {**params, "stream_arn": arn, "origin": origin, "restores_seen": sorted(restores_seen)}
    with ws.transaction() as conn:
        if previous is not None and previous.state == "running":
            runs.set_state(conn, previous.id, "stopped")  # it died without saying so
        run_id = runs.start(conn, "stream-sync", operator=operator, keymap=keymap.version, params=params)
        ws.audit(operator, "stream-sync.start", {"run_id": run_id, "keymap": keymap.version,
                                                 "why": why if origin == "trim-horizon" else None, **params})
    return _Run(run_id, positions, done, origin, restores_seen, params)


def _remember_restores(ws: Workspace, run: _Run, operator: str, details: dict[str, Any]) -> None:
    """Record in the run's params which restores its replay from the trim horizon follows."""
    run.params["restores_seen"] = sorted(run.restores_seen)
    with ws.transaction() as conn:
        runs.set_params(conn, run.id, run.params)
        # Shard positions of the abandoned replay must not survive a crash before the next save.
        runs.drop_units(conn, run.id, "shard:")
        ws.audit(operator, "stream-sync.restart", details)


def _save(ws: Workspace, run: _Run, progress: SyncProgress, state: str,
          audit: tuple[str, str, dict[str, Any]] | None = None) -> None:
    """Save shard positions, counters and the watermark (and ``audit``'s entry) in one transaction."""
    with ws.transaction() as conn:
        if audit is not None:
            ws.audit(*audit)
        for shard, seq in run.positions.items():
            runs.checkpoint(conn, run.id, f"shard:{shard}", position=seq, done=shard in run.done)
        runs.checkpoint(conn, run.id, "_counters", counters=progress.counters())
        runs.checkpoint(conn, run.id, "_watermark", position={"caught_up_at": progress.caught_up_at,
                                                              "last_record_at": progress.last_record_at})
        runs.set_state(conn, run.id, state)


# -- the replay --------------------------------------------------------------------------------
def run_stream_sync(
    ws: Workspace,
    spec: Any,
    keymap: Keymap,
    *,
    ddb: Any,
    streams: Any,
    follow: bool = False,
    restart: bool = False,
    accept_gap: bool = False,
    operator: str = "unknown",
    cancel: threading.Event | None = None,
    idle_sleep: float = 1.0,
    deadline_s: float = 600.0,
    workers: int = 4,
    direction: str = "forward",
    start: StartPosition | None = None,
    echo: EchoLog | None = None,
) -> Iterator[SyncProgress]:
    """Replay the source table's stream into the target; yields progress, returns the summary dict.

    Without ``follow`` the run ends (state ``complete``) at the first pass that reaches the tip of
    every shard; with it, it keeps polling until ``cancel`` is set (state ``stopped``). A new run
    continues from the previous run's checkpoints unless ``restart`` is given, the stream changed,
    or a restore completed after that run started: then it replays from the trim horizon.

    ``workers`` threads write one page's batches in parallel (pages stay in order).
    A replay from the trim horizon first checks design (a)'s window (:func:`replay_window_problems`)
    against the planned dump and refuses with the reasons, unless ``accept_gap``.

    ``direction="reverse"`` replays the *new* table's stream into the *old* table through the
    inverse keymap (:func:`~keyshift.core.kernel.reverse_records.reverse_outcome`), from ``start``
    (:class:`~keyshift.core.migrate.stream.reverse.StartPosition`; required the first time) or the
    previous reverse run's checkpoints; its runs are kind ``reverse-sync``. Both directions note
    their writes in ``echo`` (default: the workspace's write log) and skip the other's (``echoes``).
    """
    started = time.monotonic()
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    reverse = direction == "reverse"
    kind = DIRECTIONS[direction]
    names = KeyNames.from_spec(spec)
    source, target = spec.source.table, spec.target.table
    if reverse:
        source, target = target, source  # read the new table's stream, write the old table
    echo = WorkspaceEchoLog(ws) if echo is None else echo
    arn = stream_arn(ddb, source)
    params = {"follow": follow, "source": source, "target": target}
    if reverse:
        run = _open_reverse_run(ws, keymap, arn, operator, restart, start, params)
    else:
        if start is not None:
            raise ValueError("forward sync starts at the trim horizon or its checkpoint (design (a)), not at a start")
        run = _open_run(ws, keymap, arn, operator, restart, params)
    warnings: list[str] = []
    if run.origin == "trim-horizon" and not reverse:
        try:
            problems, warnings = window_check(ws, streams, arn)
        except (ClientError, BotoCoreError) as exc:
            problems = [f"cannot describe the stream: {exc}"]
        if problems and not accept_gap:
            with ws.transaction() as conn:
                runs.set_state(conn, run.id, "failed")
                ws.audit(operator, f"{kind}.refuse", {"run_id": run.id, "problems": problems})
            raise StreamSyncError("; ".join(problems) + ". Take a new dump (with the stream on) and restore"
                                  " again, or pass --accept-gap to replay anyway")
        warnings += [f"accepted: {p}" for p in problems]
    progress = SyncProgress(direction=direction)  # this run's own counts: a continuing run starts from zero
    echoes = getattr(echo, "echoes", None)  # the batched form, when the log has one
    iterators: dict[str, str | None] = {}
    lock = threading.Lock()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="keyshift-sync")

    def counted(acknowledged: int, unprocessed: int, botocore_retries: int) -> None:
        with lock:
            progress.retries += unprocessed
            progress.throttles += botocore_retries

    def iterator_for(shard_id: str) -> str:
        seq = run.positions.get(shard_id)
        kwargs: dict[str, Any] = {"StreamArn": arn, "ShardId": shard_id}
        if seq is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=seq)
        try:
            return streams.get_shard_iterator(**kwargs)["ShardIterator"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TrimmedDataAccessException":
                raise StreamSyncError(
                    f"shard {shard_id}: the stream has trimmed records past checkpoint {seq} (24-hour"
                    " retention): writes were lost to the replay. Restore again, then stream-sync") from exc
            raise

    def skip(kind: str, n: int = 1) -> None:
        progress.skipped[kind] = progress.skipped.get(kind, 0) + n

    def replayable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page without what must not be replayed: records before a reverse start (or the
        restore's writes), and echoes of the other direction's writes (consumed from the log)."""
        if run.skip_before is not None:
            kept = [r for r in records if (approx_time(r) or run.skip_before) >= run.skip_before]
            if len(kept) < len(records):
                skip(run.params.get("skip_kind", "before-start"), len(records) - len(kept))
            records = kept
        if not records:
            return records
        notes = []
        for r in records:
            body = r.get("dynamodb") or {}
            image = body.get("NewImage") if r.get("eventName") != "REMOVE" else None
            notes.append(write_note(body.get("Keys") or {}, image))
        found = (echoes(direction, source, notes) if echoes is not None
                 else [echo.is_echo(direction, source, k, d) for k, d in notes])
        progress.echoes += sum(found)
        return [r for r, is_echo in zip(records, found) if not is_echo]

    def write_key(write: Put | Delete) -> dict[str, Any]:
        if reverse:
            return old_key(write, names)
        if type(write) is Delete:
            return write.key
        key = {names.target_pk: write.item[names.target_pk]}
        if names.source_sk is not None:
            key[names.source_sk] = write.item[names.source_sk]
        return key

    def decide(records: list[dict[str, Any]]) -> tuple[list[Put | Delete], int, int]:
        """The page's writes (the last per key), and how many records became puts and deletes."""
        if reverse:
            outcomes = [reverse_outcome(r, keymap, names) for r in records]
            for o in outcomes:
                if type(o) is Skip:
                    skip(o.kind or "other")
            done = [o for o in outcomes if type(o) is not Skip]
            return (reduce_reverse(outcomes, names), sum(1 for o in done if type(o[0]) is Put),
                    sum(1 for o in done if type(o[0]) is Delete))
        outcomes = [record_outcome(r, keymap, names) for r in records]
        for outcome in outcomes:
            if type(outcome) is Skip:
                skip(outcome.kind or "other")
        return (settle_shared(reduce_outcomes(outcomes, names)), sum(1 for o in outcomes if type(o) is Put),
                sum(1 for o in outcomes if type(o) is Delete))

    def apply(page: list[dict[str, Any]]) -> None:
        records = replayable(page)
        writes, puts, deletes = decide(records)
        # Noted before they are made: a crash in between leaves a note that matches nothing.
        echo.note(direction, target, [write_note(write_key(w), w.item if type(w) is Put else None)
                                      for w in writes])
        batches = [[write_request(w) for w in writes[i:i + MAX_BATCH]] for i in range(0, len(writes), MAX_BATCH)]
        # After the reduction no key appears twice in a page, so its batches commute: they go out in
        # parallel, and the page is acknowledged (and checkpointed) only when all of them are.
        futures = [pool.submit(write_batch, ddb, target, batch, deadline_s=deadline_s, on_response=counted)
                   for batch in batches]
        try:
            for future in futures:
                future.result()
        except BatchWriteTimeout as exc:
            for future in futures:
                future.cancel()
            raise StreamSyncError(f"{exc}; the checkpoint is kept: fix the cause and run stream-sync again") from exc
        progress.records += len(page)
        progress.puts += puts
        progress.deletes += deletes
        progress.last_record_at = approx_time(page[-1]) or progress.last_record_at

    has_shared = any(len(raws) > 1 for raws in keymap.reverse.values())

    def read_source(old_key: dict) -> dict | None:
        return ddb.get_item(TableName=source, Key=for_botocore(old_key), ConsistentRead=True).get("Item")

    def settle_shared(writes: list[Put | Delete]) -> list[Put | Delete]:
        """Writes to keys several raw identifiers share are settled from the old table's state
        now (:mod:`~keyshift.core.kernel.merged`), not taken from the record: the record of one
        spelling says nothing about the other's item at the same key."""
        if not has_shared:
            return writes
        out = []
        for w in writes:
            if shared_new_id(w, keymap, names) is not None:
                w = settle_shared_key(read_source, keymap, names, new_key_of(w, names))
                progress.settled += 1
            out.append(w)
        return out

    def drain(shard_id: str) -> Iterator[SyncProgress]:
        """Read one shard to its tip (open) or end (closed), applying page by page."""
        it = iterators.get(shard_id) or iterator_for(shard_id)
        while it is not None:
            if cancel is not None and cancel.is_set():
                break
            try:
                page = streams.get_records(ShardIterator=it, Limit=RECORDS_PER_CALL)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ExpiredIteratorException":
                    it = iterator_for(shard_id)  # iterators live 15 minutes; re-open at the checkpoint
                    continue
                raise
            records = page.get("Records", [])
            it = page.get("NextShardIterator")
            if records:
                apply(records)
                run.positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            if it is None:
                run.done.add(shard_id)
            iterators[shard_id] = it
            _save(ws, run, progress, "running")  # after the writes: at-least-once, and applies are idempotent
            progress.elapsed = time.monotonic() - started
            yield progress
            if not records:
                break  # an open shard's tip

    state = "running"
    try:
        while True:
            if cancel is not None and cancel.is_set():
                state = "stopped"
                break
            finished = set() if reverse else runs.completed_ids(ws, "restore") - run.restores_seen
            if finished:
                # Design (a): records applied before the restore's puts may have been overwritten by
                # them; replaying everything again from the trim horizon puts the last word back.
                run.positions, run.done = {}, set()
                run.restores_seen |= finished
                _remember_restores(ws, run, operator, {"run_id": run.id, "why": "a restore completed",
                                                       "restores": sorted(finished)})
                iterators.clear()
                progress.restarts += 1
                progress.caught_up_at = None
            pass_started = time.time()
            shards = list_shards(streams, arn)
            present = {s["ShardId"] for s in shards}
            at_tip = True
            for shard in sorted(shards, key=lambda s: int(s["SequenceNumberRange"]["StartingSequenceNumber"])):
                shard_id = shard["ShardId"]
                if shard_id in run.done:
                    continue
                parent = shard.get("ParentShardId")
                if parent and parent in present and parent not in run.done:
                    at_tip = False  # a parent's records come first (the next pass)
                    continue
                yield from drain(shard_id)
                if cancel is not None and cancel.is_set():
                    at_tip = False
                    break
            progress.shards, progress.shards_done = len(shards), len(run.done & present)
            if at_tip:
                progress.caught_up_at = pass_started
                expire = getattr(echo, "expire", None)
                if expire is not None:  # notes older than this pass matched no record: they never will
                    expire(direction, source, pass_started)
            progress.elapsed = time.monotonic() - started
            _save(ws, run, progress, "running")
            yield progress
            if progress.caught_up and not follow:
                state = "complete"
                break
            if at_tip and cancel is not None:
                cancel.wait(idle_sleep)
            elif at_tip:
                time.sleep(idle_sleep)
    except (GeneratorExit, KeyboardInterrupt):
        # Closed by its driver or interrupted: a clean stop.
        _save(ws, run, progress, "stopped", audit=(operator, f"{kind}.stopped",
                                                   {"run_id": run.id, **progress.counters()}))
        raise
    except (ClientError, BotoCoreError, StreamSyncError) as exc:
        _save(ws, run, progress, "failed", audit=(operator, f"{kind}.fail", {"run_id": run.id, "error": str(exc)}))
        if isinstance(exc, StreamSyncError):
            raise
        raise StreamSyncError(f"stream sync stopped: {exc}") from exc
    finally:
        pool.shutdown(wait=True)
    progress.elapsed = time.monotonic() - started
    summary = {**progress.counters(), "shards": progress.shards, "shards_done": progress.shards_done,
               "caught_up": progress.caught_up, "caught_up_at": progress.caught_up_at,
               "last_record_at": progress.last_record_at, "seconds": round(progress.elapsed, 3),
               "keymap": keymap.version, "stream_arn": arn, "run_id": run.id, "origin": run.origin,
               "state": state, "warnings": warnings, "direction": direction, "source": source,
               "target": target}
    _save(ws, run, progress, state)
    with ws.transaction() as conn:
        runs.finish(conn, run.id, state, summary)
        ws.audit(operator, f"{kind}.{state}", summary)
    yield progress
    return summary
