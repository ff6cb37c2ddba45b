"""core.import_table: S3 objects (gzip, {"Item": ...} lines, parts), skip counting, duplicate keys,
refusals, the run record; ImportTable itself against in-process moto."""

from __future__ import annotations

import base64
import gzip
import json
import os
import threading

import boto3
import orjson
import pytest
from botocore.config import Config
from keyshift.core.migrate import import_table as it
from keyshift.core.errors import KeyshiftError
from keyshift.core.migrate.import_table import ImportCancelled, ImportFailed, import_via_s3
from keyshift.core.spec import parse_spec
from keyshift.core.migrate.tables import TableError
from keyshift.core.kernel.keymap import Keymap, KeymapEntry
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.store.workspace import Workspace
from moto import mock_aws

SPEC = parse_spec("""
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"
[target]
table = "orders_v2"
partition_key = "customer_id"
legacy_attribute = "legacy_customer"
""")
NAMES = KeyNames.from_spec(SPEC)
BUCKET = "imports"

KEYMAP = Keymap(
    version="v1test",
    entries={
        "Acme": KeymapEntry("C-1", "rule"),
        "Acme\u200b": KeymapEntry("C-1", "rule"),      # merged with Acme: duplicates on one order
        "Bob": KeymapEntry("C-2", "rule"),
        "Spam": KeymapEntry(None, "decision:3", "test data"),
    },
    unresolved={"Mystery": "case abc open"},
)


def item(customer, order, **extra):
    out = {"customer": {"S": customer}, "order_id": {"S": order}}
    out.update(extra)
    return out


ITEMS = [
    item("Acme", "1", total={"N": "10"}),
    item("Acme\u200b", "1", total={"N": "11"}),   # same new key as the first: duplicate-key
    item("Acme\u200b", "2", tags={"SS": ["a", "b"]}),
    item("Bob", "3", blob={"B": "AQID"}, note={"S": "h\u00e9llo w\u00f6rld \u2603"}),
    item("Bob", "4", m={"M": {"x": {"L": [{"N": "1"}, {"NULL": True}]}}}),
    item("Spam", "5"),                             # dropped by decision
    item("Mystery", "6"),                          # unresolved
    item("Bob", "7", customer_id={"S": "clash"}),  # attribute collision
    {"customer": {"S": "Bob"}, "order_id": {"N": "8"}},  # sort key of another type
]
BAD_LINES = [b'{"customer": {"S": "broken"']


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        config = Config(account_id_endpoint_mode="disabled")
        s3 = boto3.client("s3", region_name="us-east-1", config=config)
        ddb = boto3.client("dynamodb", region_name="us-east-1", config=config)
        s3.create_bucket(Bucket=BUCKET)
        yield s3, ddb


def write_dump(path, items, bad=()):
    with open(path, "wb") as fh:
        fh.writelines(orjson.dumps(i) + b"\n" for i in items)
        fh.writelines(line + b"\n" for line in bad)
    return str(path)


def read_objects(s3, prefix):
    out = {}
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        assert body[:2] == b"\x1f\x8b", "objects must be gzip"
        out[obj["Key"]] = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return out


def run(ws, s3, ddb, dump, **kwargs):
    kwargs.setdefault("poll_seconds", 0.05)
    kwargs.setdefault("timeout", 60)
    return import_via_s3(ws, SPEC, KEYMAP, dump_uri=dump, s3=s3, ddb=ddb,
                         prefix_uri=f"s3://{BUCKET}/migr", operator="tester", **kwargs)


def expected_items():
    """transform() of each item, first in dump order per new full key (what must be imported)."""
    out, seen = [], set()
    for i in ITEMS:
        o = transform(i, KEYMAP, NAMES)
        if type(o) is Put and "S" in o.item["order_id"]:
            key = (o.item["customer_id"]["S"], o.item["order_id"]["S"])
            if key not in seen:
                seen.add(key)
                out.append(o.item)
    return out


def test_objects_format_counts_and_import(aws, tmp_path):
    s3, ddb = aws
    dump = write_dump(tmp_path / "dump.json", ITEMS, BAD_LINES)
    ws = Workspace(tmp_path / "ws")
    events = []
    r = run(ws, s3, ddb, dump, items_per_object=2, progress=events.append)

    objects = read_objects(s3, "migr/")
    assert sorted(objects) == [f"migr/keyshift-v1test/part-{i:05d}.json.gz" for i in range(2)]
    lines = [line for key in sorted(objects) for line in objects[key]]
    assert all(set(line) == {"Item"} for line in lines)
    assert [line["Item"] for line in lines] == expected_items()
    assert [len(objects[k]) for k in sorted(objects)] == [2, 2]

    assert r.items_written == 4 and r.written_objects == 2 and r.lines == len(ITEMS) + 1
    assert r.skip_reasons == {"duplicate-key": 1, "dropped": 1, "unresolved": 1, "collision": 1,
                              "bad-key": 1, "unreadable": 1}
    assert r.skipped == 6 and r.dropped_by_decision == 1
    assert r.items_written + r.skipped == r.lines
    assert r.prefix == f"s3://{BUCKET}/migr/keyshift-v1test/"
    assert r.status == "COMPLETED" and r.import_arn
    assert (r.imported, r.errored, r.processed) == (4, 0, 4)
    assert r.stream_enabled and r.keymap == "v1test"

    desc = ddb.describe_table(TableName="orders_v2")["Table"]
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert {k["AttributeName"]: k["KeyType"] for k in desc["KeySchema"]} == {
        "customer_id": "HASH", "order_id": "RANGE"}
    scanned = [_b64(i) for i in ddb.scan(TableName="orders_v2")["Items"]]
    key = lambda i: (i["customer_id"]["S"], i["order_id"]["S"])
    assert sorted(scanned, key=key) == sorted(expected_items(), key=key)

    phases = [e["phase"] for e in events]
    assert "write" in phases and "import" in phases and phases[-1] == "stream"
    assert events[-2]["status"] == "COMPLETED"

    row = ws.connect().execute("SELECT kind, state, keymap, params, summary FROM runs").fetchone()
    assert (row["kind"], row["state"], row["keymap"]) == ("import", "complete", "v1test")
    assert json.loads(row["params"])["prefix"] == r.prefix
    assert json.loads(row["summary"])["items_written"] == 4
    audit = ws.audit_log(action="restore.import")
    assert audit and audit[0].details["status"] == "COMPLETED" and audit[0].operator == "tester"
    # The key set's scratch file is gone.
    assert not list((tmp_path / "ws").glob(".import-keys-*"))


def _b64(item):
    """A scanned item with binary values back in wire format (boto3 decodes B to bytes)."""
    return {k: {"B": base64.b64encode(v["B"]).decode()} if "B" in v else v for k, v in item.items()}


def test_escapes_survive_in_objects(aws, tmp_path):
    """Quotes, backslashes and control characters are valid JSON in the objects. (moto's
    ImportTable JSON parser truncates strings at an escaped quote, so the table is not checked.)"""
    s3, ddb = aws
    tricky = "q\"uote \\ back\nline\t\u0001 \u00e9\u200b"
    r = run(Workspace(tmp_path / "ws"), s3, ddb,
            write_dump(tmp_path / "d.json", [item("Bob", "1", note={"S": tricky})]))
    (lines,) = read_objects(s3, "migr/").values()
    assert lines == [{"Item": {"order_id": {"S": "1"}, "note": {"S": tricky},
                               "customer_id": {"S": "C-2"}, "legacy_customer": {"S": "Bob"}}}]
    assert r.items_written == 1 and r.status == "COMPLETED"


def test_refuses_existing_target_table(aws, tmp_path):
    s3, ddb = aws
    ddb.create_table(TableName="orders_v2", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "customer_id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "customer_id", "AttributeType": "S"}])
    dump = write_dump(tmp_path / "dump.json", ITEMS)
    with pytest.raises(TableError, match="exists already"):
        run(Workspace(tmp_path / "ws"), s3, ddb, dump)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_refuses_foreign_objects_under_prefix(aws, tmp_path):
    s3, ddb = aws
    s3.put_object(Bucket=BUCKET, Key="migr/keyshift-v1test/notes.txt", Body=b"x")
    with pytest.raises(KeyshiftError, match="did not write"):
        run(Workspace(tmp_path / "ws"), s3, ddb, write_dump(tmp_path / "d.json", ITEMS))


def test_stale_parts_of_an_earlier_run_are_replaced(aws, tmp_path):
    s3, ddb = aws
    stale = "migr/keyshift-v1test/part-00007.json.gz"
    s3.put_object(Bucket=BUCKET, Key=stale, Body=gzip.compress(b'{"Item": {"customer_id": {"S": "old"}}}\n'))
    r = run(Workspace(tmp_path / "ws"), s3, ddb, write_dump(tmp_path / "d.json", ITEMS))
    assert r.stale_objects_removed == 1 and r.written_objects == 1
    assert stale not in read_objects(s3, "migr/")
    assert r.imported == 4


def test_nothing_to_import_fails_and_records(aws, tmp_path):
    s3, ddb = aws
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(ImportFailed, match="nothing to import"):
        run(ws, s3, ddb, write_dump(tmp_path / "d.json", [item("Spam", "1")]))
    assert ws.connect().execute("SELECT state FROM runs").fetchone()[0] == "failed"
    assert not ddb.list_tables()["TableNames"]


def test_cancel_while_writing(aws, tmp_path, monkeypatch):
    s3, ddb = aws
    monkeypatch.setattr(it, "REPORT_EVERY", 2)
    cancel = threading.Event()
    cancel.set()
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(ImportCancelled):
        run(ws, s3, ddb, write_dump(tmp_path / "d.json", ITEMS), cancel=cancel)
    assert ws.connect().execute("SELECT state FROM runs").fetchone()[0] == "cancelled"
    assert not ddb.list_tables()["TableNames"]


def test_multipart_object_streams_in_parts(aws, tmp_path, monkeypatch):
    """An object bigger than PART_BYTES goes up as a multipart upload and reads back whole."""
    s3, ddb = aws
    monkeypatch.setattr(it, "PART_BYTES", 64 * 1024)
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 256)  # S3's is 5 MiB
    calls = []
    s3.meta.events.register("before-call.s3.UploadPart", lambda **kw: calls.append(1))
    items = [item("Bob", str(n), pad={"S": base64.b64encode(os.urandom(3000)).decode()}) for n in range(150)]
    r = import_via_s3(Workspace(tmp_path / "ws"), SPEC, KEYMAP, dump_uri=write_dump(tmp_path / "d.json", items),
                      s3=s3, ddb=ddb, prefix_uri=f"s3://{BUCKET}/big", poll_seconds=0.05, timeout=120)
    assert len(calls) >= 3 and r.written_objects == 1
    lines = read_objects(s3, "big/")["big/keyshift-v1test/part-00000.json.gz"]
    assert [line["Item"]["order_id"]["S"] for line in lines] == [str(n) for n in range(150)]
    assert [line["Item"]["pad"] for line in lines] == [i["pad"] for i in items]
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    assert r.imported == 150


def test_object_prefix():
    assert it.object_prefix("s3://b/p/q/", "v9") == ("b", "p/q/keyshift-v9/")
    assert it.object_prefix("s3://b", "v9") == ("b", "keyshift-v9/")
    with pytest.raises(KeyshiftError):
        it.object_prefix("/local/path", "v9")
