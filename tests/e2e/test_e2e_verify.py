"""``keyshift verify`` end to end: the real command against the moto server fixture.

The old table holds clean identifiers, one fixed by the rules (``"  Globex "``) and an ambiguous
pair left open (``Acme`` / ``Acme\\u200b``); the keymap is built with ``--allow-unresolved``, so
the pair's items must be absent from the new table. The new table is written by hand through the
same keymap and :func:`transform` (independent of restore).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import orjson
import pytest
from keyshift.core.resolve.keymap_build import load_keymap_document
from keyshift.core.spec import parse_spec
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.migrate.verify.run import VerifyCancelled, run_verify
from keyshift.core.store.workspace import Workspace

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
ZW = "\u200b"


def _items() -> list[dict]:
    items = [{"customer": {"S": f"CUST-{i % 20:03d}"}, "order_id": {"S": f"ORD-{i:04d}"},
              "total": {"N": f"{i}.5"}, "tags": {"SS": ["x", "y"]}} for i in range(160)]
    items += [{"customer": {"S": "  Globex "}, "order_id": {"S": f"ORD-G{i}"}, "total": {"N": "1"}}
              for i in range(4)]
    items += [{"customer": {"S": raw}, "order_id": {"S": f"ORD-A{n}"}} for n, raw in enumerate(["Acme", "Acme" + ZW])]
    return items


def _create(ddb, name: str, pk: str) -> None:
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": "order_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"},
                              {"AttributeName": "order_id", "AttributeType": "S"}])


def _put_all(ddb, table: str, items: list[dict]) -> None:
    for n in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[n:n + 25]]})


class Setup:
    def __init__(self, tmp: Path, env: dict, ddb, run_cli) -> None:
        self.tmp, self.env, self.ddb, self.run_cli = tmp, env, ddb, run_cli
        self.spec_path = tmp / "keyshift.toml"
        self.workspace = tmp / ".keyshift"

    def run(self, *args: str):
        return self.run_cli(["--spec", str(self.spec_path), "--workspace", str(self.workspace), *args],
                            self.env, self.tmp)

    def new_key(self, new_id: str, order: str) -> dict:
        return {"customer_id": {"S": new_id}, "order_id": {"S": order}}


@pytest.fixture
def setup(aws_env, boto_clients, tmp_path, run_cli) -> Setup:
    s = Setup(tmp_path, aws_env, boto_clients.dynamodb, run_cli)
    s.spec_path.write_text(SPEC, encoding="utf-8")
    items = _items()
    dump = tmp_path / "dump.json"
    dump.write_bytes(b"\n".join(orjson.dumps({"Item": i}) for i in items) + b"\n")
    _create(s.ddb, "orders", "customer")
    _create(s.ddb, "orders_v2", "customer_id")
    _put_all(s.ddb, "orders", items)
    plan = s.run("plan", "--dump", str(dump), "--format", "ddbjson", "--json").json()
    assert plan["records"] == len(items)
    km_path = tmp_path / "keymap.json"
    built = s.run("keymap", "build", "--allow-unresolved", "--out", str(km_path), "--json").json()
    assert built["unresolved"] == 2  # Acme / Acme\u200b: open, their items expected absent
    s.keymap = load_keymap_document(json.loads(km_path.read_text()))
    names = KeyNames.from_spec(parse_spec(SPEC))
    outs = [transform(i, s.keymap, names) for i in items]
    s.expected = [o.item for o in outs if type(o) is Put]
    assert len(s.expected) == 164
    _put_all(s.ddb, "orders_v2", s.expected)
    return s


def test_verify_clean_then_reports_each_offender(setup):
    s = setup
    r = s.run("verify", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["equal"] and doc["keymap"] == s.keymap.version and doc["segments"] == 4
    assert (doc["compared"], doc["missing"], doc["extra"], doc["different"]) == (164, 0, 0, 0)
    assert doc["skipped"] == {"unresolved": 2}
    assert doc["offenders"] == {"missing": [], "extra": [], "different": []}
    assert doc["seconds"] >= 0

    globex = next(i for i in s.expected if i["legacy_customer"]["S"] == "  Globex ")
    assert globex["customer_id"] == {"S": "Globex"}
    s.ddb.delete_item(TableName="orders_v2", Key=s.new_key("Globex", globex["order_id"]["S"]))
    s.ddb.put_item(TableName="orders_v2", Item={**s.new_key("Acme", "ORD-A0"), "legacy_customer": {"S": "Acme"}})
    s.ddb.update_item(TableName="orders_v2", Key=s.new_key("CUST-007", "ORD-0007"),
                      UpdateExpression="SET #t = :t", ExpressionAttributeNames={"#t": "total"},
                      ExpressionAttributeValues={":t": {"N": "8"}})
    r = s.run("verify", "--segments", "3", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert not doc["equal"] and doc["segments"] == 3
    assert (doc["compared"], doc["missing"], doc["extra"], doc["different"]) == (164, 1, 1, 1)
    assert doc["offenders"]["missing"] == [s.new_key("Globex", globex["order_id"]["S"])]
    assert doc["offenders"]["extra"] == [s.new_key("Acme", "ORD-A0")]
    assert [(d["key"], d["attributes"]) for d in doc["offenders"]["different"]] == [
        (s.new_key("CUST-007", "ORD-0007"), ["total"])]

    human = s.run("verify")
    assert human.returncode == 1
    assert "NOT equal" in human.stdout and '"ORD-0007"' in human.stdout and "total" in human.stdout

    sample = s.run("verify", "--sample", "25", "--json")
    doc = json.loads(sample.stdout)
    assert doc["scanned"] == {"source": 25, "target": 0} and doc["extra_checked"] is False
    assert sample.returncode == (1 if doc["missing"] or doc["different"] else 0)

    unusable = s.run("verify", "--resume")  # nothing interrupted
    assert unusable.returncode == 2 and "no interrupted verify to resume" in " ".join(unusable.stderr.split())


def test_resume_after_an_interrupted_run_gives_the_same_totals(setup):
    s = setup
    s.ddb.delete_item(TableName="orders_v2", Key=s.new_key("CUST-001", "ORD-0001"))
    s.ddb.put_item(TableName="orders_v2", Item=s.new_key("CUST-999", "ORD-X"))
    ws = Workspace(s.workspace)
    cancel = threading.Event()
    gen = run_verify(ws, parse_spec(SPEC), s.ddb, operator="tester", page_size=10, cancel=cancel)
    first = next(gen)  # the first batch is in; cut the run there
    assert first.done >= 10
    cancel.set()
    with pytest.raises(VerifyCancelled):
        for _ in gen:
            pass
    ws.close()
    r = s.run("verify", "--resume", "--json")
    assert r.returncode == 1, r.stderr
    resumed = json.loads(r.stdout)
    fresh = json.loads(s.run("verify", "--json").stdout)
    assert resumed["resumed"] and resumed["run_id"] != fresh["run_id"]
    for k in ("compared", "missing", "extra", "different", "skipped", "scanned", "offenders"):
        assert resumed[k] == fresh[k], k
    assert resumed["offenders"]["missing"] == [s.new_key("CUST-001", "ORD-0001")]
    assert resumed["offenders"]["extra"] == [s.new_key("CUST-999", "ORD-X")]
    actions = [e["action"] for e in s.run("audit", "--json").json()]
    assert "verify.resume" in actions and actions.count("verify") == 2
