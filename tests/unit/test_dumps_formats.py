"""open_dump on the committed samples (tests/data/dumps, written by make_samples.py)."""

from __future__ import annotations

import gzip
import json
import shutil
import tracemalloc
from pathlib import Path

import orjson
import pytest

from keyshift.core.dumps import FORMATS, DumpError, DumpLine, ManifestError, open_dump
from keyshift.core.errors import KeyshiftError

DATA = Path(__file__).resolve().parents[1] / "data" / "dumps"
EXPECTED = json.loads((DATA / "expected.json").read_text())
EXPORT_ID = "01718098200000-a1b2c3d4"


def read(uri, fmt: str = "auto", **kw) -> tuple[list[DumpLine], object]:
    dump = open_dump(str(uri), fmt, **kw)
    return list(dump), dump


def items(lines: list[DumpLine]) -> list[dict]:
    return [line.item for line in lines if line.item is not None]


def errors(lines: list[DumpLine]) -> list[tuple[int, str]]:
    return [(line.line, line.error) for line in lines if line.error]


# --------------------------------------------------------------------------------------------
# Every sample: detected format, evidence, items.


@pytest.mark.parametrize("sample, fmt, evidence", [
    ("datapipeline/manifest_gz", "datapipeline", "datapipeline: found manifest (DynamoDB-export)"),
    ("datapipeline/plain", "datapipeline", "lower-camel type keys"),
    ("datapipeline/casings", "datapipeline", "lower-camel type keys"),
    ("datapipeline/hive", "datapipeline", "Hive control-character separators"),
    ("export/full", "export", f"export: found AWSDynamoDB/{EXPORT_ID}/manifest-summary.json"),
    ("export/nomanifest", "export", "export: found AWSDynamoDB/01718098200000-deadbeef/data/"),
    ("export/two_exports", "export", "AWSDynamoDB/01718098200000-00000002/manifest-summary.json"),
    ("ddbjson/wrapped.jsonl", "ddbjson", "items wrapped in {\"Item\": ...} in line 1"),
    ("ddbjson/plain.jsonl", "ddbjson", "uppercase type keys"),
    ("ddbjson/gzipped.json", "ddbjson", "uppercase type keys"),
])
def test_samples_detected_and_read(sample, fmt, evidence):
    lines, dump = read(DATA / sample)
    info = dump.info
    assert info.format == fmt and info.detected
    assert evidence in info.detection
    assert info.detection.startswith(f"{fmt}: ")
    assert errors(lines) == []
    assert items(lines) == EXPECTED[sample]
    assert dump.bytes_read == info.bytes_total > 0
    order = [info.files.index(line.file) for line in lines]
    assert order == sorted(order)


@pytest.mark.parametrize("sample, fmt", [
    ("datapipeline/manifest_gz", "datapipeline"), ("export/full", "export"),
    ("ddbjson/wrapped.jsonl", "ddbjson"), ("ddbjson/plain.jsonl", "ddbjson"),
    ("datapipeline/casings", "ddbjson"),  # ddbjson accepts lower-case type keys too
])
def test_explicit_format(sample, fmt):
    lines, dump = read(DATA / sample, fmt)
    assert dump.info.format == fmt and not dump.info.detected
    assert items(lines) == EXPECTED[sample]


def test_info_is_filled_before_iteration():
    dump = open_dump(str(DATA / "export/full"))
    info = dump.info
    assert info.format == "export" and info.expected_items == 5
    assert len(info.files) == 3 and all(f.endswith(".json.gz") for f in info.files)
    assert info.bytes_total == sum(Path(f).stat().st_size for f in info.files)
    assert dump.bytes_read == 0
    assert info.warnings == []
    assert FORMATS == ("datapipeline", "export", "ddbjson")


def test_line_numbers_and_files():
    lines, dump = read(DATA / "ddbjson/plain.jsonl")
    # Line 3 is blank: skipped, but counted in the numbering.
    assert [line.line for line in lines] == [1, 2, 4, 5, 6]
    assert {line.file for line in lines} == {str(DATA / "ddbjson/plain.jsonl")}
    assert all(line.raw_size > 0 and line.excerpt == "" for line in lines)


# --------------------------------------------------------------------------------------------
# Data Pipeline


def test_datapipeline_manifest_order_and_casings():
    lines, dump = read(DATA / "datapipeline/manifest_gz")
    names = [Path(f).name for f in dump.info.files]
    assert names == ["ae10f955-6d2c-4b33-9a61-2d1b6f0c7e41_000001",
                     "ae10f955-6d2c-4b33-9a61-2d1b6f0c7e40_000000"]
    assert dump.info.warnings == []
    first = lines[0].item
    assert first["Nested"] == {"M": {"n": {"NULL": True}, "b": {"B": "AA=="}}}  # from nULLValue


def test_datapipeline_single_manifest_file_uri():
    lines, dump = read(DATA / "datapipeline/manifest_gz/manifest")
    assert dump.info.format == "datapipeline"
    assert items(lines) == EXPECTED["datapipeline/manifest_gz"]


def test_datapipeline_missing_mandatory_entry():
    with pytest.raises(DumpError) as exc:
        open_dump(str(DATA / "datapipeline/missing_mandatory"))
    assert "0a1b2c3d-0000-0000-0000-000000000001_000001" in exc.value.message
    assert "mandatory" in exc.value.message


def test_datapipeline_optional_entry_missing_and_unlisted_files(tmp_path):
    shutil.copytree(DATA / "datapipeline/missing_mandatory", tmp_path, dirs_exist_ok=True)
    manifest = json.loads((tmp_path / "manifest").read_text())
    manifest["entries"][1]["mandatory"] = False
    (tmp_path / "manifest").write_text(json.dumps(manifest))
    (tmp_path / "stray_000009").write_bytes(b'{"x":{"s":"1"}}\n')
    lines, dump = read(tmp_path)
    assert len(items(lines)) == 1
    warnings = " | ".join(dump.info.warnings)
    assert "not mandatory" in warnings and "stray_000009" in warnings


def test_datapipeline_without_manifest_skips_markers_and_dotfiles():
    lines, dump = read(DATA / "datapipeline/plain")
    assert [Path(f).name for f in dump.info.files] == ["5d7e2c1a-0b9f-4e55-8c0d-7a1f3e2b6c90_000000"]
    assert any("no Data Pipeline manifest" in w for w in dump.info.warnings)


# --------------------------------------------------------------------------------------------
# Native export


@pytest.mark.parametrize("sub", ["", "AWSDynamoDB", f"AWSDynamoDB/{EXPORT_ID}",
                                 f"AWSDynamoDB/{EXPORT_ID}/", f"AWSDynamoDB/{EXPORT_ID}/data",
                                 f"AWSDynamoDB/{EXPORT_ID}/manifest-summary.json"])
def test_export_uri_variants(sub):
    lines, dump = read(f"{DATA / 'export/full'}/{sub}".rstrip("/") if sub else DATA / "export/full")
    assert dump.info.format == "export"
    assert dump.info.expected_items == 5
    assert items(lines) == EXPECTED["export/full"]


def test_export_without_manifest_warns():
    lines, dump = read(DATA / "export/nomanifest")
    assert dump.info.expected_items is None
    assert any("cannot be verified" in w for w in dump.info.warnings)


def test_two_exports_newest_wins_with_warning():
    _, dump = read(DATA / "export/two_exports")
    assert all("01718098200000-00000002" in f for f in dump.info.files)
    assert any("2 exports" in w and "newest" in w for w in dump.info.warnings)


def test_export_count_mismatch_raises_after_the_file():
    dump = open_dump(str(DATA / "export/count_mismatch"))
    seen = []
    with pytest.raises(ManifestError) as exc:
        for line in dump:
            seen.append(line)
    assert len(seen) == 2  # the first file's lines were delivered, then the check failed
    msg = exc.value.message
    assert "c0c0c0c000abcdefghijklmnop.json.gz" in msg and "itemCount is 3" in msg and "has 2" in msg
    assert isinstance(exc.value, DumpError) and isinstance(exc.value, KeyshiftError)


def test_export_md5_mismatch_raises():
    with pytest.raises(ManifestError) as exc:
        list(open_dump(str(DATA / "export/md5_mismatch")))
    assert "3d53d53d01abcdefghijklmnop.json.gz" in exc.value.message
    assert "md5Checksum" in exc.value.message


@pytest.mark.parametrize("sample", ["export/count_mismatch", "export/md5_mismatch"])
def test_manifest_mismatch_allowed_becomes_warning(sample):
    lines, dump = read(DATA / sample, allow_manifest_mismatch=True)
    assert items(lines) == EXPECTED[sample]
    assert any(w.startswith("manifest mismatch (allowed)") for w in dump.info.warnings)


def test_export_missing_listed_file(tmp_path):
    shutil.copytree(DATA / "export/full", tmp_path, dirs_exist_ok=True)
    victim = next((tmp_path / "AWSDynamoDB" / EXPORT_ID / "data").glob("*01abc*"))
    victim.unlink()
    with pytest.raises(DumpError) as exc:
        open_dump(str(tmp_path))
    assert victim.name in exc.value.message


def test_export_truncated_data_file_yields_fault_then_manifest_error(tmp_path):
    shutil.copytree(DATA / "export/full", tmp_path, dirs_exist_ok=True)
    victim = next((tmp_path / "AWSDynamoDB" / EXPORT_ID / "data").glob("*00abc*"))
    victim.write_bytes(victim.read_bytes()[:-12])
    dump = open_dump(str(tmp_path))
    seen = []
    with pytest.raises(ManifestError):
        for line in dump:
            seen.append(line)
    assert seen[-1].error.startswith("truncated gzip stream after line")


def test_export_ion_format_refused(tmp_path):
    shutil.copytree(DATA / "export/full", tmp_path, dirs_exist_ok=True)
    summary = tmp_path / "AWSDynamoDB" / EXPORT_ID / "manifest-summary.json"
    doc = json.loads(summary.read_text())
    doc["outputFormat"] = "ION"
    summary.write_text(json.dumps(doc))
    with pytest.raises(DumpError, match="ION"):
        open_dump(str(tmp_path))


def test_export_line_shapes():
    from keyshift.core.dumps.export import parse_export
    from keyshift.core.dumps.wire import LineError

    assert parse_export({"Item": {"a": {"s": "x"}}}) == {"a": {"S": "x"}}
    for obj, msg in [({"Keys": {}, "NewImage": {}}, "incremental"), ({"a": 1}, "expected"),
                     ({"Item": []}, "'Item' must be an object"), ([], "not a JSON object"),
                     ({"Item": {}, "x": 1}, "unexpected keys next to 'Item': 'x'")]:
        with pytest.raises(LineError, match=msg):
            parse_export(obj)


# --------------------------------------------------------------------------------------------
# Bad input never crashes


def _bad_lines_expectations() -> list[tuple[int, str]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_samples", DATA / "make_samples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.BAD_LINES


def test_each_bad_line_has_its_reason():
    lines, dump = read(DATA / "bad/lines.jsonl")
    assert items(lines) == EXPECTED["bad/lines.jsonl"]
    got = dict(errors(lines))
    expected = _bad_lines_expectations()
    assert sorted(got) == [n for n, _ in expected]
    for n, text in expected:
        assert text in got[n], (n, got[n])
    bad = {line.line: line for line in lines if line.error}
    assert bad[2].excerpt.startswith('{"Item": {"Id"')
    assert bad[10].excerpt == '{"Id": {"N": "7"}, "Name": {"S": "\ufffd\ufffd"}}'
    assert all(line.raw_size == len(line.excerpt.encode()) for n, line in bad.items() if n != 10)
    assert [line.line for line in lines][-1] == 14


def test_excerpt_is_limited_to_200_chars(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"a": "' + "é".encode() * 5000 + b"\n")
    (line,) = read(path, "ddbjson")[0]  # (auto-detection refuses a file without one item)
    assert line.error.startswith("malformed JSON")
    assert len(line.excerpt) == 200 and line.raw_size == 7 + 10000


def test_truncated_gzip_then_next_file():
    lines, dump = read(DATA / "bad/truncated")
    bad = [line for line in lines if line.error]
    assert len(bad) == 1 and bad[0].error == f"truncated gzip stream after line {bad[0].line - 1}"
    assert bad[0].file.endswith("a_truncated.json.gz")
    assert lines[-1].file.endswith("b_good.json.gz") and lines[-1].item is not None
    assert dump.bytes_read == dump.info.bytes_total


def test_corrupt_gzip_never_raises():
    lines, dump = read(DATA / "bad/corrupt.json.gz", "ddbjson")
    assert lines[-1].error.startswith("corrupt gzip stream")
    assert dump.bytes_read == dump.info.bytes_total


def test_corrupt_gzip_without_a_line_is_not_detected_as_anything():
    with pytest.raises(DumpError, match=r"no line of .*corrupt\.json\.gz \(a corrupt gzip stream\) parses"):
        open_dump(str(DATA / "bad/corrupt.json.gz"))


@pytest.mark.parametrize("depth", [300, 600])
def test_deeply_nested_line_never_crashes(tmp_path, depth):
    deep = b'{"a":' + b'{"L":[' * depth + b'{"s":"x"}' + b"]}" * depth + b"}"
    path = tmp_path / "deep.jsonl"
    path.write_bytes(deep + b"\n" + orjson.dumps({"b": {"S": "ok"}}) + b"\n")
    lines, _ = read(path, "ddbjson")
    assert (lines[0].item is not None) or lines[0].error
    assert lines[1].item == {"b": {"S": "ok"}}


# --------------------------------------------------------------------------------------------
# Unusable dumps


def test_unknown_format():
    with pytest.raises(DumpError, match="unknown dump format 'csv'"):
        open_dump(str(DATA / "ddbjson/plain.jsonl"), "csv")


def test_missing_location():
    with pytest.raises(DumpError, match="no such file or directory"):
        open_dump(str(DATA / "nope"))


def test_no_data_files(tmp_path):
    (tmp_path / "_SUCCESS").write_bytes(b"")
    (tmp_path / "x.checksum").write_bytes(b"abc")
    for fmt in ("auto", "ddbjson", "datapipeline"):
        with pytest.raises(DumpError, match="no data files"):
            open_dump(str(tmp_path), fmt)
    with pytest.raises(DumpError, match="no DynamoDB export"):
        open_dump(str(tmp_path), "export")


def test_s3_uri_without_client():
    with pytest.raises(DumpError, match="S3 client"):
        open_dump("s3://bucket/prefix")


# --------------------------------------------------------------------------------------------
# Streaming: memory does not grow with the dump.


def test_constant_memory(tmp_path):
    path = tmp_path / "big.json.gz"
    line = orjson.dumps({"Item": {"Id": {"S": "x" * 200}, "N": {"N": "1"}}}) + b"\n"
    with gzip.open(path, "wb") as fh:
        for _ in range(60_000):  # ~14 MB of JSON
            fh.write(line)
    dump = open_dump(str(path), "export")
    tracemalloc.start()
    try:
        count = sum(1 for _ in dump)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 60_000
    assert peak < 4_000_000, peak


# --------------------------------------------------------------------------------------------
# Line shapes and sniffing


def test_ddbjson_wrapper_is_decided_per_line():
    from keyshift.core.dumps.ddbjson import parse_ddbjson
    from keyshift.core.dumps.wire import LineError

    assert parse_ddbjson({"Item": {"a": {"S": "x"}, "b": {"n": "1"}}}) == {"a": {"S": "x"},
                                                                           "b": {"N": "1"}}
    assert parse_ddbjson({"a": {"S": "x"}}) == {"a": {"S": "x"}}
    # {"Item": {"S": "x"}}: only "an attribute named Item" is valid.
    assert parse_ddbjson({"Item": {"S": "x"}}) == {"Item": {"S": "x"}}
    # {"Item": {"M": {"S": "x"}}}: only the wrapper reading (attribute M of type S) is valid.
    assert parse_ddbjson({"Item": {"M": {"S": "x"}}}) == {"M": {"S": "x"}}
    # {"Item": {"M": {"a": {"S": "x"}}}}: only "attribute Item, a map" is valid.
    assert parse_ddbjson({"Item": {"M": {"a": {"S": "x"}}}}) == {"Item": {"M": {"a": {"S": "x"}}}}
    with pytest.raises(LineError, match="'Item' wrapper must hold an object, got number"):
        parse_ddbjson({"Item": 3})
    with pytest.raises(LineError, match="not a JSON object"):
        parse_ddbjson("text")


@pytest.mark.parametrize("line, fmt", [
    (b'{"Item":{"s":"x"}}', "datapipeline"),        # an attribute named Item, lower-camel
    (b'{"Item":{"a":{"S":"x"}}}', "ddbjson"),
    (b'{"Item":{"a":{"s":"x"}}}', "ddbjson"),        # wrapped: ddbjson reads lower case too
    (b'{"a":{"nULLValue":true},"b":{"S":"x"}}', "datapipeline"),
    (b'{"a":{"N":"1"}}', "ddbjson"),
    (b'a\x03{"s":"x"}\x02b\x03{"n":"1"}', "datapipeline"),
    (b'{}', None), (b"[1]", None), (b"not json", None), (b"   ", None),
])
def test_sniff_line(line, fmt):
    from keyshift.core.dumps.detect import sniff_line

    found = sniff_line(line)
    assert (found[0] if found else None) == fmt


def test_exports_without_summary_newest_by_file_date(tmp_path):
    import os

    for n, eid in enumerate(["01700000000000-aaaaaaaa", "01600000000000-bbbbbbbb"]):
        data = tmp_path / "AWSDynamoDB" / eid / "data"
        data.mkdir(parents=True)
        f = data / "part.json.gz"
        f.write_bytes(gzip.compress(orjson.dumps({"Item": {"Id": {"N": str(n)}}}) + b"\n"))
        os.utime(f, (1_700_000_000 + n * 1000, 1_700_000_000 + n * 1000))
    lines, dump = read(tmp_path)
    assert dump.info.format == "export"
    assert [line.item for line in lines] == [{"Id": {"N": "1"}}]  # bbbbbbbb's file is newer
    assert any("2 exports" in w for w in dump.info.warnings)


def test_export_with_summary_but_no_files_manifest(tmp_path):
    shutil.copytree(DATA / "export/full", tmp_path, dirs_exist_ok=True)
    (tmp_path / "AWSDynamoDB" / EXPORT_ID / "manifest-files.json").unlink()
    lines, dump = read(tmp_path)
    assert dump.info.expected_items == 5
    assert items(lines) == EXPECTED["export/full"]
    assert any("no manifest-files.json" in w for w in dump.info.warnings)
