"""Measure the dump browser's page-down at 1,000,000 records (not a test: run it by hand).

    python tests/ui/measure_paging.py [--records N] [--keep DIR]

Builds a workspace by inserting rows straight into ``files``, ``identifiers``, ``records`` and
``plans`` (the schema of :mod:`keyshift.core.store.workspace`, indexes built afterwards as a plan does),
then drives the console with Pilot: opens the browser, presses page-down 20 times at the start,
jumps to the end and presses page-up 20 times there, and repeats with a status filter. For every
key it reports the time from the key press to the page being on screen, measured inside the app
(press → records fetched in the worker → table refreshed), plus the bare ``records_page`` query.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from keyshift.console.context import Context
from keyshift.core.plan.queries import records_page
from keyshift.core.store.workspace import IDENTIFIER_INDEXES, RECORD_INDEXES, Workspace

STATUSES = ("unchanged", "fixed", "ambiguous", "orphaned", "invalid")


def build(path: Path, n_records: int, n_identifiers: int) -> Workspace:
    """A workspace holding one complete plan of ``n_records`` records."""
    ws = Workspace(path)
    conn = ws.connect()
    for name in (*RECORD_INDEXES, *IDENTIFIER_INDEXES):
        conn.execute(f"DROP INDEX IF EXISTS {name}")

    def identifier(i: int) -> tuple[str, str, str, str]:
        # (raw, escaped, canonical, status): mostly clean, every 10th dirty, some groups ambiguous.
        if i % 50 == 7:
            return f"Acme {i // 50:06d}\u200b", f"Acme {i // 50:06d}\\u200b", f"Acme {i // 50:06d}", "ambiguous"
        if i % 50 == 8:
            return f"Acme {i // 50:06d}", f"Acme {i // 50:06d}", f"Acme {i // 50:06d}", "ambiguous"
        if i % 10 == 3:
            return f"Customer\u00a0{i:07d}", f"Customer\\u00a0{i:07d}", f"Customer {i:07d}", "fixed"
        if i % 97 == 5:
            return f"Orphan {i:07d}", f"Orphan {i:07d}", f"Orphan {i:07d}", "orphaned"
        return f"Customer {i:07d}", f"Customer {i:07d}", f"Customer {i:07d}", "unchanged"

    idents = [identifier(i) for i in range(n_identifiers)]
    change = json.dumps([{"rule": "strip-ignorable", "position": 11, "original": "\\u200b", "replacement": "",
                          "description": "U+200B ZERO WIDTH SPACE removed at 11"}])
    with ws.transaction():
        conn.execute("INSERT INTO files(id, uri) VALUES (1, 's3://bench/export/data/part-00000.json.gz')")
        conn.executemany(
            "INSERT INTO identifiers(id, raw, escaped, canonical, new_id, status, reason,"
            " items, changes) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?)",
            ((i + 1, raw, esc, can, None if st in ("ambiguous", "orphaned") else can, st,
              n_records // n_identifiers, change if raw != can else "[]")
             for i, (raw, esc, can, st) in enumerate(idents)),
        )
        conn.executemany(
            "INSERT INTO records(seq, file_id, line, ident, sort_key, size) VALUES (?, 1, ?, ?, NULL, 120)",
            ((seq, seq, seq % n_identifiers + 1)
             for seq in range(1, n_records + 1)),
        )
        for sql in (*RECORD_INDEXES.values(), *IDENTIFIER_INDEXES.values()):
            conn.execute(sql)
        by_status = dict(conn.execute("SELECT status, sum(items) FROM identifiers GROUP BY status").fetchall())
        ids_by_status = dict(conn.execute("SELECT status, count(*) FROM identifiers GROUP BY status").fetchall())
        summary = {
            "format": "export", "detected": True, "detection": "bench", "dump": "s3://bench/export",
            "files": 1, "lines": n_records, "records": n_records, "quarantined": 0, "reconciled": True,
            "identifiers": {"total": n_identifiers, **{s: ids_by_status.get(s, 0) for s in STATUSES}},
            "records_by_status": {s: by_status.get(s, 0) for s in STATUSES},
            "conflicts": 0, "suspicious": 0, "expected_items": None, "warnings": [], "seconds": 0.0,
        }
        conn.execute(
            "INSERT INTO plans(dump_uri, format, rules, spec, operator, started_at, finished_at, state, summary)"
            " VALUES ('s3://bench/export', 'export', ?, '{}', 'bench', '2024-05-01T09:00:00+00:00',"
            " '2024-05-01T09:10:00+00:00', 'complete', ?)",
            (json.dumps(["strip-ignorable", "nfkc", "fold-space"]), json.dumps(summary)),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    return ws


def time_queries(ws: Workspace, n_records: int) -> dict[str, float]:
    """Median ms of the bare keyset queries the browser issues (limit = page + 1)."""
    out = {}
    cases = {
        "first page": dict(after_seq=0),
        "page after record 999,900": dict(after_seq=n_records - 100),
        "last page": dict(before_seq=2**62),
        "ambiguous, deep": dict(status="ambiguous", after_seq=n_records // 2),
    }
    for name, kwargs in cases.items():
        samples = []
        for _ in range(20):
            t = time.perf_counter()
            records_page(ws, limit=101, **kwargs)
            samples.append((time.perf_counter() - t) * 1000)
        out[name] = statistics.median(samples)
    return out


async def drive(context: Context) -> dict[str, list[float]]:
    """Press keys in the browser; return ms from key press to the new page being shown."""
    from keyshift.console.app import make_app
    from keyshift.screens.dump_browser import DumpBrowserScreen

    shown_at: list[float] = []
    original = DumpBrowserScreen._show

    def _show(self: Any, *args: Any) -> None:
        original(self, *args)
        self.call_after_refresh(lambda: shown_at.append(time.perf_counter()))

    DumpBrowserScreen._show = _show  # type: ignore[method-assign]
    results: dict[str, list[float]] = {}
    app = make_app(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        t = time.perf_counter()
        await pilot.press("b")
        await wait_for(shown_at, 1)
        results["open browser (first page)"] = [(shown_at[-1] - t) * 1000]

        async def keys(label: str, key: str, times: int) -> None:
            samples = []
            for _ in range(times):
                before = len(shown_at)
                t = time.perf_counter()
                await pilot.press(key)
                await wait_for(shown_at, before + 1)
                samples.append((shown_at[-1] - t) * 1000)
            results[label] = samples

        await keys("pagedown ×20 from record 1", "pagedown", 20)
        await keys("ctrl+end (last page)", "ctrl+end", 1)
        await keys("pageup ×20 from record 1,000,000", "pageup", 20)
        await keys("status filter: ambiguous", "3", 1)
        await keys("pagedown ×20, ambiguous only", "pagedown", 20)
        browser = app.screen
        assert isinstance(browser, DumpBrowserScreen), browser
        label = str(browser.query_one("#page-label").content)
        results["_label"] = [0.0]
        print(f"   (browser now shows: {label.strip()})")
    DumpBrowserScreen._show = original  # type: ignore[method-assign]
    return results


async def settle(pilot: Any) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def wait_for(marks: list[float], count: int, timeout: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout
    while len(marks) < count:
        if time.perf_counter() > deadline:
            raise TimeoutError("the page never showed")
        await asyncio.sleep(0.0005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--identifiers", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, default=None, help="build the workspace here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="keyshift-paging-"))
    t = time.perf_counter()
    ws = build(root / "ws", args.records, args.identifiers)
    print(f"built {args.records:,} records / {args.identifiers:,} identifiers in {time.perf_counter() - t:.1f} s"
          f" at {root}")
    print("records_page (bare query, median of 20):")
    for name, ms in time_queries(ws, args.records).items():
        print(f"   {name:<32} {ms:6.2f} ms")
    context = Context(spec_path=root / "missing.toml", workspace_path=root / "ws", operator="bench")
    print("browser, key press → page on screen (Pilot, in-app timing):")
    for name, samples in asyncio.run(drive(context)).items():
        if name.startswith("_"):
            continue
        if len(samples) == 1:
            print(f"   {name:<36} {samples[0]:7.1f} ms")
        else:
            print(f"   {name:<36} median {statistics.median(samples):6.1f} ms   max {max(samples):6.1f} ms"
                  f"   all: {' '.join(f'{s:.0f}' for s in samples)}")


if __name__ == "__main__":
    sys.exit(main())
