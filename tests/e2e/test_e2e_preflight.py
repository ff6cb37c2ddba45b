"""The preflights: one set of checks per step, the same for the CLI and the console."""

from __future__ import annotations

import pytest

from keyshift.core.migrate.preflight import PreflightError, restore_preflight, stream_sync_preflight, verify_preflight
from keyshift.core.spec import load_spec
from keyshift.core.store.workspace import Workspace
from test_e2e_stream_sync import create_orders

pytestmark = pytest.mark.e2e


def codes(pre):
    return sorted(b.code for b in pre.blockers)


def test_restore_preflight_blockers_and_warnings(world, boto_clients):
    ddb, streams = boto_clients.dynamodb, boto_clients.dynamodbstreams
    spec = load_spec(world.spec_path)
    world.run("plan", "--dump", world.export_uri, "--json").json()
    ws = Workspace(world.workspace)
    pre = restore_preflight(ws, spec, ddb, streams)
    assert codes(pre) == ["no-table", "open-cases"] and not pre.ok
    assert pre.target_exists is False and pre.build is not None and pre.plan.state == "complete"
    assert any("cannot describe source table 'orders'" in w for w in pre.warnings)  # no stream to replay
    assert all("--" not in b.message for b in pre.blockers)  # no front end's flags in the messages
    lifted = restore_preflight(ws, spec, ddb, streams, allow_unresolved=True, create_table=True)
    assert lifted.ok and any("still open" in w for w in lifted.warnings)
    with pytest.raises(PreflightError, match=r"does not exist \(pass --create-table\)"):
        pre.raise_if_blocked({"no-table": "pass --create-table"})
    resume = restore_preflight(ws, spec, ddb, streams, resume=True, allow_unresolved=True)
    assert codes(resume) == ["no-table", "nothing-to-resume"]
    world.run("restore", "--create-table", "--allow-unresolved", "--json").json()
    again = restore_preflight(ws, spec, ddb, streams, allow_unresolved=True)
    assert codes(again) == ["not-empty"] and again.target_empty is False
    assert restore_preflight(ws, spec, ddb, streams, allow_unresolved=True, allow_non_empty=True).ok
    assert codes(restore_preflight(ws, spec, ddb, streams, allow_unresolved=True, via_import=True)) == ["table-exists"]


def test_stream_sync_and_verify_preflights(world, boto_clients):
    ddb = boto_clients.dynamodb
    spec = load_spec(world.spec_path)
    ws_path = world.workspace
    world.run("plan", "--dump", world.export_uri, "--json").json()
    ws = Workspace(ws_path)
    assert codes(stream_sync_preflight(ws, spec, ddb)) == ["no-stream", "open-cases"]
    assert codes(verify_preflight(ws, spec, ddb)) == ["no-table", "no-table"]
    create_orders(ddb)
    pre = stream_sync_preflight(ws, spec, ddb, allow_unresolved=True)
    assert pre.ok and any("no restore has completed" in w for w in pre.warnings)
    assert codes(verify_preflight(ws, spec, ddb, resume=True)) == ["no-table", "nothing-to-resume"]
