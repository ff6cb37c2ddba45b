"""The demo's data generator and dump writers: deterministic, and their manifests tell the truth.

No server needed; these guard the fixtures every other end-to-end test stands on.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json

import orjson
import pytest

from keyshift.console import demo_data as dd

pytestmark = pytest.mark.e2e


def test_demo_data_is_deterministic_and_exact() -> None:
    a, b = dd.build_demo_data(500), dd.build_demo_data(500)
    assert a.items == b.items and a.reference == b.reference
    assert len(a.items) == 500
    keys = [(i["customer"]["S"], i["order_id"]["S"]) for i in a.items]
    assert len(set(keys)) == len(keys), "the source table's primary keys must be unique"
    raws = {k for k, _ in keys}
    assert {raw for raw, *_ in dd.CURATED} <= raws
    assert all(len(r.encode()) <= 2048 for r in raws), "DynamoDB refuses longer partition keys"


def test_too_few_records_is_refused() -> None:
    with pytest.raises(ValueError):
        dd.build_demo_data(sum(n for _, n, _, _ in dd.CURATED) - 1)


def test_export_manifests_match_their_data_files() -> None:
    data = dd.build_demo_data(200)
    lines = [dd.item_line(i) for i in data.items] + data.extra_lines
    base, objects = dd.export_objects(lines, bucket="b", prefix="exports", table="orders")
    assert base.startswith("exports/AWSDynamoDB/")
    summary = json.loads(objects[f"{base}/manifest-summary.json"])
    entries = [json.loads(x) for x in objects[f"{base}/manifest-files.json"].splitlines()]
    assert summary["itemCount"] == sum(e["itemCount"] for e in entries) == len(lines)
    assert summary["manifestFilesS3Key"] == f"{base}/manifest-files.json"
    assert summary["outputFormat"] == "DYNAMODB_JSON"
    assert f"{base}/_started" in objects
    assert any(e["itemCount"] == 0 for e in entries), "an empty partition gives an empty file"
    for e in entries:
        body = objects[e["dataFileS3Key"]]
        assert base64.b64decode(e["md5Checksum"]) == hashlib.md5(body).digest()
        count = len(gzip.decompress(body).splitlines()) if body else 0
        assert count == e["itemCount"]


def test_datapipeline_lines_use_lower_camel_type_keys() -> None:
    item = {"customer": {"S": "Acme"}, "n": {"N": "1"}, "tags": {"SS": ["a"]}, "ok": {"BOOL": True},
            "gone": {"NULL": True}, "blob": {"B": b"\x01\x02"},
            "m": {"M": {"l": {"L": [{"S": "x"}, {"NS": ["2"]}]}}}}
    assert dd.to_datapipeline(item) == {
        "customer": {"s": "Acme"}, "n": {"n": "1"}, "tags": {"sS": ["a"]}, "ok": {"bOOL": True},
        "gone": {"nULLValue": True}, "blob": {"b": "AQI="},
        "m": {"m": {"l": {"l": [{"s": "x"}, {"nS": ["2"]}]}}},
    }
    objects = dd.datapipeline_objects([item], bucket="b", prefix="p/", files=2)
    manifest = orjson.loads(objects["p/manifest"])
    assert [e["url"] for e in manifest["entries"]] == [f"s3://b/{k}" for k in objects if k != "p/manifest"]
