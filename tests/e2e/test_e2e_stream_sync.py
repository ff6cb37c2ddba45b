"""``keyshift stream-sync`` end to end: plan, restore, replay and verify with the real command line.

The source table has a NEW_AND_OLD_IMAGES stream from before the dump (design (a)); after the
dump, the source keeps changing (an update, a delete, a new order, one write to a dropped
identifier). restore writes the dump's version; stream-sync replays the stream from its trim horizon
and verify finds the tables equal. A second round of writes is picked up from the checkpoint, and
``--follow`` stops cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from keyshift.console.demo_data import item_line
from keyshift.core.migrate.stream.sync import latest_stream_sync, watermark
from keyshift.core.store.workspace import Workspace
from test_e2e_verify import SPEC  # orders -> orders_v2, no reference data

pytestmark = pytest.mark.e2e


def create_orders(ddb) -> None:
    """The old table, ``orders`` (customer, order_id), with a NEW_AND_OLD_IMAGES stream from now on."""
    ddb.create_table(
        TableName="orders", BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "order_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                              {"AttributeName": "order_id", "AttributeType": "S"}])


def _key(customer: str, order: str) -> dict:
    return {"customer": {"S": customer}, "order_id": {"S": order}}


class Pipeline:
    def __init__(self, tmp: Path, env: dict, clients, run_cli) -> None:
        self.tmp, self.env, self.ddb, self.run_cli = tmp, env, clients.dynamodb, run_cli
        self.spec_path = tmp / "keyshift.toml"
        self.spec_path.write_text(SPEC, encoding="utf-8")
        self.workspace = tmp / ".keyshift"

    def argv(self, *args: str) -> list[str]:
        return ["--spec", str(self.spec_path), "--workspace", str(self.workspace), *args]

    def run(self, *args: str, timeout: float = 60):
        return self.run_cli(self.argv(*args), self.env, self.tmp, timeout)

    def put(self, customer: str, order: str, **attrs: dict) -> None:
        self.ddb.put_item(TableName="orders", Item={**_key(customer, order), **attrs})


@pytest.fixture
def pipeline(aws_env, boto_clients, tmp_path, run_cli) -> Pipeline:
    p = Pipeline(tmp_path, aws_env, boto_clients, run_cli)
    create_orders(p.ddb)
    for i in range(60):
        p.put(f"CUST-{i % 6}", f"ORD-{i:03d}", total={"N": str(i)}, sig={"B": bytes([i])})
    for i in range(3):
        p.put("  Globex\u00a0", f"ORD-G{i}", total={"N": "7"})
    p.put("Acme", "ORD-A0")
    p.put("Acme\u200b", "ORD-A1")
    dump = tmp_path / "dump.json"  # what a scan-based dump script writes (binary in base64)
    items = [i for page in p.ddb.get_paginator("scan").paginate(TableName="orders") for i in page["Items"]]
    dump.write_bytes(b"".join(item_line(i) + b"\n" for i in items))
    assert p.run("plan", "--dump", str(dump), "--format", "ddbjson", "--json").json()["records"] == 65
    # Acme / Acme+ZWSP stay an open case: their items are skipped by restore and replay alike.
    return p


def test_restore_then_replay_from_the_trim_horizon_then_from_the_checkpoint(pipeline):
    p = pipeline
    # The source moves on after the dump: the replay must carry all of it over.
    p.put("CUST-1", "ORD-001", total={"N": "1001"})                       # update
    p.ddb.delete_item(TableName="orders", Key=_key("CUST-2", "ORD-002"))  # delete
    p.put("CUST-3", "ORD-NEW", total={"N": "5"})                           # insert
    p.put("Acme", "ORD-A0", total={"N": "9"})                              # an open case's identifier

    restored = p.run("restore", "--create-table", "--allow-unresolved", "--json").json()
    assert restored["written"] == 63  # the dump's version: 65 lines, the open case's 2 left out
    r = p.run("verify", "--json")
    assert r.returncode == 1  # the restore alone is behind the live table
    doc = json.loads(r.stdout)
    assert (doc["missing"], doc["extra"], doc["different"]) == (1, 1, 1)

    synced = p.run("stream-sync", "--allow-unresolved", "--json").json()
    assert synced["origin"] == "trim-horizon" and synced["caught_up"] and synced["state"] == "complete"
    assert synced["records"] == 69 and synced["deletes"] == 1
    assert synced["skipped"] == {} and synced["held"] == 3  # Acme's two puts and Acme+ZWSP's one, held
    assert synced["unmapped"] == 3 and synced["lag_seconds"] == 0
    r = p.run("verify", "--json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["compared"] == 63

    p.put("CUST-4", "ORD-004", total={"N": "4004"})
    p.ddb.delete_item(TableName="orders", Key=_key("  Globex\u00a0", "ORD-G1"))
    again = p.run("stream-sync", "--allow-unresolved", "--json").json()
    assert again["origin"] == f"checkpoint of run {synced['run_id']}"
    assert (again["records"], again["puts"], again["deletes"]) == (2, 1, 1)  # this run's own counts
    assert p.run("verify", "--json").returncode == 0

    # --restart replays everything again: idempotent, the same table.
    replayed = p.run("stream-sync", "--restart", "--allow-unresolved", "--json").json()
    assert replayed["origin"] == "trim-horizon" and replayed["records"] == 71
    assert p.run("verify", "--json").returncode == 0

    audit = p.run("audit", "--json", "--limit", "50").json()
    assert {"stream-sync.start", "stream-sync.complete"} <= {e["action"] for e in audit}


def test_follow_stops_cleanly_on_sigterm_with_its_checkpoint(pipeline, spawn_cli):
    p = pipeline
    p.run("restore", "--create-table", "--allow-unresolved", "--json").json()
    proc = spawn_cli(p.argv("stream-sync", "--follow", "--allow-unresolved", "--json"), p.env, p.tmp)
    try:
        ws = Workspace(p.workspace, read_only=True)

        def caught_up_after(moment: float) -> bool:
            run = latest_stream_sync(ws)
            return run is not None and (watermark(run)["caught_up_at"] or 0) > moment

        deadline = time.monotonic() + 30
        while not caught_up_after(0):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        written_at = time.time()
        p.put("CUST-5", "ORD-005", total={"N": "5005"})
        while not caught_up_after(written_at + 0.01):
            assert time.monotonic() < deadline, "the follower did not pick up the new write"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    assert summary["state"] == "stopped" and summary["caught_up"]
    assert latest_stream_sync(ws).state == "stopped"
    item = p.ddb.get_item(TableName="orders_v2", Key={"customer_id": {"S": "CUST-5"}, "order_id": {"S": "ORD-005"}},
                          ConsistentRead=True)["Item"]
    assert item["total"] == {"N": "5005"}
    assert p.run("verify", "--json").returncode == 0


def test_a_stream_enabled_after_the_dump_is_refused_unless_the_gap_is_accepted(world, boto_clients):
    """The demo-data export says exportTime 2024-06-11; the table's stream is created now."""
    world.run("plan", "--dump", world.export_uri, "--json").json()
    create_orders(boto_clients.dynamodb)
    world.run("restore", "--create-table", "--allow-unresolved", "--json").json()
    refused = world.run("stream-sync", "--allow-unresolved", "--json")
    assert refused.returncode == 2
    assert "after the dump's point in time 2024-06-11T09:30:00+00:00" in refused.message
    assert "more than 24 hours ago" in refused.message and "--accept-gap" in refused.message
    accepted = world.run("stream-sync", "--allow-unresolved", "--accept-gap", "--json").json()
    assert accepted["origin"] == "trim-horizon" and accepted["caught_up"]
    gaps = [w for w in accepted["warnings"] if "still open" not in w]  # --allow-unresolved: said too
    assert len(gaps) == 2 and all(w.startswith("accepted: ") for w in gaps)


def test_restore_warns_before_it_starts_when_a_replay_could_not_complete_it(world, boto_clients):
    """No source table yet, then one whose stream began after the export: said by restore, up front."""
    world.run("plan", "--dump", world.export_uri, "--json").json()
    first = world.run("restore", "--create-table", "--allow-unresolved", "--json")
    assert first.returncode == 0
    assert any("cannot describe source table 'orders'" in w for w in first.json()["warnings"])
    create_orders(boto_clients.dynamodb)
    again = world.run("restore", "--allow-non-empty", "--allow-unresolved", "--json")
    warnings = again.json()["warnings"]
    assert any("case(s) are still open: their items will not be written" in w for w in warnings)  # --allow-unresolved
    stream = [w for w in warnings if "still open" not in w]
    assert len(stream) == 2 and all(w.startswith("stream sync will refuse to replay: ") for w in stream)
    assert "warning: stream sync will refuse" in again.message
