"""The planner's first stage: dump lines -> record and quarantine rows, optionally in a child process.

Extraction (gunzip, JSON parsing, type-key checks, key checks, sizes) is CPU-bound Python and
needs nothing from the workspace, so it can run in a separate process while the parent writes
SQLite: :func:`extract_batches` is the stage itself, :func:`extract_in_child` runs it in a child
interpreter behind a pipe (constant memory: the pipe and a short read-ahead queue bound what is
in flight). Both yield the same :class:`Batch` sequence, so the planner's result does not depend
on which ran.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

import orjson

from ..dumps import open_dump
from ..errors import KeyshiftError
from ..dumps.model import DumpInfo
from ..dumps.reader import excerpt
from ..kernel.items import MAX_ITEM_BYTES, item_size, key_problem, key_size_problem

__all__ = ["Batch", "Extractor", "ExtractionError", "extract_batches", "extract_in_child", "SAMPLE_CACHE"]

#: Lines per batch: one SQLite transaction and one progress report each.
BATCH_LINES = 5000
#: A record's ``seq`` is ``file_id << SEQ_SHIFT | line``: dump order, stable across re-plans, and
#: computable by whichever process reads the file (files can be read in parallel).
SEQ_SHIFT = 32
#: Raw identifiers remembered for "first time seen" (sample items). The planner's identifier
#: cache has the same size and clearing rule, so both agree on which raws are new.
SAMPLE_CACHE = 200_000


@dataclass(slots=True)
class Batch:
    """Rows extracted from consecutive dump lines, column by column.

    Records (lines whose item has usable keys) are the parallel lists ``seqs``, ``file_ids``,
    ``line_nos``, ``raws`` (the raw identifier), ``sort_keys`` (JSON of the sort key's wire value,
    or ``None``) and ``sizes``: columns pickle and unpickle faster than one tuple per record, and
    the parent maps and counts a whole column at once.
    ``samples``: ``(index, sample_json)``, the item as JSON of the record at ``index`` in the
    columns, the first time this extractor met its raw identifier.
    ``quarantine``: ``(seq, file_id, line, reason, excerpt, raw | None)``.
    ``lines`` and ``bytes_read`` count everything this extractor has read so far.
    """

    seqs: list[int] = field(default_factory=list)
    file_ids: list[int] = field(default_factory=list)
    line_nos: list[int] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    sort_keys: list[str | None] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    samples: list[tuple[int, str]] = field(default_factory=list)
    quarantine: list[tuple] = field(default_factory=list)
    lines: int = 0
    bytes_read: int = 0

    @property
    def records(self) -> int:
        """How many records the batch holds."""
        return len(self.seqs)


class Extractor:
    """Turns one dump's lines into batches; ``info`` is the dump's (available before iterating)."""

    def __init__(self, reader: Any, partition_key: str, sort_key: str | None) -> None:
        self.reader = reader
        self.info: DumpInfo = reader.info
        self.pk, self.sk = partition_key, sort_key

    def __iter__(self) -> Iterator[Batch]:
        # One loop per line of the dump: everything it touches is a local.
        pk, sk = self.pk, self.sk
        dumps = orjson.dumps
        max_item = MAX_ITEM_BYTES
        file_ids = {uri: i for i, uri in enumerate(self.info.files, 1)}
        seen: set[str] = set()
        reader = self.reader
        lines = 0
        left = BATCH_LINES  # lines until this batch is full
        batch = Batch()
        seqs, fids, nums, raws, sks, sizes = (batch.seqs.append, batch.file_ids.append,
                                              batch.line_nos.append, batch.raws.append,
                                              batch.sort_keys.append, batch.sizes.append)
        samples, quarantine = batch.samples, batch.quarantine
        parse = reader.line_parser()
        for blk in reader.line_blocks():
            file_id = file_ids[blk.file]
            base = file_id << SEQ_SHIFT
            n = blk.start
            fault = blk.fault
            for line in blk.lines:
                n += 1
                item = fault or parse(line)  # fault: the stream broke, the reason says how
                if item is None:
                    continue  # blank line: not counted anywhere
                lines += 1
                if type(item) is not dict:  # unreadable: item is the reason
                    quarantine.append((base | n, file_id, n, item, excerpt(line), None))
                else:
                    # Fast paths for the common case; key_problem words the others. The parser
                    # returns canonical wire format only: every value is a dict with one type
                    # key, an S value is a str.
                    value = item.get(pk)
                    raw = None if value is None else value.get("S")
                    problem = None if raw is not None else key_problem(item, pk, role="identifier")
                    if problem is None and (not raw or len(raw) > 512):  # 512 characters fit in 2,048 bytes
                        problem = key_size_problem(value, role="identifier")
                    sort_key = None
                    if problem is None and sk:
                        value = item.get(sk)
                        if value is not None and ("S" in value or "N" in value or "B" in value):
                            sort_key = dumps(value).decode()
                            if len(sort_key) > 260 or sort_key in ('{"S":""}', '{"B":""}'):  # maybe over 1,024 bytes
                                problem = key_size_problem(value, role="sort key")
                        else:
                            problem = key_problem(item, sk, role="sort key")
                    size = len(line)
                    if problem is None and size > max_item:
                        # JSON text is never smaller than the item: only long lines need counting.
                        size = item_size(item)
                        if size > max_item:
                            problem = f"item is {size} bytes, over DynamoDB's {max_item}-byte limit"
                    if problem is not None:
                        quarantine.append((base | n, file_id, n, problem, dumps(item).decode()[:200],
                                           raw if type(raw) is str else None))
                    else:
                        if raw not in seen:
                            if len(seen) >= SAMPLE_CACHE:
                                seen.clear()
                            seen.add(raw)
                            samples.append((len(batch.seqs), dumps(item).decode()))
                        seqs(base | n)
                        fids(file_id)
                        nums(n)
                        raws(raw)
                        sks(sort_key)
                        sizes(size)
                left -= 1
                if not left:
                    batch.lines, batch.bytes_read = lines, reader.bytes_read
                    yield batch
                    left = BATCH_LINES
                    batch = Batch()
                    seqs, fids, nums, raws, sks, sizes = (
                        batch.seqs.append, batch.file_ids.append, batch.line_nos.append,
                        batch.raws.append, batch.sort_keys.append, batch.sizes.append)
                    samples, quarantine = batch.samples, batch.quarantine
        batch.lines, batch.bytes_read = lines, reader.bytes_read
        yield batch


def extract_batches(uri: str, fmt: str, *, s3: Any, allow_manifest_mismatch: bool,
                    partition_key: str, sort_key: str | None,
                    files: list[int] | None = None) -> Extractor:
    """Open the dump in this process (raises DumpError at once when it is unusable).

    ``files`` restricts extraction to those data files (0-based indices in read order).
    """
    reader = open_dump(uri, fmt, s3=s3, allow_manifest_mismatch=allow_manifest_mismatch)
    if files is not None:
        reader = reader.only(files)
    return Extractor(reader, partition_key, sort_key)


# -- child process --------------------------------------------------------------------------------
# The child is a fresh interpreter running this module (``python -m``), not a multiprocessing
# process: spawn would re-import the caller's ``__main__``, and fork is unsafe in the console's
# multi-threaded process. Messages are length-prefixed pickles on the child's stdout; the pipe's
# buffer is the bounded queue (the child blocks when the parent is behind: constant memory).

def _send(out: Any, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(struct.pack("<Q", len(data)))
    out.write(data)
    out.flush()


#: Set to a directory, it makes every extraction child cProfile itself and write
#: ``extract-<pid>.prof`` there before it reports its end (bench/plan_bench.py --profile).
PROFILE_ENV = "KEYSHIFT_PROFILE_DIR"


def _child_main() -> None:
    """Child process body: read args from stdin, send ('info',), ('batch',)…, ('end',) or ('error',)."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the message pipe
    profile_dir = os.environ.get(PROFILE_ENV)
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        args = pickle.load(sys.stdin.buffer)
        s3 = None
        if args["s3"] is not None:
            import boto3
            from botocore.config import Config

            from ..aws import CONNECT_TIMEOUT_S, cap_connect_retries

            s3 = boto3.client("s3", config=Config(retries={"mode": "adaptive", "max_attempts": 10},
                                                  connect_timeout=CONNECT_TIMEOUT_S), **args["s3"])
            s3.meta.events.register("needs-retry", cap_connect_retries)
        ext = extract_batches(args["uri"], args["fmt"], s3=s3,
                              allow_manifest_mismatch=args["allow_manifest_mismatch"],
                              partition_key=args["pk"], sort_key=args["sk"], files=args["files"])
        _send(out, ("info", ext.info))
        for batch in ext:
            _send(out, ("batch", batch))
        if profiler is not None:
            # Before "end": the parent kills a child still running EXIT_GRACE seconds after it.
            profiler.disable()
            profiler.dump_stats(os.path.join(profile_dir, f"extract-{os.getpid()}.prof"))
        _send(out, ("end", ext.info))
    except BrokenPipeError:  # the parent stopped listening (cancelled): just go
        return
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent to raise
        try:
            _send(out, ("error", exc))
        except Exception:  # unpicklable: send its text
            _send(out, ("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


def s3_params(s3: Any) -> dict[str, Any] | None:
    """What a child process needs to rebuild ``s3``: endpoint, region and frozen credentials."""
    if s3 is None:
        return None
    params: dict[str, Any] = {"region_name": s3.meta.region_name}
    if s3.meta.endpoint_url:
        params["endpoint_url"] = s3.meta.endpoint_url
    creds = s3._request_signer._credentials  # botocore keeps them here; no public accessor
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        params.update(aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
                      aws_session_token=frozen.token)
    return params


class ExtractionError(KeyshiftError):
    """An extraction process died or failed; the message says how (the plan can be run again)."""

    title = "Plan extraction failed"


#: Bytes the pipe from a child may hold: one pickled batch is about 0.6 MB on order-like items,
#: so a child can write a whole batch and go on parsing while the parent is busy with SQLite
#: (with Linux's default 64 KiB it waits for every read). Capped by /proc/sys/fs/pipe-max-size.
PIPE_BYTES = 1 << 20


def _widen_pipe(fd: int) -> None:
    """Ask for a pipe buffer of :data:`PIPE_BYTES` (Linux only; elsewhere nothing changes)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    try:
        fcntl.fcntl(fd, set_size, PIPE_BYTES)
    except OSError:  # over pipe-max-size or the user's pipe quota: the default still works
        pass


#: Messages (batches) read ahead from each child while the parent is busy with SQLite: about
#: 0.6 MB each on order-like items. A child that is descheduled for a moment (the machine's
#: other work) then does not stall the parent, and the parent's commits do not stall the child.
AHEAD = 4


class _MessageReader(threading.Thread):
    """Reads whole messages from a child's pipe into a bounded queue, in the background.

    The thread spends its time in ``read`` (the GIL released); the queue's bound keeps memory
    flat. ``None`` in the queue means the pipe ended (inside a message or between two).
    """

    def __init__(self, stream: Any, depth: int) -> None:
        super().__init__(name="keyshift-extract-reader", daemon=True)
        self._stream = stream
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            while True:
                header = self._stream.read(8)
                if len(header) < 8:
                    break
                (size,) = struct.unpack("<Q", header)
                data = self._stream.read(size)
                if len(data) < size:
                    break
                if not self._put(data):
                    return
        except (OSError, ValueError):  # the pipe was closed under us (cancel)
            pass
        self._put(None)

    def _put(self, item: bytes | None) -> bool:
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> bytes | None:
        """The next message, waiting for it; ``None`` once the pipe has ended."""
        return self._queue.get()

    def stop(self) -> None:
        """Let the thread end (the pipe is about to close) and wait for it."""
        self._stopping.set()
        self.join(timeout=5)


class ChildExtraction:
    """Extraction in a child process; iterate for batches. ``info`` is ready after construction.

    Errors raised in the child (DumpError, ManifestError) are raised again here. Iteration ends
    the child; ``close`` kills it early (cancel).
    """

    def __init__(self, uri: str, fmt: str, *, s3: Any, allow_manifest_mismatch: bool,
                 partition_key: str, sort_key: str | None, files: list[int] | None = None,
                 wait: bool = True) -> None:
        """Start the child; with ``wait`` (the default) also :meth:`handshake`."""
        args = {"uri": uri, "fmt": fmt, "s3": s3_params(s3), "pk": partition_key, "sk": sort_key,
                "allow_manifest_mismatch": allow_manifest_mismatch, "files": files}
        self._finished = False  # the child reported its end: it is only exiting now
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "keyshift.core.plan.extract"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._out = self._proc.stdout
        _widen_pipe(self._out.fileno())
        pickle.dump(args, self._proc.stdin)
        self._proc.stdin.close()
        self._reader = _MessageReader(self._out, AHEAD)
        self._reader.start()
        if wait:
            self.handshake()

    def handshake(self) -> None:
        """Wait for the child to open the dump: sets ``info``, or raises what the child raised."""
        kind, payload = self._get()
        if kind == "error":
            self.close()
            self._raise(payload)
        self.info: DumpInfo = payload

    def _get(self) -> tuple[str, Any]:
        data = self._reader.get()
        if data is None:  # the pipe ended before or inside a message (killed, out of memory)
            raise self._died()
        try:
            return pickle.loads(data)
        except Exception as e:
            self.close()
            raise ExtractionError(f"the extraction process sent a damaged message ({type(e).__name__}: "
                                  f"{e}); plan again") from None

    def _died(self) -> ExtractionError:
        code = self._proc.wait()
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return ExtractionError(f"the extraction process ended unexpectedly ({how}); plan again")

    @staticmethod
    def _raise(payload: BaseException) -> None:
        """Raise what the child raised: keyshift's own errors as they are, anything else (a
        bug) as an ExtractionError saying what it was, so no traceback reaches an operator."""
        if isinstance(payload, (KeyshiftError, KeyboardInterrupt)):
            raise payload
        raise ExtractionError(f"the extraction process failed: {type(payload).__name__}: "
                              f"{payload}") from payload

    def __iter__(self) -> Iterator[Batch]:
        try:
            while True:
                kind, payload = self._get()
                if kind == "batch":
                    yield payload
                elif kind == "end":
                    # Manifest warnings are found while reading: pass them on.
                    self.info.warnings[:] = payload.warnings
                    self._finished = True
                    return
                else:
                    self._raise(payload)
        finally:
            self.close()

    #: Seconds a child that reported its end may take to exit before it is killed.
    EXIT_GRACE = 10.0

    def close(self) -> None:
        """Stop the child if it still runs (at once, unless it reported its end: then it is
        only leaving, and gets :attr:`EXIT_GRACE` seconds), and reap it."""
        if self._proc.poll() is None:
            if self._finished:
                try:
                    self._proc.wait(timeout=self.EXIT_GRACE)
                except subprocess.TimeoutExpired:
                    pass
            if self._proc.poll() is None:
                self._proc.kill()
        self._reader.stop()
        self._out.close()
        self._proc.wait()


class ParallelExtraction:
    """Several :class:`ChildExtraction` over disjoint sets of files, read in turn.

    Files are dealt out round-robin so each child gets a similar share; batches are taken from
    the children in turn, so the parent's pace throttles all of them alike (a child blocks on its
    pipe when the parent is behind). ``lines`` and ``bytes_read`` of the batches it yields are
    totals over all children.
    """

    def __init__(self, uri: str, fmt: str, *, workers: int, n_files: int, **kwargs: Any) -> None:
        groups = [list(range(i, n_files, workers)) for i in range(min(workers, n_files))]
        self.children: list[ChildExtraction] = []
        try:
            # Start them all, then wait for each: their interpreters start up side by side.
            for files in groups:
                self.children.append(ChildExtraction(uri, fmt, files=files, wait=False, **kwargs))
            for child in self.children:
                child.handshake()
        except BaseException:
            self.close()
            raise
        self.info = self.children[0].info

    def __iter__(self) -> Iterator[Batch]:
        live = [(k, iter(child)) for k, child in enumerate(self.children)]
        lines = [0] * len(live)
        read = [0] * len(live)
        try:
            while live:
                for entry in list(live):
                    k, it = entry
                    batch = next(it, None)
                    if batch is None:
                        live.remove(entry)
                        continue
                    lines[k], read[k] = batch.lines, batch.bytes_read
                    batch.lines, batch.bytes_read = sum(lines), sum(read)
                    yield batch
        finally:
            self.close()
        # Manifest warnings found while reading, by any child.
        warnings = [w for child in self.children for w in child.info.warnings]
        self.info.warnings[:] = list(dict.fromkeys(warnings))

    def close(self) -> None:
        """Stop every child."""
        for child in self.children:
            child.close()


def extract_in_child(uri: str, fmt: str, *, workers: int = 1, n_files: int = 1,
                     **kwargs: Any) -> ChildExtraction | ParallelExtraction:
    """Start extraction in ``workers`` child processes (one per file group)."""
    if workers <= 1 or n_files <= 1:
        return ChildExtraction(uri, fmt, **kwargs)
    return ParallelExtraction(uri, fmt, workers=workers, n_files=n_files, **kwargs)


if __name__ == "__main__":
    # Run the imported module's copy, so pickled classes are named keyshift.core.plan.extract.*
    # (not __main__.*) and the parent can load them.
    from keyshift.core.plan import extract as plan_extract

    plan_extract._child_main()
