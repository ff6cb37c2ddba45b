"""What must hold before a flip: a list of :class:`Gate` (name, ok, detail), printed before every flip.

To ``new`` (the new table becomes the source of truth):

- ``cases``: no open case (``resolve list --open``);
- ``held``: no stream record held for an identifier the keymap does not know;
- ``verify``: the latest verify run complete, equal, started after the last complete restore
  (or import) finished, made with the keymap in force (the newest ``keymap build``; without one,
  the keymap the workspace builds now);
- ``forward-sync``: forward stream sync following (``live``) with ``lag_seconds`` at most
  ``[control] max_lag_seconds``;
- ``reverse-ready``: the new table has a stream, and the inverse keymap turns a sample of the new
  table (a ``Scan`` of 50 items, each as a synthetic INSERT record) into old table writes without
  a failure.

A flip back (to ``old``, or from ``new`` to ``shadow``: the old table is the source of truth
again): ``reverse-caught-up``: reverse sync following with ``lag_seconds == 0``, or its
``caught_up_at`` later than the newest record on the new table's stream, and started no later
than the flip to new (from its recorded positions, the trim horizon or an earlier time:
:mod:`.reverse_start`); accepting the loss (``--accept-loss``, with a reason) passes it, saying so
in its detail.

``old`` -> ``shadow`` (the old table stays the source of truth): ``new-table``: the new table
exists (routers read it for the sampled shadow reads).

The gates read the run ledger and the existing readers only (cases, held records, sync lag).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from ..text.plural import possessive
from ..errors import KeyshiftError
from ..kernel.transform import KeyNames, Skip
from ..store import runs
from .positions import TablePositions

__all__ = ["Gate", "REMEDIES", "flip_kind", "gates_for", "is_flip_back", "SAMPLE_ITEMS"]

#: How many new table items the inverse dry run reads.
SAMPLE_ITEMS = 50


#: What fixes a failed gate, as a code each front end words its own way (the CLI names a command,
#: the console a key): the detail says what the gate saw, never how one front end does something.
REMEDIES = ("resolve-open", "resolve-unmapped", "verify", "restore", "follow-forward", "follow-reverse",
            "accept-loss")


@dataclass(frozen=True)
class Gate:
    """One check before a flip: its name, whether it passed, what it saw, and (failed) what fixes it."""

    name: str
    ok: bool
    detail: str
    remedy: str = ""  # one of REMEDIES, or "" (nothing an operator action fixes, or it passed)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "remedy": self.remedy}


def is_flip_back(from_state: str, to_state: str) -> bool:
    """A flip that makes the old table the source of truth again (to ``old``, or ``new`` -> ``shadow``)."""
    return to_state == "old" or (from_state == "new" and to_state == "shadow")


def flip_kind(from_state: str, to_state: str) -> str:
    """``forward`` (to new), ``back`` (see :func:`is_flip_back`) or ``shadow`` (old -> shadow)."""
    if to_state == "new":
        return "forward"
    return "back" if is_flip_back(from_state, to_state) else "shadow"


def _guard(name: str, check: Callable[[], Gate]) -> Gate:
    """A check that cannot run is a failed gate naming why, never a crash."""
    try:
        return check()
    except KeyshiftError as exc:
        return Gate(name, False, exc.message)
    except (ClientError, BotoCoreError) as exc:
        return Gate(name, False, f"AWS error: {exc}")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _cases(ws: Any) -> Gate:
    from ..resolve.cases import list_cases

    open_cases = list_cases(ws, open_only=True)
    if open_cases:
        kinds: dict[str, int] = {}
        for c in open_cases:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        return Gate("cases", False, f"{len(open_cases)} open case(s) ("
                    + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")", "resolve-open")
    return Gate("cases", True, "no open case")


def _held(ws: Any) -> Gate:
    from ..migrate.stream import held

    waiting = held.counts(ws)["held"]
    if waiting:
        return Gate("held", False, f"{waiting} stream record(s) held for identifiers the keymap does not know",
                    "resolve-unmapped")
    return Gate("held", True, "no held record")


def keymap_in_force(ws: Any) -> str:
    """The newest built keymap's version; without one, the version the workspace builds now."""
    from ..resolve.keymap_build import build_keymap, latest_keymap_version

    return latest_keymap_version(ws) or build_keymap(ws, allow_unresolved=True).keymap.version


def _verify(ws: Any) -> Gate:
    verify = runs.latest(ws, "verify")
    if verify is None:
        return Gate("verify", False, "no verify run", "verify")
    summary = verify.summary or {}
    if verify.state != "complete":
        return Gate("verify", False, f"the latest verify (run {verify.id}) is {verify.state}, not complete")
    if not summary.get("equal"):
        return Gate("verify", False, f"the latest verify (run {verify.id}) found differences:"
                    f" {summary.get('missing', 0)} missing, {summary.get('extra', 0)} extra,"
                    f" {summary.get('different', 0)} different", "verify")
    restores = [r for r in (runs.latest(ws, "restore", complete=True), runs.latest(ws, "import", complete=True)) if r]
    if not restores:
        return Gate("verify", False, "no complete restore", "restore")
    restore = max(restores, key=lambda r: r.id)
    started, finished = _epoch(verify.started_at), _epoch(restore.finished_at)
    if verify.id < restore.id or (started is not None and finished is not None and started < finished):
        return Gate("verify", False, f"the latest verify (run {verify.id}) is older than the last {restore.kind}"
                    f" (run {restore.id}, finished {restore.finished_at})", "verify")
    in_force = keymap_in_force(ws)
    if verify.keymap != in_force:
        return Gate("verify", False, f"the latest verify (run {verify.id}) used keymap {verify.keymap}, the keymap in"
                    f" force is {in_force}", "verify")
    return Gate("verify", True, f"verify run {verify.id} equal ({summary.get('compared', '?')} compared), after"
                f" {restore.kind} run {restore.id}, keymap {in_force}")


def _forward_sync(ws: Any, max_lag: float) -> Gate:
    from ..migrate.stream.sync import sync_lag

    lag = sync_lag(ws, "forward")
    if lag["run_id"] is None:
        return Gate("forward-sync", False, "no stream sync run", "follow-forward")
    if not lag["live"]:
        return Gate("forward-sync", False, f"stream sync run {lag['run_id']} is {lag['state']}, not following",
                    "follow-forward")
    seconds = lag["lag_seconds"]
    if seconds is None or seconds > max_lag:
        return Gate("forward-sync", False, f"stream sync run {lag['run_id']} lag "
                    f"{'unknown (catching up)' if seconds is None else f'{seconds:.1f} s'} over {max_lag:g} s")
    return Gate("forward-sync", True, f"stream sync run {lag['run_id']} following, lag {seconds:.1f} s"
                f" (max {max_lag:g} s)")


def _reverse_ready(ws: Any, spec: Any, ddb: Any) -> Gate:
    from ..kernel.reverse_records import reverse_outcome
    from ..resolve.keymap_build import build_keymap

    table = spec.target.table
    desc = ddb.describe_table(TableName=table)["Table"]
    stream = desc.get("StreamSpecification") or {}
    if not desc.get("LatestStreamArn") or not stream.get("StreamEnabled", False):
        return Gate("reverse-ready", False, f"table {table} has no stream enabled: reverse sync cannot follow it")
    keymap = build_keymap(ws, allow_unresolved=True).keymap
    names = KeyNames.from_spec(spec)
    items = ddb.scan(TableName=table, Limit=SAMPLE_ITEMS).get("Items", [])
    failures: list[str] = []
    for item in items:
        key = {names.target_pk: item.get(names.target_pk)}
        if names.source_sk is not None:
            key[names.source_sk] = item.get(names.source_sk)
        record = {"eventName": "INSERT", "dynamodb": {"Keys": key, "NewImage": item}}
        try:
            outcome = reverse_outcome(record, keymap, names)
        except (ValueError, KeyError, TypeError) as exc:
            failures.append(str(exc))
            continue
        if isinstance(outcome, Skip):
            failures.append(outcome.reason)
    if failures:
        return Gate("reverse-ready", False, f"the inverse keymap fails on {len(failures)} of {len(items)} sampled"
                    f" item(s) of {table}: {failures[0]}")
    return Gate("reverse-ready", True, f"stream on {table}; inverse keymap {keymap.version} passes on"
                f" {len(items)} sampled item(s)")


def _reverse_started_after_flip(ws: Any, spec: Any, ddb: Any) -> str | None:
    """Why the reverse run misses writes made since the flip to new, or None when it does not.

    A reverse run (and every run continuing its checkpoints, which inherit its ``skip_before``)
    that started "from this second on", or at a time after the flip, never replays the new table's
    writes made between the flip and that start. Positions and the trim horizon cover the flip.
    """
    from ..migrate.stream.sync import latest_stream_sync
    from .control_table import parse_iso
    from .reverse_start import flip_start

    run = latest_stream_sync(ws, "reverse")
    if run is None or ddb is None:
        return None
    params = run.params or {}
    skip_before = params.get("skip_before")
    if params.get("skip_kind", "before-start") != "before-start" or skip_before is None:
        return None  # from positions, the trim horizon, or raised to the restore's floor (older)
    found = flip_start(ddb, spec)
    flipped_at = parse_iso(found.entry.at) if found is not None else None
    if flipped_at is None or float(skip_before) <= int(flipped_at):
        return None
    started = datetime.fromtimestamp(float(skip_before), timezone.utc).isoformat(timespec="seconds")
    return (f"reverse sync run {run.id} replays from {started} on, after the flip to new at {found.entry.at}"
            f" (version {found.entry.version}): writes made on {spec.target.table} in between are not replayed")


def _reverse_caught_up(ws: Any, spec: Any, new_positions: TablePositions | None, accept_loss: bool,
                       ddb: Any = None) -> Gate:
    from ..migrate.stream.sync import sync_lag

    lag = sync_lag(ws, "reverse")
    newest = new_positions.newest_at if new_positions is not None else None
    problem = None
    late = _reverse_started_after_flip(ws, spec, ddb) if lag["run_id"] is not None else None
    if lag["run_id"] is None:
        problem = "no reverse sync run"
    elif late is not None:
        problem = late
    elif not lag["live"]:
        problem = f"reverse sync run {lag['run_id']} is {lag['state']}, not following"
    elif lag["lag_seconds"] == 0:
        return Gate("reverse-caught-up", True, f"reverse sync run {lag['run_id']} following, caught up (lag 0 s)")
    elif lag["caught_up_at"] is not None and (newest is None or lag["caught_up_at"] > newest):
        return Gate("reverse-caught-up", True, f"reverse sync run {lag['run_id']} caught up past the newest record"
                    f" on {possessive(spec.target.table)} stream")
    else:
        problem = (f"reverse sync run {lag['run_id']} lag {lag['lag_seconds']} s, not caught up past the newest"
                   f" record on {possessive(spec.target.table)} stream")
    if accept_loss:
        return Gate("reverse-caught-up", True, f"{problem}; loss ACCEPTED: writes made on"
                    f" {spec.target.table} since the flip may not reach {spec.source.table}")
    return Gate("reverse-caught-up", False, f"{problem}: writes made on {spec.target.table} would not reach"
                f" {spec.source.table}", "follow-reverse")


def _new_table(spec: Any, ddb: Any) -> Gate:
    table = spec.target.table
    status = ddb.describe_table(TableName=table)["Table"]["TableStatus"]
    return Gate("new-table", status == "ACTIVE", f"table {table} is {status}")


def gates_for(ws: Any, spec: Any, ddb: Any, *, from_state: str, to_state: str, accept_loss: bool = False,
              new_positions: TablePositions | None = None) -> list[Gate]:
    """The gates of a flip from ``from_state`` to ``to_state`` (see the module doc), each checked."""
    control = spec.control
    max_lag = float(getattr(control, "max_lag_seconds", 5.0))
    kind = flip_kind(from_state, to_state)
    if kind == "forward":
        return [_guard("cases", lambda: _cases(ws)), _guard("held", lambda: _held(ws)),
                _guard("verify", lambda: _verify(ws)), _guard("forward-sync", lambda: _forward_sync(ws, max_lag)),
                _guard("reverse-ready", lambda: _reverse_ready(ws, spec, ddb))]
    if kind == "back":
        return [_guard("reverse-caught-up", lambda: _reverse_caught_up(ws, spec, new_positions, accept_loss, ddb))]
    return [_guard("new-table", lambda: _new_table(spec, ddb))]
