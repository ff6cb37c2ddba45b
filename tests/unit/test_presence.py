"""Presence: consoles register, beat, record their last action, go stale and leave."""

import subprocess
import sys
import time

import pytest

from keyshift.core.store import presence
from keyshift.core.store.workspace import Workspace


def test_a_console_sees_the_others_not_itself(tmp_path):
    ws = Workspace(tmp_path)
    me = presence.register(ws, "alice", "terminal")
    other = presence.register(ws, "bob", "browser")
    seen = presence.attached(ws, exclude=me)
    assert [(c.id, c.operator, c.kind) for c in seen] == [(other, "bob", "browser")]
    assert seen[0].last_action is None and seen[0].started_at
    assert {c.id for c in presence.attached(ws)} == {me, other}


def test_a_beat_records_the_operator_and_the_last_action(tmp_path):
    ws = Workspace(tmp_path)
    me = presence.register(ws, "browser session", "browser", now=100.0)
    assert presence.beat(ws, me, "carol", now=101.0)  # the browser's operator, named after start
    assert presence.beat(ws, me, "carol", action="decided a case", action_at=101.5, now=102.0)
    assert presence.beat(ws, me, "carol", now=103.0)  # a plain beat keeps the last action
    (row,) = presence.attached(ws, now=103.0)
    assert (row.operator, row.heartbeat_at, row.last_action, row.last_action_at) == \
        ("carol", 103.0, "decided a case", 101.5)
    assert row.to_dict()["kind"] == "browser"


def test_a_console_that_stopped_beating_is_not_shown(tmp_path):
    ws = Workspace(tmp_path)
    quiet = presence.register(ws, "alice", "terminal", now=100.0)
    presence.register(ws, "bob", "terminal", now=104.0)
    assert [c.operator for c in presence.attached(ws, now=104.9)] == ["alice", "bob"]
    assert [c.operator for c in presence.attached(ws, now=105.5)] == ["bob"]  # alice: 5.5 s silent
    assert presence.beat(ws, quiet, "alice", now=105.6)
    assert [c.operator for c in presence.attached(ws, now=105.7)] == ["alice", "bob"]


def test_a_console_whose_process_is_gone_is_not_shown(tmp_path):
    ws = Workspace(tmp_path)
    code = ("import sys; from keyshift.core.store import presence; from keyshift.core.store.workspace import Workspace;"
            "print(presence.register(Workspace(sys.argv[1]), 'dead', 'terminal'))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, capture_output=True, text=True)
    dead = int(done.stdout)
    row = ws.connect().execute("SELECT pid FROM consoles WHERE id = ?", (dead,)).fetchone()
    assert row is not None  # its row is fresh: only the process check hides it
    assert presence.attached(ws) == []


def test_leaving_and_sweeping(tmp_path):
    ws = Workspace(tmp_path)
    me = presence.register(ws, "alice", "terminal")
    presence.unregister(ws, me)
    assert presence.attached(ws) == [] and not presence.beat(ws, me, "alice")  # gone: register again
    old = presence.register(ws, "killed long ago", "terminal", now=time.time() - presence.SWEEP_S - 10)
    presence.register(ws, "bob", "terminal")
    assert ws.connect().execute("SELECT count(*) FROM consoles WHERE id = ?", (old,)).fetchone()[0] == 0


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="terminal, browser"):
        presence.register(Workspace(tmp_path), "alice", "carrier pigeon")
