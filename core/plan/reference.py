"""Upstream reference data: a name -> new id table, JSON lines or CSV, local or in S3.

Names are normalized with the migration's own rules before matching, so ``"Acme\\u200b"`` in the
table and ``"Acme"`` upstream meet on one canonical form. Rows are streamed; a bad row is reported
(file, line, reason) and skipped, never fatal, so one typo upstream does not block a plan.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Any, Iterator

import orjson

from ..dumps.lines import BlockReader, ReadFault
from ..dumps.source import resolve
from ..errors import DumpError
from ..spec import ReferenceSpec

__all__ = ["ReferenceRow", "ReferenceProblem", "ReferenceReader", "read_reference"]


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    """One upstream entry: its name as given and the id it maps to."""

    name: str
    id: str


@dataclass(frozen=True, slots=True)
class ReferenceProblem:
    """A reference row that could not be used."""

    file: str
    line: int
    reason: str


@dataclass
class ReferenceReader:
    """Iterates a reference file's rows; ``problems`` fills as bad rows are met."""

    spec: ReferenceSpec
    s3: Any = None
    problems: list[ReferenceProblem] = field(default_factory=list)

    def __iter__(self) -> Iterator[ReferenceRow]:
        uri = self.spec.uri
        fmt = self.spec.format
        if fmt == "auto":
            fmt = "csv" if uri.lower().removesuffix(".gz").endswith(".csv") else "jsonl"
        lines = _lines(uri, self.s3, self.problems)
        yield from (self._csv(lines) if fmt == "csv" else self._jsonl(lines))

    def _jsonl(self, lines: Iterator[tuple[int, bytes]]) -> Iterator[ReferenceRow]:
        for number, line in lines:
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                self._problem(number, f"malformed JSON: {exc}")
                continue
            if not isinstance(obj, dict):
                self._problem(number, "not a JSON object")
                continue
            row = self._row(number, obj)
            if row:
                yield row

    def _csv(self, lines: Iterator[tuple[int, bytes]]) -> Iterator[ReferenceRow]:
        numbers: list[int] = []

        def text() -> Iterator[str]:
            for number, line in lines:
                numbers.append(number)
                yield line.decode("utf-8", "replace")

        reader = csv.DictReader(text())
        for obj in reader:
            row = self._row(numbers[-1] if numbers else 0, obj)
            if row:
                yield row

    def _row(self, number: int, obj: dict[str, Any]) -> ReferenceRow | None:
        name, new_id = obj.get(self.spec.name_field), obj.get(self.spec.id_field)
        if not isinstance(name, str) or not name:
            self._problem(number, f"missing or non-string {self.spec.name_field!r}")
            return None
        if isinstance(new_id, int) and not isinstance(new_id, bool):
            new_id = str(new_id)
        if not isinstance(new_id, str) or not new_id:
            self._problem(number, f"missing or non-string {self.spec.id_field!r}")
            return None
        return ReferenceRow(name, new_id)

    def _problem(self, line: int, reason: str) -> None:
        self.problems.append(ReferenceProblem(self.spec.uri, line, reason))


def read_reference(spec: ReferenceSpec, s3: Any = None) -> ReferenceReader:
    """A reader over the reference data named by ``spec`` (``s3`` is needed for ``s3://`` URIs)."""
    return ReferenceReader(spec, s3)


def _lines(uri: str, s3: Any, problems: list[ReferenceProblem]) -> Iterator[tuple[int, bytes]]:
    """Numbered lines of a local file or S3 object, streamed and gunzipped like dump files."""
    location, ref = resolve(uri, s3)
    if ref is None:
        raise DumpError(f"reference data {uri} is a directory or prefix; name one file")
    stream = location.open(ref)
    number = 0
    try:
        for block in BlockReader(stream).blocks():
            if isinstance(block, ReadFault):
                problems.append(ReferenceProblem(uri, number + 1, f"unreadable: {block.kind} {block.detail}".strip()))
                return
            for line in block:
                number += 1
                yield number, line
    finally:
        stream.close()
