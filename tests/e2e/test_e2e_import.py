"""End to end: ``restore --via-import``'s core against the moto server fixture.

Plan the curated native export (traps, bad lines, conflicts), build the keymap with the open cases
left unresolved, write the transformed objects to S3 and ImportTable them: the new table must hold
exactly transform(each planned item) (first in dump order per new key), with its stream on.
"""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from keyshift.core.store import runs
from keyshift.core.dumps import open_dump
from keyshift.core.migrate.import_table import import_via_s3
from keyshift.core.resolve.keymap_build import build_keymap
from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.spec import load_spec
from keyshift.core.migrate.tables import TableError
from keyshift.core.kernel.keymap import sort_key_json
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.store.workspace import Workspace

pytestmark = pytest.mark.e2e

IMPORTS = "e2e-dumps"  # the dumps bucket: ImportTable reads from the same server's S3


def _wire(item):
    """A scanned item with binary values back in wire format (boto3 decodes B to bytes)."""
    def conv(v):
        ((kind, payload),) = v.items()
        if kind == "B":
            return {"B": base64.b64encode(payload).decode()}
        if kind == "BS":
            return {"BS": [base64.b64encode(p).decode() for p in payload]}
        if kind == "L":
            return {"L": [conv(x) for x in payload]}
        if kind == "M":
            return {"M": {k: conv(x) for k, x in payload.items()}}
        return v
    return {k: conv(v) for k, v in item.items()}


def _scan(ddb, table):
    items, kwargs = [], {}
    while True:
        page = ddb.scan(TableName=table, **kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _full_key(item):
    return item["customer_id"]["S"], sort_key_json(item["order_id"])


@pytest.fixture
def imported(world, boto_clients, tmp_path):
    spec = load_spec(world.spec_path)
    ws = Workspace(tmp_path / "ws")
    plan_to_completion(ws, spec, world.export_uri, s3=boto_clients.s3, operator="e2e")
    keymap = build_keymap(ws, allow_unresolved=True).keymap
    events = []
    result = import_via_s3(ws, spec, keymap, dump_uri=world.export_uri, s3=boto_clients.s3,
                           ddb=boto_clients.dynamodb, prefix_uri=f"s3://{IMPORTS}/imports",
                           items_per_object=7, progress=events.append, poll_seconds=0.1,
                           timeout=120, operator="e2e")
    return spec, ws, keymap, result, events


def test_import_creates_exactly_the_transformed_table(world, boto_clients, imported):
    spec, ws, keymap, r, events = imported
    ddb = boto_clients.dynamodb
    names = KeyNames.from_spec(spec)

    # What should be there: transform() of every readable item, first per new full key.
    expected, kinds, lines = {}, {}, 0
    for entry in open_dump(world.export_uri, s3=boto_clients.s3):
        lines += 1
        if entry.item is None:
            kinds["unreadable"] = kinds.get("unreadable", 0) + 1
            continue
        outcome = transform(entry.item, keymap, names)
        if type(outcome) is Put and "S" in outcome.item.get("order_id", {}):
            if _full_key(outcome.item) in expected:
                kinds["duplicate-key"] = kinds.get("duplicate-key", 0) + 1
            else:
                expected[_full_key(outcome.item)] = outcome.item
        elif type(outcome) is not Put:
            kinds[outcome.kind] = kinds.get(outcome.kind, 0) + 1
    assert expected, "the curated dump must leave items to import"

    assert r.status == "COMPLETED", r.failure
    assert r.lines == lines == world.export_lines
    assert r.items_written == len(expected) == r.imported == r.processed
    assert r.errored == 0
    assert r.items_written + r.skipped == r.lines
    assert r.skip_reasons.get("unreadable") == kinds.get("unreadable")
    assert r.skip_reasons.get("unresolved", 0) == kinds.get("unresolved", 0) > 0
    assert r.dropped_by_decision == kinds.get("dropped", 0)
    assert r.written_objects == -(-len(expected) // 7)

    scanned = {_full_key(i): i for i in (_wire(i) for i in _scan(ddb, spec.target.table))}
    assert scanned.keys() == expected.keys()
    # moto's ImportTable parser keeps JSON escapes (\t, \", \\) literally, where AWS decodes
    # them: items with an escaped character are compared in the S3 objects below instead.
    plain = {k for k, item in expected.items() if "\\" not in json.dumps(item, ensure_ascii=False)}
    assert len(plain) > len(expected) // 2
    assert {k: scanned[k] for k in plain} == {k: expected[k] for k in plain}

    desc = ddb.describe_table(TableName=spec.target.table)["Table"]
    assert desc["TableStatus"] == "ACTIVE"
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert desc.get("LatestStreamArn")
    assert {k["AttributeName"]: k["KeyType"] for k in desc["KeySchema"]} == {
        "customer_id": "HASH", "order_id": "RANGE"}

    # The objects: gzip, {"Item": …} lines, at most 7 each, named by keymap version.
    listing = boto_clients.s3.list_objects_v2(Bucket=IMPORTS, Prefix=f"imports/keyshift-{keymap.version}/")
    keys = [o["Key"] for o in listing["Contents"]]
    assert keys == [f"imports/keyshift-{keymap.version}/part-{i:05d}.json.gz" for i in range(r.written_objects)]
    written = []
    for key in keys:
        body = gzip.decompress(boto_clients.s3.get_object(Bucket=IMPORTS, Key=key)["Body"].read())
        rows = [json.loads(line) for line in body.splitlines()]
        assert 0 < len(rows) <= 7 and all(list(row) == ["Item"] for row in rows)
        written.extend(row["Item"] for row in rows)
    assert written == list(expected.values())  # exactly, in dump order, escapes included

    assert any(e["phase"] == "import" and e["status"] == "COMPLETED" for e in events)
    run = runs.latest(ws, "import")
    assert (run.kind, run.state, run.keymap) == ("import", "complete", keymap.version)
    assert run.summary["import_arn"] == r.import_arn
    assert ws.audit_log(action="restore.import")[0].details["imported"] == r.imported


def test_second_import_refuses_existing_table(world, boto_clients, imported):
    spec, ws, keymap, _, _ = imported
    with pytest.raises(TableError, match="exists already"):
        import_via_s3(ws, spec, keymap, dump_uri=world.export_uri, s3=boto_clients.s3,
                      ddb=boto_clients.dynamodb, prefix_uri=f"s3://{IMPORTS}/imports", operator="e2e")
