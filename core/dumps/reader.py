"""The reader every format shares: files in order, lines in order, one :class:`DumpLine` each.

A format module decides *which* files to read (and what a manifest expects of them) and how one
parsed JSON line becomes an item (``parse``). This module runs the hot loop: split, ``orjson.loads``,
``parse``, ``DumpLine``. It never raises on bad data: every unreadable line becomes a ``DumpLine``
with ``error``. Only a manifest mismatch raises (:class:`ManifestError`), after the file's lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import orjson

from ..errors import ManifestError
from .lines import BlockReader, ReadFault
from .model import DumpInfo, DumpLine
from .source import FileRef, Location
from .wire import LineError, wire_check

__all__ = ["DataFile", "Dump", "excerpt", "EXCERPT_CHARS"]

#: Characters of an unreadable line kept for the quarantine report.
EXCERPT_CHARS = 200


@dataclass(slots=True)
class DataFile:
    """A data file to read, with what its manifest says about it (``None``: nothing)."""

    ref: FileRef
    expected_items: int | None = None
    expected_md5: str | None = None


def excerpt(raw: bytes) -> str:
    """The first :data:`EXCERPT_CHARS` characters of a raw line, undecodable bytes replaced."""
    return raw[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]


#: ``parse(obj) -> item``: turns one parsed JSON value into a wire-format item or raises LineError.
Parse = Callable[[Any], dict]
#: ``parse_raw(line) -> item``: fallback for lines that are not JSON (the Hive variant), or None.
ParseRaw = Callable[[bytes], dict]


class Dump:
    """What :func:`keyshift.core.dumps.open_dump` returns (see :class:`DumpReader`)."""

    def __init__(self, location: Location, files: list[DataFile], info: DumpInfo, parse: Parse, *,
                 parse_raw: ParseRaw | None = None, wrapped: bool = False,
                 allow_manifest_mismatch: bool = False) -> None:
        self.info = info
        self._location = location
        self._files = files
        self._parse = parse
        self._parse_raw = parse_raw
        self._wrapped = wrapped
        self._allow_mismatch = allow_manifest_mismatch
        self._done = 0
        self._current: BlockReader | None = None

    def __repr__(self) -> str:
        return f"<Dump {self.info.format} {self.info.uri!r} files={len(self._files)}>"

    def only(self, indices: list[int]) -> "Dump":
        """The same dump restricted to the data files at ``indices`` (0-based, in read order);
        ``info`` is shared, so file numbering stays that of the whole dump."""
        sub = Dump(self._location, [self._files[i] for i in indices], self.info, self._parse,
                   parse_raw=self._parse_raw, wrapped=self._wrapped,
                   allow_manifest_mismatch=self._allow_mismatch)
        return sub

    @property
    def bytes_read(self) -> int:
        """Compressed bytes consumed so far across all files (for progress and ETA)."""
        cur = self._current
        return self._done + (cur.bytes_read if cur is not None else 0)

    def __iter__(self) -> Iterator[DumpLine]:
        return self._lines()

    def _lines(self) -> Iterator[DumpLine]:
        # Locals for speed: the inner loop runs once per line of the dump.
        loads = orjson.loads
        JSONDecodeError = orjson.JSONDecodeError
        parse = self._parse
        parse_raw = self._parse_raw
        wrapped = self._wrapped
        wire = wire_check
        Line = DumpLine
        self._done = 0
        for df in self._files:
            fname = df.ref.uri
            n = 0  # physical line number (1-based in the file), blank lines included
            blanks = 0
            stream = self._location.open(df.ref)
            br = BlockReader(stream, md5=df.expected_md5 is not None)
            self._current = br
            try:
                for block in br.blocks():
                    if type(block) is not list:
                        n += 1
                        yield Line(fname, n, None, _fault_message(block, n - 1),
                                   len(block.partial), excerpt(block.partial))
                        continue
                    for line in block:
                        n += 1
                        try:
                            obj = loads(line)
                            if wrapped:
                                # Export lines: {"Item": {...}} already in wire format, inline.
                                item = obj["Item"]
                                if len(obj) != 1 or not wire(item.values()):
                                    item = parse(obj)
                            else:
                                item = parse(obj)
                        except JSONDecodeError as e:
                            if not line.strip():  # blank lines are rare: test them here
                                blanks += 1
                                continue
                            err = f"malformed JSON: {e}"
                            if parse_raw is not None:
                                try:
                                    item = parse_raw(line)
                                except LineError as e2:
                                    err = str(e2)
                                except Exception as e2:  # never let one line stop the read
                                    err = f"unreadable line: {type(e2).__name__}: {e2}"
                                else:
                                    if item is not None:
                                        yield Line(fname, n, item, None, len(line), "")
                                        continue
                        except LineError as e:
                            err = str(e)
                        except (KeyError, TypeError, AttributeError):
                            # Not shaped like {"Item": {...}}: the parser says why.
                            try:
                                item = parse(obj)
                            except LineError as e:
                                err = str(e)
                            except Exception as e:
                                err = f"unreadable line: {type(e).__name__}: {e}"
                            else:
                                yield Line(fname, n, item, None, len(line), "")
                                continue
                        except RecursionError:
                            err = "nesting too deep"
                        except Exception as e:  # never let one line stop the read
                            err = f"unreadable line: {type(e).__name__}: {e}"
                        else:
                            yield Line(fname, n, item, None, len(line), "")
                            continue
                        yield Line(fname, n, None, err, len(line), excerpt(line))
            finally:
                stream.close()
                self._done += br.bytes_read
                self._current = None
            self._check_manifest(df, n - blanks, br)

    def _check_manifest(self, df: DataFile, count: int, br: BlockReader) -> None:
        problems = []
        if df.expected_items is not None and count != df.expected_items:
            problems.append(f"manifest itemCount is {df.expected_items} but the file has {count} "
                            f"line{'s' if count != 1 else ''}")
        if df.expected_md5 is not None:
            actual = br.md5_base64()
            if actual != df.expected_md5:
                problems.append(f"manifest md5Checksum is {df.expected_md5} but the file's MD5 is "
                                f"{actual}")
        if not problems:
            return
        message = f"{df.ref.uri}: " + "; ".join(problems)
        if self._allow_mismatch:
            self.info.warnings.append(f"manifest mismatch (allowed): {message}")
        else:
            raise ManifestError(message)


def _fault_message(fault: ReadFault, last_line: int) -> str:
    where = f"after line {last_line}" if last_line else "before the first line"
    if fault.kind == "truncated":
        return f"truncated gzip stream {where}"
    if fault.kind == "corrupt":
        return f"corrupt gzip stream {where}: {fault.detail}"
    return fault.detail or fault.kind
