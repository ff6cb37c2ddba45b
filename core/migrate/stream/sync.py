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
- A record whose raw identifier the keymap does not know is **held** in the workspace
  (:mod:`~keyshift.core.migrate.stream.held`, an ``unmapped`` case for a person) and the checkpoint
  moves on; with ``[stream] new_identifiers = "rule"`` the rules may decide it on the spot
  (:func:`~keyshift.core.resolve.unmapped.rule_decision`). A run started with a keymap that only
  adds such identifiers continues the previous run's checkpoints and first applies their held
  records, in ``SequenceNumber`` order: they are older than anything of theirs still on the stream.
  (Forward only: reverse sync has no unknown spellings, only new ids without one, ``no-raw``.)
- How far behind: ``lag_seconds`` (now minus the creation time of the oldest record not yet
  applied, 0 once every open shard is read to its tip), ``iterator_age_seconds`` (now minus the
  creation time of the last record read, as Lambda's IteratorAge) and each shard's position, in
  the ledger's ``_watermark`` unit; :func:`sync_lag` reads them back for status and cut-over gates.
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
from . import held
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
from ...kernel.keymap import Keymap, KeymapEntry
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
    "sync_lag",
    "sync_watermark",
]

#: The run ledger's kind of each direction (a forward and a reverse run may be live at once).
DIRECTIONS = {"forward": "stream-sync", "reverse": "reverse-sync"}
#: Seconds a following replay waits at the tip of every shard before it polls again: the worst lag
#: of a write that lands on an idle table just after a poll. At a steady 100 writes/s the replay
#: rarely idles and p99 lag was about 0.32 s with 0.25 s or 1 s alike (docs/performance.md); 0.25 s
#: bounds the idle case too, for one GetRecords per open shard and one small workspace write a poll.
FOLLOW_POLL_S = 0.25
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
    held: int = 0  # records read this run and held (raw identifier not in the keymap)
    held_applied: int = 0  # held records (of any run) applied by this run once their identifier was mapped
    held_dropped: int = 0  # held records settled as dropped (their identifier was dropped)
    unmapped: int = 0  # records held in the workspace now, waiting for a decision
    lag_seconds: float | None = None  # now - creation of the oldest record not yet applied (0 at every tip)
    iterator_age_seconds: float | None = None  # now - creation of the last record read (0 at every tip)
    positions: list[dict[str, Any]] = field(default_factory=list)  # [{shard_id, sequence, done, parent}]

    @property
    def caught_up(self) -> bool:
        """Whether a pass has reached the tip of every shard (since the last restart)."""
        return self.caught_up_at is not None

    def counters(self) -> dict[str, Any]:
        """What the run did; ``records = puts + deletes + sum(skipped) + held + echoes``."""
        return {"records": self.records, "puts": self.puts, "deletes": self.deletes,
                "skipped": dict(self.skipped), "retries": self.retries, "throttles": self.throttles,
                "restarts": self.restarts, "echoes": self.echoes, "settled": self.settled,
                "held": self.held, "held_applied": self.held_applied, "held_dropped": self.held_dropped}


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
            "heartbeat": run.heartbeat, "lag_seconds": mark.get("lag_seconds"),
            "iterator_age_seconds": mark.get("iterator_age_seconds"), "measured_at": mark.get("measured_at"),
            "unmapped": mark.get("unmapped", 0), "parents": mark.get("parents") or {}}


def shard_list(run: runs.Run) -> list[dict[str, Any]]:
    """Every shard's position: ``[{shard_id, sequence, done, parent}]`` (by shard id)."""
    parents = watermark(run)["parents"]
    return [{"shard_id": s, "sequence": v["sequence"], "done": v["done"], "parent": parents.get(s)}
            for s, v in sorted(shard_positions(run).items())]


def sync_lag(ws: Workspace, direction: str = "forward") -> dict[str, Any]:
    """How far behind the newest sync of ``direction`` is, from the ledger (for status and the
    cut-over gates).

    ``lag_seconds`` and ``iterator_age_seconds`` are as the run measured them at ``measured_at``
    (epoch seconds; ``age_seconds`` ago): a running run measures after every page and every idle
    poll, so with ``live`` true they are at most a poll old. A stopped or dead run's figures are
    what it last knew: writes since then are not counted, so a gate must also require ``live``.
    ``unmapped``: records held now, waiting for a decision (not counted in the lag: they were read).
    """
    run = latest_stream_sync(ws, direction)
    waiting = held.counts(ws)["held"]
    if run is None:
        return {"run_id": None, "state": None, "live": False, "lag_seconds": None, "iterator_age_seconds": None,
                "measured_at": None, "age_seconds": None, "caught_up_at": None, "unmapped": waiting, "shards": []}
    mark = watermark(run)
    measured = mark["measured_at"]
    return {"run_id": run.id, "state": run.state, "live": run.state == "running" and run.alive(),
            "lag_seconds": mark["lag_seconds"], "iterator_age_seconds": mark["iterator_age_seconds"],
            "measured_at": measured, "age_seconds": None if measured is None else max(0.0, time.time() - measured),
            "caught_up_at": mark["caught_up_at"], "unmapped": waiting, "shards": shard_list(run)}


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
    settle: list[int] = field(default_factory=list)  # held records applied, marked so at the next save
    parents: dict[str, str | None] = field(default_factory=dict)  # shard id -> parent shard id


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
        elif runs.completed_ids(ws, "restore") - set(previous.params.get("restores_seen", [])):
            # Checked before the keymap: after a restore the replay starts over under the new keymap.
            why = f"a restore completed after run {previous.id} started"
        elif previous.keymap != keymap.version and (problem := held.keymap_change_problem(
                ws.connect(), previous.keymap or "", dict(previous.params.get("auto_entries") or {}), keymap)):
            raise StreamSyncError(
                f"stream-sync run {previous.id} applied keymap {previous.keymap}, the workspace now builds"
                f" {keymap.version} ({problem}): items already written follow the old mapping. Restore again"
                " with the new keymap, then run stream-sync (it replays from the trim horizon after a restore)")
        elif not shards:
            why = f"run {previous.id} read nothing"  # a refused or failed start: check everything again
        else:
            positions = {s: v["sequence"] for s, v in shards.items()}
            done = {s for s, v in shards.items() if v["done"]}
            origin = f"checkpoint of run {previous.id}"
            if previous.keymap != keymap.version:
                # Only identifiers first seen on the stream were added: their held records are applied
                # first (run_stream_sync), then the stream goes on from where it was.
                params = {**params, "keymap_added_to": previous.keymap}
    restores_seen = runs.completed_ids(ws, "restore")
    params = {**params, "stream_arn": arn, "origin": origin, "restores_seen": sorted(restores_seen)}
    with ws.transaction() as conn:
        if previous is not None and previous.state == "running":
            runs.set_state(conn, previous.id, "stopped")  # it died without saying so
        held.remember_keymap(conn, keymap)  # what this run applies: a later keymap must keep it
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
        if run.settle:
            held.settle(conn, run.settle, "applied")  # with the checkpoint: their writes are acknowledged
            run.settle = []
        progress.unmapped = held.counts(conn)["held"]
        runs.checkpoint(conn, run.id, "_counters", counters=progress.counters())
        runs.checkpoint(conn, run.id, "_watermark", position={
            "caught_up_at": progress.caught_up_at, "last_record_at": progress.last_record_at,
            "lag_seconds": progress.lag_seconds, "iterator_age_seconds": progress.iterator_age_seconds,
            "measured_at": time.time(), "unmapped": progress.unmapped, "parents": run.parents})
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
    idle_sleep: float = FOLLOW_POLL_S,
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

    Forward: records of raw identifiers the keymap does not know are held (see the module's
    docstring); held records whose identifier ``keymap`` now maps are applied first, in sequence order.
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
    rule_mode = not reverse and getattr(getattr(spec, "stream", None), "new_identifiers", "hold") == "rule"
    current = [keymap]  # the keymap in force: rule mode adds the identifiers it decides, in memory
    tried: set[str] = set()  # raws rule mode has looked at in this run (it decides or holds once)
    auto_entries: dict[str, str] = dict(run.params.get("auto_entries") or {})
    at_tip: dict[str, bool] = {}  # shard -> its last read reached the tip (open) or the end (closed)
    read_at: dict[str, float] = {}  # shard -> creation time of the last record read from it
    open_shards: list[str] = []

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

    shared_cache: dict[int, bool] = {}

    def has_shared(km: Keymap) -> bool:
        """Whether several raw identifiers map to one new id anywhere in ``km`` (cached per keymap)."""
        if id(km) not in shared_cache:
            shared_cache[id(km)] = any(len(raws) > 1 for raws in km.reverse.values())
        return shared_cache[id(km)]

    def read_source(old_key: dict) -> dict | None:
        return ddb.get_item(TableName=source, Key=for_botocore(old_key), ConsistentRead=True).get("Item")

    def settle_shared(writes: list[Put | Delete]) -> list[Put | Delete]:
        """Writes to keys several raw identifiers share are settled from the old table's state
        now (:mod:`~keyshift.core.kernel.merged`), not taken from the record: the record of one
        spelling says nothing about the other's item at the same key."""
        km = current[0]
        if not has_shared(km):
            return writes
        out = []
        for w in writes:
            if shared_new_id(w, km, names) is not None:
                w = settle_shared_key(read_source, km, names, new_key_of(w, names))
                progress.settled += 1
            out.append(w)
        return out

    def write(writes: list[Put | Delete]) -> None:
        """Note, then write a page's writes (no key twice) in parallel batches; returns when all
        are acknowledged."""
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

    def held_outcomes(raws: list[str] | None) -> tuple[list[Put | Delete | Skip], list[int], list[int]]:
        """Outcomes of the held records the keymap in force maps (by sequence number), their ids,
        and the ids of those whose identifier it drops."""
        outcomes, applied, dropped = [], [], []
        for rec in sorted(held.held_records(ws.connect(), raws=raws, direction=direction), key=lambda r: r.seq):
            entry = current[0].entries.get(rec.raw)
            if entry is None:
                continue  # still undecided: it stays held
            if entry.new_id is None:
                dropped.append(rec.id)
                continue
            outcomes.append(record_outcome(rec.stream_record(), current[0], names))
            applied.append(rec.id)
        return outcomes, applied, dropped

    def apply_held_first() -> None:
        """Held records of identifiers now mapped go before anything newer on the stream."""
        outcomes, applied, dropped = held_outcomes(None)
        if not (applied or dropped):
            return
        write(settle_shared(reduce_outcomes(outcomes, names)))
        with ws.transaction() as conn:
            held.settle(conn, applied, "applied")
            held.settle(conn, dropped, "dropped")
            ws.audit(operator, "stream-sync.apply-held", {"run_id": run.id, "applied": len(applied),
                                                          "dropped": len(dropped), "keymap": current[0].version})
        progress.held_applied += len(applied)
        progress.held_dropped += len(dropped)

    def auto_decide(raw: str) -> str | None:
        """Rule mode: record the rules' decision on ``raw`` (as ``keyshift:rule``), its new id or None."""
        from ...resolve.cases import CaseError, case_id, get_case
        from ...resolve.decisions import decide as record_decision
        from ...resolve.unmapped import RULE_OPERATOR, rule_decision

        new_id, reason = rule_decision(ws.connect(), raw, names.source_sk)
        if new_id is None:
            return None
        try:
            case = get_case(ws, case_id("unmapped", raw))
            record_decision(ws, case, "same", new_id=new_id, reason=reason, operator=RULE_OPERATOR)
        except CaseError:
            return None  # a decision the checks refuse is a person's to make: it holds
        return new_id

    def hold_unresolved(records: list[dict[str, Any]], outcomes: list[Put | Delete | Skip],
                        shard_id: str) -> tuple[list[Put | Delete | Skip], list[int]]:
        """Hold the page's unresolved records; in rule mode decide what the rules can, and return the
        outcomes of the held records that decision maps (to apply first) and their ids."""
        from ...resolve.unmapped import derive_unmapped

        rows = [(raw, rec) for rec, o in zip(records, outcomes)
                if type(o) is Skip and o.kind == "unresolved" and (raw := held.record_raw(rec, names.source_pk))]
        if not rows:
            return [], []
        with ws.transaction() as conn:  # durable before the checkpoint passes them
            held.hold(conn, rows, direction=direction, source_arn=arn, shard=shard_id,
                      origin=f"stream-sync run {run.id}")
            derive_unmapped(conn, {raw for raw, _ in rows})
        progress.held += len(rows)
        if not rule_mode:
            return [], []
        decided: dict[str, str] = {}
        for raw in dict.fromkeys(raw for raw, _ in rows):
            if raw not in tried:
                tried.add(raw)
                new_id = auto_decide(raw)
                if new_id is not None:
                    decided[raw] = new_id
        if not decided:
            return [], []
        km = current[0]
        entries = {**km.entries, **{raw: KeymapEntry(i, "rule:stream") for raw, i in decided.items()}}
        current[0] = Keymap(km.version, entries, {r: w for r, w in km.unresolved.items() if r not in decided},
                            km.winners, km.primaries, km.migration)
        auto_entries.update(decided)
        run.params["auto_entries"] = dict(auto_entries)
        with ws.transaction() as conn:
            runs.set_params(conn, run.id, run.params)  # the next run's keymap must keep these too
        outcomes_first, applied, _ = held_outcomes(sorted(decided))
        return outcomes_first, applied

    def apply(page: list[dict[str, Any]], shard_id: str) -> None:
        """One page: what must not be replayed left out, the rest decided, held or written."""
        records = replayable(page)
        first_ids: list[int] = []
        if reverse:
            outcomes = [reverse_outcome(r, keymap, names) for r in records]
            for o in outcomes:
                if type(o) is Skip:
                    skip(o.kind or "other")
            done = [o for o in outcomes if type(o) is not Skip]
            writes = reduce_reverse(outcomes, names)
            puts = sum(1 for o in done if type(o[0]) is Put)
            deletes = sum(1 for o in done if type(o[0]) is Delete)
        else:
            forward = [record_outcome(r, current[0], names) for r in records]
            first, first_ids = hold_unresolved(records, forward, shard_id)
            for o in forward:
                if type(o) is Skip and o.kind != "unresolved":
                    skip(o.kind or "other")
            writes = settle_shared(reduce_outcomes(first + forward, names))  # held records first: older
            puts = sum(1 for o in forward if type(o) is Put)
            deletes = sum(1 for o in forward if type(o) is Delete)
        write(writes)
        run.settle += first_ids
        progress.held_applied += len(first_ids)
        progress.records += len(page)
        progress.puts += puts
        progress.deletes += deletes
        progress.last_record_at = approx_time(page[-1]) or progress.last_record_at

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
                apply(records, shard_id)
                run.positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
                when = approx_time(records[-1])
                if when is not None:
                    read_at[shard_id] = when
            at_tip[shard_id] = not records or it is None
            if it is None:
                run.done.add(shard_id)
            iterators[shard_id] = it
            measure()
            _save(ws, run, progress, "running")  # after the writes: at-least-once, and applies are idempotent
            progress.elapsed = time.monotonic() - started
            yield progress
            if not records:
                break  # an open shard's tip

    def measure() -> None:
        """Lag and iterator age now, and each shard's position, into ``progress``."""
        now = time.time()
        waiting = [s for s in open_shards if s not in run.done and not at_tip.get(s, False)]
        if not waiting and open_shards:
            progress.lag_seconds = progress.iterator_age_seconds = 0.0  # read to every tip: no lag
        else:
            # The next record of a shard is no older than the last one read from it (applied with
            # its page): the oldest record not yet applied is at most this old.
            ages = [now - read_at[s] for s in waiting if s in read_at]
            progress.lag_seconds = max(0.0, max(ages)) if ages else None
            newest = max(read_at.values(), default=None)
            progress.iterator_age_seconds = None if newest is None else max(0.0, now - newest)
        progress.positions = [{"shard_id": s, "sequence": run.positions.get(s), "done": s in run.done,
                               "parent": run.parents.get(s)} for s in sorted(set(open_shards) | set(run.positions))]

    state = "running"
    try:
        if not reverse:
            apply_held_first()
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
                at_tip.clear()
                read_at.clear()
                progress.restarts += 1
                progress.caught_up_at = None
            pass_started = time.time()
            shards = list_shards(streams, arn)
            present = {s["ShardId"] for s in shards}
            run.parents = {s["ShardId"]: s.get("ParentShardId") for s in shards}
            open_shards[:] = sorted(present)
            pass_at_tip = True
            for shard in sorted(shards, key=lambda s: int(s["SequenceNumberRange"]["StartingSequenceNumber"])):
                shard_id = shard["ShardId"]
                if shard_id in run.done:
                    continue
                parent = shard.get("ParentShardId")
                if parent and parent in present and parent not in run.done:
                    pass_at_tip = False  # a parent's records come first (the next pass)
                    at_tip[shard_id] = False
                    continue
                yield from drain(shard_id)
                if cancel is not None and cancel.is_set():
                    pass_at_tip = False
                    break
            progress.shards, progress.shards_done = len(shards), len(run.done & present)
            if pass_at_tip:
                progress.caught_up_at = pass_started
                expire = getattr(echo, "expire", None)
                if expire is not None:  # notes older than this pass matched no record: they never will
                    expire(direction, source, pass_started)
            progress.elapsed = time.monotonic() - started
            measure()
            _save(ws, run, progress, "running")
            yield progress
            if progress.caught_up and not follow:
                state = "complete"
                break
            if pass_at_tip and cancel is not None:
                cancel.wait(idle_sleep)
            elif pass_at_tip:
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
    measure()
    summary = {**progress.counters(), "shards": progress.positions, "shard_count": progress.shards,
               "shards_done": progress.shards_done, "unmapped": held.counts(ws)["held"],
               "lag_seconds": progress.lag_seconds, "iterator_age_seconds": progress.iterator_age_seconds,
               "new_identifiers": "rule" if rule_mode else "hold", "auto_decided": sorted(auto_entries),
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
