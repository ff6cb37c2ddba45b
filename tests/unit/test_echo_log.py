"""The workspace's write log: the EchoLog of the local replays (same semantics as MemoryEchoLog)."""

import time

import pytest

from keyshift.core.kernel.echo import MemoryEchoLog, item_digest, key_json
from keyshift.core.migrate.stream.echo_log import KEEP_S, SETTLE_S, WorkspaceEchoLog, write_note
from keyshift.core.store.workspace import Workspace

KEY = {"pk": {"S": "Acme"}, "sk": {"S": "o1"}}
ITEM = {**KEY, "tags": {"SS": ["b", "a"]}, "blob": {"B": "AQID"}}


@pytest.mark.parametrize("make", [lambda ws: WorkspaceEchoLog(ws), lambda ws: MemoryEchoLog()])
def test_a_note_matches_the_other_direction_once(tmp_path, make):
    log = make(Workspace(tmp_path / "ws"))
    log.note("reverse", "old", [write_note(KEY, ITEM), write_note(KEY, None)])
    # The stream shows sets in another order and binary as bytes: the same write.
    record = key_json(KEY), item_digest({**KEY, "tags": {"SS": ["a", "b"]}, "blob": {"B": b"\x01\x02\x03"}})
    assert not log.is_echo("reverse", "old", *record)  # its own write is not an echo to itself
    assert not log.is_echo("forward", "new", *record)  # another table
    assert log.is_echo("forward", "old", *record)
    assert not log.is_echo("forward", "old", *record)  # consumed
    assert log.is_echo("forward", "old", key_json(KEY), "REMOVE")


def test_notes_expire_once_the_reader_has_passed_them_and_are_pruned(tmp_path):
    ws = Workspace(tmp_path / "ws")
    log = WorkspaceEchoLog(ws)
    log.note("forward", "new", [write_note(KEY, ITEM)])
    assert log.expire("reverse", "new", time.time()) == 0  # too fresh: its record may still come
    assert log.expire("reverse", "new", time.time() + SETTLE_S + 1) == 1
    assert log.pending() == 0
    log.note("forward", "new", [write_note(KEY, ITEM)])
    with ws.transaction() as conn:
        conn.execute("UPDATE echo_notes SET at = at - ?", (KEEP_S + 1,))
    log._pruned = 0.0
    log.note("forward", "new", [write_note(KEY, None)])  # a note prunes what is older than 48 h
    assert log.pending("forward") == 1
    with pytest.raises(ValueError):
        log.note("sideways", "new", [])
