"""The console's keymap step: build, keep the artifact in the workspace, and say what changed.

The ``keymaps`` table keeps every build's version and counts, not its entries. A build made here
also writes its artifact (the ``keymap build --out`` document) under ``<workspace>/keymaps/`` and
records that path as the build's ``location``, so the next build can diff entry by entry against
it. A previous build without a readable artifact (``keyshift keymap build`` without ``--out``, or
an artifact moved away) is diffed by its counts only. No schema change: other readers of
``keymaps`` see the same rows they always did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import runs
from ..store.workspace import Workspace
from .keymap_build import KeymapBuild, build_keymap, keymap_document, record_build

__all__ = ["KeymapChange", "KeymapInUse", "KeymapRecord", "build_in_workspace", "diff_entries", "keymap_builds",
           "keymaps_in_use"]

#: How many changed raw identifiers a diff keeps as examples.
EXAMPLES = 5


@dataclass(frozen=True)
class KeymapRecord:
    """One build of the ``keymaps`` table."""

    version: str
    built_at: str
    operator: str
    location: str | None
    summary: dict[str, Any]

    def entries(self) -> dict[str, Any] | None:
        """The build's entries (raw → {new_id, source, reason}) from its artifact, None when it has
        no readable artifact."""
        if not self.location or self.location.startswith("s3://"):
            return None
        try:
            return dict(json.loads(Path(self.location).read_text(encoding="utf-8"))["entries"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class KeymapChange:
    """What changed from ``previous`` to ``current``: entries added, changed (another new id, or a
    drop) and removed, with a few examples each; ``by_entries`` False: only the counts are known."""

    previous: str | None
    current: str
    by_entries: bool
    added: int = 0
    changed: int = 0
    removed: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # name → (before, now), changed only

    @property
    def same(self) -> bool:
        """Nothing changed at all."""
        return self.previous == self.current


def keymap_builds(ws: Workspace, limit: int = 2) -> list[KeymapRecord]:
    """The newest builds first (``INSERT OR REPLACE`` gives a rebuilt version a new rowid)."""
    rows = ws.connect().execute(
        "SELECT version, built_at, operator, location, summary FROM keymaps ORDER BY built_at DESC, rowid DESC"
        " LIMIT ?", (limit,)).fetchall()
    return [KeymapRecord(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}")) for r in rows]


def diff_entries(previous: dict[str, Any], current: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(added, changed, removed) raw identifiers between two builds' entries, sorted."""
    added = sorted(set(current) - set(previous))
    removed = sorted(set(previous) - set(current))
    changed = sorted(raw for raw in set(previous) & set(current)
                     if (previous[raw] or {}).get("new_id") != (current[raw] or {}).get("new_id"))
    return added, changed, removed


_COUNTED = ("entries", "mapped", "dropped", "unresolved", "open_cases", "conflict_keys", "merged_ids")


def change_between(previous: KeymapRecord | None, current: KeymapRecord) -> KeymapChange:
    """What changed from ``previous`` (None: this is the first build) to ``current``."""
    if previous is None:
        return KeymapChange(None, current.version, by_entries=False)
    counts = {k: (int(previous.summary.get(k, 0)), int(current.summary.get(k, 0))) for k in _COUNTED
              if previous.summary.get(k, 0) != current.summary.get(k, 0)}
    before, now = previous.entries(), current.entries()
    if before is None or now is None:
        return KeymapChange(previous.version, current.version, by_entries=False, counts=counts)
    added, changed, removed = diff_entries(before, now)
    return KeymapChange(previous.version, current.version, True, len(added), len(changed), len(removed),
                        {k: v[:EXAMPLES] for k, v in (("added", added), ("changed", changed), ("removed", removed))
                         if v}, counts)


def build_in_workspace(ws: Workspace, *, operator: str, spec: Any = None) -> tuple[KeymapBuild, KeymapChange]:
    """Build the keymap (refused with :class:`~.keymap_build.UnresolvedError` while cases are
    open), write its artifact under the workspace, record the build and say what changed since
    the build before it."""
    builds = keymap_builds(ws, limit=1)
    previous = builds[0] if builds else None
    build = build_keymap(ws)
    directory = ws.path / "keymaps"
    directory.mkdir(exist_ok=True)
    path = directory / f"{build.keymap.version}.json"
    document = keymap_document(build, operator=operator, spec=spec)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, ensure_ascii=True, indent=1), encoding="utf-8")
    tmp.replace(path)  # whole or not at all: a diff never reads half an artifact
    record_build(ws, build, operator=operator, location=str(path))
    current = keymap_builds(ws, limit=1)[0]
    if previous is not None and previous.version == current.version:
        return build, KeymapChange(previous.version, current.version, True)
    return build, change_between(previous, current)


#: The runs that apply a keymap, in migration order (their ledger records the version they used).
_KEYMAP_RUNS = ("restore", "import", "stream-sync", "reverse-sync", "verify")


@dataclass(frozen=True)
class KeymapInUse:
    """The keymap version the newest run of ``kind`` applied (restore and sync build theirs from the
    decisions in force when they start, so it can differ from the newest recorded build)."""

    kind: str
    run_id: int
    state: str
    version: str | None

    def matches(self, built: str | None) -> bool:
        """Whether the run applied the newest recorded build."""
        return built is not None and self.version == built


def keymaps_in_use(ws: Workspace) -> list[KeymapInUse]:
    """The newest run of each kind that applies a keymap, with the version it used (one indexed
    query per kind: cheap enough to re-read on every decision)."""
    found: list[KeymapInUse] = []
    for kind in _KEYMAP_RUNS:
        run = runs.latest(ws, kind)
        if run is not None:
            found.append(KeymapInUse(kind, run.id, run.state, run.keymap))
    return found
