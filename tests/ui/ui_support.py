"""Data and helpers for the console tests: a small dirty dump, planned into a workspace.

The dump has 350 lines: 344 records (300 unchanged, 9 fixed, 11 ambiguous in the Acme group,
22 orphaned, 2 invalid) and 6 quarantined lines, so the browser has four pages of 100.
Timestamps and the dump location are pinned after planning so snapshots never see a clock or a
temporary path.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from keyshift.console.context import Context
from keyshift.core.aws import AwsContext
from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace

PINNED_DUMP = "s3://acme-exports/customers/2024-05-01/dump.json"
PINNED_START = "2024-05-01T09:00:00+00:00"
PINNED_FINISH = "2024-05-01T09:00:02+00:00"
OPERATOR = "alice"
SIZE = (120, 40)

#: (raw identifier, orders): the dirty part of the dump.
DIRTY: list[tuple[str, list[int]]] = [
    ("Acme", [1, 2, 3, 4, 5]),
    ("Acme\u200b", [1, 2, 3]),            # conflicts with Acme on orders 1-3
    ("\uff21\uff43\uff4d\uff45", [10, 11]),  # fullwidth Ａｃｍｅ
    ("\ufeffAcme", [20]),                   # BOM
    ("Globex\u00a0Corp", [1, 2, 3, 4]),     # NBSP
    ("Initech ", [1, 2, 3]),                # trailing space
    ("Cafe\u0301", [1, 2]),                 # decomposed accent
    ("\u0440\u0430\u0443\u0440\u0430l", [1, 2]),  # раураl: Cyrillic look-alike of "paypal"
    ("\u200b", [1]),                        # canonical form empty: invalid
    ("\u00a0\u00a0", [1]),                  # canonical form empty: invalid
]
REFERENCE = {
    "Acme": "ACME-1",
    "Globex Corp": "G-7",
    "Initech": "INI-1",
    "Caf\u00e9": "CAFE-1",
    "paypal": "PP-1",
    **{f"Customer {i:03d}": f"Customer {i:03d}" for i in range(1, 301)},
}
BAD_LINES = [
    '{"customer": {"S": "Broken"}, "order": ',
    "this is not json",
    '{"customer": {"Q": "x"}, "order": {"N": "1"}}',
    '{"order": {"N": "1"}}',
    '{"customer": {"N": "42"}, "order": {"N": "1"}}',
    '{"customer": {"S": "No order"}}',
]
EXPECTED = {
    "identifiers": {"unchanged": 300, "fixed": 3, "ambiguous": 4, "orphaned": 21, "invalid": 2},
    "records": {"unchanged": 300, "fixed": 9, "ambiguous": 11, "orphaned": 22, "invalid": 2, "quarantined": 6},
    "records_total": 344,
    "lines": 350,
    "conflicts": 4,  # Acme + orders 1-3, and the two empty canonical forms on order 1
}


def _item(customer: str, order: int) -> dict[str, Any]:
    return {"customer": {"S": customer}, "order": {"N": str(order)}, "total": {"N": f"{order * 10}.50"},
            "tags": {"SS": ["retail", "eu"]}}


def dump_lines() -> list[str]:
    """The fixture dump, in order: dirty and bad lines spread among 320 clean customers."""
    clean = [json.dumps({"Item": _item(f"Customer {i:03d}", 1)}) for i in range(1, 321)]
    # Round-robin over the dirty identifiers so the first page already shows most of them.
    by_round = sorted(((k, g, raw, order) for g, (raw, orders) in enumerate(DIRTY)
                       for k, order in enumerate(orders)))
    dirty = [json.dumps(_item(raw, order), ensure_ascii=True) for _, _, raw, order in by_round]
    lines: list[str] = []
    extra = dirty + BAD_LINES
    for i, line in enumerate(clean):
        lines.append(line)
        if i % 3 == 2 and extra:
            lines.append(extra.pop(0))
    lines.extend(extra)
    return lines


def write_spec(directory: Path) -> Path:
    """Write the dump, the reference data and ``keyshift.toml`` into ``directory``; returns the spec path."""
    (directory / "dump.json").write_text("\n".join(dump_lines()) + "\n", encoding="utf-8")
    with (directory / "reference.jsonl").open("w", encoding="utf-8") as out:
        for name, new_id in REFERENCE.items():
            out.write(json.dumps({"name": name, "id": new_id}, ensure_ascii=True) + "\n")
    spec_path = directory / "keyshift.toml"
    spec_path.write_text(
        '[source]\ntable = "Customers"\npartition_key = "customer"\nsort_key = "order"\n\n'
        '[target]\ntable = "Customers-v2"\n\n'
        f'[reference]\nuri = "{(directory / "reference.jsonl").as_posix()}"\n',
        encoding="utf-8",
    )
    return spec_path


def plan_fixture(directory: Path) -> Path:
    """Plan the fixture dump into ``directory/ws`` and pin its timestamps and dump location."""
    spec_path = write_spec(directory)
    spec = parse_spec(spec_path.read_text(encoding="utf-8"))
    ws = Workspace(directory / "ws")
    plan_to_completion(ws, spec, str(directory / "dump.json"), operator=OPERATOR)
    conn = ws.connect()
    plan_id, summary = conn.execute("SELECT id, summary FROM plans ORDER BY id DESC LIMIT 1").fetchone()
    summary = json.loads(summary)
    summary["dump"], summary["seconds"] = PINNED_DUMP, 0.25
    conn.execute("UPDATE plans SET dump_uri = ?, started_at = ?, finished_at = ?, summary = ? WHERE id = ?",
                 (PINNED_DUMP, PINNED_START, PINNED_FINISH, json.dumps(summary), plan_id))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ws.close()
    return directory


@dataclass
class Fixture:
    """A planned fixture directory: ``keyshift.toml``, ``dump.json`` and the workspace ``ws``."""

    path: Path

    def context(self, *, read_only: bool = False) -> Context:
        return Context(spec_path=self.path / "keyshift.toml", workspace_path=self.path / "ws",
                       read_only=read_only, operator=OPERATOR, aws=AwsContext(region="us-east-1"))


def make(context: Context, **options: Any):
    """The App as the CLI builds it, with a stable header label."""
    from keyshift.console.app import make_app

    options.setdefault("workspace_label", "~/migrations/customers/.keyshift")
    return make_app(context, **options)


async def settle(pilot: Any, rounds: int = 3) -> None:
    """Let thread workers finish and their messages be handled."""
    from textual.worker import WorkerCancelled, WorkerFailed

    for _ in range(rounds):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerFailed:
            pass  # the App turns it into the error modal; tests assert on that
        except WorkerCancelled:
            pass  # an exclusive worker superseded by a newer one of its group while we waited
        await pilot.pause()


def text_of(renderable: Any, width: int = 200) -> str:
    """Plain text of a Rich renderable (what a Static shows)."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()



# -- resolution queue ----------------------------------------------------------------------------
PINNED_DECISION = "2024-05-01T09:30:00+00:00"


def copy_fixture(source: Path, target: Path) -> Path:
    """Copy a planned fixture directory (its workspace closed and checkpointed) to ``target``."""
    import shutil

    shutil.copytree(source, target)
    return target


def pin_decision_times(workspace: Path, ts: str = PINNED_DECISION) -> None:
    """Give every recorded decision the same timestamp (for snapshots)."""
    ws = Workspace(workspace)
    ws.connect().execute("UPDATE decisions SET ts = ?", (ts,))
    ws.connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ws.close()


async def wait_until(pilot: Any, condition: Any, timeout: float = 5.0, step: float = 0.05) -> float:
    """Pause until ``condition()`` is true; returns the seconds it took (AssertionError on timeout)."""
    import time

    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s")
        await pilot.pause(step)
    return time.monotonic() - start


# -- pinned clocks: snapshots of screens that show times the workspace recorded ------------------
PINNED_FLAG_INIT = "2024-05-01T09:40:00+00:00"
PINNED_FLIP = "2024-05-01T09:45:00+00:00"
CONTROL_TABLE, FLAG = "keyshift-control", "customers-cutover"
#: Every module that stamps a time the screens show (imported first so the patch reaches them all).
CLOCK_MODULES = ("keyshift.core.store.schema", "keyshift.core.store.workspace", "keyshift.core.store.audit",
                 "keyshift.core.store.runs", "keyshift.core.store.presence", "keyshift.core.plan.planner",
                 "keyshift.core.resolve.decisions", "keyshift.core.resolve.keymap_build",
                 "keyshift.core.cutover.control_table", "keyshift.core.cutover.flag",
                 "keyshift.core.cutover.approvals", "keyshift.core.migrate.verify.run",
                 "keyshift.core.migrate.restore", "keyshift.core.migrate.stream.sync")


class PinnedClock:
    """The clocks the workspace and the control table stamp with, set by the test.

    Patched *at write time* (while a fixture records), never while a screen runs: the audit
    chain's hashes are computed over the stored times, so a pinned log still verifies. Pinned in
    keyshift's modules only: ``time.time``, ``time.monotonic``, ``time.perf_counter``, ``utcnow``
    and ``iso``; sleeps and botocore's own clock stay real.
    """

    def __init__(self, monkeypatch: Any, when: str) -> None:
        """Patch every clock of :data:`CLOCK_MODULES` (undone with ``monkeypatch``) to read ``when``."""
        import importlib
        import sys
        import time as real_time
        import types

        from keyshift.core.cutover import control_table
        from keyshift.core.store import schema

        self.set(when)
        clock = self
        shim = types.ModuleType("time")
        shim.__dict__.update({k: v for k, v in vars(real_time).items() if not k.startswith("__")})
        shim.time = lambda: clock.epoch  # type: ignore[attr-defined]
        # Durations: frozen, moved only by advance() (a fixture driving a run's generator moves it
        # between progress reports, so a run's seconds and rate are the same on every machine).
        shim.monotonic = shim.perf_counter = lambda: clock.mono  # type: ignore[attr-defined]

        def utcnow() -> str:
            return clock.text

        real_iso = control_table.iso

        def iso(ts: float | None = None) -> str:
            return real_iso(clock.epoch if ts is None else ts)
        for name in CLOCK_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:
                continue
        real_utcnow = schema.utcnow  # taken before the loop patches schema itself
        for name, module in list(sys.modules.items()):
            if not name.startswith("keyshift.") or module is None:
                continue
            if getattr(module, "utcnow", None) is real_utcnow:
                monkeypatch.setattr(module, "utcnow", utcnow)
            if getattr(module, "iso", None) is real_iso:
                monkeypatch.setattr(module, "iso", iso)
            if getattr(module, "time", None) is real_time:
                monkeypatch.setattr(module, "time", shim)

    def set(self, when: str) -> None:
        """From now on the clock reads ``when`` (ISO 8601 with an offset)."""
        from datetime import datetime

        self.epoch = datetime.fromisoformat(when).timestamp()
        self.mono = getattr(self, "mono", 1000.0)
        self._text()

    def advance(self, seconds: float) -> None:
        """Move the wall clock and the duration clock on by ``seconds``."""
        self.epoch += seconds
        self.mono += seconds
        self._text()

    def _text(self) -> None:
        from datetime import datetime, timezone

        self.text = datetime.fromtimestamp(self.epoch, timezone.utc).isoformat(timespec="seconds")


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client on the moto server with the dummy credentials."""
    import boto3

    from keyshift.console.demo import DEMO_ENV

    return boto3.client("s3", endpoint_url=endpoint, region_name=DEMO_ENV["AWS_DEFAULT_REGION"],
                        aws_access_key_id=DEMO_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=DEMO_ENV["AWS_SECRET_ACCESS_KEY"])


def plan_pinned(directory: Path, endpoint: str) -> Path:
    """Plan the fixture dump from ``PINNED_DUMP`` in the moto server's S3 at ``PINNED_START``.

    Unlike :func:`plan_fixture` nothing is rewritten afterwards: the audit log records the S3
    location and the pinned time (so the chain verifies), the plan row the pinned times.
    """
    spec_path = write_spec(directory)
    s3 = s3_client(endpoint)
    bucket, key = PINNED_DUMP.removeprefix("s3://").split("/", 1)
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(directory / "dump.json"), bucket, key)
    import pytest

    ws = Workspace(directory / "ws")
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            PinnedClock(monkeypatch, PINNED_START)
            plan_to_completion(ws, parse_spec(spec_path.read_text(encoding="utf-8")), PINNED_DUMP, s3=s3,
                               operator=OPERATOR)
        ws.connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        ws.close()
    return directory


def add_control(directory: Path) -> None:
    """Give the fixture's spec a ``[control]`` section (the flag the cut-over screen shows)."""
    spec_path = directory / "keyshift.toml"
    spec_path.write_text(spec_path.read_text(encoding="utf-8")
                         + f'\n[control]\ntable = "{CONTROL_TABLE}"\nflag = "{FLAG}"\n', encoding="utf-8")


def flag_with_one_flip(fixture: Fixture) -> None:
    """Create the control table and the flag (at ``PINNED_FLAG_INIT``), then flip it to shadow
    (at ``PINNED_FLIP``) through the core flip, gates as checked then (forced where they fail)."""
    from keyshift.core.cutover.flag import control_spec, execute_flip, init_flag, read_flag
    from keyshift.core.cutover.gates import gates_for

    import pytest

    context = fixture.context()
    ddb = context.aws.client("dynamodb")
    with pytest.MonkeyPatch.context() as monkeypatch:
        clock = PinnedClock(monkeypatch, PINNED_FLAG_INIT)
        init_flag(context.workspace, context.spec, ddb, operator=OPERATOR)
        clock.set(PINNED_FLIP)
        control = control_spec(context.spec)
        current = read_flag(ddb, control.table, control.flag)
        gates = gates_for(context.workspace, context.spec, ddb, from_state="old", to_state="shadow")
        execute_flip(context.workspace, ddb, context.spec, current, to_state="shadow", operator=OPERATOR,
                     reason="shadow reads before the cut-over", gates=gates, forced=not all(g.ok for g in gates),
                     accept_loss=False, positions={})
    context.workspace.connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    context.workspace.close()


# -- a finished restore and verify, every time and duration pinned -----------------------------
ORDERS_DUMP = "s3://acme-exports/orders/2024-05-01/dump.json"
ORDERS_SOURCE, ORDERS_TARGET, ORDERS = "Orders", "Orders-v2", 200
#: What each progress report of a fixture's run is taken to cost (so durations and rates are fixed).
RESTORE_LINE_SECONDS, VERIFY_PAGE_SECONDS = 0.01, 0.25
PINNED_RESTORE = "2024-05-01T10:00:00+00:00"
PINNED_VERIFY = "2024-05-01T10:10:00+00:00"


def _orders() -> list[dict[str, Any]]:
    return [{"customer": {"S": f"CUST-{i % 40:03d}"}, "order": {"N": str(i)}, "total": {"N": f"{i}.5"},
             "tags": {"SS": ["retail", "eu"]}} for i in range(ORDERS)]


def _drive(gen: Any, clock: PinnedClock, seconds: float) -> Any:
    """Run a core generator to its end, the clock moved on by ``seconds`` at each progress report."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
        clock.advance(seconds)


def finish_pinned(directory: Path, endpoint: str) -> Path:
    """A clean Orders dump planned from S3, restored (all of it), one item deleted from the new
    table, then verified (one missing): every time and duration written by a pinned clock."""
    import boto3
    import pytest

    from keyshift.console.demo import DEMO_ENV
    from keyshift.core.migrate.restore import plan_to_restore_args, run_restore
    from keyshift.core.migrate.tables import create_target_table, target_key_schema
    from keyshift.core.migrate.verify.run import run_verify
    from keyshift.core.plan.queries import latest_plan
    from keyshift.core.resolve.keymap_build import build_keymap

    (directory / "dump.json").write_text("".join(json.dumps({"Item": i}) + "\n" for i in _orders()),
                                         encoding="utf-8")
    (directory / "keyshift.toml").write_text(
        f'[source]\ntable = "{ORDERS_SOURCE}"\npartition_key = "customer"\nsort_key = "order"\n\n'
        f'[target]\ntable = "{ORDERS_TARGET}"\n', encoding="utf-8")
    s3 = s3_client(endpoint)
    bucket, key = ORDERS_DUMP.removeprefix("s3://").split("/", 1)
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(directory / "dump.json"), bucket, key)
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=DEMO_ENV["AWS_DEFAULT_REGION"],
                       aws_access_key_id=DEMO_ENV["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=DEMO_ENV["AWS_SECRET_ACCESS_KEY"])
    ddb.create_table(TableName=ORDERS_SOURCE, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                                {"AttributeName": "order", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                           {"AttributeName": "order", "AttributeType": "N"}])
    items = _orders()
    for n in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={ORDERS_SOURCE: [{"PutRequest": {"Item": i}} for i in items[n:n + 25]]})
    spec = parse_spec((directory / "keyshift.toml").read_text(encoding="utf-8"))
    ws = Workspace(directory / "ws")
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            clock = PinnedClock(monkeypatch, PINNED_START)
            plan_to_completion(ws, spec, ORDERS_DUMP, s3=s3, operator=OPERATOR)
            clock.set(PINNED_RESTORE)
            create_target_table(ddb, spec, target_key_schema(spec, "N"))
            # checkpoint_every=0: a report per line (the frozen clock never reaches a checkpoint
            # otherwise), each one line's worth of pinned time; one worker keeps the order fixed.
            _drive(run_restore(ws, spec, build_keymap(ws).keymap, ddb=ddb, s3=s3, operator=OPERATOR, workers=1,
                               checkpoint_every=0, **plan_to_restore_args(latest_plan(ws))),
                   clock, RESTORE_LINE_SECONDS)
            ddb.delete_item(TableName=ORDERS_TARGET, Key={"customer": {"S": "CUST-007"}, "order": {"N": "47"}})
            clock.set(PINNED_VERIFY)
            _drive(run_verify(ws, spec, ddb, operator=OPERATOR, segments=1), clock, VERIFY_PAGE_SECONDS)
        ws.connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        ws.close()
    return directory
