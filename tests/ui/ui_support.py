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
    from textual.worker import WorkerFailed

    for _ in range(rounds):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerFailed:
            pass  # the App turns it into the error modal; tests assert on that
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
