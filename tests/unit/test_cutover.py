"""Cut-over pieces without AWS: the gates read from the run ledger, the control table codecs, the spec keys."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from keyshift.core.cutover import gates as g
from keyshift.core.cutover.control_table import ApprovalRequest, FlagState, HistoryEntry, decode, encode, parse_iso, iso
from keyshift.core.errors import SpecError
from keyshift.core.resolve.keymap_build import latest_keymap_version
from keyshift.core.spec import parse_spec
from keyshift.core.store import runs
from keyshift.core.store.workspace import Workspace

BASE = """
[source]
table = "orders"
partition_key = "customer"

[target]
table = "orders_v2"
partition_key = "customer_id"

[control]
flag = "orders-cutover"
"""


def _run(ws, kind, *, keymap="v1", state="complete", summary=None, units=None):
    with ws.transaction() as conn:
        run_id = runs.start(conn, kind, operator="t", keymap=keymap, params={})
        for name, position in (units or {}).items():
            runs.checkpoint(conn, run_id, name, position=position)
        if state != "running":
            runs.finish(conn, run_id, state, summary or {})
    return run_id


def _keymap(ws, version):
    with ws.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO keymaps(version, built_at, operator, location, summary)"
                     " VALUES (?, '2026-01-01T00:00:00', 't', NULL, '{}')", (version,))


def test_spec_control_keys_defaults_and_errors():
    control = parse_spec(BASE).control
    assert (control.table, control.shadow_sample, control.max_lag_seconds, control.require_approval,
            control.approval_ttl_minutes, control.router_window_minutes) == ("keyshift-control", 0.01, 5.0, False, 30.0, 5.0)
    custom = parse_spec(BASE + "shadow_sample = 0.5\nmax_lag_seconds = 2\nrequire_approval = true\n"
                               "approval_ttl_minutes = 10\nrouter_window_minutes = 1\n").control
    assert (custom.shadow_sample, custom.max_lag_seconds, custom.require_approval, custom.approval_ttl_minutes,
            custom.router_window_minutes) == (0.5, 2.0, True, 10.0, 1.0)
    for bad, named in (("shadow_sample = 2", "control.shadow_sample"), ("require_approval = 'yes'", "control.require_approval"),
                       ("max_lag_seconds = -1", "control.max_lag_seconds"), ("approval_ttl_minutes = 0", "control.approval_ttl_minutes"),
                       ("router_window = 3", "control.router_window")):
        with pytest.raises(SpecError, match=named.replace(".", r"\.")):
            parse_spec(BASE + bad + "\n")


def test_latest_keymap_version(tmp_path):
    ws = Workspace(tmp_path)
    assert latest_keymap_version(ws) is None
    _keymap(ws, "k1")
    _keymap(ws, "k2")
    assert latest_keymap_version(ws) == "k2"
    _keymap(ws, "k1")  # rebuilt: the newest again
    assert latest_keymap_version(ws) == "k1"


def test_verify_gate_follows_the_ledger(tmp_path):
    ws = Workspace(tmp_path)
    _keymap(ws, "v1")
    assert "no verify run" in g._verify(ws).detail
    _run(ws, "verify", summary={"equal": True})
    assert "no complete restore" in g._verify(ws).detail
    _run(ws, "restore")
    gate = g._verify(ws)
    assert not gate.ok and "older than the last restore" in gate.detail
    _run(ws, "verify", summary={"equal": False, "missing": 2, "extra": 0, "different": 1})
    gate = g._verify(ws)
    assert not gate.ok and "2 missing, 0 extra, 1 different" in gate.detail
    _run(ws, "verify", keymap="v0", summary={"equal": True})
    gate = g._verify(ws)
    assert not gate.ok and "used keymap v0, the keymap in force is v1" in gate.detail
    _run(ws, "verify", state="running")
    assert "is running, not complete" in g._verify(ws).detail
    _run(ws, "verify", summary={"equal": True, "compared": 7})
    gate = g._verify(ws)
    assert gate.ok and "7 compared" in gate.detail


def test_forward_sync_gate_needs_a_live_run_under_the_lag(tmp_path):
    ws = Workspace(tmp_path)
    assert "no stream sync run" in g._forward_sync(ws, 5).detail
    _run(ws, "stream-sync", state="stopped", units={"_watermark": {"lag_seconds": 0, "measured_at": time.time()}})
    assert "is stopped, not following" in g._forward_sync(ws, 5).detail
    _run(ws, "stream-sync", state="running", units={"_watermark": {"lag_seconds": 9.0, "measured_at": time.time()}})
    gate = g._forward_sync(ws, 5)
    assert not gate.ok and "lag 9.0 s over 5 s" in gate.detail
    _run(ws, "stream-sync", state="running", units={"_watermark": {"lag_seconds": 1.5, "measured_at": time.time()}})
    assert g._forward_sync(ws, 5).ok


def test_reverse_gate_caught_up_or_accepted(tmp_path):
    ws = Workspace(tmp_path)
    spec = parse_spec(BASE)
    gate = g._reverse_caught_up(ws, spec, None, accept_loss=False)
    assert not gate.ok and gate.remedy == "follow-reverse" and "--" not in gate.detail  # no CLI flag: each front end words the remedy
    accepted = g._reverse_caught_up(ws, spec, None, accept_loss=True)
    assert accepted.ok and "loss ACCEPTED" in accepted.detail
    now = time.time()
    _run(ws, "reverse-sync", state="running", units={"_watermark": {"lag_seconds": 3, "caught_up_at": now - 10}})
    newest = SimpleNamespace(newest_at=now - 5)
    assert not g._reverse_caught_up(ws, spec, newest, accept_loss=False).ok  # a record after its catch-up
    assert g._reverse_caught_up(ws, spec, SimpleNamespace(newest_at=now - 20), accept_loss=False).ok
    _run(ws, "reverse-sync", state="running", units={"_watermark": {"lag_seconds": 0}})
    assert g._reverse_caught_up(ws, spec, newest, accept_loss=False).ok


@pytest.mark.parametrize(("src", "dst", "kind"), [("old", "new", "forward"), ("shadow", "new", "forward"),
                                                  ("new", "old", "back"), ("shadow", "old", "back"),
                                                  ("new", "shadow", "back"), ("old", "shadow", "shadow")])
def test_flip_kinds(src, dst, kind):
    assert g.flip_kind(src, dst) == kind


def test_codecs_round_trip():
    state = FlagState("f", "new", 3, "a", "b", "alice", iso(), "why", True, 0.25,
                      {"old": {"s1": "100"}, "new": {}}, "s3://k/m.json", "v9")
    assert FlagState.from_item("f", state.item()) == state
    entry = HistoryEntry(4, "new", "old", "bob", iso(), "back", False, [{"name": "x", "ok": True, "detail": ""}],
                         {"old": {}, "new": {"s": "1"}}, "alice", True)
    assert HistoryEntry.from_item(entry.item("f")) == entry
    req = ApprovalRequest("ab12", "new", "r", "alice", iso(), iso(time.time() - 1), "pending", False, 2)
    back = ApprovalRequest.from_item({"sk": {"S": "request#ab12"}, **req.item("f")})
    assert back == req and back.effective_state(time.time()) == "expired"
    assert decode(encode({"n": 5, "f": 0.5, "b": False, "s": "x", "none": None})) == {"n": 5, "f": 0.5, "b": False, "s": "x"}
    assert abs(parse_iso("2026-01-01T00:00:00Z") - parse_iso("2026-01-01T00:00:00+00:00")) == 0


def test_every_gate_remedy_is_worded_by_both_front_ends():
    """A remedy code without words would show a failed gate with no way out in one front end."""
    from keyshift.console.cli_flag import GATE_REMEDIES as CLI_WORDS
    from keyshift.screens.cutover_screen import GATE_REMEDIES as CONSOLE_WORDS

    assert set(CLI_WORDS) == set(g.REMEDIES) == set(CONSOLE_WORDS)
    assert not any(w.startswith("keyshift ") or " --" in w for w in CONSOLE_WORDS.values())  # keys, never flags
