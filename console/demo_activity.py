"""Start and stop the demo's background activity: the live writer and the three services.

Threads, not processes: ``keyshift demo`` opens the console in its own process and the embedded
server dies with it, so the activity lives exactly as long as the demo does, needs no process
management, and is stopped (joined) before the server stops. Being in the console's process,
none of it may print: :meth:`DemoActivity.start` sends the activity logger and the router's
logger to ``<demo dir>/demo-activity.log`` only (no propagation to the root logger, whose last
resort handler would write warnings to the terminal under the console).
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyshift.core.kernel.transform import KeyNames

from .demo_live import ACTIVITY_LOGGER, FlagGate, LiveWriter
from .demo_services import SERVICES, DemoService, WorkspaceKeymap

__all__ = ["ActivityOptions", "DemoActivity", "LOG_NAME", "demo_client"]

LOG_NAME = "demo-activity.log"
#: The loggers whose records go to the activity log while the demo runs.
_LOGGERS = (ACTIVITY_LOGGER, "keyshift.router")


@dataclass
class ActivityOptions:
    """How busy the demo is. ``writes_per_second`` 0: no writer; ``services`` empty: none."""

    writes_per_second: float = 3.0
    max_writes: int = 5000
    services: tuple[str, ...] = SERVICES
    service_interval: float = 1.0
    ttl_seconds: float = 1.0
    keymap_refresh_s: float = 2.0


def demo_client(endpoint_url: str | None, region: str) -> Any:
    """A DynamoDB client for the activity threads: short timeouts and few retries, so a thread
    asked to stop is never stuck for long in a call (the console's clients retry far more)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=1, read_timeout=3, retries={"mode": "standard", "max_attempts": 2},
                    account_id_endpoint_mode="disabled", max_pool_connections=8)
    return boto3.session.Session().client("dynamodb", endpoint_url=endpoint_url, region_name=region,
                                          config=config)


@dataclass
class DemoActivity:
    """The writer and the services of one demo: built from its spec, data and workspace."""

    ddb: Any
    spec: Any
    workspace_path: Path
    directory: Path
    items: list[dict[str, Any]]
    reference_names: set[str]
    options: ActivityOptions = field(default_factory=ActivityOptions)
    writer: LiveWriter | None = field(default=None, init=False)
    services: list[DemoService] = field(default_factory=list, init=False)
    _handler: logging.Handler | None = field(default=None, init=False, repr=False)
    _saved: list[tuple[logging.Logger, int, bool]] = field(default_factory=list, init=False, repr=False)

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_NAME

    @property
    def threads(self) -> list[threading.Thread]:
        return ([self.writer] if self.writer is not None else []) + list(self.services)

    def start(self) -> "DemoActivity":
        """Open the log, build the threads and start them (the services register at once)."""
        self._open_log()
        log = logging.getLogger(ACTIVITY_LOGGER)
        spec, opts = self.spec, self.options
        names = KeyNames.from_spec(spec)
        pk, sk = names.source_pk, names.source_sk
        keys = [(i[pk]["S"], i[sk]["S"]) for i in self.items if "S" in i.get(pk, {}) and sk and "S" in i.get(sk, {})]
        raws = sorted({k[0] for k in keys})
        if opts.writes_per_second > 0:
            self.writer = LiveWriter(self.ddb, spec.source.table, keys=keys, names=raws,
                                     writes_per_second=opts.writes_per_second, max_writes=opts.max_writes,
                                     gate=FlagGate(self.ddb, spec.control.table, spec.control.flag,
                                                   ttl_seconds=opts.ttl_seconds),
                                     log=log)
        # Names the reference knows exactly: the keymap maps them once their cases are decided.
        known = [r for r in raws if r in self.reference_names] or raws
        keymap = WorkspaceKeymap(self.workspace_path, refresh_s=opts.keymap_refresh_s)
        rng = random.Random(len(known))
        for service in opts.services:
            self.services.append(DemoService(
                service, self.ddb, control_table=spec.control.table, flag=spec.control.flag,
                old_table=spec.source.table, new_table=spec.target.table, names=names,
                customers=rng.sample(known, min(20, len(known))), keymap=keymap,
                interval=opts.service_interval, ttl_seconds=opts.ttl_seconds, log=log))
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> dict[str, Any]:
        """Stop every thread (joined, up to ``timeout`` each), close the log; what they did."""
        for thread in self.threads:
            thread.request_stop()  # type: ignore[attr-defined] - all at once, then join each
        for thread in self.threads:
            thread.stop(timeout)  # type: ignore[attr-defined]
        summary = {"writer": self.writer.stats.to_dict() if self.writer else None,
                   "services": {s.service: s.stats.to_dict() for s in self.services},
                   "alive": [t.name for t in self.threads if t.is_alive()]}
        logging.getLogger(ACTIVITY_LOGGER).info("demo activity stopped: %s", summary)
        self._close_log()
        return summary

    def summary_line(self) -> str:
        """What the threads did, in one line (printed when the demo stops)."""
        parts = []
        if self.writer is not None:
            w = self.writer.stats
            parts.append(f"writer {w.writes:,} writes ({w.puts:,} puts, {w.stream_only_puts:,} for stream-only"
                         f" names, {w.updates:,} updates, {w.deletes:,} deletes), {w.errors:,} failed")
        for s in self.services:
            writes = ", ".join(f"{n:,} on {t}" for t, n in sorted(s.stats.writes.items())) or "no writes"
            parts.append(f"{s.service} {writes}, {s.stats.reads:,} reads, {s.stats.errors:,} failed")
        return "; ".join(parts) or "nothing ran"

    def describe(self) -> str:
        """The one line the demo prints before the console opens."""
        parts = []
        if self.writer is not None:
            parts.append(f"a live writer ({self.options.writes_per_second:g} writes/s on {self.spec.source.table},"
                         f" at most {self.options.max_writes:,})")
        if self.services:
            parts.append(f"{len(self.services)} services ({', '.join(s.service for s in self.services)})"
                         " reading and writing through the router")
        what = " and ".join(parts) if parts else "no live writer and no services"
        return f"running {what}; their log: {self.log_path}"

    def _open_log(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._handler = logging.FileHandler(self.log_path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level, logger.propagate))
            logger.addHandler(self._handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False

    def _close_log(self) -> None:
        if self._handler is None:
            return
        for logger, level, propagate in self._saved:
            logger.removeHandler(self._handler)
            logger.setLevel(level)
            logger.propagate = propagate
        self._saved.clear()
        self._handler.close()
        self._handler = None
