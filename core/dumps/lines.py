"""Split one data file into lines, streaming, in constant memory.

:class:`BlockReader` reads the compressed bytes in large chunks (counting them and, when asked,
hashing them with MD5 for manifest checks), decompresses gzip incrementally when the file starts
with the gzip magic bytes ``1f 8b`` (whatever its name), and yields *blocks*: lists of complete
lines without their ``\\n``. Memory is bounded by the chunk sizes plus the longest line.

A damaged stream never raises: the reader yields a :class:`ReadFault` (truncated or corrupt gzip,
a line too long) after the lines it could read, then drains the rest of the compressed bytes so
that the byte count and checksum cover the whole object, and stops.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass
from typing import Any, Iterator

from .source import Stream

__all__ = ["BlockReader", "ReadFault", "GZIP_MAGIC", "READ_SIZE", "MAX_LINE"]

GZIP_MAGIC = b"\x1f\x8b"
#: Compressed bytes per read. Small blocks keep the decompressed data in the CPU cache: 128 KiB
#: reads with 256 KiB outputs split twice as fast as 1 MiB / 8 MiB.
READ_SIZE = 128 << 10
#: Decompressed bytes per step (bounds memory whatever the compression ratio).
OUT_SIZE = 256 << 10
#: A line longer than this is reported as a fault and skipped (an item is at most 400 KB).
MAX_LINE = 64 << 20

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class ReadFault:
    """The stream could not be read further (``kind``: ``truncated``, ``corrupt``, ``too-long``).

    ``partial`` holds the start of the data of the damaged line (for the excerpt); ``fatal``
    says whether reading of this file stopped.
    """

    kind: str
    detail: str = ""
    partial: bytes = b""
    fatal: bool = True


class BlockReader:
    """Iterate over blocks of lines of one stream; ``bytes_read`` counts compressed bytes."""

    __slots__ = ("stream", "bytes_read", "md5", "gzip", "read_size", "out_size")

    def __init__(self, stream: Stream, *, md5: bool = False, read_size: int = READ_SIZE,
                 out_size: int = OUT_SIZE) -> None:
        self.stream = stream
        self.out_size = out_size
        self.bytes_read = 0
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.gzip: bool | None = None
        self.read_size = read_size

    def _read(self) -> bytes:
        chunk = self.stream.read(self.read_size)
        if chunk:
            self.bytes_read += len(chunk)
            if self.md5 is not None:
                self.md5.update(chunk)
        return chunk

    def drain(self) -> None:
        """Consume the rest of the stream (for the byte count and checksum)."""
        while self._read():
            pass

    def md5_base64(self) -> str | None:
        """The base64 MD5 of every byte read so far (manifest-files.json's ``md5Checksum``)."""
        if self.md5 is None:
            return None
        return base64.b64encode(self.md5.digest()).decode("ascii")

    def blocks(self) -> Iterator[list[bytes] | ReadFault]:
        """Yield lists of complete lines, then possibly one :class:`ReadFault`."""
        first = self._read()
        while 0 < len(first) < 2:  # make sure the magic bytes can be seen
            more = self._read()
            if not more:
                break
            first += more
        if not first:
            return
        self.gzip = first[:2] == GZIP_MAGIC
        if self.gzip:
            chunks = self._gunzip(first)
        else:
            chunks = self._plain(first)
        yield from self._split(chunks)

    def _plain(self, first: bytes) -> Iterator[bytes | ReadFault]:
        chunk = first
        while chunk:
            yield chunk
            chunk = self._read()

    def _gunzip(self, first: bytes) -> Iterator[bytes | ReadFault]:
        out_size = self.out_size
        d: Any = zlib.decompressobj(31)  # None between gzip members
        data = first
        try:
            while True:
                if not data:
                    data = self._read()
                    if not data:
                        break
                if d is None:
                    # A gzip member ended. Zero padding may follow (gzip(1) allows it), or another
                    # member (concatenated gzip files are valid gzip).
                    if not data.strip(b"\x00"):
                        data = b""
                        continue
                    d = zlib.decompressobj(31)
                out = d.decompress(data, out_size)
                if out:
                    yield out
                data = d.unconsumed_tail
                while not data and len(out) == out_size and not d.eof:
                    out = d.decompress(b"", out_size)  # output was capped: drain what zlib holds
                    if out:
                        yield out
                if d.eof:
                    data = d.unused_data  # (unconsumed_tail repeats it at eof)
                    d = None
        except zlib.error as e:
            self.drain()  # before yielding: the consumer stops at a fatal fault
            yield ReadFault("corrupt", str(e))
            return
        if d is not None:
            yield ReadFault("truncated")

    def _split(self, chunks: Iterator[bytes | ReadFault]) -> Iterator[list[bytes] | ReadFault]:
        pending = b""
        skipping = False  # inside an over-long line, dropping bytes until its end
        first = True
        for chunk in chunks:
            if type(chunk) is ReadFault:
                chunk.partial = pending[:1024]
                yield chunk
                return
            if first:
                first = False
                if chunk.startswith(_BOM):
                    chunk = chunk[3:]
            if skipping:
                nl = chunk.find(b"\n")
                if nl < 0:
                    continue
                chunk = chunk[nl + 1:]
                skipping = False
            buf = pending + chunk if pending else chunk
            lines = buf.split(b"\n")
            pending = lines.pop()
            if lines:
                yield lines
            if len(pending) > MAX_LINE:
                yield ReadFault("too-long", f"line longer than {MAX_LINE} bytes", pending[:1024],
                                fatal=False)
                pending = b""
                skipping = True
        if pending and not skipping:
            yield [pending]
