"""The router library for services: which table to use now, read from the migration's flag item.

A service builds one :class:`MigrationRouter` per process (a Lambda: at module scope, reused by
every invocation) and asks it :meth:`~MigrationRouter.table` on every access. The flag item of the
control table (docs/cutover.md, "Control table") says ``old``, ``shadow`` or ``new``; the router
reads it once per TTL per process, whatever the number of threads and calls, and between reads
answers from memory: a monotonic-clock comparison and an attribute read, no lock, no I/O.

What it guarantees (docs/services.md):

- **One flag read per TTL** (a consistent ``GetItem``), shared by all threads. When the cached
  value expires, the first caller reads; callers arriving while that read is in flight get the
  value cached before it (so no request thread ever waits on the control table once a state is
  known). Only the very first read of a process, when there is nothing to serve yet, is waited for.
  A router therefore acts on a flip at most ``ttl_seconds`` + one read after it.
- **Last known state** when the control table cannot be read: kept, one log line per failure
  streak (and one when it recovers), :meth:`~MigrationRouter.stale_for` growing. With no state
  known yet it fails closed (:class:`RouterUnavailable`, naming the table and flag) unless the
  service gave ``default=``.
- **Reports** to the control table (item ``router#<service>#<instance>``): the version it acts
  on, when it first acted on it, last seen. Written when the version changes and as a heartbeat
  once a minute, by the thread that made the flag read; a failed report is logged, never raised.
- **Shadow reads**: :meth:`~MigrationRouter.get_item` in state ``shadow`` returns the old table's
  item and, for a sampled fraction, also reads the new table at the key mapped through the keymap
  and compares it with ``transform(old item)``; the counts go to the ``shadow#<version>`` item
  with an atomic ``ADD``, batched, flushed by a calling thread. A failed shadow read never fails
  the caller.

Standard library and boto3 only (a service installs ``keyshift --no-deps``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping

from .errors import KeyshiftError
from .keymap import Keymap, KeymapFormatError, keymap_from_document, split_s3_uri
from .transform import KeyNames, Put, Skip, transform

__all__ = [
    "FLUSH_EVERY_READS",
    "FLUSH_EVERY_S",
    "HEARTBEAT_S",
    "STATES",
    "FlagState",
    "MigrationRouter",
    "RouterError",
    "RouterUnavailable",
    "UnmappedIdentifier",
    "same_item",
]

#: The flag's states, and the table each one routes to.
STATES = ("old", "shadow", "new")
#: Seconds between two heartbeat reports of one router (a version change reports at once).
HEARTBEAT_S = 60.0
#: Shadow counts are flushed after this many sampled reads...
FLUSH_EVERY_READS = 50
#: ...or when the oldest unflushed count is this many seconds old (checked on each shadow read).
FLUSH_EVERY_S = 5.0
#: The default client's timeouts: a flag read that hangs must not hold a request thread for long
#: (only the refreshing thread waits; the others serve the cached state meanwhile).
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0
MAX_ATTEMPTS = 2

log = logging.getLogger("keyshift.router")

#: Every live router, so a forked child (gunicorn, multiprocessing) gets fresh locks and reads and
#: reports under its own pid instead of inheriting a lock another thread held at the fork.
_ROUTERS: weakref.WeakSet[MigrationRouter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for router in list(_ROUTERS):
        router._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class RouterError(KeyshiftError):
    """A router cannot do what was asked (no keymap, a key it cannot map)."""

    title = "Migration router error"


class RouterUnavailable(RouterError):
    """No state is known (first start) and the control table cannot be read: fail closed."""

    title = "Migration flag unavailable"


class UnmappedIdentifier(RouterError, KeyError):
    """:meth:`MigrationRouter.key` of a raw identifier the keymap has no new id for (a KeyError)."""

    title = "Identifier not in the keymap"

    def __str__(self) -> str:  # KeyError's own str() would print the message quoted
        return self.message


@dataclass(frozen=True, slots=True)
class FlagState:
    """One read of the flag item (or the ``default=`` a service gave), immutable."""

    state: str
    version: int | None        # None: the service's default, no flag read yet
    table: str                 # the table this state routes to
    shadow_sample: float = 0.01
    keymap_uri: str | None = None
    keymap_version: str | None = None
    updated_at: str | None = None
    default: bool = False


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error_text(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', type(exc).__name__)}: {err.get('Message', '') or exc}"
    return f"{type(exc).__name__}: {exc}"


def _s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    inner = value.get("S") if isinstance(value, dict) else None
    return inner if isinstance(inner, str) else None


def _n(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    inner = value.get("N") if isinstance(value, dict) else None
    return inner if isinstance(inner, str) else None


class _BadFlag(Exception):
    """The flag item is missing or malformed (treated like an unreadable control table)."""


# -- comparing items ------------------------------------------------------------------------------

def _canon(value: Any) -> Any:
    """A wire attribute value in a form ``==`` compares as DynamoDB does: sets order-insensitive,
    numbers by value, binary as bytes whether base64 text or bytes."""
    if not isinstance(value, dict) or len(value) != 1:
        return ("?", repr(value))
    (kind, inner), = value.items()
    if kind == "N":
        return ("N", _number(inner))
    if kind == "NS":
        return ("NS", frozenset(_number(v) for v in inner))
    if kind == "SS":
        return ("SS", frozenset(inner))
    if kind == "B":
        return ("B", _bytes(inner))
    if kind == "BS":
        return ("BS", frozenset(_bytes(v) for v in inner))
    if kind == "M":
        return ("M", {k: _canon(v) for k, v in inner.items()})
    if kind == "L":
        return ("L", [_canon(v) for v in inner])
    return (kind, inner)


def _number(text: Any) -> Any:
    try:
        return Decimal(str(text)).normalize()
    except (InvalidOperation, ValueError):
        return str(text)


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    import base64

    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        return str(value).encode("utf-8")


def same_item(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Whether two wire items are equal as DynamoDB sees them, and, when not, the first difference."""
    if a is None or b is None:
        if a is None and b is None:
            return True, ""
        return False, "missing in the new table" if b is None else "in the new table, not expected"
    for name in sorted(set(a) | set(b)):
        if name not in a:
            return False, f"attribute {name!r} only in the new table"
        if name not in b:
            return False, f"attribute {name!r} missing in the new table"
        if _canon(a[name]) != _canon(b[name]):
            return False, f"attribute {name!r} differs"
    return True, ""


# -- the router ----------------------------------------------------------------------------------

class MigrationRouter:
    """Which table a service uses now, from the flag item ``pk="flag#<flag>", sk="state"``.

    ``client``: a boto3 DynamoDB client (thread-safe, shared); by default one built from the
    standard AWS environment (region, credentials, ``AWS_ENDPOINT_URL``) with short timeouts.
    ``default``: ``"old"`` or ``"new"``, served when no state is known and the flag cannot be read
    (otherwise that fails closed). ``instance``: this process's name in its report (default
    ``hostname:pid``). ``keymap``: the keymap for :meth:`key` and :meth:`get_item`, a
    ``keyshift-keymap/1`` document (dict) or a :class:`Keymap`; without it, the one the flag item
    names (``keymap_uri``, s3://…) is loaded on first use and whenever the flag names another.
    ``clock`` (monotonic seconds) and ``now`` (UTC datetime) are for tests.
    """

    def __init__(self, control_table: str, flag: str, old_table: str, new_table: str,
                 service: str = "billing", ttl_seconds: float = 1.0, client: Any = None,
                 default: str | None = None, instance: str | None = None, keymap: Any = None, *,
                 s3_client: Any = None, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = _utcnow, sample: Callable[[], float] | None = None) -> None:
        for name, value in (("control_table", control_table), ("flag", flag), ("old_table", old_table),
                            ("new_table", new_table), ("service", service)):
            if not isinstance(value, str) or not value:
                raise RouterError(f"MigrationRouter: {name} must be a non-empty string, got {value!r}")
        if default is not None and default not in ("old", "new"):
            raise RouterError(f"MigrationRouter: default must be 'old' or 'new', got {default!r}"
                              f" (flag {flag!r} in {control_table!r})")
        try:
            ttl = float(ttl_seconds)
        except (TypeError, ValueError):
            ttl = math.nan
        if not ttl > 0 or math.isinf(ttl):
            raise RouterError(f"MigrationRouter: ttl_seconds must be a positive number, got {ttl_seconds!r}")
        self.control_table = control_table
        self.flag = flag
        self.old_table = old_table
        self.new_table = new_table
        self.service = service
        self.ttl_seconds = ttl
        self.default = default
        self._instance = instance
        self._clock = clock
        self._now = now
        self._sample = sample or random.Random().random
        self.client = client if client is not None else self._default_client("dynamodb")
        self._s3 = s3_client
        self._pk = {"S": f"flag#{flag}"}
        self._flag_key = {"pk": self._pk, "sk": {"S": "state"}}
        # (expires at, FlagState or None): one attribute, so the fast path reads both at once.
        self._cache: tuple[float, FlagState | None] = (-math.inf, None)
        self._lock = threading.Lock()          # held by the one thread reading the flag
        self._error: RouterUnavailable | None = None  # the first start's failure, until the next try
        self._retry_at = -math.inf
        self._created = clock()
        self._last_ok: float | None = None     # clock() of the last successful flag read
        self._failing_since: float | None = None
        self._last_error = ""
        self._warned_tables = False
        # reports (touched only by the thread holding _lock)
        self._acked: tuple[int, str] | None = None   # (version, acked_at)
        self._reported: tuple[int, float] | None = None  # (version, clock() of the report)
        self._report_failing = False
        # keymap
        self._given_keymap: Keymap | None = self._as_keymap(keymap) if keymap is not None else None
        self._keymap_lock = threading.Lock()
        self._keymap_cache: tuple[Any, Keymap] | None = None   # (identity, keymap) loaded from S3
        # shadow counts
        self._counts_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._counts: dict[int, list[Any]] = {}  # version -> [reads, mismatches, errors, last_mismatch]
        self._pending = 0
        self._oldest: float | None = None
        self._flush_failing = False
        self._flush_not_before = -math.inf  # after a failed flush: no retry before this clock()
        _ROUTERS.add(self)

    def _after_fork(self) -> None:
        """In a forked child: new locks (one may have been held at the fork), the cached state kept
        but expired (so the child reads the flag itself), its own report, no inherited counts."""
        self._lock = threading.Lock()
        self._keymap_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._cache = (-math.inf, self._cache[1])
        self._reported = None
        self._counts, self._pending, self._oldest = {}, 0, None

    # -- construction helpers ----------------------------------------------------------------------

    def _default_client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS})
        try:
            return boto3.session.Session().client(service, config=config)
        except BotoCoreError as exc:  # NoRegionError, a broken profile...
            raise RouterError(f"MigrationRouter for flag {self.flag!r} in {self.control_table!r}: cannot"
                              f" build a {service} client from the AWS environment ({_error_text(exc)});"
                              " set AWS_REGION or pass client=") from None

    def _as_keymap(self, keymap: Any) -> Keymap:
        if isinstance(keymap, Keymap):
            return keymap
        try:
            return keymap_from_document(keymap)
        except KeymapFormatError as exc:
            raise RouterError(f"MigrationRouter for flag {self.flag!r}: keymap= {exc.message}") from None

    @property
    def instance(self) -> str:
        """This process's name in its report: ``instance=`` or ``hostname:pid`` (a forked worker
        gets its own pid)."""
        return self._instance or f"{socket.gethostname()}:{os.getpid()}"

    # -- the flag ----------------------------------------------------------------------------------

    def table(self) -> str:
        """The table name to use now: ``old_table`` in ``old`` and ``shadow``, ``new_table`` in ``new``."""
        expires, snap = self._cache
        if self._clock() < expires:
            return snap.table  # type: ignore[union-attr]
        return self._current().table

    def state(self) -> str:
        """``old``, ``shadow`` or ``new``."""
        expires, snap = self._cache
        if self._clock() < expires:
            return snap.state  # type: ignore[union-attr]
        return self._current().state

    def version(self) -> int | None:
        """The flag version acted on (None while serving ``default=`` before any flag read)."""
        expires, snap = self._cache
        if self._clock() < expires:
            return snap.version  # type: ignore[union-attr]
        return self._current().version

    def flag_state(self) -> FlagState:
        """The whole cached :class:`FlagState` (refreshed as :meth:`table` would)."""
        expires, snap = self._cache
        if self._clock() < expires:
            return snap  # type: ignore[return-value]
        return self._current()

    def stale_for(self) -> float:
        """Seconds since the last successful flag read when the last read failed; 0.0 when fresh.

        Never read successfully (serving ``default=``): seconds since the router was created."""
        if self._failing_since is None:
            return 0.0
        since = self._last_ok if self._last_ok is not None else self._created
        return max(0.0, self._clock() - since)

    def refresh(self) -> FlagState:
        """Read the flag now (one GetItem), whatever the TTL; what :meth:`table` would answer next."""
        with self._lock:
            return self._read_locked()

    def _current(self) -> FlagState:
        """The slow path: the cached value expired (or none yet)."""
        expires, snap = self._cache
        if snap is not None:
            if not self._lock.acquire(blocking=False):
                return snap  # another thread is reading the flag: serve what we have meanwhile
            try:
                expires, snap = self._cache
                if self._clock() < expires:  # it finished just before we took the lock
                    return snap  # type: ignore[return-value]
                return self._read_locked()
            finally:
                self._lock.release()
        with self._lock:  # nothing to serve yet: wait for the one first read
            expires, snap = self._cache
            if snap is not None:
                return snap
            if self._error is not None and self._clock() < self._retry_at:
                raise self._error  # the last try failed less than a TTL ago: no read per call
            return self._read_locked()

    def _read_locked(self) -> FlagState:
        started = self._clock()
        previous = self._cache[1]
        try:
            response = self.client.get_item(TableName=self.control_table, Key=self._flag_key, ConsistentRead=True)
            snap = self._parse(response.get("Item"))
        except Exception as exc:  # noqa: BLE001 - whatever happened, a service keeps running
            return self._read_failed(started, previous, exc)
        if self._failing_since is not None:
            log.info("keyshift router: flag %r in control table %r readable again after %.1f s: state %r"
                     " (version %s)", self.flag, self.control_table, started - self._failing_since,
                     snap.state, snap.version)
        self._failing_since = None
        self._last_error = ""
        self._error = None
        self._last_ok = started
        self._cache = (started + self.ttl_seconds, snap)
        self._report(snap)
        return snap

    def _read_failed(self, started: float, previous: FlagState | None, exc: BaseException) -> FlagState:
        text = str(exc) if isinstance(exc, _BadFlag) else _error_text(exc)
        first = self._failing_since is None
        if first:
            self._failing_since = started
        self._last_error = text
        where = f"flag {self.flag!r} in control table {self.control_table!r}"
        if previous is None and self.default is not None:
            previous = FlagState(self.default, None, self._table_for(self.default), default=True)
            if first:
                log.warning("keyshift router: cannot read %s (%s); serving default=%r until it can",
                            where, text, self.default)
        elif previous is None:
            self._error = RouterUnavailable(
                f"cannot read {where} ({text}) and no state is known yet: refusing to guess a table"
                " (pass default='old' or default='new' to serve one)")
            self._retry_at = started + self.ttl_seconds  # _cache stays (-inf, None): the fast path never serves it
            if first:
                log.warning("keyshift router: %s", self._error.message)
            raise self._error
        elif first:
            log.warning("keyshift router: cannot read %s (%s); keeping the last known state %r (version %s)"
                        " until it can", where, text, previous.state, previous.version)
        self._cache = (started + self.ttl_seconds, previous)
        return previous

    def _table_for(self, state: str) -> str:
        return self.new_table if state == "new" else self.old_table

    def _parse(self, item: Mapping[str, Any] | None) -> FlagState:
        where = f"flag {self.flag!r} in control table {self.control_table!r}"
        if not item:
            raise _BadFlag(f"no flag item pk='flag#{self.flag}', sk='state': run `keyshift flag init`")
        state = _s(item, "state")
        if state not in STATES:
            raise _BadFlag(f"{where} has state {state!r}, expected one of {', '.join(STATES)}")
        try:
            version = int(_n(item, "version") or "")
        except ValueError:
            raise _BadFlag(f"{where} has no numeric version") from None
        try:
            sample = float(_n(item, "shadow_sample") or 0.01)
        except ValueError:
            sample = 0.01
        sample = min(1.0, max(0.0, sample)) if sample == sample else 0.01
        if not self._warned_tables:
            recorded = (_s(item, "old_table"), _s(item, "new_table"))
            if any(r is not None for r in recorded) and recorded != (self.old_table, self.new_table):
                self._warned_tables = True
                log.warning("keyshift router: %s names tables %r -> %r, this router was given %r -> %r;"
                            " routing to the ones given", where, recorded[0], recorded[1], self.old_table,
                            self.new_table)
        return FlagState(state, version, self._table_for(state), sample, _s(item, "keymap_uri"),
                         _s(item, "keymap_version"), _s(item, "updated_at"))

    # -- reports -----------------------------------------------------------------------------------

    def _report(self, snap: FlagState) -> None:
        """Report the version acted on: when it changed, else once per :data:`HEARTBEAT_S`."""
        version = snap.version
        if version is None:
            return
        now_clock = self._clock()
        if self._acked is None or self._acked[0] != version:
            self._acked = (version, _iso(self._now()))
        reported = self._reported
        if reported is not None and reported[0] == version and now_clock - reported[1] < HEARTBEAT_S:
            return
        instance = self.instance
        item = {
            "pk": self._pk,
            "sk": {"S": f"router#{self.service}#{instance}"},
            "service": {"S": self.service},
            "instance": {"S": instance},
            "version": {"N": str(version)},
            "state": {"S": snap.state},
            "last_seen": {"S": _iso(self._now())},
            "acked_at": {"S": self._acked[1]},
            "host": {"S": socket.gethostname()},
            "pid": {"N": str(os.getpid())},
        }
        try:
            self.client.put_item(TableName=self.control_table, Item=item)
        except Exception as exc:  # noqa: BLE001 - reporting never fails the caller
            if not self._report_failing:
                log.warning("keyshift router: cannot write the report of %s/%s to control table %r (%s);"
                            " routing goes on, retrying at the next flag read", self.service, instance,
                            self.control_table, _error_text(exc))
            self._report_failing = True
            return
        self._report_failing = False
        self._reported = (version, now_clock)

    # -- the keymap --------------------------------------------------------------------------------

    def keymap(self) -> Keymap:
        """The keymap in force: ``keymap=`` if given, else the one the flag item names (cached)."""
        if self._given_keymap is not None:
            return self._given_keymap
        snap = self.flag_state()
        ident = (snap.keymap_uri, snap.keymap_version)
        cached = self._keymap_cache
        if cached is not None and (cached[0] == ident or snap.keymap_uri is None):
            return cached[1]
        with self._keymap_lock:
            cached = self._keymap_cache
            if cached is not None and cached[0] == ident:
                return cached[1]
            if snap.keymap_uri is None:
                raise RouterError(f"no keymap: flag {self.flag!r} in control table {self.control_table!r}"
                                  " names no keymap_uri and the service gave no keymap=")
            try:
                keymap = self._load_keymap(snap.keymap_uri)
            except RouterError as exc:
                if cached is None:
                    raise
                log.warning("keyshift router: %s; keeping keymap %s", exc.message, cached[1].version)
                self._keymap_cache = (ident, cached[1])
                return cached[1]
            self._keymap_cache = (ident, keymap)
            log.info("keyshift router: loaded keymap %s from %s", keymap.version, snap.keymap_uri)
            return keymap

    def _load_keymap(self, uri: str) -> Keymap:
        location = split_s3_uri(uri)
        if location is None:
            raise RouterError(f"flag {self.flag!r}: keymap_uri {uri!r} is not s3://bucket/key")
        bucket, key = location
        try:
            if self._s3 is None:
                self._s3 = self._default_client("s3")
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return keymap_from_document(json.loads(body))
        except KeymapFormatError as exc:
            raise RouterError(f"keymap {uri}: {exc.message}") from None
        except RouterError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise RouterError(f"cannot load the keymap {uri} named by flag {self.flag!r} ({_error_text(exc)})") from None

    def key(self, raw_identifier: str) -> str:
        """The new id of an old raw identifier, through the keymap; :class:`UnmappedIdentifier`
        (a KeyError) when the keymap maps it to nothing (unknown, or dropped)."""
        keymap = self.keymap()
        entry = keymap.lookup(raw_identifier)
        if entry is None or entry.new_id is None:
            if entry is None:
                why = keymap.unresolved.get(raw_identifier) or "not in the keymap"
            else:
                why = f"dropped by {entry.source}" + (f": {entry.reason}" if entry.reason else "")
            raise UnmappedIdentifier(f"identifier {raw_identifier!r} has no new key in keymap {keymap.version}"
                                     f" ({why})")
        return entry.new_id

    def _names(self, keymap: Keymap) -> KeyNames:
        try:
            return KeyNames.from_migration(keymap.migration)
        except ValueError as exc:
            raise RouterError(f"keymap {keymap.version}: {exc}") from None

    def new_key(self, key: Mapping[str, Any]) -> dict[str, Any]:
        """The new table's key for an old table key (its raw partition key through :meth:`key`,
        the sort key as it is). A key already in the new form (it has the new key attribute and
        not the old one) is returned as it is."""
        keymap = self.keymap()
        names = self._names(keymap)
        if names.source_pk not in key and names.target_pk in key:
            return dict(key)
        raw = _s(key, names.source_pk)
        if raw is None:
            raise RouterError(f"key {dict(key)!r} has no string attribute {names.source_pk!r} (the old partition key)")
        new = {names.target_pk: {"S": self.key(raw)}}
        if names.source_sk is not None:
            if names.source_sk not in key:
                raise RouterError(f"key {dict(key)!r} has no sort key attribute {names.source_sk!r}")
            new[names.source_sk] = key[names.source_sk]
        return new

    # -- reads -------------------------------------------------------------------------------------

    def get_item(self, key: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """``GetItem`` on the table in force; the response of the source-of-truth read.

        ``Key`` (or ``key``) is the old table's key; ``TableName`` is ignored; other arguments go
        to both reads. ``old``: the old table. ``new``: the new table at the mapped key
        (:meth:`new_key`). ``shadow``: the old table, and for a sampled fraction also the new one,
        compared with ``transform(old item)`` and counted (never failing the caller)."""
        if key is None:
            key = kwargs.pop("Key", None)
        else:
            kwargs.pop("Key", None)
        if not isinstance(key, Mapping):
            raise RouterError(f"get_item needs Key= (the old table's key), got {key!r}")
        kwargs.pop("TableName", None)
        snap = self.flag_state()
        if snap.state == "new":
            return self.client.get_item(TableName=self.new_table, Key=self.new_key(key), **kwargs)
        response = self.client.get_item(TableName=self.old_table, Key=dict(key), **kwargs)
        if snap.state == "shadow" and snap.version is not None and self._sample() < snap.shadow_sample:
            projected = "ProjectionExpression" in kwargs or "AttributesToGet" in kwargs
            if not projected:  # a projection cannot be compared with transform(old item)
                self._shadow(snap.version, key, response.get("Item"), kwargs)
        return response

    def _shadow(self, version: int, key: Mapping[str, Any], old_item: dict | None, kwargs: dict) -> None:
        try:
            outcome = self._shadow_compare(key, old_item, kwargs)
        except Exception as exc:  # noqa: BLE001 - a failed shadow read is counted, never raised
            outcome = ("error", {"key": dict(key), "why": _error_text(exc)})
        if outcome is not None:
            self._count(version, *outcome)
        self.maybe_flush()

    def _shadow_compare(self, key: Mapping[str, Any], old_item: dict | None, kwargs: dict) -> tuple[str, Any] | None:
        """("ok"|"mismatch"|"error", example) or None when the pair is not comparable."""
        keymap = self.keymap()
        names = self._names(keymap)
        if old_item is not None:
            outcome = transform(old_item, keymap, names)
            if type(outcome) is Skip and outcome.kind != "unresolved":
                # dropped: no new key to look at; a conflict loser, a bad key: the new table holds
                # another item (or none) there by design. Not comparable, not counted.
                return None
            if type(outcome) is Skip and outcome.kind == "unresolved":
                return "mismatch", {"key": dict(key), "why": outcome.reason}
            expected = outcome.item if type(outcome) is Put else None
        else:
            expected = None
        try:
            new_key = self.new_key(key)
        except UnmappedIdentifier as exc:
            if old_item is None:
                return None  # nothing in either table and nothing to map: nothing to compare
            return "mismatch", {"key": dict(key), "why": exc.message}
        if old_item is None:
            raw = _s(key, names.source_pk)
            if raw is not None and len(keymap.raws_for(new_key[names.target_pk]["S"])) > 1:
                return None  # another spelling's item may rightly live at the merged key
        response = self.client.get_item(TableName=self.new_table, Key=new_key, **kwargs)
        same, why = same_item(expected, response.get("Item"))
        if same:
            return "ok", None
        return "mismatch", {"key": dict(key), "new_key": new_key, "why": why}

    def _count(self, version: int, outcome: str, example: Any) -> None:
        with self._counts_lock:
            counts = self._counts.setdefault(version, [0, 0, 0, None])
            counts[0] += 1
            if outcome == "mismatch":
                counts[1] += 1
                counts[3] = example
            elif outcome == "error":
                counts[2] += 1
            self._pending += 1
            if self._oldest is None:
                self._oldest = self._clock()

    def maybe_flush(self) -> None:
        """Flush the shadow counts when :data:`FLUSH_EVERY_READS` are pending or the oldest is
        :data:`FLUSH_EVERY_S` old (from the calling thread; one flusher at a time)."""
        oldest = self._oldest
        if oldest is None:
            return
        now = self._clock()
        if (self._pending >= FLUSH_EVERY_READS or now - oldest >= FLUSH_EVERY_S) and now >= self._flush_not_before:
            if self._flush_lock.acquire(blocking=False):
                try:
                    self._flush_locked()
                finally:
                    self._flush_lock.release()

    def flush(self) -> None:
        """Write every pending shadow count now (a Lambda may call it at the end of an invocation)."""
        with self._flush_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        with self._counts_lock:
            batch, self._counts = self._counts, {}
            self._pending, self._oldest = 0, None
        for version, (reads, mismatches, errors, example) in sorted(batch.items()):
            update = "ADD #r :r, #m :m, #e :e"
            names = {"#r": "reads", "#m": "mismatches", "#e": "errors"}
            values: dict[str, Any] = {":r": {"N": str(reads)}, ":m": {"N": str(mismatches)}, ":e": {"N": str(errors)}}
            if example is not None:
                update += " SET #x = :x"
                names["#x"] = "last_mismatch"
                values[":x"] = {"S": json.dumps(example, ensure_ascii=False, sort_keys=True, default=str)}
            try:
                self.client.update_item(TableName=self.control_table,
                                        Key={"pk": self._pk, "sk": {"S": f"shadow#{version}"}},
                                        UpdateExpression=update, ExpressionAttributeNames=names,
                                        ExpressionAttributeValues=values)
            except Exception as exc:  # noqa: BLE001
                if self._definitely_not_applied(exc):
                    self._restore_counts(version, reads, mismatches, errors, example)
                if not self._flush_failing:
                    log.warning("keyshift router: cannot add the shadow counts of flag %r version %s to control"
                                " table %r (%s); kept for the next flush", self.flag, version,
                                self.control_table, _error_text(exc))
                self._flush_failing = True
                self._flush_not_before = self._clock() + FLUSH_EVERY_S
                continue
            self._flush_failing = False

    @staticmethod
    def _definitely_not_applied(exc: BaseException) -> bool:
        """A refusal or a connection never made: safe to count again. A read timeout may have been
        applied: dropped, so a count is never added twice."""
        from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

        return isinstance(exc, (ClientError, EndpointConnectionError, ConnectTimeoutError))

    def _restore_counts(self, version: int, reads: int, mismatches: int, errors: int, example: Any) -> None:
        with self._counts_lock:
            counts = self._counts.setdefault(version, [0, 0, 0, None])
            counts[0] += reads
            counts[1] += mismatches
            counts[2] += errors
            if counts[3] is None:
                counts[3] = example
            self._pending += reads
            if self._oldest is None:
                self._oldest = self._clock()

    def __repr__(self) -> str:
        snap = self._cache[1]
        state = "unknown" if snap is None else f"{snap.state} v{snap.version}"
        return (f"MigrationRouter(flag={self.flag!r}, control_table={self.control_table!r}, service={self.service!r},"
                f" {state})")
