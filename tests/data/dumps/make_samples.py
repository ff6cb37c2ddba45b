"""Write the small sample dumps under tests/data/dumps/ (deterministic: same bytes every run).

    python tests/data/dumps/make_samples.py

Every format keyshift reads, and every kind of damage it must survive:

- ``datapipeline/manifest_gz/``   Data Pipeline export: ``manifest`` + 2 gzipped parts (no
  extension) + ``_SUCCESS``; every casing of every type key, ``nULL`` and ``nULLValue``, binary.
- ``datapipeline/plain/``         no manifest, one uncompressed part, ``_SUCCESS``, a dotfile.
- ``datapipeline/casings``        one file: the same item spelled with every casing.
- ``datapipeline/hive``           the old Hive format (0x02 / 0x03 separators).
- ``datapipeline/missing_mandatory/``  a manifest listing a part that is not there.
- ``export/full/``                native export: manifest-summary.json, manifest-files.json,
  .checksum files, ``_started``, 2 gzipped data files and an empty one (correct MD5s/counts).
- ``export/nomanifest/``          what moto writes: only ``AWSDynamoDB/<id>/data/*.json.gz``.
- ``export/two_exports/``         two exports under one prefix (the newest must win).
- ``export/count_mismatch/``, ``export/md5_mismatch/``: manifests that disagree with the data.
- ``ddbjson/wrapped.jsonl``, ``ddbjson/plain.jsonl``, ``ddbjson/gzipped.json`` (gzip, no .gz).
- ``bad/lines.jsonl``             one bad line of each kind between good ones.
- ``bad/truncated/``              a truncated gzip file (200 lines cut in half) followed by a
  good file.
- ``bad/corrupt.json.gz``         a gzip stream with damaged deflate data.

``expected.json`` holds the items (wire format) each readable sample must yield, in order.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: Items in wire format. Identifiers carry the traps keyshift exists for (ZWSP, fullwidth...).
ITEMS: list[dict[str, Any]] = [
    {"Id": {"N": "101"}, "Name": {"S": "Acme"}, "Tags": {"SS": ["a", "b"]},
     "Active": {"BOOL": True}, "Blob": {"B": base64.b64encode(b"\x00\x01\x02\xff").decode()}},
    {"Id": {"N": "102"}, "Name": {"S": "Acme\u200b"}, "Scores": {"NS": ["1", "2.5", "-3e2"]},
     "Gone": {"NULL": True}, "Dims": {"M": {"w": {"N": "8.5"}, "h": {"N": "11"}}}},
    {"Id": {"N": "103"}, "Name": {"S": "\uff21\uff23\uff2d\uff25"}, "Bins": {"BS": ["AQID", "BAUG"]},
     "List": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"L": [{"BOOL": False}]}}}]}},
    {"Id": {"N": "104"}, "Name": {"S": "Caf\u0065\u0301"}, "Active": {"BOOL": False},
     "Empty": {"S": ""}, "Nested": {"M": {"n": {"NULL": True}, "b": {"B": "AA=="}}}},
    {"Id": {"N": "105"}, "Name": {"S": "\u0440\u0430\u0443\u0440\u0430l"}, "Qty": {"N": "0"}},
]

# Java SDK v1 field names, as the Data Pipeline / EMR connector writes them.
_DP = {"S": "s", "N": "n", "B": "b", "SS": "sS", "NS": "nS", "BS": "bS", "M": "m", "L": "l",
       "BOOL": "bOOL", "NULL": "nULL"}


def to_datapipeline(desc: dict[str, Any], null_key: str = "nULL") -> dict[str, Any]:
    """One wire descriptor in Data Pipeline spelling (recursively)."""
    (k, v), = desc.items()
    key = null_key if k == "NULL" else _DP[k]
    if k == "M":
        v = {n: to_datapipeline(d, null_key) for n, d in v.items()}
    elif k == "L":
        v = [to_datapipeline(d, null_key) for d in v]
    return {key: v}


def dp_item(item: dict[str, Any], null_key: str = "nULL") -> dict[str, Any]:
    return {n: to_datapipeline(d, null_key) for n, d in item.items()}


def jline(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def write(rel: str, data: bytes) -> Path:
    path = HERE / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# --------------------------------------------------------------------------------------------


def datapipeline() -> dict[str, list]:
    exp: dict[str, list] = {}
    # manifest + 2 gzipped parts; part 2 uses the older nULLValue spelling.
    base = "datapipeline/manifest_gz"
    p1 = "ae10f955-6d2c-4b33-9a61-2d1b6f0c7e40_000000"
    p2 = "ae10f955-6d2c-4b33-9a61-2d1b6f0c7e41_000001"
    write(f"{base}/{p1}", gz(b"".join(jline(dp_item(i)) for i in ITEMS[:3])))
    write(f"{base}/{p2}", gz(b"".join(jline(dp_item(i, "nULLValue")) for i in ITEMS[3:])))
    write(f"{base}/_SUCCESS", b"")
    manifest = {"name": "DynamoDB-export", "version": 3, "entries": [
        # Listed out of name order on purpose: the manifest's order wins.
        {"url": f"s3://example-bucket/exports/2024-06-11-09-30-00/{p2}", "mandatory": True},
        {"url": f"s3://example-bucket/exports/2024-06-11-09-30-00/{p1}", "mandatory": True},
    ]}
    write(f"{base}/manifest", json.dumps(manifest).encode())
    exp["datapipeline/manifest_gz"] = ITEMS[3:] + ITEMS[:3]

    base = "datapipeline/plain"
    write(f"{base}/5d7e2c1a-0b9f-4e55-8c0d-7a1f3e2b6c90_000000",
          b"".join(jline(dp_item(i)) for i in ITEMS))
    write(f"{base}/_SUCCESS", b"")
    write(f"{base}/.hidden", b"not data\n")
    exp["datapipeline/plain"] = ITEMS

    # The same item with every spelling of every type key, one line each.
    lines = [
        {"a": {"s": "x"}, "b": {"n": "1"}, "c": {"b": "AQID"}, "d": {"sS": ["p", "q"]},
         "e": {"nS": ["1", "2"]}, "f": {"bS": ["AQID"]}, "g": {"m": {"h": {"s": "y"}}},
         "i": {"l": [{"s": "z"}]}, "j": {"bOOL": True}, "k": {"nULL": True}},
        {"a": {"S": "x"}, "b": {"N": "1"}, "c": {"B": "AQID"}, "d": {"SS": ["p", "q"]},
         "e": {"NS": ["1", "2"]}, "f": {"BS": ["AQID"]}, "g": {"M": {"h": {"S": "y"}}},
         "i": {"L": [{"S": "z"}]}, "j": {"BOOL": True}, "k": {"NULL": True}},
        {"a": {"s": "x"}, "b": {"n": "1"}, "c": {"b": "AQID"}, "d": {"ss": ["p", "q"]},
         "e": {"ns": ["1", "2"]}, "f": {"bs": ["AQID"]}, "g": {"m": {"h": {"s": "y"}}},
         "i": {"l": [{"s": "z"}]}, "j": {"bool": True}, "k": {"nULLValue": True}},
        {"a": {"S": "x"}, "b": {"N": "1"}, "c": {"B": "AQID"}, "d": {"Ss": ["p", "q"]},
         "e": {"Ns": ["1", "2"]}, "f": {"Bs": ["AQID"]}, "g": {"M": {"h": {"s": "y"}}},
         "i": {"L": [{"s": "z"}]}, "j": {"Bool": True}, "k": {"NULLVALUE": True}},
        {"a": {"s": "x"}, "b": {"n": "1"}, "c": {"b": "AQID"}, "d": {"sS": ["p", "q"]},
         "e": {"nS": ["1", "2"]}, "f": {"bS": ["AQID"]}, "g": {"m": {"h": {"S": "y"}}},
         "i": {"l": [{"S": "z"}]}, "j": {"BoOl": True}, "k": {"null": True}},
    ]
    write("datapipeline/casings", b"".join(jline(x) for x in lines))
    exp["datapipeline/casings"] = [lines[1]] * len(lines)

    # Hive: name 0x03 value, attributes separated by 0x02.
    hive = []
    for item in ITEMS[:2]:
        hive.append(b"\x02".join(n.encode() + b"\x03" + json.dumps(d, ensure_ascii=False,
                    separators=(",", ":")).encode() for n, d in dp_item(item).items()) + b"\n")
    write("datapipeline/hive", b"".join(hive))
    exp["datapipeline/hive"] = ITEMS[:2]

    base = "datapipeline/missing_mandatory"
    write(f"{base}/0a1b2c3d-0000-0000-0000-000000000000_000000", jline(dp_item(ITEMS[0])))
    write(f"{base}/manifest", json.dumps({"name": "DynamoDB-export", "version": 3, "entries": [
        {"url": "s3://example-bucket/x/0a1b2c3d-0000-0000-0000-000000000000_000000",
         "mandatory": True},
        {"url": "s3://example-bucket/x/0a1b2c3d-0000-0000-0000-000000000001_000001",
         "mandatory": True},
    ]}).encode())
    return exp


def _export(root: str, export_id: str, files: list[list[dict]], *, when: str,
            prefix: str = "exports/2024-06", summary: bool = True, files_manifest: bool = True,
            tamper: Any = None) -> None:
    base = f"{root}/AWSDynamoDB/{export_id}"
    key_base = f"{prefix}/AWSDynamoDB/{export_id}"
    entries = []
    for n, items in enumerate(files):
        body = gz(b"".join(jline({"Item": i}) for i in items)) if items else b""
        name = f"{export_id[-8:]}{n:02d}abcdefghijklmnop.json.gz"
        write(f"{base}/data/{name}", body)
        entries.append({"itemCount": len(items), "md5Checksum": b64md5(body),
                        "etag": hashlib.md5(body).hexdigest(),
                        "dataFileS3Key": f"{key_base}/data/{name}"})
    if tamper:
        tamper(entries)
    files_doc = b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in entries)
    write(f"{base}/_started", b"")
    if files_manifest:
        write(f"{base}/manifest-files.json", files_doc)
        write(f"{base}/manifest-files.checksum", hashlib.md5(files_doc).hexdigest().encode())
    if summary:
        arn = "arn:aws:dynamodb:us-east-1:123456789012:table/Customers"
        doc = json.dumps({
            "version": "2020-06-30", "exportArn": f"{arn}/export/{export_id}",
            "startTime": when, "endTime": when, "tableArn": arn,
            "tableId": "12345a12-abcd-123a-ab12-1234abc12345", "exportTime": when,
            "s3Bucket": "example-bucket", "s3Prefix": prefix, "s3SseAlgorithm": "AES256",
            "s3SseKmsKeyId": None, "manifestFilesS3Key": f"{key_base}/manifest-files.json",
            "billedSizeBytes": 0, "itemCount": sum(len(f) for f in files),
            "outputFormat": "DYNAMODB_JSON", "exportType": "FULL_EXPORT",
        }, indent=2).encode()
        write(f"{base}/manifest-summary.json", doc)
        write(f"{base}/manifest-summary.checksum", hashlib.md5(doc).hexdigest().encode())


def export() -> dict[str, list]:
    exp: dict[str, list] = {}
    eid = "01718098200000-a1b2c3d4"
    _export("export/full", eid, [ITEMS[:3], [], ITEMS[3:]], when="2024-06-11T09:30:00.000Z")
    exp["export/full"] = ITEMS

    _export("export/nomanifest", "01718098200000-deadbeef", [ITEMS[:2], ITEMS[2:]],
            when="2024-06-11T09:30:00.000Z", summary=False, files_manifest=False)
    exp["export/nomanifest"] = ITEMS

    _export("export/two_exports", "01718000000000-00000001", [ITEMS[:1]],
            when="2024-06-10T06:40:00.000Z")
    _export("export/two_exports", "01718098200000-00000002", [ITEMS[1:]],
            when="2024-06-11T09:30:00.000Z")
    exp["export/two_exports"] = ITEMS[1:]

    def wrong_count(entries: list[dict]) -> None:
        entries[0]["itemCount"] += 1

    def wrong_md5(entries: list[dict]) -> None:
        entries[1]["md5Checksum"] = b64md5(b"something else")

    _export("export/count_mismatch", "01718098200000-c0c0c0c0", [ITEMS[:2], ITEMS[2:]],
            when="2024-06-11T09:30:00.000Z", tamper=wrong_count)
    exp["export/count_mismatch"] = ITEMS
    _export("export/md5_mismatch", "01718098200000-3d53d53d", [ITEMS[:2], ITEMS[2:]],
            when="2024-06-11T09:30:00.000Z", tamper=wrong_md5)
    exp["export/md5_mismatch"] = ITEMS
    return exp


def ddbjson() -> dict[str, list]:
    exp: dict[str, list] = {}
    write("ddbjson/wrapped.jsonl", b"".join(jline({"Item": i}) for i in ITEMS))
    exp["ddbjson/wrapped.jsonl"] = ITEMS
    # Unwrapped, with a blank line and CRLF endings in the middle: both are fine.
    body = b"".join(jline(i) for i in ITEMS[:2]) + b"\n" + jline(ITEMS[2]).replace(b"\n", b"\r\n")
    body += b"".join(jline(i) for i in ITEMS[3:])
    write("ddbjson/plain.jsonl", body)
    exp["ddbjson/plain.jsonl"] = ITEMS
    # gzip recognised by its magic bytes, whatever the name says; wrapper decided per line.
    mixed = [jline({"Item": i}) if n % 2 else jline(i) for n, i in enumerate(ITEMS)]
    write("ddbjson/gzipped.json", gz(b"".join(mixed)))
    exp["ddbjson/gzipped.json"] = ITEMS
    return exp


#: (line number, the error text expected to appear) for bad/lines.jsonl.
BAD_LINES = [
    (2, "malformed JSON"),
    (3, "not a JSON object"),
    (4, "'Item' wrapper must hold an object"),
    (5, "unknown type key 'X' in attribute 'Name'"),
    (6, "invalid base64 in attribute 'Blob'"),
    (7, "unknown type key 'zz' in attribute 'Dims.w'"),
    (8, "N value must be a string"),
    (9, "SS value must be an array of strings"),
    (10, "malformed JSON"),  # invalid UTF-8
    (11, "type descriptor must have exactly one key"),
    (13, "invalid number"),
]


def bad() -> dict[str, list]:
    exp: dict[str, list] = {}
    lines = [
        jline({"Item": ITEMS[0]}),                                       # 1 good
        b'{"Item": {"Id": {"N": "1"}, "Name": {"S": "x"\n',              # 2 malformed JSON
        b'["not", "an", "object"]\n',                                    # 3 not an object
        b'{"Item": "nope"}\n',                                           # 4 wrapper not object
        b'{"Id": {"N": "2"}, "Name": {"X": "y"}}\n',                     # 5 unknown type key
        b'{"Id": {"N": "3"}, "Blob": {"B": "not base64!"}}\n',           # 6 invalid base64
        b'{"Id": {"N": "4"}, "Dims": {"M": {"w": {"zz": "1"}}}}\n',      # 7 nested unknown key
        b'{"Id": {"N": 5}}\n',                                           # 8 N not a string
        b'{"Id": {"N": "6"}, "Tags": {"SS": ["a", 1]}}\n',               # 9 SS not strings
        b'{"Id": {"N": "7"}, "Name": {"S": "\xff\xfe"}}\n',              # 10 invalid UTF-8
        b'{"Id": {"N": "8"}, "Name": {"S": "a", "N": "1"}}\n',           # 11 two type keys
        b'   \n',                                                        # 12 blank
        b'{"Id": {"N": "12abc"}}\n',                                     # 13 bad number
        jline(ITEMS[1]),                                                 # 14 good
    ]
    write("bad/lines.jsonl", b"".join(lines))
    exp["bad/lines.jsonl"] = [ITEMS[0], ITEMS[1]]

    many = [{**i, "Id": {"N": str(1000 + n)}} for n, i in enumerate(ITEMS * 40)]
    full = gz(b"".join(jline({"Item": i}) for i in many))
    write("bad/truncated/a_truncated.json.gz", full[: len(full) // 2])
    write("bad/truncated/b_good.json.gz", gz(jline({"Item": ITEMS[4]})))

    good = gz(b"".join(jline({"Item": i}) for i in many))
    damaged = bytearray(good)
    for i in range(40, 60):
        damaged[i] ^= 0x5A
    write("bad/corrupt.json.gz", bytes(damaged))
    return exp


def main() -> None:
    for sub in ("datapipeline", "export", "ddbjson", "bad"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
    expected: dict[str, list] = {}
    expected.update(datapipeline())
    expected.update(export())
    expected.update(ddbjson())
    expected.update(bad())
    (HERE / "expected.json").write_text(json.dumps(copy.deepcopy(expected), indent=1,
                                                   ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
