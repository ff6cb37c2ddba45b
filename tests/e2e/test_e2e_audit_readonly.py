"""The audit chain and read-only mode end to end, against the moto server fixture.

- ``keyshift audit --verify --json`` exits 0 on a whole chain and 1, naming the entry, once the
  SQLite file is tampered with directly (an entry edited, deleted, reordered), read-only too;
- a read-only :class:`AwsContext` refuses a mutating call before any request leaves: the server's
  own request log does not grow (and a read, sent, does);
- ``--read-only verify --json`` prints the same verdict as a recorded verify and leaves the
  workspace's runs, offenders and audit log as they were.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import orjson
import pytest

from keyshift.core.aws import AwsContext, ReadOnlyRefused
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.resolve.keymap_build import load_keymap_document
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import DB_NAME

pytestmark = pytest.mark.e2e

SPEC = """\
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"

[target]
table = "orders_v2"
partition_key = "customer_id"
legacy_attribute = "legacy_customer"
"""


def _create(ddb, name: str, pk: str) -> None:
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": "order_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"},
                              {"AttributeName": "order_id", "AttributeType": "S"}])


def _put_all(ddb, table: str, items: list[dict]) -> None:
    for n in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[n:n + 25]]})


class Migration:
    """A planned migration with its keymap built and the new table written through it."""

    def __init__(self, tmp: Path, env: dict, ddb, run_cli) -> None:
        self.tmp, self.env, self.ddb, self.run_cli = tmp, env, ddb, run_cli
        self.spec_path = tmp / "keyshift.toml"
        self.workspace = tmp / ".keyshift"
        self.db = self.workspace / DB_NAME

    def run(self, *args: str, read_only: bool = False):
        return self.run_cli(["--spec", str(self.spec_path), "--workspace", str(self.workspace),
                             *(["--read-only"] if read_only else []), *args], self.env, self.tmp)

    def tamper(self, *statements: str) -> None:
        raw = sqlite3.connect(self.db, isolation_level=None)
        for statement in statements:
            raw.execute(statement)
        raw.close()

    def snapshot(self) -> dict:
        """What a recorded verify would change: runs, checkpoints, offenders, audit, files."""
        raw = sqlite3.connect(f"{self.db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return {table: raw.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
                    for table in ("runs", "checkpoints", "offenders", "audit", "meta")} | {
                "files": sorted(p.name for p in self.workspace.iterdir() if not p.name.startswith(DB_NAME))}
        finally:
            raw.close()


@pytest.fixture
def migration(aws_env, boto_clients, tmp_path, run_cli) -> Migration:
    m = Migration(tmp_path, aws_env, boto_clients.dynamodb, run_cli)
    m.spec_path.write_text(SPEC, encoding="utf-8")
    items = [{"customer": {"S": f"CUST-{i % 7:03d}"}, "order_id": {"S": f"ORD-{i:04d}"}, "total": {"N": str(i)}}
             for i in range(40)]
    items += [{"customer": {"S": "  Globex "}, "order_id": {"S": f"ORD-G{i}"}} for i in range(3)]
    dump = tmp_path / "dump.json"
    dump.write_bytes(b"\n".join(orjson.dumps({"Item": i}) for i in items) + b"\n")
    _create(m.ddb, "orders", "customer")
    _create(m.ddb, "orders_v2", "customer_id")
    _put_all(m.ddb, "orders", items)
    assert m.run("plan", "--dump", str(dump), "--format", "ddbjson", "--json").json()["records"] == len(items)
    km_path = tmp_path / "keymap.json"
    m.run("keymap", "build", "--out", str(km_path), "--json").json()
    keymap = load_keymap_document(json.loads(km_path.read_text()))
    outs = [transform(i, keymap, KeyNames.from_spec(parse_spec(SPEC))) for i in items]
    m.expected = [o.item for o in outs if type(o) is Put]
    assert len(m.expected) == len(items)
    _put_all(m.ddb, "orders_v2", m.expected)
    return m


# -- the audit chain ---------------------------------------------------------------------------
def test_audit_verify_is_whole_then_names_the_tampered_entry(migration):
    m = migration
    whole = m.run("audit", "--verify", "--json").json()
    entries = whole["entries"]
    assert entries >= 3 and whole["chain_ok"] is True and whole["first_broken"] is None  # plan.start/complete, keymap
    assert m.run("audit", "--verify", "--json", read_only=True).json() == whole
    human = m.run("audit", "--verify")
    assert human.returncode == 0 and f"{entries} entries verified" in human.stdout
    # The log itself, filtered, with the chain's hashes.
    log = m.run("audit", "--json", "--action", "plan").json()
    assert [e["action"] for e in log] == ["plan.complete", "plan.start"]
    assert log[0]["prev_hash"] == log[1]["hash"] and len(log[0]["hash"]) == 64
    assert m.run("audit", "--json", "--operator", "nobody").json() == []

    m.tamper("UPDATE audit SET details = json_set(details, '$.plan_id', 99) WHERE id = 2")
    edited = m.run("audit", "--verify", "--json", read_only=True)
    assert edited.returncode == 1, edited.stderr
    doc = json.loads(edited.stdout)
    assert (doc["entries"], doc["chain_ok"], doc["first_broken"]) == (entries, False, 2)
    human = m.run("audit", "--verify")
    assert human.returncode == 1 and "BROKEN at entry 2" in " ".join(human.stdout.split())


@pytest.mark.parametrize("statements, first_broken", [
    (["DELETE FROM audit WHERE id = 2"], 2),
    (["UPDATE audit SET id = -1 WHERE id = 1", "UPDATE audit SET id = 1 WHERE id = 2",
      "UPDATE audit SET id = 2 WHERE id = -1"], 1),  # the first two entries swapped
    (["DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)"], None),  # the newest: named by the head
])
def test_a_deleted_or_reordered_entry_is_detected(migration, statements, first_broken):
    m = migration
    entries = m.run("audit", "--verify", "--json").json()["entries"]
    m.tamper(*statements)
    r = m.run("audit", "--verify", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["chain_ok"] is False
    assert doc["first_broken"] == (first_broken if first_broken is not None else entries)
    assert doc["reason"]


# -- read-only, underneath the commands -------------------------------------------------------
def _server_log(tmp_path_factory) -> Path:
    logs = sorted(tmp_path_factory.getbasetemp().glob("moto*/moto-server.log"))
    assert logs, "the moto_server fixture's request log"
    return logs[0]


def _requests(log: Path) -> int:
    """Requests the server has logged (werkzeug writes one line per request, once answered)."""
    return log.read_text(errors="replace").count('HTTP/1.1"')


def _settled_requests(log: Path) -> int:
    n = _requests(log)
    for _ in range(20):  # the log line follows the response by a moment
        time.sleep(0.05)
        if (m := _requests(log)) == n:
            return n
        n = m
    return n


def test_a_read_only_context_refuses_writes_before_any_request_leaves(migration, boto_clients, tmp_path_factory):
    m = migration
    log = _server_log(tmp_path_factory)
    sent: list[str] = []
    ro = AwsContext(endpoint_url=boto_clients.endpoint_url, region="us-east-1", read_only=True,
                    hooks=[("before-send", lambda request, **_: sent.append(request.url))])
    item = {"customer_id": {"S": "CUST-001"}, "order_id": {"S": "ORD-NEW"}}
    before = _settled_requests(log)
    calls = [
        lambda: ro.client("dynamodb").put_item(TableName="orders_v2", Item=item),
        lambda: ro.client("dynamodb").delete_item(TableName="orders", Key={"customer": {"S": "CUST-001"},
                                                                          "order_id": {"S": "ORD-0001"}}),
        lambda: ro.writer_client().batch_write_item(RequestItems={"orders_v2": [{"PutRequest": {"Item": item}}]}),
        lambda: ro.client("dynamodb").create_table(
            TableName="keyshift-control", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}]),
        lambda: ro.client("s3").create_bucket(Bucket="keyshift-ro-test"),
    ]
    for call in calls:
        with pytest.raises(ReadOnlyRefused, match="read-only mode: refusing"):
            call()
    assert sent == []
    assert _settled_requests(log) == before  # the server saw nothing
    # Nothing changed there either.
    assert "Item" not in boto_clients.dynamodb.get_item(TableName="orders_v2", Key=item)
    assert "keyshift-control" not in boto_clients.dynamodb.list_tables()["TableNames"]
    assert "keyshift-ro-test" not in [b["Name"] for b in boto_clients.s3.list_buckets()["Buckets"]]
    # A read goes out through the same context, and the server log shows it: the count is live.
    before = _settled_requests(log)
    got = ro.client("dynamodb").get_item(TableName="orders_v2", Key={"customer_id": {"S": "CUST-001"},
                                                                     "order_id": {"S": "ORD-0001"}})
    assert got["Item"]["legacy_customer"] == {"S": "CUST-001"}
    assert ro.client("dynamodbstreams").list_streams()["Streams"] == []
    assert len(sent) == 2 and _settled_requests(log) == before + 2


def test_read_only_verify_prints_the_same_verdict_and_records_nothing(migration):
    m = migration
    before = m.snapshot()
    r = m.run("verify", "--json", read_only=True)
    assert r.returncode == 0, r.stderr
    ro = json.loads(r.stdout)
    assert ro["equal"] is True and ro["recorded"] is False and ro["run_id"] is None
    assert (ro["compared"], ro["missing"], ro["extra"], ro["different"]) == (len(m.expected), 0, 0, 0)
    assert "read-only: this report is not recorded" in r.message
    assert m.snapshot() == before

    # A difference: the read-only verdict is the recorded one, and still nothing is recorded.
    gone = m.expected[5]
    m.ddb.delete_item(TableName="orders_v2", Key={"customer_id": gone["customer_id"], "order_id": gone["order_id"]})
    r = m.run("verify", "--json", read_only=True)
    assert r.returncode == 1, r.stderr
    ro = json.loads(r.stdout)
    assert m.snapshot() == before
    human = m.run("verify", read_only=True)
    assert human.returncode == 1 and "not recorded" in human.stdout and "read-only" in human.message
    assert m.snapshot() == before
    assert m.run("verify", "--resume", read_only=True).returncode == 2

    recorded = m.run("verify", "--json")
    assert recorded.returncode == 1
    rec = json.loads(recorded.stdout)
    for k in ("equal", "compared", "missing", "extra", "different", "skipped", "offenders", "keymap", "scanned"):
        assert ro[k] == rec[k], k
    assert rec["run_id"] is not None and "recorded" not in rec
    after = m.snapshot()
    assert len(after["runs"]) == len(before["runs"]) + 1
    assert [e["action"] for e in m.run("audit", "--json", "--limit", "3").json()][:2] == ["verify", "verify.start"]
