"""Identifiers first seen on the stream, end to end with the real command line and the moto server.

After the plan and the restore, services write a new dirty spelling of an existing customer
(``'ACME\\u200b Corp'`` when ``'ACME Corp'`` exists) and a wholly new one (``'Initech'``). The
replay holds their records durably (nothing lost across a SIGKILL), ``resolve list --kind
unmapped`` shows them with their canonical form and collisions, the decisions go into a new
keymap, and the next replay continues its checkpoint, applies the held records in sequence order
and verify is clean. In ``rule`` mode the first is mapped automatically and the second held.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from keyshift.console.demo_data import item_line
from keyshift.core.migrate.stream import held
from keyshift.core.migrate.stream.sync import latest_stream_sync, run_stream_sync, sync_lag, watermark
from keyshift.core.progress import run_to_completion
from keyshift.core.resolve.keymap_build import build_keymap
from keyshift.core.spec import load_spec
from keyshift.core.store.workspace import Workspace
from test_e2e_stream_sync import create_orders

pytestmark = pytest.mark.e2e

SPEC = """\
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"

[target]
table = "orders_v2"
partition_key = "customer_id"
"""
DIRTY = "ACME\u200b Corp"


class Migration:
    def __init__(self, tmp: Path, env: dict, clients, run_cli, spec: str) -> None:
        self.tmp, self.env, self.ddb, self.run_cli = tmp, env, clients.dynamodb, run_cli
        self.streams = clients.dynamodbstreams
        self.spec_path = tmp / "keyshift.toml"
        self.spec_path.write_text(spec, encoding="utf-8")
        self.workspace = tmp / ".keyshift"

    def argv(self, *args: str) -> list[str]:
        return ["--spec", str(self.spec_path), "--workspace", str(self.workspace), *args]

    def run(self, *args: str, timeout: float = 60):
        return self.run_cli(self.argv(*args), self.env, self.tmp, timeout)

    def put(self, customer: str, order: str, total: int) -> None:
        self.ddb.put_item(TableName="orders", Item={"customer": {"S": customer}, "order_id": {"S": order},
                                                    "total": {"N": str(total)}})

    def delete(self, customer: str, order: str) -> None:
        self.ddb.delete_item(TableName="orders", Key={"customer": {"S": customer}, "order_id": {"S": order}})

    def target(self, new_id: str, order: str) -> dict | None:
        return self.ddb.get_item(TableName="orders_v2", ConsistentRead=True,
                                 Key={"customer_id": {"S": new_id}, "order_id": {"S": order}}).get("Item")

    def cases(self) -> dict[str, dict]:
        return {c["members"][0]["raw"]: c for c in self.run("resolve", "list", "--kind", "unmapped", "--json").json()}


def _migration(tmp_path, aws_env, boto_clients, run_cli, spec: str = SPEC) -> Migration:
    m = Migration(tmp_path, aws_env, boto_clients, run_cli, spec)
    create_orders(m.ddb)
    for i in range(3):
        m.put("ACME Corp", f"ORD-{i}", i)
    for i in range(4):
        m.put(f"CUST-{i}", f"ORD-C{i}", 10 + i)
    dump = tmp_path / "dump.json"
    items = [i for page in m.ddb.get_paginator("scan").paginate(TableName="orders") for i in page["Items"]]
    dump.write_bytes(b"".join(item_line(i) + b"\n" for i in items))
    assert m.run("plan", "--dump", str(dump), "--format", "ddbjson", "--json").json()["records"] == 7
    assert m.run("restore", "--create-table", "--json").json()["written"] == 7
    return m


@pytest.fixture
def migration(tmp_path, aws_env, boto_clients, run_cli) -> Migration:
    return _migration(tmp_path, aws_env, boto_clients, run_cli)


def test_held_records_survive_a_sigkill_are_decided_and_applied_in_order(migration, spawn_cli):
    m = migration
    m.put(DIRTY, "ORD-50", 1)
    m.put(DIRTY, "ORD-50", 2)     # a second version: applied after the first, or the table is wrong
    m.put("Initech", "ORD-60", 6)
    m.put("CUST-1", "ORD-C1", 111)  # a known identifier moves on meanwhile

    proc = spawn_cli(m.argv("stream-sync", "--follow", "--json"), m.env, m.tmp)
    ws = Workspace(m.workspace, read_only=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            run = latest_stream_sync(ws)
            if run is not None and watermark(run)["unmapped"] >= 3:
                break
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)  # no clean stop: the held records must already be safe
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert held.counts(ws)["held"] == 3
    m.put("Initech", "ORD-61", 7)
    m.delete("Initech", "ORD-61")  # a REMOVE is held too, after its INSERT

    resumed = m.run("stream-sync", "--json").json()
    assert resumed["origin"].startswith("checkpoint of run") and resumed["caught_up"]
    assert resumed["unmapped"] == 5 and held.counts(ws)["held"] == 5  # nothing twice, nothing lost
    assert resumed["records"] == (resumed["puts"] + resumed["deletes"] + sum(resumed["skipped"].values())
                                  + resumed["held"])
    assert resumed["lag_seconds"] == 0 and resumed["iterator_age_seconds"] == 0  # caught up, idle
    assert [s["done"] for s in resumed["shards"]] == [False] and resumed["shards"][0]["sequence"]
    assert m.target("ACME Corp", "ORD-50") is None  # held, not guessed
    assert m.target("CUST-1", "ORD-C1")["total"] == {"N": "111"}

    cases = m.cases()
    assert set(cases) == {DIRTY, "Initech"} and all(c["status"] == "open" for c in cases.values())
    acme = cases[DIRTY]
    assert acme["canonical"] == "ACME Corp" and acme["candidates"] == ["ACME Corp"]
    assert acme["collisions"] == [{"raw": "ACME Corp", "raw_escaped": "ACME Corp", "new_id": "ACME Corp",
                                   "status": "unchanged"}]
    assert acme["members"][0]["raw_escaped"] == "ACME\\u200b Corp" and acme["held"]["held"] == 2
    assert cases["Initech"]["collisions"] == [] and cases["Initech"]["held"]["held"] == 3

    # Open unmapped cases block nothing (no dump items; their records wait): they are unresolved.
    assert m.run("keymap", "build", "--json").json()["unresolved"] == 2
    r = m.run("resolve", "decide", acme["id"], "map", "--id", "ACME Corp", "--reason", "typo")
    assert r.returncode == 2 and "already the new id of" in r.message  # that is `same`, not `map`
    assert m.run("resolve", "decide", acme["id"], "same", "--raw", "ACME Corp", "--reason", "same customer",
                 "--json").json()["payload"] == {"id": "ACME Corp", "raw": "ACME Corp"}
    assert m.run("resolve", "decide", cases["Initech"]["id"], "map", "--id", "Initech", "--reason", "new customer",
                 "--json").returncode == 0
    built = m.run("keymap", "build", "--json").json()
    assert built["entries"] == 7  # ACME Corp and CUST-0..3, plus the two decided

    applied = m.run("stream-sync", "--json").json()
    assert applied["origin"] == f"checkpoint of run {resumed['run_id']}"  # no restore needed
    assert applied["held_applied"] == 5 and applied["unmapped"] == 0 and applied["records"] == 0
    assert m.target("ACME Corp", "ORD-50")["total"] == {"N": "2"}  # the newer version, last
    assert m.target("Initech", "ORD-60")["total"] == {"N": "6"}
    assert m.target("Initech", "ORD-61") is None  # its INSERT, then its REMOVE
    assert held.counts(ws) == {"held": 0, "applied": 5, "dropped": 0}
    verified = m.run("verify", "--json")
    assert verified.returncode == 0, verified.stdout
    assert {c["status"] for c in m.cases().values()} == {"decided"}


def test_a_dropped_identifier_s_held_records_are_marked_dropped(migration):
    m = migration
    m.put("Initech", "ORD-60", 6)
    assert m.run("stream-sync", "--json").json()["held"] == 1
    case = m.cases()["Initech"]
    assert m.run("resolve", "decide", case["id"], "drop", "--reason", "test data").returncode == 0
    again = m.run("stream-sync", "--json").json()
    assert again["held_dropped"] == 1 and again["unmapped"] == 0
    assert m.target("Initech", "ORD-60") is None
    assert m.run("verify", "--json").returncode == 0


def test_rule_mode_maps_a_new_spelling_of_one_existing_id_and_holds_the_rest(tmp_path, aws_env, boto_clients,
                                                                              run_cli):
    m = _migration(tmp_path, aws_env, boto_clients, run_cli, SPEC + '\n[stream]\nnew_identifiers = "rule"\n')
    m.put(DIRTY, "ORD-50", 5)
    m.put("Initech", "ORD-60", 6)
    m.put("ACME\u00a0Corp", "ORD-1", 99)  # lands on ACME Corp's own ORD-1: a conflict for a person
    synced = m.run("stream-sync", "--json").json()
    assert synced["auto_decided"] == [DIRTY] and synced["held"] == 3 and synced["held_applied"] == 1
    assert synced["unmapped"] == 2
    assert m.target("ACME Corp", "ORD-50")["total"] == {"N": "5"}  # applied in the same run
    assert m.target("ACME Corp", "ORD-1")["total"] == {"N": "1"}  # not overwritten by the look-alike

    cases = m.cases()
    auto = cases[DIRTY]
    assert auto["status"] == "decided" and auto["auto"] is True
    assert auto["decision"]["operator"] == "keyshift:rule" and "exactly one existing new id" in auto["decision"]["reason"]
    assert cases["Initech"]["status"] == "open" and cases["ACME\u00a0Corp"]["status"] == "open"

    m.put(DIRTY, "ORD-51", 8)  # the next run maps it through the new keymap
    next_run = m.run("stream-sync", "--json").json()
    assert next_run["origin"].startswith("checkpoint of run") and next_run["puts"] == 1
    assert m.target("ACME Corp", "ORD-51")["total"] == {"N": "8"}

    # An operator reviews the automatic decision and undoes it: the replay refuses to go on with a
    # keymap that no longer maps what it already wrote.
    assert m.run("resolve", "undo", auto["id"], "--reason", "wrong customer").returncode == 0
    refused = m.run("stream-sync", "--allow-unresolved", "--json")
    assert refused.returncode == 2 and "was applied as 'ACME Corp'" in refused.message


def test_lag_is_positive_while_records_wait_and_zero_once_caught_up(migration, monkeypatch):
    m = migration
    assert m.run("stream-sync", "--json").json()["lag_seconds"] == 0  # caught up: an idle table, no lag
    for i in range(4):
        m.put(f"CUST-{i}", f"ORD-C{i}", 1000 + i)
    time.sleep(2.1)  # creation times are whole seconds: the records are now 2+ s old
    from keyshift.core.migrate.stream import sync

    monkeypatch.setattr(sync, "RECORDS_PER_CALL", 1)  # one record a page: the others wait
    ws = Workspace(m.workspace)
    spec = load_spec(m.spec_path)
    gen = run_stream_sync(ws, spec, build_keymap(ws).keymap, ddb=m.ddb, streams=m.streams, operator="test")
    first = next(gen)
    assert first.records == 1 and first.lag_seconds is not None and first.lag_seconds >= 1.5
    assert first.iterator_age_seconds >= 1.5
    mid = sync_lag(ws)
    assert mid["live"] and mid["lag_seconds"] >= 1.5 and mid["shards"][0]["sequence"] is not None
    summary = run_to_completion(gen)
    assert summary["records"] == 4 and summary["lag_seconds"] == 0
    status = sync_lag(ws)
    assert status["state"] == "complete" and status["lag_seconds"] == 0 and status["unmapped"] == 0
    assert json.loads(json.dumps(status))  # JSON-able, for the gates and --json


def test_records_the_lambda_held_are_collected_once_and_deleted_from_the_hold_table(tmp_path, aws_env,
                                                                                    boto_clients, run_cli):
    spec_text = SPEC + '\n[stream]\nhold_table = "keyshift-held"\n'
    m = _migration(tmp_path, aws_env, boto_clients, run_cli, spec_text)
    m.ddb.create_table(TableName="keyshift-held", BillingMode="PAY_PER_REQUEST",
                       KeySchema=[{"AttributeName": "raw", "KeyType": "HASH"},
                                  {"AttributeName": "seq", "KeyType": "RANGE"}],
                       AttributeDefinitions=[{"AttributeName": "raw", "AttributeType": "S"},
                                             {"AttributeName": "seq", "AttributeType": "S"}])

    def lambda_held(raw: str, seq: int, order: str, total: int) -> dict:
        keys = {"customer": {"S": raw}, "order_id": {"S": order}}
        body = {"Keys": keys, "NewImage": {**keys, "total": {"N": str(total)}}, "SequenceNumber": str(seq),
                "ApproximateCreationDateTime": 1767225600}
        return {"raw": {"S": raw}, "seq": {"S": held.pad_seq(str(seq))}, "direction": {"S": "forward"},
                "event": {"S": "MODIFY" if total > 1 else "INSERT"}, "record": {"S": json.dumps(body)},
                "source_arn": {"S": "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/x"},
                "held_at": {"S": "2026-01-01T00:00:00+00:00"}}

    for item in (lambda_held(DIRTY, 900, "ORD-70", 1), lambda_held(DIRTY, 1000, "ORD-70", 2),
                 {"raw": {"S": "junk"}, "seq": {"S": "x"}}):
        m.ddb.put_item(TableName="keyshift-held", Item=item)
    cases = m.cases()  # resolve list collects first
    assert set(cases) == {DIRTY} and cases[DIRTY]["held"]["held"] == 2
    left = m.ddb.scan(TableName="keyshift-held")["Items"]
    assert [i["raw"]["S"] for i in left] == ["junk"]  # the unreadable item stays for a person
    m.ddb.put_item(TableName="keyshift-held", Item=lambda_held(DIRTY, 900, "ORD-70", 1))  # delivered twice
    ws = Workspace(m.workspace)
    assert held.collect_held(ws, load_spec(m.spec_path), m.ddb)["new"] == 0  # nothing held twice
    assert m.run("resolve", "decide", cases[DIRTY]["id"], "same", "--raw", "ACME Corp",
                 "--reason", "same customer").returncode == 0
    # The old table holds what the Lambda saw last (its records came from there): the new id is now
    # shared by two spellings, so the replay settles the key from the old table (kernel/merged).
    m.ddb.put_item(TableName="orders", Item={"customer": {"S": DIRTY}, "order_id": {"S": "ORD-70"},
                                             "total": {"N": "2"}})
    synced = m.run("stream-sync", "--json").json()
    assert synced["held_applied"] == 2 and synced["collected"]["unreadable"] == 1
    assert m.target("ACME Corp", "ORD-70")["total"] == {"N": "2"}  # by sequence number: the newer last
