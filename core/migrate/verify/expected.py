"""What a full verify expects of the new table: one digest per expected item, on disk.

A full verify scans both tables once each and joins them here, instead of fetching every item
of one table from the other (``BatchGetItem``), which reads every item twice. The source pass
stores, for each old item that transforms to a ``Put``, the hash of its new key, its old key and
the digest of the expected new item; the target pass looks each new item up by key and compares
digests, marking what it saw; whatever stays unseen is expected but missing. Only suspects (a
digest that differs, a key nobody expects, an expected key never seen) are read again, with
consistent reads, before anything is reported.

The store is one SQLite file per verify run beside the workspace database
(``verify-<run id>.expected.sqlite``), written by the scan threads (one connection each, WAL).
Every write is idempotent (an expected row is keyed by new key and old key; ``seen`` is only ever
set), so a page replayed after a kill, between the store's commit and the workspace checkpoint,
changes nothing. The file is removed when the run completes.

Digests compare what :func:`~keyshift.core.migrate.verify.run.same_value` compares: values as
stored, sets in any order (members sorted before hashing), map keys in any order.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

import orjson

__all__ = ["ExpectedStore", "item_digest", "key_hash", "store_path"]

#: Keys per ``IN (...)`` lookup (SQLite's default variable limit is far above this).
_LOOKUP_CHUNK = 500
_SORT_KEYS = orjson.OPT_SORT_KEYS


def _bytes_b64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(type(value).__name__)


def _canon(value: Any) -> Any:
    """A wire value with every set's members sorted (maps and lists walked), else itself."""
    if type(value) is not dict or len(value) != 1:
        return value
    if "M" in value:
        return {"M": {k: _canon(v) for k, v in value["M"].items()}}
    if "L" in value:
        return {"L": [_canon(v) for v in value["L"]]}
    for kind in ("SS", "NS", "BS"):
        if kind in value:
            members = value[kind]
            try:
                return {kind: sorted(members)}
            except TypeError:
                return value  # mixed member types: not a valid set; compared as stored
    return value


def item_digest(item: dict[str, Any]) -> bytes:
    """16 bytes that two items share exactly when ``diff_attributes`` finds no difference
    between them (up to a BLAKE2b collision): sets unordered, everything else as stored."""
    canon = {name: _canon(value) for name, value in item.items()}
    return hashlib.blake2b(orjson.dumps(canon, option=_SORT_KEYS, default=_bytes_b64), digest_size=16).digest()


def key_hash(key_json: str) -> bytes:
    """16 bytes for a key's canonical text (``_key_json``)."""
    return hashlib.blake2b(key_json.encode(), digest_size=16).digest()


def store_path(workspace_dir: Path, run_id: int) -> Path:
    return Path(workspace_dir) / f"verify-{run_id}.expected.sqlite"


class ExpectedStore:
    """The expected items of one run (see the module docstring); safe to use from many threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._prepared = False

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # Connections are opened one at a time: switching a new file to WAL needs it to itself
            # (SQLite answers "database is locked" at once, without waiting, when segment threads
            # race to do it), and it is done once: WAL is a property of the file from then on.
            with self._lock:
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=60000")
                if not self._prepared:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("CREATE TABLE IF NOT EXISTS expected (tkey BLOB NOT NULL, skey TEXT NOT NULL,"
                                 " digest BLOB NOT NULL, seen INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tkey, skey))")
                    self._prepared = True
                conn.execute("PRAGMA synchronous=NORMAL")
                self._local.conn = conn
                self._conns.append(conn)
        return conn

    def add(self, rows: Iterable[tuple[bytes, str, bytes]]) -> None:
        """Expected items as ``(key hash, old key JSON, digest)`` (replaying a page is harmless)."""
        rows = list(rows)
        if not rows:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT INTO expected(tkey, skey, digest) VALUES (?, ?, ?)"
                             " ON CONFLICT(tkey, skey) DO UPDATE SET digest = excluded.digest", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def lookup(self, hashes: list[bytes]) -> dict[bytes, list[tuple[str, bytes]]]:
        """Key hash -> ``[(old key JSON, digest), ...]`` for the hashes some old item produces."""
        conn = self._conn()
        found: dict[bytes, list[tuple[str, bytes]]] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start:start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for tkey, skey, digest in conn.execute(
                    f"SELECT tkey, skey, digest FROM expected WHERE tkey IN ({marks})", chunk):
                found.setdefault(tkey, []).append((skey, digest))
        return found

    def mark_seen(self, hashes: Iterable[bytes]) -> None:
        """The new table holds an item at these keys (whatever its content)."""
        rows = [(h,) for h in dict.fromkeys(hashes)]
        if not rows:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("UPDATE expected SET seen = 1 WHERE tkey = ? AND seen = 0", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def unseen(self, part: int, parts: int, after: int, limit: int) -> list[tuple[int, str]]:
        """``(rowid, old key JSON)`` of expected items never seen in the new table: those of
        ``part`` (rowid modulo ``parts``) after rowid ``after``, in rowid order, at most ``limit``."""
        return list(self._conn().execute(
            "SELECT rowid, skey FROM expected WHERE rowid > ? AND seen = 0 AND rowid % ? = ?"
            " ORDER BY rowid LIMIT ?", (after, parts, part, limit)))

    def close_thread(self) -> None:
        """Close this thread's connection (scan threads call it when they end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
            conn.close()

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing is best effort
                pass
        self._local = threading.local()

    def remove(self) -> None:
        """Close and delete the file (the run is complete)."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
