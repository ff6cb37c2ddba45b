"""Types shared by every dump reader and by the planner.

A reader turns a dump location into a stream of :class:`DumpLine`: one per non-blank line read,
either an item in DynamoDB wire format (uppercase type keys: ``{"S": ...}``, ``{"N": ...}``) or an
error saying why the line could not be read. Counting every line exactly once is what lets the plan
reconcile ``lines read = records planned + quarantined``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

__all__ = ["DumpLine", "DumpInfo", "DumpReader", "FORMATS"]

#: Format names accepted by ``--format`` (besides ``auto``).
FORMATS = ("datapipeline", "export", "ddbjson")


@dataclass(slots=True)
class DumpLine:
    """One line of a dump.

    ``item`` is the item in wire format when the line was readable, else ``None`` and ``error``
    says why (``"malformed JSON: ..."``, ``"unknown type key 'X' in attribute 'a'"``,
    ``"truncated gzip stream"``...). ``raw_size`` is the line's length in bytes, which the planner
    uses to skip the exact item-size computation for lines that cannot reach 400 KB. ``excerpt``
    keeps the first bytes of an unreadable line for the quarantine report.
    """

    file: str
    line: int
    item: dict[str, Any] | None
    error: str | None = None
    raw_size: int = 0
    excerpt: str = ""


@dataclass
class DumpInfo:
    """What a reader found out about a dump before and while reading it.

    ``format`` is the detected or requested format; ``detected`` says whether auto-detection
    chose it and on what evidence (``detection``). ``files`` lists every data file in read order.
    ``warnings`` collects non-fatal findings (no manifest, empty data files...).
    ``bytes_total`` is the total size of the data files when known (for progress), and
    ``expected_items`` the manifest's item count when there is one.
    """

    uri: str
    format: str
    detected: bool = False
    detection: str = ""
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bytes_total: int | None = None
    expected_items: int | None = None
    #: The moment the dump shows the table at (an Export-to-S3's ``exportTime``, ISO 8601), when
    #: the dump says; stream sync checks the stream was enabled before it (docs/design.md).
    point_in_time: str | None = None


class DumpReader(Protocol):
    """What :func:`keyshift.core.dumps.open_dump` returns."""

    info: DumpInfo

    @property
    def bytes_read(self) -> int:
        """Compressed bytes consumed so far across all files (for progress and ETA)."""

    def __iter__(self) -> Iterator[DumpLine]:
        """Yield every non-blank line of every data file, in file order."""
