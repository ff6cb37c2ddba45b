"""End to end: restore into the new table against the moto server fixture.

Fault injection uses botocore event hooks on a real client talking to the real server: a
``before-parameter-build`` hook holds back part of each batch and an ``after-call`` hook reports
it as ``UnprocessedItems`` (as DynamoDB does, with HTTP 200); a ``before-send`` hook answers some
calls with a throttling error, which botocore retries.
"""

import json
import signal
import time

import pytest

from keyshift.core.aws import AwsContext
from keyshift.core.dumps import open_dump
from keyshift.core.kernel.items import for_botocore
from keyshift.core.resolve.keymap_build import build_keymap
from keyshift.core.plan.queries import latest_plan
from keyshift.core.progress import run_to_completion
from keyshift.core.migrate.restore import plan_to_restore_args, run_restore
from keyshift.core.spec import load_spec
from keyshift.core.migrate.tables import create_target_table, target_key_schema
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.store.workspace import Workspace
from faults import batch_write_faults

pytestmark = pytest.mark.e2e


@pytest.fixture
def planned(world):
    world.run("plan", "--dump", world.export_uri, "--json").json()
    return world


def expected_items(world):
    """transform(dump) as the new table must hold it, keyed by its new key (last line wins)."""
    ws = Workspace(world.workspace)
    spec = load_spec(world.spec_path)
    keymap = build_keymap(ws, allow_unresolved=True).keymap
    names = KeyNames.from_spec(spec)
    out = {}
    for entry in open_dump(world.export_uri, s3=world.s3):
        if entry.item is None:
            continue
        outcome = transform(entry.item, keymap, names)
        if isinstance(outcome, Put):
            key = (json.dumps(outcome.item[names.target_pk]), json.dumps(outcome.item.get(names.source_sk)))
            out[key] = for_botocore(outcome.item)  # binary as bytes, as the table returns it
    return out


def table_items(ddb, table, spec):
    names = KeyNames.from_spec(spec)
    items = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            items[(json.dumps(item[names.target_pk]), json.dumps(item.get(names.source_sk)))] = item
    return items


def create_source_table(ddb, items):
    """The live table the dump was taken from (items DynamoDB cannot key are only in the dump)."""
    ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                                {"AttributeName": "order_id", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                           {"AttributeName": "order_id", "AttributeType": "S"}])
    for item in items:
        if len(item["customer"]["S"].encode()) <= 2048:
            ddb.put_item(TableName="orders", Item=item)


def test_restore_writes_exactly_transform_of_the_dump(planned, boto_clients, curated):
    create_source_table(boto_clients.dynamodb, curated.items)
    doc = planned.run("restore", "--create-table", "--allow-unresolved", "--json").json()
    for field in ("written", "skipped", "dropped_by_decision", "retries", "seconds", "keymap"):
        assert field in doc
    spec = load_spec(planned.spec_path)
    expected = expected_items(planned)
    assert table_items(boto_clients.dynamodb, spec.target.table, spec) == expected
    assert doc["written"] >= len(expected)
    desc = boto_clients.dynamodb.describe_table(TableName=spec.target.table)["Table"]
    assert desc["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    again = planned.run("restore", "--allow-unresolved", "--json")
    assert again.returncode == 2 and "already holds items" in again.message and "--allow-non-empty" in again.message
    verified = planned.run("verify", "--json")
    assert verified.returncode == 0, verified.stdout
    report = verified.json()
    assert report["missing"] == report["extra"] == report["different"] == 0
    assert report["compared"] == len(expected)


@pytest.mark.parametrize("client", ["client", "writer_client"])
def test_unprocessed_items_and_throttles_are_retried_until_written(planned, boto_clients, aws_env, client):
    # "client": botocore serializes, binary handed over as bytes; "writer_client" (what the CLI
    # uses): bodies written as wire JSON, binary as the dump's base64, retried UnprocessedItems as
    # botocore parsed them (binary as bytes).
    planned.run("plan", "--dump", planned.export_uri, "--json").json()
    ws = Workspace(planned.workspace)
    spec = load_spec(planned.spec_path)
    hooks, calls = batch_write_faults(spec.target.table)
    aws = AwsContext(endpoint_url=aws_env["AWS_ENDPOINT_URL"], region="us-east-1", hooks=hooks)
    ddb = getattr(aws, client)("dynamodb")
    create_target_table(aws.client("dynamodb"), spec, target_key_schema(spec))
    keymap = build_keymap(ws, allow_unresolved=True).keymap
    plan_row = latest_plan(ws)
    summary = run_to_completion(
        run_restore(ws, spec, keymap, ddb=ddb, s3=boto_clients.s3, **plan_to_restore_args(plan_row), workers=3))
    assert calls["held"] > 0 and calls["throttled"] > 0
    assert summary["retries"] >= calls["held"] and summary["throttles"] >= calls["throttled"]
    assert table_items(boto_clients.dynamodb, spec.target.table, spec) == expected_items(planned)


KILL_SPEC = """
[source]
table = "events"
partition_key = "customer"
sort_key = "event_id"
[target]
table = "events_v2"
partition_key = "customer_id"
legacy_attribute = "legacy_customer"
"""


def test_kill_9_mid_run_then_resume_ends_with_the_same_table(aws_env, boto_clients, tmp_path, run_cli,
                                                              spawn_cli):
    import orjson

    dump = tmp_path / "dump.json"
    with dump.open("wb") as fh:
        for i in range(3000):  # clean and fixable identifiers only: nothing to decide
            name = f"Customer {i % 400}" + ("\u00a0" if i % 400 == 7 else "")
            fh.write(orjson.dumps({"customer": {"S": name}, "event_id": {"S": f"e{i:05d}"},
                                   "n": {"N": str(i)}}) + b"\n")
    spec_path = tmp_path / "keyshift.toml"
    spec_path.write_text(KILL_SPEC)
    base = ["--spec", str(spec_path), "--workspace", str(tmp_path / "ws")]
    assert run_cli([*base, "plan", "--dump", str(dump), "--json"], aws_env, tmp_path).returncode == 0
    proc = spawn_cli([*base, "restore", "--create-table", "--rate", "400", "--workers", "2", "--json"],
                     aws_env, tmp_path)
    ws = Workspace(tmp_path / "ws")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for a checkpoint well past the start
        row = ws.connect().execute(
            "SELECT max(CAST(position AS INTEGER)) FROM checkpoints WHERE unit != '_counters'").fetchone()
        if row[0] and row[0] > 600:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    spec = load_spec(spec_path)
    partial = table_items(boto_clients.dynamodb, spec.target.table, spec)
    assert 600 <= len(partial) < 3000, "the kill should land mid-run"
    resumed = run_cli([*base, "restore", "--resume", "--json"], aws_env, tmp_path, timeout=120)
    doc = resumed.json()
    assert doc["resumed"] is True
    final = table_items(boto_clients.dynamodb, spec.target.table, spec)
    assert len(final) == 3000
    # The live table the dump came from, so verify can diff transform(old) against the new table.
    ddb = boto_clients.dynamodb
    ddb.create_table(TableName="events", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                                {"AttributeName": "event_id", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                           {"AttributeName": "event_id", "AttributeType": "S"}])
    items = [entry.item for entry in open_dump(str(dump))]
    for start in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={"events": [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]})
    verified = run_cli([*base, "verify", "--json"], aws_env, tmp_path, timeout=120)
    assert verified.returncode == 0, verified.stdout
    assert verified.json()["compared"] == 3000
    uninterrupted = {}
    keymap = build_keymap(ws).keymap
    names = KeyNames.from_spec(spec)
    for entry in open_dump(str(dump)):
        item = transform(entry.item, keymap, names).item
        uninterrupted[(json.dumps(item[names.target_pk]), json.dumps(item[names.source_sk]))] = item
    assert final == uninterrupted


def test_restore_via_import_table_from_the_cli(planned, boto_clients, curated):
    create_source_table(boto_clients.dynamodb, curated.items)
    boto_clients.s3.create_bucket(Bucket="imports")
    doc = planned.run("restore", "--via-import", "s3://imports/orders/", "--allow-unresolved", "--json",
                      timeout=120).json()
    assert doc["status"] == "COMPLETED" and doc["written"] > 0 and doc["keymap"]
    for field in ("written", "skipped", "dropped_by_decision", "retries", "seconds", "keymap"):
        assert field in doc
    spec = load_spec(planned.spec_path)
    desc = boto_clients.dynamodb.describe_table(TableName=spec.target.table)["Table"]
    assert desc["StreamSpecification"]["StreamEnabled"] is True
    assert len(table_items(boto_clients.dynamodb, spec.target.table, spec)) == doc["written"]
    # verify then checks the imported table item by item. moto's ImportTable keeps JSON escapes
    # (\t, \b) as literal text, so exactly the items holding control characters come out
    # different; real ImportTable decodes them. Everything else must be equal.
    verified = planned.run("verify", "--json")
    report = json.loads(verified.stdout)
    assert report["missing"] == report["extra"] == 0
    assert report["compared"] == doc["written"]
    for offender in report["offenders"]["different"]:
        assert any(ord(ch) < 0x20 for ch in offender["source_key"]["customer"]["S"])
    assert verified.returncode == (1 if report["different"] else 0)


def test_pause_and_resume_a_running_restore_through_the_control_channel(aws_env, boto_clients, tmp_path, run_cli,
                                                                         spawn_cli):
    import orjson

    dump = tmp_path / "dump.json"
    dump.write_bytes(b"".join(
        orjson.dumps({"customer": {"S": f"C{i % 50}"}, "event_id": {"S": f"e{i:05d}"}}) + b"\n"
        for i in range(1500)))
    spec_path = tmp_path / "keyshift.toml"
    spec_path.write_text(KILL_SPEC)
    base = ["--spec", str(spec_path), "--workspace", str(tmp_path / "ws")]
    assert run_cli([*base, "plan", "--dump", str(dump), "--json"], aws_env, tmp_path).returncode == 0
    proc = spawn_cli([*base, "restore", "--create-table", "--rate", "300", "--workers", "2", "--json"],
                     aws_env, tmp_path)
    spec = load_spec(spec_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not len(table_items(boto_clients.dynamodb, spec.target.table, spec)
                                                      if _exists(boto_clients.dynamodb, spec.target.table) else []):
            time.sleep(0.1)
        assert run_cli([*base, "restore-control", "--pause"], aws_env, tmp_path).returncode == 0
        time.sleep(1.5)  # the run polls the control file every second
        paused_at = len(table_items(boto_clients.dynamodb, spec.target.table, spec))
        time.sleep(1.5)
        assert len(table_items(boto_clients.dynamodb, spec.target.table, spec)) == paused_at < 1500
        assert run_cli([*base, "restore-control", "--resume", "--rate", "0"], aws_env, tmp_path).returncode == 0
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and json.loads(out)["written"] == 1500
    assert len(table_items(boto_clients.dynamodb, spec.target.table, spec)) == 1500


def _exists(ddb, table):
    from keyshift.core.migrate.tables import table_exists

    return table_exists(ddb, table)


def test_mapping_every_invalid_case_restores_and_verifies_cleanly(planned, boto_clients, curated):
    """Regression: the demo's over-long identifier (a dump line no table can hold) was offered as an
    invalid case; mapped, restore wrote it and verify called it extra. Now it is quarantined at
    plan time and every transform skips it, so restore and verify agree."""
    create_source_table(boto_clients.dynamodb, curated.items)
    cases = planned.run("resolve", "list", "--kind", "invalid", "--json").json()
    assert cases, "the demo has invalid cases"
    for n, case in enumerate(cases):
        decided = planned.run("resolve", "decide", case["id"], "map", "--id", f"INVALID-{n}", "--reason", "looked up")
        assert decided.returncode == 0, decided.stderr
    quarantined = planned.run("records", "--status", "quarantined", "--json").json()
    assert any("2,048-byte limit" in r["reason"] for r in quarantined)
    restored = planned.run("restore", "--create-table", "--allow-unresolved", "--json").json()
    verified = planned.run("verify", "--json")
    assert verified.returncode == 0, verified.stdout
    report = verified.json()
    assert report["extra"] == report["missing"] == report["different"] == 0
    assert report["compared"] == restored["written"]


def _wait_for_checkpoint(ws_path, beyond: int, timeout: float = 60) -> None:
    ws = Workspace(ws_path)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            row = ws.connect().execute(
                "SELECT max(CAST(position AS INTEGER)) FROM checkpoints WHERE unit NOT LIKE '\\_%' ESCAPE '\\'"
                " AND run_id = (SELECT max(id) FROM runs WHERE kind = 'restore')").fetchone()
            if row[0] and row[0] > beyond:
                return
            time.sleep(0.05)
    finally:
        ws.close()
    raise AssertionError(f"no checkpoint past line {beyond} within {timeout} s")


def test_kill_resume_kill_resume_reconciles_every_line(aws_env, boto_clients, tmp_path, run_cli, spawn_cli):
    """Regression: after a SIGKILL and --resume the summary said written 1,500 or 1,525, skipped 17,
    dropped 9 for a 1,500-line dump whose table held 1,475 items. Counters saved with a checkpoint
    now cover exactly the settled lines, whatever the number of kills."""
    import orjson

    dump = tmp_path / "dump.json"
    lines = []
    for i in range(1500):
        if i % 100 == 7:
            name = "Dup" + ("\u200b" if i % 200 == 7 else "")  # ambiguous, left open: skipped
        elif i % 250 == 11:
            name = "Junk" + ("\u00a0" if i % 500 == 11 else "")  # ambiguous, dropped by decision
        else:
            name = f"Customer {i % 400}"
        lines.append(orjson.dumps({"customer": {"S": name}, "event_id": {"S": f"e{i:05d}"}, "n": {"N": str(i)}}))
    lines[300] = b'{"customer": {"S": "broken'  # unreadable: quarantined at plan time, skipped here
    lines[900] = lines[899]  # the same item twice: the earlier line is superseded
    dump.write_bytes(b"\n".join(lines) + b"\n")
    spec_path = tmp_path / "keyshift.toml"
    spec_path.write_text(KILL_SPEC)
    base = ["--spec", str(spec_path), "--workspace", str(tmp_path / "ws")]
    assert run_cli([*base, "plan", "--dump", str(dump), "--json"], aws_env, tmp_path).returncode == 0
    junk = next(c for c in run_cli([*base, "resolve", "list", "--json"], aws_env, tmp_path).json()
                if c["kind"] == "ambiguous" and any(m["raw"].startswith("Junk") for m in c["members"]))
    raws = [f"--raw={m['raw_escaped']}" for m in junk["members"]]
    assert run_cli([*base, "resolve", "decide", junk["id"], "drop", *raws, "--reason", "test data"],
                   aws_env, tmp_path).returncode == 0
    first = spawn_cli([*base, "restore", "--create-table", "--allow-unresolved", "--rate", "300", "--workers", "4",
                       "--json"], aws_env, tmp_path)
    _wait_for_checkpoint(tmp_path / "ws", 300)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    second = spawn_cli([*base, "restore", "--resume", "--allow-unresolved", "--rate", "300", "--workers", "4",
                        "--json"], aws_env, tmp_path)
    _wait_for_checkpoint(tmp_path / "ws", 800)
    second.send_signal(signal.SIGKILL)
    second.wait(timeout=10)
    doc = run_cli([*base, "restore", "--resume", "--allow-unresolved", "--json"], aws_env, tmp_path, timeout=120).json()
    spec = load_spec(spec_path)
    in_table = len(table_items(boto_clients.dynamodb, spec.target.table, spec))
    assert doc["resumed"] is True and doc["lines"] == 1500 and doc["reconciled"] is True
    assert doc["written"] + doc["skipped"] + doc["dropped_by_decision"] == 1500
    assert doc["written"] == in_table
    assert doc["dropped_by_decision"] == 6  # Junk and Junk\u00a0, 3 lines each
    # The repeated item: its earlier line is superseded, and the conflict it makes is left open
    # (--allow-unresolved), so its last line is skipped as well (no survivor named).
    assert doc["skip_reasons"] == {"conflict-loser": 1, "superseded": 1, "unreadable": 1, "unresolved": 15}
    assert doc["skipped"] == sum(doc["skip_reasons"].values())
