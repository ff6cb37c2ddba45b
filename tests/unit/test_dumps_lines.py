"""Splitting one stream into lines: gzip by magic bytes, damage reported, never raised."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import random

import pytest

from keyshift.core.dumps.lines import BlockReader, ReadFault


class ChunkStream(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read and records every read size."""

    def __init__(self, data: bytes, step: int = 1 << 30) -> None:
        self._buf = io.BytesIO(data)
        self.step = step
        self.sizes: list[int] = []

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        self.sizes.append(n)
        assert n is not None and n > 0, "the reader must always read a bounded chunk"
        return self._buf.read(min(n, self.step))


def read_all(data: bytes, **kw) -> tuple[list[bytes], list[ReadFault], BlockReader]:
    step = kw.pop("step", 1 << 30)
    br = BlockReader(ChunkStream(data, step), **kw)
    lines: list[bytes] = []
    faults: list[ReadFault] = []
    for block in br.blocks():
        if isinstance(block, ReadFault):
            faults.append(block)
        else:
            lines.extend(block)
    return lines, faults, br


RAW = b"".join(b'{"Item":{"Id":{"N":"%d"}}}\n' % i for i in range(3000))


@pytest.mark.parametrize("read_size, out_size", [(1 << 17, 1 << 18), (7, 5), (64, 1 << 20), (1, 3)])
def test_gzip_and_plain_give_the_same_lines(read_size, out_size):
    expected = RAW.split(b"\n")[:-1]
    for data in (RAW, gzip.compress(RAW, mtime=0)):
        lines, faults, br = read_all(data, read_size=read_size, out_size=out_size)
        assert lines == expected and not faults
        assert br.bytes_read == len(data)
        assert br.gzip is (data[:2] == b"\x1f\x8b")


def test_gzip_detected_by_magic_bytes_even_when_first_read_is_one_byte():
    data = gzip.compress(b"a\nb\n")
    lines, faults, br = read_all(data, step=1)
    assert lines == [b"a", b"b"] and br.gzip


def test_concatenated_gzip_members_and_zero_padding():
    data = gzip.compress(b"a\nb") + gzip.compress(b"c\nd\n") + b"\x00" * 8
    lines, faults, _ = read_all(data, read_size=5, out_size=2)
    assert lines == [b"a", b"bc", b"d"] and not faults


def test_last_line_without_newline_and_crlf_and_bom():
    lines, _, _ = read_all(b"\xef\xbb\xbf{}\r\n\n{\"a\":1}")
    assert lines == [b"{}\r", b"", b'{"a":1}']


def test_empty_stream():
    lines, faults, br = read_all(b"")
    assert lines == [] and faults == [] and br.bytes_read == 0


def test_truncated_gzip_is_a_fault_after_the_readable_lines():
    data = gzip.compress(RAW, mtime=0)
    cut = data[: len(data) * 2 // 3]
    lines, faults, br = read_all(cut, read_size=100)
    assert [f.kind for f in faults] == ["truncated"]
    assert 0 < len(lines) < 3000
    assert lines == RAW.split(b"\n")[: len(lines)]
    assert br.bytes_read == len(cut)
    assert faults[0].partial  # the start of the cut line, for the excerpt


def test_corrupt_gzip_is_a_fault_and_the_rest_is_drained():
    data = bytearray(gzip.compress(RAW, mtime=0))
    for i in range(200, 220):
        data[i] ^= 0xFF
    lines, faults, br = read_all(bytes(data), read_size=64)
    assert [f.kind for f in faults] == ["corrupt"]
    assert br.bytes_read == len(data)  # drained: the MD5 covers the whole object


def test_md5_of_compressed_bytes():
    data = gzip.compress(RAW, mtime=0)
    _, _, br = read_all(data, md5=True, read_size=1000)
    assert br.md5_base64() == base64.b64encode(hashlib.md5(data).digest()).decode()
    _, _, br = read_all(data)
    assert br.md5_base64() is None


def test_reads_are_always_bounded():
    stream = ChunkStream(gzip.compress(RAW), step=333)
    for _ in BlockReader(stream, read_size=4096).blocks():
        pass
    assert stream.sizes and all(0 < n <= 4096 for n in stream.sizes)


def test_over_long_line_is_skipped(monkeypatch):
    import keyshift.core.dumps.lines as lines_mod

    monkeypatch.setattr(lines_mod, "MAX_LINE", 100)
    data = b"short\n" + b"x" * 1000 + b"\nafter\n"
    lines, faults, _ = read_all(data, read_size=64)
    assert lines == [b"short", b"after"]
    assert [f.kind for f in faults] == ["too-long"] and not faults[0].fatal


def test_random_streams_round_trip():
    rnd = random.Random(7)
    for _ in range(40):
        raw = b"".join(b"x" * rnd.choice([0, 1, 50, 700]) + b"\n" for _ in range(rnd.randint(0, 60)))
        parts = [raw[: len(raw) // 3], raw[len(raw) // 3:]]
        data = b"".join(gzip.compress(p) for p in parts)
        lines, faults, _ = read_all(data, read_size=rnd.choice([1, 9, 4096]),
                                    out_size=rnd.choice([7, 100, 1 << 16]))
        assert not faults
        assert lines == raw.split(b"\n")[:-1]
