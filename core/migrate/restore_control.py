"""Steering a running restore: the control file it polls (pause, resume, rate, workers).

The file sits in the workspace directory, so any process can steer a restore run by any other:
``keyshift restore-control`` writes it, so do the console's keys, and :func:`run_restore` polls it
every second.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..store.workspace import Workspace

__all__ = ["CONTROL_FILE", "RestoreControl", "read_control", "write_control"]

CONTROL_FILE = "restore.control.json"


@dataclass
class RestoreControl:
    """What an operator can change while a restore runs."""

    paused: bool = False
    rate: float | None = None      # items per second, None: as fast as the table takes
    workers: int | None = None


def write_control(ws: Workspace, control: RestoreControl) -> Path:
    """Write the control file a running restore polls (atomically: write then rename)."""
    path = ws.path / CONTROL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(control)), encoding="utf-8")
    tmp.replace(path)
    return path


def read_control(ws: Workspace) -> RestoreControl | None:
    """The control file's content, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((ws.path / CONTROL_FILE).read_text(encoding="utf-8"))
        return RestoreControl(bool(data.get("paused")), data.get("rate"), data.get("workers"))
    except (OSError, ValueError, AttributeError):
        return None
