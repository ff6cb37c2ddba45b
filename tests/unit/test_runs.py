"""The run ledger: one module writes runs and checkpoints; every reader gets a typed Run."""

import dataclasses
import time

import pytest

from keyshift.core.store import runs
from keyshift.core.store.workspace import Workspace


def test_a_run_from_start_to_finish(tmp_path):
    ws = Workspace(tmp_path)
    assert runs.latest(ws, "verify") is None
    with ws.transaction() as conn:
        run_id = runs.start(conn, "verify", operator="alice", keymap="v1", params={"segments": 2},
                            units=["source/0", "source/1"])
    run = runs.latest(ws, "verify")
    assert (run.id, run.state, run.keymap, run.params) == (run_id, "running", "v1", {"segments": 2})
    assert set(run.units) == {"source/0", "source/1"} and run.unit("source/0").position is None
    assert run.alive() and not run.finished
    with ws.transaction() as conn:
        runs.checkpoint(conn, run_id, "source/0", position={"pk": {"S": "k"}}, counters={"scanned": 5})
        runs.checkpoint(conn, run_id, "source/0", done=True)  # only what is given changes
    unit = runs.get(ws, run_id).unit("source/0")
    assert (unit.position, unit.done, unit.counters) == ({"pk": {"S": "k"}}, True, {"scanned": 5})
    with ws.transaction() as conn:
        runs.finish(conn, run_id, "complete", {"equal": True})
    done = runs.latest(ws, "verify")
    assert done.finished and done.summary == {"equal": True} and done.totals == {"equal": True}
    assert done.finished_at is not None and not done.alive()
    assert runs.latest(ws, "verify", unfinished=True) is None
    assert runs.completed_ids(ws, "verify") == {run_id}


def test_a_run_whose_heartbeat_went_stale_is_not_alive(tmp_path):
    ws = Workspace(tmp_path)
    with ws.transaction() as conn:
        run_id = runs.start(conn, "stream-sync", operator="a", keymap=None, params={})
    run = runs.get(ws, run_id)
    assert run.alive()  # its process (this one) is here
    elsewhere = dataclasses.replace(run, owner={"host": "another-machine", "pid": 1})
    assert elsewhere.alive() and not elsewhere.alive(now=time.time() + runs.STALE_S + 1)
    dead = dataclasses.replace(run, owner={**run.owner, "pid": _dead_pid()})
    assert not dead.alive()  # on this machine, a killed process is known dead at once


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_resume_reopens_the_newest_unfinished_run(tmp_path):
    ws = Workspace(tmp_path)
    with ws.transaction() as conn:
        first = runs.start(conn, "restore", operator="a", keymap="v", params={})
        runs.set_state(conn, first, "cancelled")
        runs.checkpoint(conn, first, "_counters", counters={"written": 3})
        runs.drop_units(conn, first, "shard:")  # nothing of that name: nothing dropped
    run = runs.latest(ws, "restore", unfinished=True)
    assert run.id == first and run.counters == {"written": 3} and run.finished_at is not None
    with ws.transaction() as conn:
        runs.reopen(conn, first)
    assert runs.get(ws, first).state == "running" and runs.get(ws, first).finished_at is None


def test_unknown_kinds_and_states_are_refused(tmp_path):
    ws = Workspace(tmp_path)
    with ws.transaction() as conn, pytest.raises(ValueError):
        runs.start(conn, "backup", operator="a", keymap=None, params={})
    with ws.transaction() as conn, pytest.raises(ValueError):
        runs.set_state(conn, 1, "exploded")
