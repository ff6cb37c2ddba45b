"""The Unicode data files shipped in ``data/``: reading them, and checking their Unicode version.

``data/scripts.txt`` (Script, Script_Extensions) and ``data/confusables.txt`` (UTS #39
prototypes) are derived from Unicode's files by ``core/text/data/regenerate.py``; each header names its
sources and their version (``# Unicode-Version: 18.0.0``). Everything else in ``keyshift.core.text``
takes its character properties from ``unicodedata2``, so the two must be of one Unicode version:
a newer ``unicodedata2`` knows letters the files call Unknown, an older one the reverse. A skew is
*reported* (a :class:`UnicodeVersionSkew` warning when a file is loaded, and :func:`version_skew`
for tests and diagnostics), never silently accepted; the unit tests fail on it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

from .unicode_chars import UNICODE_VERSION

__all__ = ["DataFile", "UnicodeVersionSkew", "read_data_file", "load", "version_skew"]

_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
_VERSION_KEY = "# Unicode-Version:"
_SOURCE_KEY = "# Source:"


class UnicodeVersionSkew(UserWarning):
    """A shipped data file is of another Unicode version than ``unicodedata2``."""


@dataclass(frozen=True)
class DataFile:
    """One data file: its Unicode version, its source lines, its data lines (parsed by the user)."""

    name: str
    version: str
    sources: tuple[str, ...]
    lines: list[str]


def read_data_file(name: str, text: str | None = None) -> DataFile:
    """Parse ``data/<name>`` (or ``text``, for tests); raises ``ValueError`` without a version.

    The header is the leading block of ``#`` lines; every later non-empty line is data.
    """
    if text is None:
        # Next to this module, as setuptools installs package data (pyproject.toml); plain file
        # access, because importlib.resources alone costs a child interpreter ~10 ms to import.
        with open(os.path.join(_DATA_DIR, name), encoding="utf-8") as f:
            text = f.read()
    lines = text.splitlines()
    body = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    version = ""
    sources: list[str] = []
    for line in lines[:body]:
        if line.startswith(_VERSION_KEY):
            version = line[len(_VERSION_KEY):].strip()
        elif line.startswith(_SOURCE_KEY):
            sources.append(line[len(_SOURCE_KEY):].strip())
    if not version:
        raise ValueError(f"Unicode data file {name} does not say its Unicode version")
    return DataFile(name, version, tuple(sources), [line for line in lines[body:] if line])


def version_skew(data: DataFile, unicode_version: str = UNICODE_VERSION) -> str | None:
    """Why ``data`` does not match ``unicodedata2`` (``unicode_version``), or ``None`` if it does."""
    if data.version == unicode_version:
        return None
    return (
        f"keyshift's {data.name} is Unicode {data.version} but unicodedata2 is Unicode "
        f"{unicode_version}: script and look-alike flags may miss or mislabel characters of the "
        "newer version; regenerate the data with core/text/data/regenerate.py (core/text/data/README.md)"
    )


def load(name: str, *, unicode_version: str = UNICODE_VERSION) -> DataFile:
    """Read ``data/<name>`` and warn (:class:`UnicodeVersionSkew`) if its version is not ours.

    A warning, not an error: flags from slightly older tables are still better than a plan that
    cannot run, and the message says what to do. Callers cache the result: once per process.
    """
    data = read_data_file(name)
    problem = version_skew(data, unicode_version)
    if problem is not None:
        warnings.warn(problem, UnicodeVersionSkew, stacklevel=2)
    return data
