"""``keyshift plan`` / ``records`` end to end: real command, dumps and reference data in S3.

The dump is the demo's curated traps (``keyshift.console.demo_data.CURATED``) plus four bad lines,
so every number of the plan is known by hand:

* 30 distinct identifiers: 29 curated raws and one 2,300-byte name only the dump holds;
* ambiguous 13: six raw forms of "Acme Corp", two each of "Café Rouge", "Wayne Enterprises" and
  "Globex Corporation", and "Soylent Foods" (two reference ids);
* orphaned 5: "ＡＣＭＥ ＣＯＲＰ" (-> "ACME CORP", no casefold), "раураl", "Ѕtarlight Books",
  "Dunder Mifflin", "Vandelay Industries";
* invalid 3: empty after normalization, U+FDFA blown past 2,048 bytes by NFKC, the long name;
* fixed 9, unchanged 0 (with reference data every new id is a CUST-… id);
* 49 + 1 records, 3 quarantined lines (malformed JSON, numeric customer, no customer);
* 3 conflicts: ORD-ACME-0001, ORD-ACME-0002, ORD-CAFE-0001.
"""

from __future__ import annotations

import gzip
import json

import orjson
import pytest

from keyshift.console import demo_data as dd
from keyshift.core.text.escape import unescape

pytestmark = pytest.mark.e2e

# unchanged/fixed: what the rules did; remapped: of those, how many get an upstream id (issue 8).
EXPECTED_IDENTIFIERS = {"total": 29, "unchanged": 1, "fixed": 8, "ambiguous": 13, "orphaned": 5, "invalid": 2,
                        "remapped": 9}
CURATED_RECORDS = sum(n for _, n, _, _ in dd.CURATED)
AMBIGUOUS = {
    "Acme Corp", "Acme Corp\u200b", "\ufeffAcme Corp", "Acme\u00a0Corp", "Acme  Corp", "Acme Corp ",
    "Café Rouge", "Cafe\u0301 Rouge", "Wayne Enterprises", "\u200fWayne Enterprises\u200e",
    " Globex Corporation", "Globex\u2003Corporation", "Soylent Foods",
}
SUMMARY_KEYS = {"format", "files", "lines", "records", "quarantined", "identifiers", "conflicts",
                "suspicious", "seconds"}


def identifier(world, raw: str) -> list[dict]:
    """``records --identifier RAW --json`` rows (RAW passed escaped, as an operator types it)."""
    from keyshift.core.text.escape import escape

    return world.run("records", "--identifier", escape(raw), "--limit", "100", "--json").json()


def test_plan_export_in_s3_follows_the_json_contract(world) -> None:
    summary = world.run("plan", "--dump", world.export_uri, "--json").json()

    assert SUMMARY_KEYS <= set(summary)
    assert summary["format"] == "export"
    assert summary["files"] == 5  # four data objects and one empty partition, as the manifest lists
    assert summary["lines"] == world.export_lines == CURATED_RECORDS + 4
    assert summary["lines"] == summary["records"] + summary["quarantined"]
    assert summary["records"] == CURATED_RECORDS
    assert summary["quarantined"] == 4  # the over-long key is not an item of any table
    assert summary["identifiers"] == EXPECTED_IDENTIFIERS
    assert summary["conflicts"] == 3
    assert summary["suspicious"] >= 2  # раураl and Ѕtarlight at least (scripts may flag more)
    assert isinstance(summary["seconds"], (int, float)) and summary["seconds"] >= 0
    assert summary["reconciled"] is True


def test_reference_data_in_s3_gives_orphans_and_reference_ambiguity(world) -> None:
    world.run("plan", "--dump", world.export_uri, "--json").json()

    soylent = identifier(world, "Soylent Foods")
    assert len(soylent) == 2 and {r["status"] for r in soylent} == {"ambiguous"}
    assert "2" in soylent[0]["reason"] and "reference" in soylent[0]["reason"]
    for raw in ("Dunder Mifflin", "раураl", "ＡＣＭＥ ＣＯＲＰ"):
        rows = identifier(world, raw)
        assert rows and {r["status"] for r in rows} == {"orphaned"}, raw
    cyrillic = identifier(world, "раураl")[0]
    assert cyrillic["suspicious"], "Cyrillic look-alikes must be flagged"
    assert cyrillic["canonical"] == "раураl"  # flagged, never changed
    muller = identifier(world, "Mu\u0308ller GmbH")
    assert {r["status"] for r in muller} == {"fixed"}
    assert muller[0]["canonical"] == "Müller GmbH" and muller[0]["new_id"].startswith("CUST-")
    assert {r["status"] for r in identifier(world, "\u200b \u00a0")} == {"invalid"}


def test_records_ambiguous_lists_escaped_raw_forms(world) -> None:
    world.run("plan", "--dump", world.export_uri, "--json").json()
    result = world.run("records", "--status", "ambiguous", "--limit", "200", "--json")
    rows = result.json()

    assert result.stdout.isascii(), "no raw invisible character may reach the terminal"
    assert {r["status"] for r in rows} == {"ambiguous"}
    escaped = {r["raw_escaped"] for r in rows}
    assert {"Acme Corp\\u200b", "\\ufeffAcme Corp", "Acme\\u00a0Corp", "Globex\\u2003Corporation"} <= escaped
    assert {"Acme Corp", "Wayne Enterprises", "Soylent Foods"} <= escaped
    for row in rows:
        assert unescape(row["raw_escaped"]) == row["raw"]
    assert {r["raw"] for r in rows} == AMBIGUOUS
    assert len(rows) == sum(n for raw, n, _, _ in dd.CURATED if raw in AMBIGUOUS)


def test_plan_datapipeline_dump_in_s3(world, curated) -> None:
    bad = [b'{"customer":{"s":"Broken', orjson.dumps({"customer": {"n": "42"}, "order_id": {"s": "X-1"}})]
    objects = dd.datapipeline_objects(curated.items, bucket="e2e-dp", prefix="pipeline/2024-06-11",
                                      extra_lines=bad)
    dd.put_objects(world.s3, "e2e-dp", objects)

    summary = world.run("plan", "--dump", "s3://e2e-dp/pipeline/2024-06-11/", "--json").json()

    assert summary["format"] == "datapipeline"
    assert summary["files"] == 2
    assert summary["lines"] == CURATED_RECORDS + 2 == summary["records"] + summary["quarantined"]
    assert summary["quarantined"] == 2
    ids = summary["identifiers"]
    assert ids["total"] == 29 and ids["invalid"] == 2 and ids["ambiguous"] == 13 and ids["orphaned"] == 5


@pytest.mark.parametrize("tamper", ["count", "checksum"])
def test_manifest_mismatch_exits_2_naming_the_file(world, tamper: str) -> None:
    manifest_key = f"{world.export_base}/manifest-files.json"
    entries = [json.loads(line) for line in world.export_objects[manifest_key].splitlines()]
    victim = next(e for e in entries if e["itemCount"] > 0)
    if tamper == "count":
        victim["itemCount"] += 1
        body = b"".join(orjson.dumps(e) + b"\n" for e in entries)
        world.s3.put_object(Bucket="e2e-dumps", Key=manifest_key, Body=body)
    else:  # the data object changed after the export: one line lost, the manifest untouched
        raw = gzip.decompress(world.export_objects[victim["dataFileS3Key"]]).splitlines(keepends=True)
        world.s3.put_object(Bucket="e2e-dumps", Key=victim["dataFileS3Key"],
                            Body=gzip.compress(b"".join(raw[:-1]) + b'{"Item":{}}\n', mtime=0))
    name = victim["dataFileS3Key"].rsplit("/", 1)[-1]

    refused = world.run("plan", "--dump", world.export_uri, "--json")
    assert refused.returncode == 2, refused.stderr
    assert name in refused.message
    assert refused.stdout == ""

    allowed = world.run("plan", "--dump", world.export_uri, "--allow-manifest-mismatch", "--json").json()
    assert allowed["lines"] == allowed["records"] + allowed["quarantined"]
    assert any(name in w for w in allowed["warnings"]), allowed["warnings"]


@pytest.mark.parametrize(("spec_text", "key"), [
    ('[source]\ntable = "orders"\n[target]\ntable = "orders_v2"\n', "source.partition_key"),
    ('[source]\ntable = "orders"\npartition_key = "customer"\n[target]\ntable = "orders_v2"\n'
     '[normalize]\nrules = ["nfkc", "lowercase"]\n', "normalize.rules"),
    ('[source]\ntable = "orders"\npartition_key = "customer"\n[target]\ntable = "orders_v2"\n'
     'partiton_key = "customer_id"\n', "target.partiton_key"),
], ids=["missing-key", "unknown-rule", "misspelt-key"])
def test_bad_spec_exits_2_naming_the_key(world, spec_text: str, key: str) -> None:
    bad = world.tmp / "bad.toml"
    bad.write_text(spec_text, encoding="utf-8")
    result = world.run("plan", "--dump", world.export_uri, "--json", spec=bad)
    assert result.returncode == 2, result.stderr
    assert key in result.message
    assert "Traceback" not in result.stderr


def test_replanning_is_idempotent(world) -> None:
    first = world.run("plan", "--dump", world.export_uri, "--json").json()
    rows_first = world.run("records", "--limit", "1000", "--json").json()
    second = world.run("plan", "--dump", world.export_uri, "--json").json()
    rows_second = world.run("records", "--limit", "1000", "--json").json()

    first.pop("seconds"), second.pop("seconds")
    assert first == second
    assert rows_first == rows_second and len(rows_first) == first["records"]


def test_read_only_plan_is_refused(world) -> None:
    result = world.run("plan", "--dump", world.export_uri, "--json", global_args=("--read-only",))
    assert result.returncode == 2
    assert "read-only" in result.message
    assert not (world.workspace / "keyshift.db").exists()


def test_random_bytes_are_not_a_dump(tmp_path, run_cli) -> None:
    """A directory of random bytes once passed as a Hive dump (0x03 bytes) and planned, exit 0."""
    import random

    from keyshift.core.store.workspace import Workspace

    dump = tmp_path / "dump"
    dump.mkdir()
    rng = random.Random(11)
    for n in range(2):
        (dump / f"part-{n:05d}").write_bytes(
            bytes(rng.choice(b"\n\x02\x03") if rng.random() < 0.1 else rng.randrange(256)
                  for _ in range(50_000)))
    spec = tmp_path / "keyshift.toml"
    spec.write_text('[source]\ntable = "orders"\npartition_key = "customer"\n'
                    '[target]\ntable = "orders_v2"\npartition_key = "customer_id"\n', encoding="utf-8")
    workspace = tmp_path / ".keyshift"

    result = run_cli(["--spec", str(spec), "--workspace", str(workspace), "plan", "--dump",
                           str(dump), "--json"], {}, tmp_path)

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no line of "), result.stderr
    assert f"{dump}/part-00000 (none of its first 50 lines is an item)" in lines[0]
    assert "parses as DynamoDB JSON, Data Pipeline JSON or Hive: expected one item per line" in lines[0]
    if (workspace / "keyshift.db").exists():  # refused before a plan was started
        states = Workspace(workspace).connect().execute("SELECT state FROM plans").fetchall()
        assert all(state != "complete" for (state,) in states)
