"""The reader every format shares: files in order, lines in order, one :class:`DumpLine` each.

A format module decides *which* files to read (and what a manifest expects of them) and how one
parsed JSON line becomes an item (``parse``). This module runs the hot loop: split, ``orjson.loads``,
``parse``. It offers blocks of raw lines and a line parser (:meth:`Dump.line_blocks`,
:meth:`Dump.line_parser`: what the planner reads), and one ``DumpLine`` per line on top of them
(iterating the dump). It never raises on bad data: every unreadable line becomes an error with
its reason. Only a manifest mismatch raises (:class:`ManifestError`), after the file's lines.
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

__all__ = ["DataFile", "Dump", "LineBlock", "excerpt", "EXCERPT_CHARS"]

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


@dataclass(slots=True)
class LineBlock:
    """Consecutive lines of one data file (see :meth:`Dump.line_blocks`).

    ``file`` is the file's uri; ``start`` the line number before ``lines[0]`` (so ``lines[i]`` is
    line ``start + i + 1``, blank lines counted); ``lines`` the raw lines without ``\\n``. When
    the stream broke (a truncated or corrupt gzip stream, an over-long line), ``fault`` says so
    and ``lines`` holds one entry: the start of the damaged line, for the excerpt.
    """

    file: str
    start: int
    lines: list[bytes]
    fault: str | None = None


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
        """One :class:`DumpLine` per non-blank line, from :meth:`line_blocks`."""
        Line = DumpLine
        parse = self.line_parser()
        for blk in self.line_blocks():
            fname = blk.file
            n = blk.start
            if blk.fault is not None:
                partial = blk.lines[0]
                yield Line(fname, n + 1, None, blk.fault, len(partial), excerpt(partial))
                continue
            for raw in blk.lines:
                n += 1
                item = parse(raw)
                if type(item) is dict:
                    yield Line(fname, n, item, None, len(raw), "")
                elif item is not None:
                    yield Line(fname, n, None, item, len(raw), excerpt(raw))

    def line_blocks(self) -> Iterator[LineBlock]:
        """Every data file's lines, a block of consecutive lines at a time, in order.

        The fast path of the dump: the planner's extraction reads this and parses each line
        with :meth:`line_parser` itself, which saves a :class:`DumpLine` and a generator step per
        line (and keeps one parsed item alive at a time, which the garbage collector notices).
        A :class:`ManifestError` is raised after the last block of the file it concerns.
        """
        self._done = 0
        for df in self._files:
            fname = df.ref.uri
            n = 0  # physical line number (1-based in the file), blank lines included
            blanks = 0
            count = df.expected_items is not None
            stream = self._location.open(df.ref)
            br = BlockReader(stream, md5=df.expected_md5 is not None)
            self._current = br
            try:
                for block in br.blocks():
                    if type(block) is not list:
                        # The stream broke: one unreadable "line" holding what was read of it.
                        yield LineBlock(fname, n, [block.partial], _fault_message(block, n))
                        n += 1
                        continue
                    yield LineBlock(fname, n, block)
                    n += len(block)
                    if count:
                        # Blank lines are not items; the same test as the parser's (C loops:
                        # bytes.strip returns the line itself when there is nothing to strip).
                        blanks += [*map(bytes.strip, block)].count(b"")
            finally:
                stream.close()
                self._done += br.bytes_read
                self._current = None
            self._check_manifest(df, n - blanks, br)

    def line_parser(self) -> Callable[[bytes], Any]:
        """``parse(line)``: the line's item in wire format (a dict), the reason it cannot be read
        (a str: it is quarantined), or ``None`` for a blank line (not counted anywhere).

        Never raises on bad data.
        """
        # Locals for speed: the parser runs once per line of the dump.
        loads = orjson.loads
        JSONDecodeError = orjson.JSONDecodeError
        wire = wire_check
        slow = self._parse_one
        unparsable = self._unparsable

        if self._wrapped:
            def parse_line(line: bytes) -> Any:
                try:
                    obj = loads(line)
                except JSONDecodeError as e:
                    return None if not line.strip() else unparsable(line, e)
                # Export lines: {"Item": {...}} already in wire format, checked inline; anything
                # else is worded by the format's parser.
                try:
                    item = obj["Item"]
                    if len(obj) == 1 and wire(item.values()):
                        return item
                except RecursionError:
                    return "nesting too deep"
                except Exception:  # KeyError, TypeError, AttributeError: not {"Item": {...}}
                    pass
                return slow(obj)
        else:
            def parse_line(line: bytes) -> Any:
                try:
                    obj = loads(line)
                except JSONDecodeError as e:
                    return None if not line.strip() else unparsable(line, e)
                return slow(obj)
        return parse_line

    def _parse_one(self, obj: Any) -> Any:
        """``parse(obj)``, or the reason it fails."""
        try:
            return self._parse(obj)
        except LineError as e:
            return str(e)
        except RecursionError:
            return "nesting too deep"
        except Exception as e:  # never let one line stop the read
            return f"unreadable line: {type(e).__name__}: {e}"

    def _unparsable(self, line: bytes, e: Exception) -> Any:
        """A line that is not JSON: a Hive line when the format has them, else the reason."""
        err = f"malformed JSON: {e}"
        if self._parse_raw is not None:
            try:
                item = self._parse_raw(line)
            except LineError as e2:
                return str(e2)
            except RecursionError:
                return "nesting too deep"
            except Exception as e2:  # never let one line stop the read
                return f"unreadable line: {type(e2).__name__}: {e2}"
            if item is not None:
                return item
        return err

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
