"""Upstream reference data: a name -> new id table, JSON lines or CSV, local or in S3.

Names are normalized with the migration's own rules before matching, so ``"Acme\\u200b"`` in the
table and ``"Acme"`` upstream meet on one canonical form. Rows are streamed; a bad row is reported
(file, line, reason) and skipped, never fatal, so one typo upstream does not block a plan.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

from .errors import DumpError
from .spec import ReferenceSpec

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
        with _open_text(uri, self.s3) as text:
            rows = self._csv(text) if fmt == "csv" else self._jsonl(text)
            yield from rows

    def _jsonl(self, text: io.TextIOBase) -> Iterator[ReferenceRow]:
        for number, line in enumerate(text, 1):
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

    def _csv(self, text: io.TextIOBase) -> Iterator[ReferenceRow]:
        reader = csv.DictReader(text)
        for obj in reader:
            row = self._row(reader.line_num, obj)
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


class _open_text:
    """Context manager: a text stream over a local file or an S3 object, gunzipped if needed."""

    def __init__(self, uri: str, s3: Any) -> None:
        self.uri, self.s3 = uri, s3
        self._raw: Any = None

    def __enter__(self) -> io.TextIOBase:
        import gzip

        if self.uri.startswith("s3://"):
            if self.s3 is None:
                raise DumpError(f"reference {self.uri}: an S3 client is needed")
            bucket, _, key = self.uri[5:].partition("/")
            try:
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            except Exception as exc:  # botocore ClientError, endpoint errors: say which object
                raise DumpError(f"cannot read reference data {self.uri}: {exc}") from None
            self._raw = body._raw_stream if hasattr(body, "_raw_stream") else body
        else:
            path = Path(self.uri)
            if not path.is_file():
                raise DumpError(f"reference data not found: {self.uri}")
            self._raw = path.open("rb")
        stream: Any = io.BufferedReader(self._raw) if not isinstance(self._raw, io.BufferedReader) else self._raw
        if stream.peek(2)[:2] == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=stream)
        return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")

    def __exit__(self, *exc: object) -> None:
        self._raw.close()
