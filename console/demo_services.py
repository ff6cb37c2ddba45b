"""The demo's three "services": threads that read and write orders through ``MigrationRouter``.

A cut-over is only real when the services follow it. Each :class:`DemoService` (``checkout``,
``billing``, ``support``) builds one router on the demo's control table and flag, as a service
process would (docs/services.md), and on every tick asks it which table is in force: in ``old``
and ``shadow`` it writes orders to the old table keyed by the raw customer name and reads them
with ``router.get_item``; in ``new`` it writes them to the new table keyed by the new id. Its
router reports to the control table as every router does, so the cut-over screen shows the three
registered from the start and acknowledging each flip (after at most one TTL).

The flag item carries no keymap the routers could load (nothing sets its ``keymap_uri`` yet), so
in ``new`` a service maps its raw names itself with the workspace's newest keymap
(:class:`WorkspaceKeymap`) and the kernel's ``transform``, the function every keyshift step
writes with. A name the keymap does not map (held, unmapped) is logged and another tried.

Like the live writer, the services never print (the console owns the terminal): they log to the
demo's activity logger, and every error is caught and logged.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from keyshift.core.kernel.keymap import Keymap, keymap_from_document
from keyshift.core.kernel.router import MigrationRouter
from keyshift.core.kernel.transform import KeyNames, Put, Skip, transform, transform_key

from . import demo_data as dd
from .demo_live import ACTIVITY_LOGGER, StoppableThread

__all__ = ["SERVICES", "DemoService", "ServiceStats", "WorkspaceKeymap"]

#: The demo's services, by name.
SERVICES = ("checkout", "billing", "support")
#: Orders a service remembers to read back (bounded memory).
REMEMBERED = 50


class WorkspaceKeymap:
    """The workspace's newest keymap, reloaded at most every ``refresh_s`` seconds, thread-safe.

    The console's keymap step keeps each build's artifact under ``<workspace>/keymaps/``; that is
    read first. A workspace whose newest build has no artifact (built by restore or the CLI
    without ``--out``) is given a keymap built in memory from its rules and decisions (never
    recorded: the demo must not add builds behind the operator's back). None before any build."""

    def __init__(self, workspace_path: Path, refresh_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.workspace_path = Path(workspace_path)
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded: tuple[float, str | None, Keymap | None] = (-float("inf"), None, None)

    def current(self) -> Keymap | None:
        with self._lock:
            at, version, keymap = self._loaded
            if self._clock() - at < self.refresh_s:
                return keymap
            keymap = self._load(version, keymap)
            self._loaded = (self._clock(), keymap.version if keymap else None, keymap)
            return keymap

    def _load(self, version: str | None, keymap: Keymap | None) -> Keymap | None:
        import json

        from keyshift.core.resolve.keymap_build import build_keymap
        from keyshift.core.resolve.keymap_history import keymap_builds
        from keyshift.core.store.workspace import Workspace

        ws = Workspace(self.workspace_path, create=False)
        try:
            builds = keymap_builds(ws, limit=1)
            if not builds:
                return None
            newest = builds[0]
            if newest.version == version and keymap is not None:
                return keymap
            if newest.location and not newest.location.startswith("s3://"):
                try:
                    return keymap_from_document(json.loads(Path(newest.location).read_text(encoding="utf-8")))
                except (OSError, ValueError):
                    pass
            return build_keymap(ws, allow_unresolved=True).keymap
        finally:
            ws.close()


@dataclass
class ServiceStats:
    """What one service did, by table (read by tests and the demo's stop line)."""

    writes: dict[str, int] = field(default_factory=dict)
    reads: int = 0
    skipped: int = 0
    errors: int = 0
    last_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"writes": dict(self.writes), "reads": self.reads, "skipped": self.skipped,
                "errors": self.errors, "state": self.last_state}


class DemoService(StoppableThread):
    """One demo service: a router, and a write or a read every ``interval`` seconds until :meth:`stop`.

    ``names``: raw customer names it places orders for; ``keymap``: the :class:`WorkspaceKeymap`
    (or any object with ``current()``) used in ``new``; ``ttl_seconds``: its router's TTL.
    """

    def __init__(self, service: str, ddb: Any, *, control_table: str, flag: str, old_table: str,
                 new_table: str, names: KeyNames, customers: list[str], keymap: Any,
                 interval: float = 1.0, ttl_seconds: float = 1.0, seed: int = dd.SEED,
                 log: logging.Logger | None = None) -> None:
        super().__init__(f"keyshift-demo-{service}")
        self.service = service
        self.ddb = ddb
        self.names = names
        self.old_table, self.new_table = old_table, new_table
        self.router = MigrationRouter(control_table, flag, old_table, new_table, service=service,
                                      ttl_seconds=ttl_seconds, client=ddb, instance=f"demo-{service}")
        self.customers = list(customers)
        self.keymap = keymap
        self.interval = interval
        self.stats = ServiceStats()
        self._rng = random.Random(f"{seed}-{service}")
        self._orders: deque[dict[str, Any]] = deque(maxlen=REMEMBERED)  # old-table items it wrote
        self._counter = 0
        self.log = log or logging.getLogger(ACTIVITY_LOGGER)

    def run(self) -> None:
        self.log.info("%s: started (router instance demo-%s, TTL %.1fs)", self.service, self.service,
                      self.router.ttl_seconds)
        try:
            self.tick()  # register at once: the cut-over screen lists the service from the start
            while not self._stop_event.wait(self.interval):
                self.tick()
        except BaseException:  # noqa: BLE001 - the console owns the terminal: log, never print
            self.log.exception("%s: stopped by an unexpected error", self.service)
        self.log.info("%s: stopped: %s", self.service, self.stats.to_dict())

    def tick(self) -> None:
        """One call: a write, or (every other tick, once it has written) a read back."""
        try:
            state = self.router.state()
            if state != self.stats.last_state:
                self.log.info("%s: now on %s (flag state %s, version %s)", self.service,
                              self.router.table(), state, self.router.version())
                self.stats.last_state = state
            if self._orders and self._rng.random() < 0.5:
                self._do_read(state)
            else:
                self._do_write(state)
        except Exception as exc:  # noqa: BLE001 - logged and counted; the next tick tries again
            self.stats.errors += 1
            self.log.warning("%s: %s: %s", self.service, type(exc).__name__, exc)

    def _new_order(self) -> dict[str, Any]:
        self._counter += 1
        customer = self._rng.choice(self.customers)
        item = dd.order_item(customer, f"ORD-{self.service.upper()}-{self._counter:06d}", self._rng)
        item["created_at"] = {"S": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        item["channel"] = {"S": self.service}
        return item

    def _do_write(self, state: str) -> None:
        table = self.router.table()
        for _ in range(5):  # a name the keymap does not map yet: try another
            item = self._new_order()
            if state != "new":
                self.ddb.put_item(TableName=table, Item=item)
                break
            keymap = self.keymap.current()
            if keymap is None:
                self.stats.skipped += 1
                self.log.info("%s: flag says new but no keymap is built: write skipped", self.service)
                return
            out = transform(item, keymap, self.names)
            if type(out) is Put:
                self.ddb.put_item(TableName=table, Item=out.item)
                break
            self.log.info("%s: %r not written to %s: %s", self.service, item[self.names.source_pk]["S"],
                          table, out.reason)
        else:
            self.stats.skipped += 1
            return
        self._orders.append(item)
        self.stats.writes[table] = self.stats.writes.get(table, 0) + 1
        self.log.info("%s: put %s on %s", self.service, item["order_id"]["S"], table)

    def _do_read(self, state: str) -> None:
        item = self._rng.choice(self._orders)
        key = {k: item[k] for k in (self.names.source_pk, self.names.source_sk) if k}
        if state != "new":
            found = self.router.get_item(Key=key, ConsistentRead=True).get("Item") is not None
            table = self.old_table
        else:
            keymap = self.keymap.current()
            out = transform_key(key, keymap, self.names) if keymap is not None else Skip("no keymap")
            if type(out) is Skip:
                self.stats.skipped += 1
                return
            table = self.router.table()
            found = self.ddb.get_item(TableName=table, Key=out.key, ConsistentRead=True).get("Item") is not None
        self.stats.reads += 1
        self.log.info("%s: read %s on %s: %s", self.service, item["order_id"]["S"], table,
                      "found" if found else "not found")
