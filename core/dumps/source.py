"""Where a dump lives: a local file or directory, or an S3 object or prefix.

A :class:`Location` is a root (a local directory or an S3 prefix) that can list the files under it
(recursively, in lexicographic order like S3 does), read a small file whole (manifests) and open a
data file as a binary stream read in chunks. S3 objects are streamed from ``get_object``'s body and
never downloaded whole or written to disk. The S3 client is always passed in by the caller.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from ..errors import DumpError

__all__ = ["FileRef", "Location", "LocalLocation", "S3Location", "resolve", "is_data_name",
           "MANIFEST_LIMIT"]

#: Largest manifest read whole (manifest-files.json of a 50,000-file export is about 10 MB).
MANIFEST_LIMIT = 256 * 1024 * 1024

_CHUNK = 1 << 20

#: Names that are never data files, in any format.
_NOT_DATA = frozenset({"manifest", "manifest-summary.json", "manifest-files.json", "_SUCCESS",
                       "_started"})


@dataclass(frozen=True, slots=True)
class FileRef:
    """One file of a location.

    ``uri`` is what reports show and :class:`DumpLine.file` carries (an absolute local path or
    ``s3://bucket/key``); ``rel`` is the posix path relative to the location root; ``path`` the
    absolute posix path (local) or the object key (S3).
    """

    uri: str
    rel: str
    path: str
    size: int | None = None
    mtime: float | None = None
    #: Why the file cannot be read, found while listing (a broken symlink, no read permission);
    #: ``None`` when nothing is known against it. Opening such a file raises :class:`DumpError`.
    problem: str | None = None

    @property
    def name(self) -> str:
        return posixpath.basename(self.rel)


def is_data_name(rel: str) -> bool:
    """Whether a file could hold items: not a manifest, marker, checksum or hidden file."""
    if not rel or rel.endswith("/"):
        return False
    parts = rel.split("/")
    name = parts[-1]
    if name in _NOT_DATA or name.endswith((".checksum", "_$folder$")):
        return False
    return not any(p.startswith(".") or p == "_temporary" for p in parts)


class Stream(Protocol):
    def read(self, n: int) -> bytes: ...

    def close(self) -> None: ...


class Location:
    """A directory-like root. Subclasses: :class:`LocalLocation`, :class:`S3Location`."""

    uri: str
    #: Absolute posix path (local) or key prefix without trailing slash (S3, "" for the bucket).
    root: str
    #: What listing left out and why (a directory that cannot be listed and could hold no data,
    #: a symlink to a directory): :func:`~keyshift.core.dumps.open_dump` shows them as warnings.
    #: Shared with the locations made from this one (``at``, ``sub``, ``parent``), like
    #: ``unreadable``: every file listed with a ``problem``.
    notes: list[str]
    unreadable: list[FileRef]

    def list(self) -> list[FileRef]:
        """Every file under the root, recursively, sorted by relative path (cached)."""
        raise NotImplementedError

    def stat(self, rel: str) -> FileRef | None:
        """The file at ``rel`` if it exists."""
        for ref in self.list():
            if ref.rel == rel:
                return ref
        return None

    def open(self, ref: FileRef) -> Stream:
        """A binary stream over the file, to be read in chunks with ``read(n)`` and closed."""
        raise NotImplementedError

    def read_small(self, ref: FileRef, limit: int = MANIFEST_LIMIT) -> bytes:
        """The whole content of a small file (a manifest), read in chunks, at most ``limit``."""
        stream = self.open(ref)
        parts: list[bytes] = []
        total = 0
        try:
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise DumpError(f"{ref.uri} is larger than {limit} bytes; not a manifest")
                parts.append(chunk)
        finally:
            stream.close()
        return b"".join(parts)

    def parent(self) -> "Location":
        """The location one level up (used when the uri names a file)."""
        raise NotImplementedError

    def sub(self, rel: str) -> "Location":
        """The location ``rel`` below this one."""
        raise NotImplementedError

    def at(self, root: str) -> "Location":
        """Another location of the same kind (same bucket) at the full path or key ``root``."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return posixpath.basename(self.root.rstrip("/"))


# --------------------------------------------------------------------------------------------
# Local


class LocalLocation(Location):
    def __init__(self, root: str, *, notes: list[str] | None = None,
                 unreadable: list[FileRef] | None = None) -> None:
        self.root = os.path.abspath(root).replace(os.sep, "/")
        self.uri = self.root
        self.notes = notes if notes is not None else []
        self.unreadable = unreadable if unreadable is not None else []
        self._files: list[FileRef] | None = None

    def list(self) -> list[FileRef]:
        if self._files is None:
            out: list[FileRef] = []
            self._walk(self.root, "", out)
            out.sort(key=lambda r: r.rel)
            self._files = out
            self.unreadable.extend(r for r in out if r.problem is not None)
        return self._files

    def _walk(self, path: str, rel: str, out: list[FileRef]) -> None:
        # Nothing under the root may vanish without a word: a file that cannot be read is listed
        # with its problem (open_dump refuses it when it is a data file to read, else warns), a
        # directory that cannot be listed stops the listing unless no data file could be in it.
        try:
            entries = list(os.scandir(path))
        except OSError as e:
            where = rel.rstrip("/")
            if where and not is_data_name(where + "/x"):  # hidden, _temporary: never data
                self.notes.append(f"cannot list {path} ({e.strerror or e}); it could hold no data "
                                  "file (hidden or temporary), so it is left out")
                return
            raise DumpError(f"cannot list {path}: {e.strerror or e}"
                            + (" (the data files in it would be missing from the plan)" if where else ""),
                            title="Unreadable dump") from e
        for e in entries:
            r = f"{rel}{e.name}"
            full = f"{self.root}/{r}"
            try:
                if e.is_dir(follow_symlinks=False):
                    self._walk(e.path, r + "/", out)
                elif e.is_file():  # follows a symlink to a file
                    st = e.stat()
                    problem = None if os.access(e.path, os.R_OK) else "not readable: permission denied"
                    out.append(FileRef(full, r, full, st.st_size, st.st_mtime, problem))
                elif e.is_symlink():
                    target = _readlink(e.path)
                    if os.path.isdir(e.path):
                        # Not followed (no symlink loops), but said.
                        self.notes.append(f"{full} is a symlink to the directory {target}: not "
                                          "followed, so nothing in it is part of the dump")
                    else:
                        out.append(FileRef(full, r, full, problem=f"broken symlink: it points to "
                                                                  f"{target}, which does not exist"))
                else:  # a FIFO, socket or device: reading it could block forever
                    out.append(FileRef(full, r, full, problem="not a regular file"))
            except OSError as err:  # it changed while listing, or stat itself is refused
                out.append(FileRef(full, r, full, problem=f"cannot read: {err.strerror or err}"))

    def stat(self, rel: str) -> FileRef | None:
        if self._files is not None:
            return super().stat(rel)
        full = f"{self.root}/{rel}"
        try:
            st = os.stat(full)
        except OSError:
            return None
        if not os.path.isfile(full):
            return None
        problem = None if os.access(full, os.R_OK) else "not readable: permission denied"
        return FileRef(full, rel, full, st.st_size, st.st_mtime, problem)

    def open(self, ref: FileRef) -> BinaryIO:
        if ref.problem is not None:
            raise DumpError(f"cannot read {ref.uri}: {ref.problem}", title="Unreadable dump")
        try:
            return open(ref.path, "rb")
        except OSError as e:
            raise DumpError(f"cannot open {ref.uri}: {e.strerror or e}", title="Unreadable dump") from e

    def parent(self) -> "LocalLocation":
        return LocalLocation(posixpath.dirname(self.root), notes=self.notes, unreadable=self.unreadable)

    def sub(self, rel: str) -> "LocalLocation":
        return LocalLocation(f"{self.root}/{rel}" if rel else self.root, notes=self.notes,
                             unreadable=self.unreadable)

    def at(self, root: str) -> "LocalLocation":
        return LocalLocation(root, notes=self.notes, unreadable=self.unreadable)


# --------------------------------------------------------------------------------------------
# S3


class _S3Body:
    """Chunked reads over a ``get_object`` body, turning transport errors into DumpError."""

    __slots__ = ("_body", "_uri")

    def __init__(self, body: Any, uri: str) -> None:
        self._body = body
        self._uri = uri

    def read(self, n: int) -> bytes:
        try:
            return self._body.read(n)
        except Exception as e:  # botocore/urllib3 errors: connection reset, read timeout...
            raise DumpError(f"error while reading {self._uri}: {e}") from e

    def close(self) -> None:
        try:
            self._body.close()
        except Exception:  # pragma: no cover - closing a half-read body can fail harmlessly
            pass


class S3Location(Location):
    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.root = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.root}" if self.root else f"s3://{bucket}"
        self.notes = []
        self.unreadable = []
        self._files: list[FileRef] | None = None

    def _key(self, rel: str) -> str:
        return f"{self.root}/{rel}" if self.root else rel

    def list(self) -> list[FileRef]:
        if self._files is None:
            pfx = f"{self.root}/" if self.root else ""
            out: list[FileRef] = []
            try:
                pages = self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=pfx)
                for page in pages:
                    for obj in page.get("Contents", ()):
                        key = obj["Key"]
                        if key.endswith("/"):
                            continue  # "directory" marker
                        lm = obj.get("LastModified")
                        out.append(FileRef(f"s3://{self.bucket}/{key}", key[len(pfx):], key,
                                           obj.get("Size"), lm.timestamp() if lm else None))
            except Exception as e:
                raise DumpError(f"cannot list {self.uri}: {_s3_message(e)}") from e
            out.sort(key=lambda r: r.rel)
            self._files = out
        return self._files

    def stat(self, rel: str) -> FileRef | None:
        if self._files is not None:
            return super().stat(rel)
        key = self._key(rel)
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except Exception as e:
            if _s3_code(e) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise DumpError(f"cannot read s3://{self.bucket}/{key}: {_s3_message(e)}") from e
        lm = head.get("LastModified")
        return FileRef(f"s3://{self.bucket}/{key}", rel, key, head.get("ContentLength"),
                       lm.timestamp() if lm else None)

    def open(self, ref: FileRef) -> _S3Body:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=ref.path)["Body"]
        except Exception as e:
            raise DumpError(f"cannot read {ref.uri}: {_s3_message(e)}") from e
        return _S3Body(body, ref.uri)

    def parent(self) -> "S3Location":
        return S3Location(self.s3, self.bucket, posixpath.dirname(self.root))

    def sub(self, rel: str) -> "S3Location":
        return S3Location(self.s3, self.bucket, self._key(rel) if rel else self.root)

    def at(self, root: str) -> "S3Location":
        return S3Location(self.s3, self.bucket, root)


def _s3_code(e: Exception) -> str:
    resp = getattr(e, "response", None)
    if isinstance(resp, dict):
        return str(resp.get("Error", {}).get("Code", ""))
    return ""


def _s3_message(e: Exception) -> str:
    resp = getattr(e, "response", None)
    if isinstance(resp, dict):
        err = resp.get("Error", {})
        code, msg = err.get("Code", ""), err.get("Message", "")
        if code or msg:
            return f"{code}: {msg}".strip(": ")
    return str(e) or type(e).__name__


# --------------------------------------------------------------------------------------------


def resolve(uri: str, s3: Any = None) -> tuple[Location, FileRef | None]:
    """Turn a dump uri into ``(location, single_file)``.

    For a directory or prefix, ``single_file`` is ``None`` and the location is that directory.
    For a file or object, the location is its parent and ``single_file`` the file itself.
    Raises :class:`DumpError` when nothing exists there.
    """
    if not uri or not uri.strip():
        raise DumpError("no dump location given")
    if uri.startswith("s3://"):
        rest = uri[5:]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise DumpError(f"invalid S3 location {uri!r}: no bucket")
        if s3 is None:
            raise DumpError(f"reading {uri} needs an S3 client, and none was given")
        loc = S3Location(s3, bucket, key)
        if not key.strip("/"):
            if not loc.list():
                raise DumpError(f"no objects in {loc.uri}")
            return loc, None
        if loc.list():
            return loc, None
        if not key.endswith("/"):
            parent = loc.parent()
            ref = parent.stat(posixpath.basename(key))
            if ref is not None:
                return parent, ref
        raise DumpError(f"no such S3 object or prefix: {uri}")
    path = uri[7:] if uri.startswith("file://") else uri
    path = os.path.expanduser(path)
    if os.path.isdir(path):
        return LocalLocation(path), None
    if os.path.isfile(path):
        parent = LocalLocation(os.path.dirname(os.path.abspath(path)))
        ref = parent.stat(os.path.basename(path))
        if ref is not None:
            return parent, ref
    if os.path.islink(path) and not os.path.exists(path):
        raise DumpError(f"{path} is a broken symlink: it points to {_readlink(path)}, which does "
                        "not exist")
    if os.path.exists(path):
        raise DumpError(f"{path} is neither a file nor a directory")
    raise DumpError(f"no such file or directory: {path}")


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # pragma: no cover - it was a symlink a moment ago
        return "?"
