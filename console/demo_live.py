"""The demo's live writer: a background thread that keeps changing the old ``orders`` table.

A real migration never happens on a quiet table: while restore and stream sync run, the old table
keeps taking writes, and some customers show up for the first time on the stream. The writer
gives the demo that: after the dump is taken it puts new orders for names the dump has, updates
and deletes orders, and puts orders for **stream-only** names (:data:`STREAM_ONLY`), some of them
dirty forms of names the reference data knows, two the reference does not know. Stream sync then
has real work, and the stream's new identifiers appear in the console as held / unmapped cases.

It writes only while the flag says ``old`` or ``shadow`` (:class:`FlagGate`): it stands for the
legacy traffic of the old table, which the services take over at the cut-over, and a write to the
old table after a flip to ``new`` would be one no sync carries forward (reverse sync owns that
direction then). It resumes on a flip back.

It runs in the console's process, so it never prints: everything goes to a logger the demo
points at ``<demo dir>/demo-activity.log``. It is bounded (``max_writes``; the keys it remembers
for updates and deletes sit in a fixed-size deque) and stops when asked, between two writes.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import demo_data as dd

__all__ = ["STREAM_ONLY", "FlagGate", "LiveWriter", "WriterStats", "ACTIVITY_LOGGER"]

#: The logger the writer and the services write to (the demo sends it to demo-activity.log).
ACTIVITY_LOGGER = "keyshift.demo.activity"

#: Names that never appear in the dump, only on the stream: ``(raw, what the plan will make of it)``.
#: The first four are dirty or clean forms of names the reference knows, absent from the dump;
#: the last two are unknown upstream.
STREAM_ONLY: tuple[tuple[str, str], ...] = (
    ("Stark Industries", "clean form of a name the dump only has with a WORD JOINER"),
    ("Wayne Enterprises\u200b", "ZERO WIDTH SPACE on a known name"),
    ("Initech  LLC", "doubled space on a known name"),
    ("Globex Corporation\u00a0", "trailing NO-BREAK SPACE on a known name"),
    ("Pied Piper", "unknown upstream"),
    ("Bluth Company\u200b", "unknown upstream, and dirty"),
)

#: How many keys the writer remembers for its updates and deletes (bounded memory).
REMEMBERED_KEYS = 500
_STATUSES = ("placed", "paid", "shipped", "delivered", "returned")


@dataclass
class WriterStats:
    """What the writer did so far (read by the demo's stop line and by tests)."""

    puts: int = 0
    stream_only_puts: int = 0
    updates: int = 0
    deletes: int = 0
    errors: int = 0
    paused: int = 0  # ticks skipped because the flag was not old/shadow
    stream_only_names: set[str] = field(default_factory=set)

    @property
    def writes(self) -> int:
        return self.puts + self.stream_only_puts + self.updates + self.deletes

    def to_dict(self) -> dict[str, Any]:
        return {"puts": self.puts, "stream_only_puts": self.stream_only_puts, "updates": self.updates,
                "deletes": self.deletes, "errors": self.errors, "paused": self.paused,
                "writes": self.writes}


class FlagGate:
    """Whether the old table takes writes now: the flag's state is ``old`` or ``shadow``.

    Reads the flag item (one consistent ``GetItem``) at most every ``ttl_seconds``; without a
    control table, a flag or an answer it says yes (before a cut-over the old table is the
    source of truth). Not a :class:`~keyshift.core.kernel.router.MigrationRouter`: the writer is
    no service, and must not show up among the routers the cut-over screen lists."""

    def __init__(self, ddb: Any, control_table: str, flag: str, ttl_seconds: float = 1.0,
                 clock: Any = None) -> None:
        import time

        self.ddb, self.control_table, self.flag = ddb, control_table, flag
        self.ttl_seconds = ttl_seconds
        self._clock = clock or time.monotonic
        self._checked: tuple[float, str | None] = (-float("inf"), None)

    def state(self) -> str | None:
        at, state = self._checked
        if self._clock() - at >= self.ttl_seconds:
            try:
                item = self.ddb.get_item(TableName=self.control_table, ConsistentRead=True,
                                         Key={"pk": {"S": f"flag#{self.flag}"}, "sk": {"S": "state"}}).get("Item")
                state = (item or {}).get("state", {}).get("S")
            except Exception:  # noqa: BLE001 - no control table (yet): the old table is in force
                state = None
            self._checked = (self._clock(), state)
        return state

    def open(self) -> bool:
        return self.state() in (None, "old", "shadow")


class StoppableThread(threading.Thread):
    """A demo daemon thread that runs until asked to stop (the writer and each service)."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_event = threading.Event()

    def request_stop(self) -> None:
        """Ask the thread to stop after its current call, without waiting."""
        self._stop_event.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop after its current call and wait for it (up to ``timeout``)."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)


class LiveWriter(StoppableThread):
    """A daemon thread writing to ``table`` at ``writes_per_second`` until ``max_writes`` or :meth:`stop`.

    ``keys``: (customer, order_id) pairs of the dump to update and delete (a sample is kept);
    ``names``: raw customer names of the dump to put new orders for. ``seed`` makes a run
    repeatable. A failed write is logged and counted, never raised: the next one is tried after
    the usual interval (a server that went away costs one log line per attempt, at the writer's rate).
    """

    def __init__(self, ddb: Any, table: str, *, keys: list[tuple[str, str]], names: list[str],
                 writes_per_second: float = 3.0, max_writes: int = 5000, seed: int = dd.SEED,
                 stream_only: tuple[tuple[str, str], ...] = STREAM_ONLY,
                 gate: FlagGate | None = None, log: logging.Logger | None = None) -> None:
        super().__init__("keyshift-demo-writer")
        if writes_per_second <= 0:
            raise ValueError("writes_per_second must be positive (0 means: do not start a writer)")
        self.ddb = ddb
        self.table = table
        self.interval = 1.0 / writes_per_second
        self.max_writes = max_writes
        self.stats = WriterStats()
        self._rng = random.Random(seed)
        self._names = list(names) or [raw for raw, _ in stream_only]
        self._stream_only = [raw for raw, _ in stream_only]
        self._keys: deque[tuple[str, str]] = deque(self._rng.sample(keys, min(len(keys), REMEMBERED_KEYS)),
                                                   maxlen=REMEMBERED_KEYS)
        self._counter = 0
        self._gate = gate
        self._was_open = True
        self.log = log or logging.getLogger(ACTIVITY_LOGGER)

    def run(self) -> None:
        self.log.info("writer: started on %s, one write every %.2fs, at most %d writes",
                      self.table, self.interval, self.max_writes)
        try:
            while not self._stop_event.wait(self.interval):
                if self.stats.writes + self.stats.errors >= self.max_writes:
                    self.log.info("writer: %d writes done, stopping (its bound)", self.max_writes)
                    break
                if self._gate_open():
                    self.write_once()
        except BaseException:  # noqa: BLE001 - the console owns the terminal: log, never print
            self.log.exception("writer: stopped by an unexpected error")
        self.log.info("writer: stopped: %s", self.stats.to_dict())

    def _gate_open(self) -> bool:
        is_open = self._gate is None or self._gate.open()
        if is_open != self._was_open:
            if is_open:
                self.log.info("writer: the flag is old again: writing to %s", self.table)
            else:
                self.log.info("writer: the flag is not old: paused (the services write to the new table now)")
            self._was_open = is_open
        if not is_open:
            self.stats.paused += 1
        return is_open

    def write_once(self) -> None:
        """One write, chosen at random: a put, a stream-only put, an update or a delete."""
        roll = self._rng.random()
        try:
            if roll < 0.35:
                self._write_put(self._rng.choice(self._names), stream_only=False)
            elif roll < 0.6:
                self._write_put(self._rng.choice(self._stream_only), stream_only=True)
            elif roll < 0.85 and self._keys:
                self._write_update(self._rng.choice(self._keys))
            elif self._keys:
                self._write_delete(self._keys.popleft())
            else:
                self._write_put(self._rng.choice(self._names), stream_only=False)
        except Exception as exc:  # noqa: BLE001 - a failed write is logged and counted
            self.stats.errors += 1
            self.log.warning("writer: write failed: %s: %s", type(exc).__name__, exc)

    def _write_put(self, customer: str, *, stream_only: bool) -> None:
        self._counter += 1
        order_id = f"ORD-LIVE-{self._counter:06d}"
        item = dd.order_item(customer, order_id, self._rng)
        item["created_at"] = {"S": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.ddb.put_item(TableName=self.table, Item=item)
        self._keys.append((customer, order_id))
        if stream_only:
            self.stats.stream_only_puts += 1
            self.stats.stream_only_names.add(customer)
        else:
            self.stats.puts += 1
        self.log.info("writer: put %r %s%s", customer, order_id, " (stream-only name)" if stream_only else "")

    def _write_update(self, key: tuple[str, str]) -> None:
        status = self._rng.choice(_STATUSES)
        try:
            # Only an order that is there: an update of a deleted key would create a key-only item.
            self.ddb.update_item(TableName=self.table, Key=_key(key),
                                 UpdateExpression="SET #s = :s", ConditionExpression="attribute_exists(order_id)",
                                 ExpressionAttributeNames={"#s": "status"},
                                 ExpressionAttributeValues={":s": {"S": status}})
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError, checked by its code
            if getattr(exc, "response", {}).get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self.log.info("writer: %r %s is gone, not updated", key[0], key[1])
            return
        self.stats.updates += 1
        self.log.info("writer: update %r %s: status %s", key[0], key[1], status)

    def _write_delete(self, key: tuple[str, str]) -> None:
        self.ddb.delete_item(TableName=self.table, Key=_key(key))
        self.stats.deletes += 1
        self.log.info("writer: delete %r %s", key[0], key[1])


def _key(key: tuple[str, str]) -> dict[str, Any]:
    return {"customer": {"S": key[0]}, "order_id": {"S": key[1]}}
