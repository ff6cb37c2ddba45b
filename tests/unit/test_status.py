"""The migration's status, computed from state (keyshift.core.status): every step's every state."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from keyshift.core.status import STATES, Facts, RunFacts, next_step, read_facts, steps
from keyshift.core.store.schema import utcnow
from keyshift.core.store.workspace import Workspace
from keyshift.core.text.plural import count, plural, possessive
from keyshift.screens.actions import ACTIONS

PLANNED = {"plan_state": "complete", "plan_summary": {"records": 344, "quarantined": 6}}
DONE_RUN = RunFacts("complete", keymap="v1", summary={"written": 344})
EQUAL = RunFacts("complete", summary={"equal": True})


def _step(facts: Facts, key: str):
    return next(s for s in steps(facts) if s.key == key)


def _built(**more) -> Facts:
    """Planned, every case decided, keymap v1 built."""
    return Facts(**PLANNED, cases={"ambiguous": 2}, open_cases={"ambiguous": 0}, keymap_version="v1",
                 keymap_summary={"entries": 340}, **more)


def test_nothing_planned_says_plan_and_every_later_step_waits():
    statuses = steps(Facts())
    assert [s.key for s in statuses] == ["plan", "resolve", "keymap", "restore", "stream-sync", "verify", "cutover"]
    assert statuses[0].state == "not-started" and statuses[0].next == "plan"
    assert all(s.state == "not-started" for s in statuses[1:])
    assert next_step(statuses).key == "plan"


@pytest.mark.parametrize("state, expected", [("running", "running"), ("failed", "blocked"), ("cancelled", "blocked")])
def test_an_unfinished_plan_is_running_or_blocked(state, expected):
    plan = _step(Facts(plan_state=state), "plan")
    assert plan.state == expected
    assert (plan.next == "plan") == (expected == "blocked")
    assert state in plan.why or expected == "running"


def test_open_cases_block_the_keymap_and_are_counted_as_cases_by_kind_suspicious_included():
    facts = Facts(**PLANNED, cases={"ambiguous": 4, "conflict": 2, "suspicious": 1, "unmapped": 1},
                  open_cases={"ambiguous": 3, "conflict": 1, "suspicious": 1, "unmapped": 1})
    resolve, keymap, restore = (_step(facts, k) for k in ("resolve", "keymap", "restore"))
    assert resolve.state == "running" and resolve.next == "open_queue"
    assert resolve.why == "6 open cases of 8: 3 ambiguous, 1 conflict, 1 suspicious, 1 unmapped"
    # An open unmapped case holds only its stream records: it does not block the keymap.
    assert keymap.state == "blocked" and keymap.why == "5 open cases must be decided first"
    assert keymap.next == "open_queue" and restore.state == "blocked"
    assert next_step(steps(facts)).key == "resolve"


def test_no_case_decided_yet_is_ready_and_one_open_case_is_singular():
    facts = Facts(**PLANNED, cases={"orphaned": 1}, open_cases={"orphaned": 1})
    resolve = _step(facts, "resolve")
    assert resolve.state == "ready" and resolve.why == "1 open case of 1: 1 orphaned"


def test_nothing_to_decide_then_keymap_ready_then_done_then_stale():
    facts = Facts(**PLANNED)
    assert _step(facts, "resolve").state == "done"
    keymap = _step(facts, "keymap")
    assert keymap.state == "ready" and keymap.next == "open_keymap"
    assert next_step(steps(facts)).key == "keymap"
    built = _built()
    assert _step(built, "keymap").state == "done" and _step(built, "keymap").why == "version v1: 340 entries"
    stale = _built(keymap_stale=True)
    assert _step(stale, "keymap").state == "ready" and "changed since version v1" in _step(stale, "keymap").why


def test_restore_every_state():
    assert _step(Facts(**PLANNED), "restore").state == "not-started"  # no keymap yet
    ready = _step(_built(), "restore")
    assert ready.state == "ready" and ready.next == "open_restore"
    running = _step(_built(restore=RunFacts("running", alive=True)), "restore")
    assert running.state == "running"
    died = _step(_built(restore=RunFacts("running", alive=False)), "restore")
    assert died.state == "blocked" and "resume" in died.why
    cancelled = _step(_built(restore=RunFacts("cancelled")), "restore")
    assert cancelled.state == "ready" and "checkpoint" in cancelled.why
    done = _step(_built(restore=DONE_RUN), "restore")
    assert done.state == "done" and done.why == "344 items written"
    old_keymap = _step(_built(restore=RunFacts("complete", keymap="v0", summary={"written": 1})), "restore")
    assert old_keymap.state == "ready" and "keymap v0" in old_keymap.why


def test_stream_sync_every_state():
    assert _step(_built(), "stream-sync").state == "not-started"
    assert _step(_built(restore=DONE_RUN), "stream-sync").state == "ready"
    assert _step(_built(stream_sync=RunFacts("running", alive=True)), "stream-sync").state == "running"
    assert _step(_built(stream_sync=RunFacts("running", alive=False)), "stream-sync").state == "blocked"
    assert _step(_built(stream_sync=RunFacts("failed")), "stream-sync").state == "blocked"
    assert _step(_built(stream_sync=RunFacts("complete")), "stream-sync").state == "done"
    assert _step(_built(stream_sync=RunFacts("cancelled")), "stream-sync").state == "ready"


def test_verify_every_state():
    assert _step(_built(), "verify").state == "not-started"
    base = {"restore": DONE_RUN}
    assert _step(_built(**base), "verify").state == "ready"
    assert _step(_built(**base, verify=RunFacts("running", alive=True)), "verify").state == "running"
    assert _step(_built(**base, verify=EQUAL), "verify").state == "done"
    diff = _step(_built(**base, verify=RunFacts("complete", summary={"equal": False, "missing": 1})), "verify")
    assert diff.state == "blocked" and diff.why.startswith("1 difference found") and diff.next == "open_verify"
    assert _step(_built(**base, verify=RunFacts("failed")), "verify").state == "ready"


def test_cutover_every_state_and_nothing_left_once_on_new_with_reverse_sync():
    assert _step(_built(restore=DONE_RUN), "cutover").state == "not-started"
    ready = _step(_built(restore=DONE_RUN, verify=EQUAL), "cutover")
    assert ready.state == "ready" and ready.next == "open_cutover"
    on_new = _built(restore=DONE_RUN, verify=EQUAL, stream_sync=RunFacts("complete"), flag="new")
    assert _step(on_new, "cutover").state == "done" and "start reverse sync" in _step(on_new, "cutover").why
    reverse = _built(restore=DONE_RUN, verify=EQUAL, stream_sync=RunFacts("complete"), flag="new",
                     reverse_sync=RunFacts("running", alive=True))
    assert next_step(steps(reverse)) is None
    back = _built(restore=DONE_RUN, verify=EQUAL, flag="old", reverse_sync=RunFacts("running", alive=True))
    assert "flipped back" in _step(back, "cutover").why


def test_every_state_and_next_action_is_known_to_the_console():
    actions = {a.action for a in ACTIONS}
    worlds = [Facts(), Facts(plan_state="failed"), Facts(**PLANNED, cases={"conflict": 1}, open_cases={"conflict": 1}),
              Facts(**PLANNED), _built(), _built(restore=DONE_RUN), _built(restore=DONE_RUN, verify=EQUAL),
              _built(restore=DONE_RUN, verify=EQUAL, flag="new")]
    for facts in worlds:
        for status in steps(facts):
            assert status.state in STATES
            assert status.next is None or status.next in actions, status
            assert not re.search(r"--|keyshift ", status.why), status  # never a CLI instruction


def test_read_facts_from_a_workspace(tmp_path: Path):
    ws = Workspace(tmp_path / "ws")
    assert read_facts(ws) == Facts()  # empty: nothing planned, no runs, no flag
    with ws.transaction() as conn:
        conn.execute("INSERT INTO plans(dump_uri, rules, spec, operator, started_at, finished_at, state, summary)"
                     " VALUES ('d', '[]', '{}', 'alice', ?, ?, 'complete', ?)",
                     ("2024-05-01T09:00:00+00:00", "2024-05-01T09:00:02+00:00", json.dumps(PLANNED["plan_summary"])))
        conn.execute("INSERT INTO cases(id, kind, title, candidates, ord) VALUES ('c1', 'ambiguous', 't', '[]', 1),"
                     " ('c2', 'suspicious', 't', '[]', 2)")
        conn.execute("INSERT INTO decisions(case_id, kind, action, reason, operator, ts)"
                     " VALUES ('c1', 'ambiguous', 'same', 'r', 'alice', ?)", (utcnow(),))
        conn.execute("INSERT INTO keymaps(version, built_at, operator, summary) VALUES ('v1', ?, 'alice', ?)",
                     ("2024-05-01T09:00:03+00:00", json.dumps({"entries": 3})))
        ws.audit("alice", "flag.flip", {"from": "old", "to": "new"})
    facts = read_facts(ws)
    assert facts.cases == {"ambiguous": 1, "suspicious": 1}
    assert facts.open_cases == {"ambiguous": 0, "suspicious": 1}
    assert facts.keymap_version == "v1" and facts.keymap_stale  # the decision came after the build
    assert facts.flag == "new"
    assert _step(facts, "keymap").state == "blocked"


def test_plural_and_possessive():
    assert count(1, "unusable reference row") == "1 unusable reference row"
    assert count(2, "row") == "2 rows" and count(1200, "entry") == "1,200 entries"
    assert plural(2, "mismatch") == "mismatches" and plural(0, "case") == "cases"
    assert possessive("orders") == "orders'" and possessive("customers_v2") == "customers_v2's"
