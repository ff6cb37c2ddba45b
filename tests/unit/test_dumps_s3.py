"""open_dump on S3 (moto's in-process mock): same results as local, bodies read in chunks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from keyshift.core.dumps import DumpError, ManifestError, open_dump

DATA = Path(__file__).resolve().parents[1] / "data" / "dumps"
EXPECTED = json.loads((DATA / "expected.json").read_text())
BUCKET = "dumps"


class SpyBody:
    """Wraps a get_object body: every read must be bounded; records sizes and close()."""

    def __init__(self, body: Any, log: dict) -> None:
        self._body = body
        self._log = log

    def read(self, amt: int | None = None) -> bytes:
        assert amt is not None and amt > 0, "a dump body must never be read whole"
        self._log["reads"].append(amt)
        return self._body.read(amt)

    def close(self) -> None:
        self._log["closed"] += 1
        self._body.close()


class SpyClient:
    """A boto3 S3 client whose get_object bodies are :class:`SpyBody`."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.log: dict = {"reads": [], "closed": 0, "gets": []}

    def get_object(self, **kw: Any) -> dict:
        self.log["gets"].append(kw["Key"])
        resp = self._client.get_object(**kw)
        resp["Body"] = SpyBody(resp["Body"], self.log)
        return resp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture(scope="module")
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)
        for path in sorted(DATA.rglob("*")):
            if path.is_file() and path.name != "make_samples.py":
                client.put_object(Bucket=BUCKET, Key=f"samples/{path.relative_to(DATA).as_posix()}",
                                  Body=path.read_bytes())
        yield client


def items(lines) -> list:
    return [line.item for line in lines if line.item is not None]


@pytest.mark.parametrize("sample, fmt", [
    ("datapipeline/manifest_gz", "datapipeline"),
    ("datapipeline/plain", "datapipeline"),
    ("datapipeline/hive", "datapipeline"),
    ("export/full", "export"),
    ("export/nomanifest", "export"),
    ("export/two_exports", "export"),
    ("ddbjson/wrapped.jsonl", "ddbjson"),
    ("ddbjson/gzipped.json", "ddbjson"),
])
def test_s3_samples(s3, sample, fmt):
    spy = SpyClient(s3)
    dump = open_dump(f"s3://{BUCKET}/samples/{sample}", s3=spy)
    assert dump.info.format == fmt and dump.info.detected
    assert all(f.startswith(f"s3://{BUCKET}/samples/{sample}") for f in dump.info.files)
    lines = list(dump)
    assert [line.error for line in lines if line.error] == []
    assert items(lines) == EXPECTED[sample]
    assert {line.file for line in lines} <= set(dump.info.files)
    assert dump.bytes_read == dump.info.bytes_total
    assert spy.log["reads"] and spy.log["closed"] == len(spy.log["gets"])


def test_s3_export_detection_text_and_manifest(s3):
    dump = open_dump(f"s3://{BUCKET}/samples/export/full/", s3=s3)
    assert dump.info.detection == ("export: found AWSDynamoDB/01718098200000-a1b2c3d4/"
                                   "manifest-summary.json")
    assert dump.info.expected_items == 5
    dump = open_dump(f"s3://{BUCKET}/samples/export/full/AWSDynamoDB/01718098200000-a1b2c3d4/"
                     "manifest-summary.json", s3=s3)
    assert items(dump) == EXPECTED["export/full"]


def test_s3_manifest_mismatch(s3):
    with pytest.raises(ManifestError, match="md5Checksum"):
        list(open_dump(f"s3://{BUCKET}/samples/export/md5_mismatch", s3=s3))
    dump = open_dump(f"s3://{BUCKET}/samples/export/count_mismatch", s3=s3,
                     allow_manifest_mismatch=True)
    assert items(dump) == EXPECTED["export/count_mismatch"]
    assert any("itemCount is 3" in w for w in dump.info.warnings)


def test_s3_datapipeline_manifest_same_bucket_urls(s3):
    """Manifest URLs that name the very objects are used as they are."""
    prefix = "dp-own/2024-06-11"
    entries = []
    for n in range(3):
        key = f"{prefix}/part-{n}"
        s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(
            orjson.dumps({"Id": {"n": str(n)}, "Gone": {"nULLValue": True}}) + b"\n"))
        entries.append({"url": f"s3://{BUCKET}/{key}", "mandatory": True})
    entries.reverse()
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/manifest", Body=json.dumps(
        {"name": "DynamoDB-export", "version": 3, "entries": entries}).encode())
    dump = open_dump(f"s3://{BUCKET}/{prefix}", s3=s3)
    assert dump.info.format == "datapipeline"
    assert [line.item["Id"]["N"] for line in dump] == ["2", "1", "0"]
    assert all(line.item["Gone"] == {"NULL": True} for line in dump)


def test_s3_missing_mandatory(s3):
    with pytest.raises(DumpError, match="0a1b2c3d-0000-0000-0000-000000000001_000001"):
        open_dump(f"s3://{BUCKET}/samples/datapipeline/missing_mandatory", s3=s3)


def test_s3_truncated_then_next_object(s3):
    lines = list(open_dump(f"s3://{BUCKET}/samples/bad/truncated", s3=s3))
    bad = [line for line in lines if line.error]
    assert len(bad) == 1 and bad[0].error.startswith("truncated gzip stream after line")
    assert bad[0].file == f"s3://{BUCKET}/samples/bad/truncated/a_truncated.json.gz"
    assert lines[-1].item is not None


def test_s3_missing_locations(s3):
    with pytest.raises(DumpError, match="no such S3 object or prefix"):
        open_dump(f"s3://{BUCKET}/samples/nothing-here", s3=s3)
    with pytest.raises(DumpError, match="cannot list"):
        open_dump("s3://no-such-bucket/x", s3=s3)
    with pytest.raises(DumpError, match="no bucket"):
        open_dump("s3:///x", s3=s3)


def test_s3_bytes_read_progresses_while_iterating(s3):
    body = b"".join(orjson.dumps({"Item": {"Id": {"S": f"id-{i:06d}" * 20}}}) + b"\n"
                    for i in range(20_000))
    s3.put_object(Bucket=BUCKET, Key="big/items.json", Body=body)
    spy = SpyClient(s3)
    dump = open_dump(f"s3://{BUCKET}/big/items.json", s3=spy)
    assert dump.info.format == "ddbjson" and dump.info.bytes_total == len(body)
    seen = []
    for n, _ in enumerate(dump):
        if n % 5000 == 0:
            seen.append(dump.bytes_read)
    assert seen == sorted(seen) and 0 < seen[1] < len(body)
    assert dump.bytes_read == len(body)
    assert max(spy.log["reads"]) < len(body) and len(spy.log["reads"]) > 3
