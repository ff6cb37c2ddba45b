"""Auto-detection refuses what is not a dump; listing never lets a data file vanish.

Garbage (random bytes, text, JSON that is not an item) is refused with the files tried and what a
line should look like; an empty table is still a dump. Broken symlinks, unreadable files and
directories that cannot be listed are refused when they could hold data, and warned about when
they could not. Tests run as root too, where ``chmod 000`` does not stop reads: the permission
cases are simulated where the listing asks (``os.access``, ``os.scandir``) and done for real
only for other users.
"""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import orjson
import pytest

from keyshift.console import demo_data as dd
from keyshift.core.dumps import DumpError, open_dump
from keyshift.core.dumps.detect import sniff_line

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def random_bytes(path: Path, size: int = 20_000, seed: int = 3) -> Path:
    """Random bytes with plenty of newlines, 0x02 and 0x03 (what fooled the Hive check)."""
    rng = random.Random(seed)
    path.write_bytes(bytes(rng.choice(b"\n\x02\x03{}\":ab\xff\x00") if rng.random() < 0.2
                           else rng.randrange(256) for _ in range(size)))
    return path


def good_lines(path: Path, n: int = 3) -> Path:
    path.write_bytes(b"".join(orjson.dumps({"id": {"S": f"a{i}"}}) + b"\n" for i in range(n)))
    return path


def read(uri, fmt: str = "auto"):
    dump = open_dump(str(uri), fmt)
    return list(dump), dump.info


# -- what a line must be ----------------------------------------------------------------------

@pytest.mark.parametrize("line, fmt", [
    (b'a\x03{"s":"x"}\x02b\x03{"n":"1"}', "datapipeline"),
    (b'a\x03{"S":"x"}', "datapipeline"),
    (b'{"a":{"S":"x"},"b":{"n":"1"}}', "datapipeline"),
    (b'{"Item":{"a":{"S":"x"}}}', "ddbjson"),
    # merely containing 0x03, or JSON-ish Hive values that are not descriptors, is not Hive
    (b"\x93\x03\xff garbage \x02\x03", None),
    (b'a\x03{"zz":"x"}', None),
    (b'a\x03not json\x02b\x03{"s":"x"}', None),
    (b"a\x03", None),
    # JSON objects that are not items
    (b'{"a": 1}', None),
    (b'{"a":{"S":"x"},"b":1}', None),                  # one value is not a descriptor
    (b'{"a":{"S":"x","N":"1"}}', None),                # a descriptor with two type keys
    (b'{"Item":{"a":{"X":"1"}}}', None),               # unknown type key
    (b'{"a":{"N":"twelve"}}', None),                   # not a number
    (b'{"Item":{}}', None),
    (b'{"name": "Acme", "id": 3}', None),
])
def test_a_line_counts_only_when_it_parses_as_an_item(line, fmt):
    found = sniff_line(line)
    assert (found[0] if found else None) == fmt


# -- refused -----------------------------------------------------------------------------------

def test_a_directory_of_random_bytes_is_not_a_dump(tmp_path):
    random_bytes(tmp_path / "part-00000")
    random_bytes(tmp_path / "part-00001", seed=4)
    with pytest.raises(DumpError) as caught:
        open_dump(str(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"no line of {tmp_path}/part-00000 (none of its first 50 lines is an "
                              f"item), {tmp_path}/part-00001 (none of its first 50 lines is an item) "
                              "parses as DynamoDB JSON, Data Pipeline JSON or Hive: expected one "
                              'item per line, e.g. {"Item": {"id": {"S": ')
    assert caught.value.title == "Not a DynamoDB dump"


def test_gzipped_garbage_text_and_plain_json_are_refused(tmp_path):
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(b"id,name\n1,Acme\n2,Bolt\n"))
    (tmp_path / "b.json").write_bytes(b'{"name": "Acme", "id": 3}\n' * 60)
    with pytest.raises(DumpError, match=r"a\.json\.gz \(none of its 3 lines is an item\), "
                                        r".*b\.json \(none of its first 50 lines is an item\) parses"):
        open_dump(str(tmp_path))


def test_an_explicit_format_still_reads_and_quarantines_everything(tmp_path):
    path = random_bytes(tmp_path / "part-00000")
    lines, info = read(tmp_path, "datapipeline")
    assert lines and all(line.item is None and line.error for line in lines)
    assert not info.detected
    physical = path.read_bytes().split(b"\n")
    assert len(lines) == sum(1 for p in physical if p.strip())  # every non-blank line, counted


def test_garbage_next_to_a_dump_is_read_and_warned_about(tmp_path):
    random_bytes(tmp_path / "a-garbage")
    good_lines(tmp_path / "b-items.jsonl")
    lines, info = read(tmp_path)
    assert info.format == "ddbjson" and "line 1 of b-items.jsonl" in info.detection
    assert any(w.startswith(f"{tmp_path}/a-garbage: none of its first") for w in info.warnings)
    assert [line.item for line in lines if line.item] == [{"id": {"S": f"a{i}"}} for i in range(3)]
    assert any(line.error for line in lines)  # the garbage is quarantined, not dropped


# -- empty tables are dumps ---------------------------------------------------------------------

def test_empty_data_files_are_an_empty_table(tmp_path):
    (tmp_path / "part-0.json").write_bytes(b"")
    (tmp_path / "part-1.json.gz").write_bytes(gzip.compress(b""))  # 20 bytes, no line
    (tmp_path / "part-2.json").write_bytes(b"\n  \n")
    lines, info = read(tmp_path)
    assert lines == [] and info.format == "ddbjson"
    assert info.detection == "ddbjson: every data file is empty (nothing to detect)"
    assert any("every data file is empty (3 files)" in w for w in info.warnings)


def test_an_export_of_an_empty_table_is_read(tmp_path):
    base, objects = dd.export_objects([], bucket="b", prefix="", table="orders", files=2)
    for key, body in objects.items():
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(body)
    lines, info = read(tmp_path)
    assert lines == [] and info.format == "export" and info.expected_items == 0


# -- nothing vanishes from the listing ------------------------------------------------------------

def test_a_broken_symlink_among_the_data_files_is_refused(tmp_path):
    good_lines(tmp_path / "part-0.json")
    os.symlink(tmp_path / "gone.json", tmp_path / "part-1.json")
    for fmt in ("auto", "ddbjson", "datapipeline"):
        with pytest.raises(DumpError, match=rf"{tmp_path}/part-1\.json: broken symlink: it points "
                                            rf"to {tmp_path}/gone\.json, which does not exist"):
            open_dump(str(tmp_path), fmt)


def test_a_broken_symlink_that_is_not_data_is_a_warning(tmp_path):
    good_lines(tmp_path / "part-0.json")
    os.symlink(tmp_path / "gone", tmp_path / "part-0.json.checksum")
    lines, info = read(tmp_path)
    assert len(lines) == 3
    assert any(w.startswith(f"not read: {tmp_path}/part-0.json.checksum: broken symlink")
               for w in info.warnings), info.warnings


def test_a_broken_symlink_as_the_dump_itself(tmp_path):
    os.symlink(tmp_path / "nowhere.json", tmp_path / "dump.json")
    with pytest.raises(DumpError, match="dump.json is a broken symlink: it points to .*nowhere.json"):
        open_dump(str(tmp_path / "dump.json"))


def test_a_broken_symlink_listed_in_an_export_manifest_is_refused(tmp_path):
    lines = [dd.item_line({"id": {"S": f"x{i}"}}) for i in range(4)]
    base, objects = dd.export_objects(lines, bucket="b", prefix="", table="t", files=2, empty_files=0)
    for key, body in objects.items():
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(body)
    victim = next(tmp_path / k for k in objects if "/data/" in k)
    victim.unlink()
    os.symlink(tmp_path / "moved-away.json.gz", victim)
    with pytest.raises(DumpError, match=rf"{victim.name}: broken symlink"):
        open_dump(str(tmp_path))


def _deny(monkeypatch, path: Path) -> None:
    """Make the listing see ``path`` as unreadable, as it would for a non-root user."""
    import keyshift.core.dumps.source as source

    real = os.access
    monkeypatch.setattr(source.os, "access",
                        lambda p, mode, **kw: False if os.fspath(p) == str(path) else real(p, mode, **kw))


def test_an_unreadable_data_file_is_refused(tmp_path, monkeypatch):
    good_lines(tmp_path / "part-0.json")
    secret = good_lines(tmp_path / "part-1.json")
    _deny(monkeypatch, secret)
    with pytest.raises(DumpError, match=rf"cannot be read \({tmp_path}/part-1\.json: not readable: "
                                        "permission denied\\); their items would be missing"):
        open_dump(str(tmp_path))


def test_an_unreadable_single_file_is_refused(tmp_path, monkeypatch):
    secret = good_lines(tmp_path / "dump.json")
    _deny(monkeypatch, secret)
    with pytest.raises(DumpError, match="not readable: permission denied"):
        open_dump(str(secret), "ddbjson")


@pytest.mark.skipif(AS_ROOT or not hasattr(os, "geteuid"), reason="root reads a chmod 000 file")
def test_an_unreadable_data_file_is_refused_for_real(tmp_path):
    good_lines(tmp_path / "part-0.json")
    secret = good_lines(tmp_path / "part-1.json")
    secret.chmod(0)
    try:
        with pytest.raises(DumpError, match="part-1.json: not readable: permission denied"):
            open_dump(str(tmp_path))
    finally:
        secret.chmod(0o644)


def _unlistable(monkeypatch, path: Path) -> None:
    import keyshift.core.dumps.source as source

    real = os.scandir

    def scandir(p):
        if os.fspath(p) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(p)

    monkeypatch.setattr(source.os, "scandir", scandir)


def test_a_subdirectory_that_cannot_be_listed_is_refused(tmp_path, monkeypatch):
    good_lines(tmp_path / "part-0.json")
    (tmp_path / "more").mkdir()
    good_lines(tmp_path / "more" / "part-1.json")
    _unlistable(monkeypatch, tmp_path / "more")
    with pytest.raises(DumpError, match=rf"cannot list {tmp_path}/more: Permission denied \(the "
                                        "data files in it would be missing from the plan\\)"):
        open_dump(str(tmp_path))


def test_a_hidden_subdirectory_that_cannot_be_listed_is_a_warning(tmp_path, monkeypatch):
    good_lines(tmp_path / "part-0.json")
    (tmp_path / ".cache").mkdir()
    _unlistable(monkeypatch, tmp_path / ".cache")
    lines, info = read(tmp_path)
    assert len(lines) == 3
    assert any(w.startswith(f"cannot list {tmp_path}/.cache (Permission denied)") for w in info.warnings)


@pytest.mark.skipif(AS_ROOT or not hasattr(os, "geteuid"), reason="root lists a chmod 000 directory")
def test_a_subdirectory_that_cannot_be_listed_is_refused_for_real(tmp_path):
    good_lines(tmp_path / "part-0.json")
    (tmp_path / "more").mkdir()
    (tmp_path / "more").chmod(0)
    try:
        with pytest.raises(DumpError, match="cannot list .*more: Permission denied"):
            open_dump(str(tmp_path))
    finally:
        (tmp_path / "more").chmod(0o755)


def test_a_symlink_to_a_directory_is_not_followed_but_said(tmp_path):
    good_lines(tmp_path / "part-0.json")
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    good_lines(elsewhere / "part-9.json")
    os.symlink(elsewhere, tmp_path / "linked")
    lines, info = read(tmp_path)
    assert len(lines) == 3
    assert any(f"{tmp_path}/linked is a symlink to the directory" in w and "not followed" in w
               for w in info.warnings), info.warnings


def test_hidden_unreadable_files_are_not_noise(tmp_path):
    good_lines(tmp_path / "part-0.json")
    (tmp_path / ".git").mkdir()
    os.symlink(tmp_path / "gone", tmp_path / ".git" / "index.lock")
    lines, info = read(tmp_path)
    assert len(lines) == 3 and not any(".git" in w for w in info.warnings)
