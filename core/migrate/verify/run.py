"""Verify: an item-level diff of the new table against transform(old table), through the keymap.

Two passes, each a parallel scan (``Segment``/``TotalSegments``) of one table, reading both tables
and nothing of restore's bookkeeping. A full run joins the two scans (:mod:`.expected`), so every
item of either table is read once:

1. **source**: every old item goes through :func:`~keyshift.core.kernel.transform.transform`; a ``Put``
   is an expected new item: its key, old key and digest go to the run's expected store.
2. **target**: every new item is looked up there by key. No old item expects it: *extra* (items
   whose identifier is dropped or unresolved in the keymap are thus expected to be absent). An
   expected digest differs: *different* (with the attribute names that differ). The store marks
   what was seen; then the expected items never seen are *missing*.

A sampled run (``sample=N``) checks only N old items, fetching each one's new item from the new
table (``BatchGetItem``, consistent), with no extra-item pass; runs started before the join (no
``join`` in their parameters) resume that way too: the target pass then recovers each new item's
old key (the legacy attribute and/or the keymap's reverse index) and fetches it.

Nothing is reported before a second look: a suspect is re-read with consistent ``GetItem`` on both
tables (a write may have landed between the scans) and recomputed. Items stay in wire format;
sets compare as sets, everything else as stored (numbers are their strings).

A run is recorded in ``runs`` (kind ``verify``), each scan segment's ``LastEvaluatedKey`` and
counters in ``checkpoints`` (committed together with the page's offenders), so ``resume=True``
continues an interrupted run with the same totals. The first :data:`MAX_OFFENDERS` keys of each
kind go to ``offenders``; the ``verify --json`` document is kept in ``runs.summary``
(:func:`latest_verify`).
"""

from __future__ import annotations

import base64
import json
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from ..batch_write import backoff_delay
from ...kernel.merged import is_shared, precedence, settle_shared_key
from .expected import ExpectedStore, item_digest, key_hash, store_path
from ...errors import KeyshiftError
from ...progress import run_to_completion
from ..tables import TableError, describe
from ...kernel.keymap import Keymap
from ...kernel.items import MAX_PARTITION_KEY_BYTES, utf8_len
from ...kernel.transform import KeyNames, Put, transform
from ...store import runs
from ...store.workspace import Workspace, utcnow

__all__ = [
    "MAX_OFFENDERS",
    "VerifyCancelled",
    "VerifyError",
    "VerifyProgress",
    "VerifyResult",
    "diff_attributes",
    "latest_verify",
    "run_verify",
    "same_value",
    "verify_to_completion",
]

#: Offender keys kept per kind (missing, extra, different).
MAX_OFFENDERS = 20
#: Keys per BatchGetItem request (DynamoDB's limit).
BATCH_GET = 100
#: Items per Scan page (a page is one checkpoint). None: no ``Limit``, DynamoDB's own pages of
#: up to 1 MB (the raw scan's pages; with moto each Scan call costs a pass over the whole table).
PAGE_SIZE: int | None = None
#: Items per Scan page of a sampled run without a page size (the sample budget is split in these).
SAMPLE_PAGE = 1000
#: Expected items second-looked per checkpoint in the sweep for missing items.
SWEEP_CHUNK = 500
#: How long UnprocessedKeys are retried before giving up.
RETRY_DEADLINE = 300.0

_SETS = ("SS", "NS", "BS")


class VerifyError(KeyshiftError):
    """Verification cannot run (no such table, wrong key schema, nothing to resume, AWS failure)."""

    title = "Verify failed"


class VerifyCancelled(Exception):
    """The run was cancelled; the workspace holds it in state ``cancelled`` (``resume=True`` continues)."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"verify run {run_id} cancelled")
        self.run_id = run_id


@dataclass
class VerifyProgress:
    """Where a running verify is. ``phase`` is ``source`` or ``target``; ``done`` counts items
    scanned in that phase (resumed runs included); ``total`` is DescribeTable's approximate
    ItemCount (or the sample size)."""

    phase: str
    done: int = 0
    total: int | None = None
    elapsed: float = 0.0
    segments: dict[int, int] = field(default_factory=dict)
    missing: int = 0
    extra: int = 0
    different: int = 0
    _scanned_now: int = 0

    @property
    def rate(self) -> float:
        """Items per second in this invocation."""
        return self._scanned_now / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def eta(self) -> float | None:
        """Seconds left in this phase (approximate: ItemCount is)."""
        if not self.total or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


@dataclass
class VerifyResult:
    """The finished run: its id and the ``verify --json`` document (``run_id`` None: not recorded,
    ``record=False``)."""

    run_id: int | None
    summary: dict[str, Any]

    @property
    def equal(self) -> bool:
        return bool(self.summary["equal"])


# -- wire-format helpers -----------------------------------------------------------------------
def same_value(a: Any, b: Any) -> bool:
    """Whether two wire-format values are equal: as stored, except that sets are unordered."""
    if a == b:
        return True
    if type(a) is not dict or type(b) is not dict or len(a) != 1 or len(b) != 1:
        return False
    (ta, va), (tb, vb) = next(iter(a.items())), next(iter(b.items()))
    if ta != tb:
        return False
    if ta in _SETS:
        return len(va) == len(vb) and set(va) == set(vb)
    if ta == "M":
        return va.keys() == vb.keys() and all(same_value(va[k], vb[k]) for k in va)
    if ta == "L":
        return len(va) == len(vb) and all(same_value(x, y) for x, y in zip(va, vb))
    return False


def diff_attributes(expected: dict, actual: dict) -> list[str]:
    """Sorted names of the top-level attributes that differ (present in one only, or unequal)."""
    if expected == actual:
        return []
    return sorted(k for k in expected.keys() | actual.keys()
                  if k not in expected or k not in actual or not same_value(expected[k], actual[k]))


def _b64(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def _key_json(key: dict) -> str:
    """Canonical text of a wire key (binary in base64): equal keys give equal text."""
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS, default=_b64).decode()


def _load_key(key: dict | None) -> dict | None:
    """A wire key from its JSON form (:func:`_public_key`), ``B`` values back to bytes."""
    if not key:
        return None
    return {k: ({"B": base64.b64decode(v["B"])} if "B" in v else v) for k, v in key.items()}


def _public_key(key: dict) -> Any:
    """A key for JSON output (binary as base64)."""
    return json.loads(_key_json(key))


# -- the diff ----------------------------------------------------------------------------------
@dataclass
class _Tables:
    """Both tables, their key names, the keymap: what one page check needs."""

    ddb: Any
    source: str
    target: str
    names: KeyNames
    keymap: Keymap
    settle: _Settle | None = None  # the source is live: wait for stream sync before reporting

    def source_key(self, item: dict) -> dict:
        key = {self.names.source_pk: item[self.names.source_pk]}
        if self.names.source_sk:
            key[self.names.source_sk] = item[self.names.source_sk]
        return key

    def target_key(self, item: dict) -> dict:
        key = {self.names.target_pk: item[self.names.target_pk]}
        if self.names.source_sk:
            key[self.names.source_sk] = item[self.names.source_sk]
        return key

    def get(self, table: str, key: dict) -> dict | None:
        return self.ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def batch_get(self, table: str, keys: list[dict], key_of: Callable[[dict], dict]) -> dict[str, dict]:
        """Consistent BatchGetItem of ``keys`` (deduplicated); key text -> item for those found."""
        unique = list({_key_json(k): k for k in keys}.values())
        found: dict[str, dict] = {}
        for start in range(0, len(unique), BATCH_GET):
            request = {table: {"Keys": unique[start:start + BATCH_GET], "ConsistentRead": True}}
            deadline = time.monotonic() + RETRY_DEADLINE
            attempt = 0
            while request:
                resp = self.ddb.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(table, []):
                    found[_key_json(key_of(item))] = item
                request = resp.get("UnprocessedKeys") or {}
                if request:
                    if time.monotonic() > deadline:
                        raise VerifyError(f"BatchGetItem on {table!r} kept returning UnprocessedKeys for"
                                          f" {RETRY_DEADLINE:.0f} s; try again later or with fewer --segments")
                    attempt += 1
                    time.sleep(backoff_delay(attempt))
        return found

    def expected_from(self, source_item: dict | None) -> Put | None:
        """The transform of an old item when it is a Put, else None."""
        if source_item is None:
            return None
        out = transform(source_item, self.keymap, self.names)
        return out if type(out) is Put else None

    def candidates(self, target_item: dict) -> list[dict]:
        """Old keys that could produce ``target_item``: the legacy attribute's raw identifier and
        every raw the keymap maps to its new id."""
        names = self.names
        raws: list[str] = []
        if names.legacy is not None:
            value = target_item.get(names.legacy)
            if type(value) is dict and type(value.get("S")) is str:
                raws.append(value["S"])
        value = target_item.get(names.target_pk)
        if type(value) is dict and type(value.get("S")) is str:
            raws.extend(r for r in self.keymap.raws_for(value["S"]) if r not in raws)
        keys = []
        for raw in raws:
            if not raw or utf8_len(raw) > MAX_PARTITION_KEY_BYTES:
                continue  # no old item can have this key (transform skips it): asking would be refused
            key = {names.source_pk: {"S": raw}}
            if names.source_sk:
                if names.source_sk not in target_item:
                    return []
                key[names.source_sk] = target_item[names.source_sk]
            keys.append(key)
        return keys


@dataclass
class _PageResult:
    scanned: int = 0
    compared: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    offenders: list[tuple[str, dict, dict]] = field(default_factory=list)  # (kind, key, detail)
    cleared_by_sync: int = 0  # suspects that stream sync's catching up made equal
    unsettled: int = 0  # offenders reported although stream sync never caught up past them


class _Settle:
    """Waits, while the source is live, until stream sync has caught up past a moment.

    A mismatch seen while the source takes writes may only be a write the replay has not applied
    yet. Stream sync records ``caught_up_at`` (the start of its last pass that reached the tip of
    every shard: every source write before it is applied); a suspect seen at ``t`` is re-checked
    once ``caught_up_at >= t + margin`` (``margin`` covers the delay before a write's record
    appears in the stream), and only then reported. When the sync does not get there within
    ``timeout`` (or stops running), the offender is reported as *unsettled*.
    """

    def __init__(self, ws: Workspace, *, timeout: float, margin: float, poll: float = 0.25) -> None:
        self.ws, self.timeout, self.margin, self.poll = ws, timeout, margin, poll

    def wait_past(self, moment: float) -> bool:
        """Block until stream sync has caught up past ``moment`` (True) or cannot (False)."""
        from ..stream.sync import sync_watermark

        deadline = time.monotonic() + self.timeout
        while True:
            mark = sync_watermark(self.ws)
            if mark is not None and (mark["caught_up_at"] or 0) >= moment + self.margin:
                return True
            if mark is None or not mark["live"] or time.monotonic() >= deadline:
                return False
            time.sleep(self.poll)


def check_source_page(t: _Tables, items: list[dict]) -> _PageResult:
    """Pass 1 on one page of old items: missing and different."""
    res = _PageResult(scanned=len(items))
    expected: list[tuple[dict, dict]] = []  # (source key, expected new item)
    for item in items:
        out = transform(item, t.keymap, t.names)
        if type(out) is Put:
            expected.append((t.source_key(item), out.item))
        else:
            res.skipped[out.kind or "other"] = res.skipped.get(out.kind or "other", 0) + 1
    res.compared = len(expected)
    found = t.batch_get(t.target, [t.target_key(e) for _, e in expected], t.target_key)
    suspects = []
    for source_key, want in expected:
        have = found.get(_key_json(t.target_key(want)))
        if have is not None and not diff_attributes(want, have):
            continue
        # Second look, consistent on both tables: the old item may have changed or gone since.
        offender = _look_again_source(t, source_key)
        if offender is not None:
            suspects.append((source_key, offender))
    _settle(t, res, suspects, lambda source_key: _look_again_source(t, source_key))
    return res


def _look_again_source(t: _Tables, source_key: dict) -> tuple[str, dict, dict] | None:
    """Consistent reads of the old item and its new item: the offence, or None when they agree."""
    put = t.expected_from(t.get(t.source, source_key))
    if put is None:
        return None  # no longer expected; if the new item is still there, pass 2 calls it extra
    key = t.target_key(put.item)
    if is_shared(t.keymap, key[t.names.target_pk]["S"]):
        # Several spellings share this key: the one with precedence stands there (kernel/merged).
        settled = settle_shared_key(lambda k: t.get(t.source, k), t.keymap, t.names, key)
        if type(settled) is not Put:
            return None  # every spelling's item went away meanwhile
        put = settled
    have = t.get(t.target, key)
    if have is None:
        return ("missing", key, {"source_key": _public_key(source_key)})
    attrs = diff_attributes(put.item, have)
    if attrs:
        return ("different", key, {"attributes": attrs, "source_key": _public_key(source_key)})
    return None


def _settle(t: _Tables, res: _PageResult, suspects: list[tuple[Any, tuple[str, dict, dict]]],
            look_again: Callable[[Any], tuple[str, dict, dict] | None]) -> None:
    """Report ``suspects`` (already seen twice): at once, or, while the source is live, after
    stream sync has caught up past them and a third look still finds them."""
    if not suspects:
        return
    if t.settle is None:
        res.offenders.extend(offender for _, offender in suspects)
        return
    caught_up = t.settle.wait_past(time.time())
    for handle, _ in suspects:
        offender = look_again(handle)
        if offender is None:
            res.cleared_by_sync += 1
            continue
        if not caught_up:
            res.unsettled += 1
            offender[2]["unsettled"] = True
        res.offenders.append(offender)


def _produces(t: _Tables, source_item: dict | None, key: dict) -> bool:
    put = t.expected_from(source_item)
    return put is not None and _key_json(t.target_key(put.item)) == _key_json(key)


def check_target_page(t: _Tables, items: list[dict]) -> _PageResult:
    """Pass 2 on one page of new items: extra (no old item transforms to this key)."""
    res = _PageResult(scanned=len(items))
    wanted = [(item, t.candidates(item)) for item in items]
    found = t.batch_get(t.source, [k for _, keys in wanted for k in keys], t.source_key)
    suspects = []
    for item, keys in wanted:
        key = t.target_key(item)
        if any(_produces(t, found.get(_key_json(k)), key) for k in keys):
            continue
        offender = _look_again_target(t, key)
        if offender is not None:
            suspects.append((key, offender))
    _settle(t, res, suspects, lambda key: _look_again_target(t, key))
    return res


def _look_again_target(t: _Tables, key: dict) -> tuple[str, dict, dict] | None:
    """Is the new item still there, and does no old item (now) produce it? The offence, or None."""
    have = t.get(t.target, key)
    if have is None:
        return None
    if any(_produces(t, t.get(t.source, k), key) for k in t.candidates(have)):
        return None
    return ("extra", key, {})


# -- the join (full runs) ----------------------------------------------------------------------
def index_source_page(t: _Tables, store: ExpectedStore, items: list[dict]) -> _PageResult:
    """Pass 1 of a full run on one page of old items: what the new table must hold, stored."""
    res = _PageResult(scanned=len(items))
    rows = []
    keymap, names = t.keymap, t.names
    for item in items:
        out = transform(item, keymap, names)
        if type(out) is Put:
            want = out.item
            rows.append((key_hash(_key_json(t.target_key(want))), _key_json(t.source_key(item)),
                         item_digest(want)))
        else:
            res.skipped[out.kind or "other"] = res.skipped.get(out.kind or "other", 0) + 1
    res.compared = len(rows)
    store.add(rows)
    return res


def join_target_page(t: _Tables, store: ExpectedStore, items: list[dict]) -> _PageResult:
    """Pass 2 of a full run on one page of new items: extra and different; marks what it saw."""
    res = _PageResult(scanned=len(items))
    keys = [t.target_key(item) for item in items]
    hashes = [key_hash(_key_json(key)) for key in keys]
    found = store.lookup(hashes)
    suspects: list[tuple[Any, tuple[str, dict, dict]]] = []
    for item, key, h in zip(items, keys, hashes):
        rows = found.get(h)
        if not rows:
            offender = _look_again_target(t, key)
            if offender is not None:
                suspects.append((("target", key), offender))
            continue
        digest = item_digest(item)
        if len(rows) > 1:
            # Old items of several spellings expect this key: only the one with precedence counts.
            rows = [_first_in_precedence(t, key, rows)]
        for skey, want in rows:
            if want == digest:
                continue
            source_key = _load_key(orjson.loads(skey))
            offender = _look_again_pair(t, source_key, key)
            if offender is not None:
                suspects.append((("pair", source_key, key), offender))
    store.mark_seen(h for h in hashes if h in found)
    _settle(t, res, suspects, lambda handle: _look_again_handle(t, handle))
    return res


def _first_in_precedence(t: _Tables, key: dict, rows: list[tuple[str, str]]) -> tuple[str, str]:
    """Of the expected rows (old key JSON, digest) at one shared new key, the one whose raw
    identifier comes first in :func:`~keyshift.core.kernel.merged.precedence`."""
    sort_key = key.get(t.names.source_sk) if t.names.source_sk else None
    order = {raw: i for i, raw in enumerate(precedence(t.keymap, key[t.names.target_pk]["S"], sort_key))}

    def rank(row: tuple[str, str]) -> tuple[int, str]:
        raw = orjson.loads(row[0]).get(t.names.source_pk, {}).get("S")
        return (order.get(raw, len(order)), row[0])

    return min(rows, key=rank)


def sweep_missing(t: _Tables, store: ExpectedStore, rows: list[tuple[int, str]]) -> _PageResult:
    """After pass 2: expected items the new table never showed, looked at again (consistent)."""
    res = _PageResult()
    suspects: list[tuple[Any, tuple[str, dict, dict]]] = []
    for _, skey in rows:
        source_key = _load_key(orjson.loads(skey))
        offender = _look_again_source(t, source_key)
        if offender is not None:
            suspects.append((("source", source_key), offender))
    _settle(t, res, suspects, lambda handle: _look_again_handle(t, handle))
    return res


def _look_again_pair(t: _Tables, source_key: dict, key: dict) -> tuple[str, dict, dict] | None:
    """An old item and the new item at its key disagreed: read both again. When the old item
    is no longer expected, the new item may be left over: then it is checked as a target."""
    return _look_again_source(t, source_key) or _look_again_target(t, key)


def _look_again_handle(t: _Tables, handle: tuple) -> tuple[str, dict, dict] | None:
    if handle[0] == "target":
        return _look_again_target(t, handle[1])
    if handle[0] == "pair":
        return _look_again_pair(t, handle[1], handle[2])
    return _look_again_source(t, handle[1])


# -- runs, checkpoints, offenders --------------------------------------------------------------
def _units(segments: int, sample: int | None) -> list[str]:
    units = [f"source/{i}" for i in range(segments)]
    if sample is None:
        units += [f"target/{i}" for i in range(segments)] + [f"missing/{i}" for i in range(segments)]
    return units


def _open_run(ws: Workspace, *, keymap: Keymap, operator: str, segments: int, sample: int | None,
              page_size: int | None, resume: bool, tables: dict[str, str]) -> tuple[int, dict[str, Any]]:
    if resume:
        run, problem = runs.resumable(ws, "verify", keymap.version)
        if problem is not None or run is None:
            raise VerifyError(problem or "nothing to resume")
        with ws.transaction() as conn:
            runs.reopen(conn, run.id)
            ws.audit(operator, "verify.resume", {"run_id": run.id})
        return run.id, dict(run.params)
    params = {"segments": segments, "sample": sample, "page_size": page_size, "join": sample is None, **tables}
    with ws.transaction() as conn:
        run_id = runs.start(conn, "verify", operator=operator, keymap=keymap.version, params=params,
                            units=_units(segments, sample))
        ws.audit(operator, "verify.start", {"run_id": run_id, "keymap": keymap.version, **params})
    return run_id, params


def _empty_counters() -> dict[str, Any]:
    return {"scanned": 0, "compared": 0, "missing": 0, "extra": 0, "different": 0, "skipped": {},
            "cleared_by_sync": 0, "unsettled": 0}


def _save_page(ws: Workspace, run_id: int, unit: str, last_key: dict | None, counters: dict[str, Any],
               page: _PageResult) -> None:
    """Commit one scan page: the unit's position and counters with the page's first offenders."""
    _save_unit(ws, run_id, unit, _public_key(last_key) if last_key else None, last_key is None, counters, page)


def _save_unit(ws: Workspace, run_id: int, unit: str, position: Any, done: bool, counters: dict[str, Any],
               page: _PageResult) -> None:
    """Commit a unit's position, done flag and counters with the page's first offenders."""
    with ws.transaction() as conn:
        for kind, key, detail in page.offenders:
            n = conn.execute("SELECT count(*) FROM offenders WHERE run_id = ? AND kind = ?",
                             (run_id, kind)).fetchone()[0]
            if n < MAX_OFFENDERS:
                conn.execute("INSERT INTO offenders(run_id, kind, key, detail) VALUES (?, ?, ?, ?)",
                             (run_id, kind, _key_json(key), json.dumps(detail, ensure_ascii=True)))
        runs.checkpoint(conn, run_id, unit, position=position, done=done, counters=counters)


def _merge(counters: dict[str, Any], page: _PageResult) -> None:
    counters["scanned"] += page.scanned
    counters["compared"] += page.compared
    counters["cleared_by_sync"] += page.cleared_by_sync
    counters["unsettled"] += page.unsettled
    for kind, _, _ in page.offenders:
        counters[kind] += 1
    for kind, n in page.skipped.items():
        counters["skipped"][kind] = counters["skipped"].get(kind, 0) + n


def _checkpoints(ws: Workspace, run_id: int) -> dict[str, dict[str, Any]]:
    run = runs.get(ws, run_id)
    units = run.units if run is not None else {}
    return {name: {"position": u.position, "done": u.done, "counters": {**_empty_counters(), **u.counters}}
            for name, u in units.items()}


def _set_state(ws: Workspace, run_id: int, state: str) -> None:
    with ws.transaction() as conn:
        runs.set_state(conn, run_id, state)


# -- the run -----------------------------------------------------------------------------------
def run_verify(
    ws: Workspace,
    spec: Any,
    ddb: Any,
    *,
    segments: int = 4,
    sample: int | None = None,
    resume: bool = False,
    operator: str = "unknown",
    keymap: Keymap | None = None,
    page_size: int | None = PAGE_SIZE,
    cancel: threading.Event | None = None,
    live: bool | None = None,
    settle_timeout: float = 120.0,
    settle_margin: float = 1.0,
    record: bool = True,
) -> Iterator[VerifyProgress]:
    """Verify ``spec.target.table`` against transform(``spec.source.table``); yields progress,
    returns a :class:`VerifyResult` (``result.equal``).

    ``keymap`` defaults to ``build_keymap(ws, allow_unresolved=True)``. ``sample`` checks only that
    many old items (and their new items; no extra-item pass). ``resume`` continues the newest
    unfinished verify run with its own parameters. Raises :class:`VerifyError` on unusable input
    and :class:`VerifyCancelled` when ``cancel`` is set.

    ``live``: the source takes writes and stream sync follows it, so a suspect is re-checked only
    after the sync has caught up past it (:class:`_Settle`; ``settle_timeout`` and
    ``settle_margin`` in seconds). None (the default) decides from the workspace: live when a
    stream-sync run is running with a fresh heartbeat.

    ``record=False`` (read-only mode: the workspace may be open ``mode=ro``) reads the workspace
    (keymap, stream sync's watermark) but writes nothing to it: the run, its checkpoints,
    offenders, expected store and audit entry go to a scratch workspace in a temporary directory,
    removed when the run ends. The report is the same, with ``run_id`` None and ``recorded``
    false; such a run cannot be resumed.
    """
    options = dict(segments=segments, sample=sample, resume=resume, operator=operator, keymap=keymap,
                   page_size=page_size, cancel=cancel, live=live, settle_timeout=settle_timeout,
                   settle_margin=settle_margin)
    if record:
        return (yield from _verify(ws, ws, spec, ddb, **options))
    if resume:
        raise VerifyError("a verify that is not recorded (read-only mode) cannot resume a run")
    scratch = tempfile.mkdtemp(prefix="keyshift-verify-")
    try:
        book = Workspace(scratch)
        try:
            result = yield from _verify(ws, book, spec, ddb, **options)
        finally:
            book.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return VerifyResult(None, {**result.summary, "run_id": None, "recorded": False})


def _verify(ws: Workspace, book: Workspace, spec: Any, ddb: Any, *, segments: int, sample: int | None,
            resume: bool, operator: str, keymap: Keymap | None, page_size: int | None,
            cancel: threading.Event | None, live: bool | None, settle_timeout: float,
            settle_margin: float) -> Iterator[VerifyProgress]:
    """:func:`run_verify`: reads decisions and stream sync's watermark from ``ws``, keeps the run's
    bookkeeping in ``book`` (``ws`` itself unless the run is not recorded)."""
    started = time.perf_counter()
    if keymap is None:
        from ...resolve.keymap_build import build_keymap

        keymap = build_keymap(ws, allow_unresolved=True).keymap
    names = KeyNames.from_spec(spec)
    if live is None:
        from ..stream.sync import sync_watermark

        mark = sync_watermark(ws)
        live = bool(mark and mark["live"])
    settle = _Settle(ws, timeout=settle_timeout, margin=settle_margin) if live else None
    t = _Tables(ddb, spec.source.table, spec.target.table, names, keymap, settle)
    counts = _check_tables(t)
    run_id, params = _open_run(book, keymap=keymap, operator=operator, segments=segments, sample=sample,
                               page_size=page_size, resume=resume,
                               tables={"source": t.source, "target": t.target, "live": live})
    segments, sample, page_size = params["segments"], params["sample"], params["page_size"]
    store = _expected_store(book, run_id, params, resume)
    cancel = cancel or threading.Event()
    try:
        for phase in ("source", "target") if sample is None else ("source",):
            total = counts[phase] if sample is None else min(sample, counts[phase] or sample)
            yield from _run_phase(book, t, run_id, phase, segments, sample, page_size, total, cancel, started,
                                  store)
            if cancel.is_set():
                raise VerifyCancelled(run_id)
    except VerifyCancelled:
        _set_state(book, run_id, "cancelled")
        raise
    except (GeneratorExit, KeyboardInterrupt):
        cancel.set()
        _set_state(book, run_id, "cancelled")
        raise
    except (ClientError, BotoCoreError) as exc:
        _set_state(book, run_id, "failed")
        raise VerifyError(f"verify run {run_id} stopped on an AWS error: {exc} (`--resume` continues)") from exc
    except BaseException:
        _set_state(book, run_id, "failed")
        raise
    finally:
        if store is not None:
            store.close()  # kept on disk until the run completes: a resume needs it
    summary = _finish(book, run_id, keymap, params, time.perf_counter() - started, resumed=resume,
                      operator=operator)
    if store is not None:
        store.remove()
    return VerifyResult(run_id, summary)


def _expected_store(ws: Workspace, run_id: int, params: dict[str, Any], resume: bool) -> ExpectedStore | None:
    """The run's expected store (full runs that join the scans), None for sampled and older runs.
    A resumed run whose store is gone cannot trust its finished source pages: it is refused."""
    if not params.get("join"):
        return None
    path = store_path(ws.path, run_id)
    if resume and not path.exists():
        state = _checkpoints(ws, run_id)
        if any(u["position"] or u["done"] for name, u in state.items() if name.startswith("source/")):
            raise VerifyError(f"verify run {run_id} cannot be resumed: its expected-items file {path.name}"
                              " is gone; start a new run (without --resume)")
    return ExpectedStore(path)


def _check_tables(t: _Tables) -> dict[str, int]:
    """Both tables exist with the keys the spec says; their approximate item counts."""
    counts = {}
    for phase, table, pk, sk in (("source", t.source, t.names.source_pk, t.names.source_sk),
                                 ("target", t.target, t.names.target_pk, t.names.source_sk)):
        try:
            desc = describe(t.ddb, table)
        except (ClientError, BotoCoreError) as exc:
            raise VerifyError(f"cannot describe table {table!r}: {exc}") from exc
        if desc is None:
            raise TableError(f"{phase} table {table!r} does not exist")
        schema = {k["KeyType"]: k["AttributeName"] for k in desc["KeySchema"]}
        if schema.get("HASH") != pk or schema.get("RANGE") != sk:
            raise TableError(f"{phase} table {table!r} is keyed ({schema.get('HASH')}, {schema.get('RANGE')})"
                             f" but the spec says ({pk}, {sk})")
        counts[phase] = int(desc.get("ItemCount") or 0)
    return counts


def _run_phase(ws: Workspace, t: _Tables, run_id: int, phase: str, segments: int, sample: int | None,
               page_size: int | None, total: int | None, cancel: threading.Event, started: float,
               store: ExpectedStore | None = None) -> Iterator[VerifyProgress]:
    """One pass: a parallel scan of one table, each page checked and checkpointed. With ``store``
    (a full run) the pages are joined through it, and the target pass ends with the sweep for
    expected items never seen (its progress is the target pass's)."""
    table = t.source if phase == "source" else t.target
    if store is None:
        check = check_source_page if phase == "source" else check_target_page
    else:
        join = index_source_page if phase == "source" else join_target_page

        def check(t: _Tables, items: list[dict]) -> _PageResult:
            return join(t, store, items)
    state = _checkpoints(ws, run_id)
    units = {i: state[f"{phase}/{i}"] for i in range(segments)}
    progress = VerifyProgress(phase, total=total,
                              segments={i: u["counters"]["scanned"] for i, u in units.items()})
    for u in state.values():
        for kind in ("missing", "extra", "different"):
            setattr(progress, kind, getattr(progress, kind) + u["counters"][kind])
    progress.done = sum(progress.segments.values())
    lock = threading.Lock()
    # Sample budget: items still to scan, and items reserved by pages in flight. A segment that
    # finds the budget spent waits while others are in flight (a short page gives some back).
    budget = {"left": None if sample is None else max(0, sample - progress.done), "out": 0}
    sample_page = page_size or SAMPLE_PAGE
    chunk = page_size if sample is None else max(1, min(sample_page, -(-budget["left"] // segments)))

    def reserve() -> int | None:
        while True:
            with lock:
                if budget["left"] is None:
                    return page_size
                got = min(chunk, budget["left"])
                if got > 0 or budget["out"] == 0 or cancel.is_set():
                    budget["left"] -= got
                    budget["out"] += got
                    return got
            time.sleep(0.01)

    def release(reserved: int | None, used: int) -> None:
        if budget["left"] is not None and reserved is not None:
            with lock:
                budget["out"] -= reserved
                budget["left"] += reserved - used

    events: queue.Queue = queue.Queue()

    def segment(i: int) -> None:
        unit = units[i]
        try:
            if unit["done"]:
                return
            counters = unit["counters"]
            start_key = _load_key(unit["position"])
            while not cancel.is_set():
                limit = reserve()
                if limit == 0:
                    _save_page(ws, run_id, f"{phase}/{i}", None, counters, _PageResult())
                    return
                kwargs: dict[str, Any] = {"TableName": table, "Segment": i, "TotalSegments": segments}
                if limit is not None:
                    kwargs["Limit"] = limit
                if start_key:
                    kwargs["ExclusiveStartKey"] = start_key
                try:
                    resp = t.ddb.scan(**kwargs)
                except BaseException:
                    release(limit, 0)
                    raise
                items = resp.get("Items", [])
                page = check(t, items)
                _merge(counters, page)
                start_key = resp.get("LastEvaluatedKey")
                _save_page(ws, run_id, f"{phase}/{i}", start_key, counters, page)
                release(limit, len(items))
                events.put((i, page))
                if start_key is None:
                    return
        except BaseException:
            cancel.set()  # the others stop at their next page (and never wait on this one's budget)
            raise
        finally:
            ws.close()
            if store is not None:
                store.close_thread()
            events.put((i, None))  # this segment is over

    def sweep(i: int) -> None:
        """Expected items never seen in the new table, part ``i`` (rowid modulo ``segments``)."""
        assert store is not None
        unit = state.get(f"missing/{i}") or {"position": None, "done": False, "counters": _empty_counters()}
        try:
            if unit["done"]:
                return
            counters = unit["counters"]
            after = int(unit["position"] or 0)
            while not cancel.is_set():
                rows = store.unseen(i, segments, after, SWEEP_CHUNK)
                if not rows:
                    _save_unit(ws, run_id, f"missing/{i}", after, True, counters, _PageResult())
                    return
                page = sweep_missing(t, store, rows)
                _merge(counters, page)
                after = rows[-1][0]
                _save_unit(ws, run_id, f"missing/{i}", after, False, counters, page)
                events.put((i, page))
        except BaseException:
            cancel.set()
            raise
        finally:
            ws.close()
            store.close_thread()
            events.put((i, None))

    pool = ThreadPoolExecutor(max_workers=segments, thread_name_prefix=f"verify-{phase}")
    try:
        stages = [segment] if store is None or phase == "source" else [segment, sweep]
        scanned_now = 0
        for stage in stages:
            futures = [pool.submit(stage, i) for i in range(segments)]
            running = segments
            while running:
                i, page = events.get()
                if page is None:
                    running -= 1
                    continue
                progress.segments[i] += page.scanned
                progress.done += page.scanned
                scanned_now += page.scanned
                for kind, _, _ in page.offenders:
                    setattr(progress, kind, getattr(progress, kind) + 1)
                progress.elapsed = time.perf_counter() - started
                progress._scanned_now = scanned_now
                yield progress
            for f in futures:
                f.result()
            if cancel.is_set():
                return
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True)


def _finish(ws: Workspace, run_id: int, keymap: Keymap, params: dict[str, Any], seconds: float,
            *, resumed: bool, operator: str) -> dict[str, Any]:
    state = _checkpoints(ws, run_id)
    total = _empty_counters()
    scanned = {"source": 0, "target": 0}
    for unit, u in state.items():
        c = u["counters"]
        if unit.split("/")[0] in scanned:
            scanned[unit.split("/")[0]] += c["scanned"]
        for k in ("compared", "missing", "extra", "different", "cleared_by_sync", "unsettled"):
            total[k] += c[k]
        for kind, n in c["skipped"].items():
            total["skipped"][kind] = total["skipped"].get(kind, 0) + n
    offenders: dict[str, list[Any]] = {"missing": [], "extra": [], "different": []}
    for row in ws.connect().execute(
            # By key: the same report whatever order parallel segments (or a resume) found them in.
            "SELECT kind, key, detail FROM offenders WHERE run_id = ? ORDER BY kind, key", (run_id,)):
        key, detail = json.loads(row["key"]), json.loads(row["detail"])
        if row["kind"] == "different":
            offenders["different"].append({"key": key, "attributes": detail.get("attributes", []),
                                           "source_key": detail.get("source_key")})
        elif row["kind"] == "missing":
            offenders["missing"].append(key)
        else:
            offenders["extra"].append(key)
    equal = not (total["missing"] or total["extra"] or total["different"])
    run = runs.get(ws, run_id)
    summary = {
        "run_id": run_id,
        "state": "complete",
        "equal": equal,
        "keymap": keymap.version,
        "source_table": params.get("source"),
        "target_table": params.get("target"),
        "segments": params["segments"],
        "sample": params["sample"],
        "extra_checked": params["sample"] is None,
        "compared": total["compared"],
        "missing": total["missing"],
        "extra": total["extra"],
        "different": total["different"],
        "skipped": dict(sorted(total["skipped"].items())),
        "scanned": scanned,
        # While the source was live, suspects waited for stream sync to catch up past them.
        "live": bool(params.get("live")),
        "cleared_by_sync": total["cleared_by_sync"],
        "unsettled": total["unsettled"],
        "offenders": offenders,
        "resumed": resumed,
        "started_at": run.started_at if run is not None else None,
        "finished_at": utcnow(),
        "seconds": round(seconds, 3),
    }
    with ws.transaction() as conn:
        runs.finish(conn, run_id, "complete", summary)
        ws.audit(operator, "verify", {k: summary[k] for k in
                                      ("run_id", "keymap", "equal", "compared", "missing", "extra", "different")})
    return summary


def verify_to_completion(ws: Workspace, spec: Any, ddb: Any, **kwargs: Any) -> VerifyResult:
    """Run :func:`run_verify` to the end, ignoring progress."""
    return run_to_completion(run_verify(ws, spec, ddb, **kwargs))


def latest_verify(ws: Workspace) -> runs.Run | None:
    """The newest verify run from the ledger (None: never run). Once complete, ``run.summary`` is
    its ``verify --json`` report (``equal``, the counts, the first offenders)."""
    return runs.latest(ws, "verify")
