"""``keyshift demo``: a local AWS (moto) with a dirty ``orders`` table, planned, in the console.

The server is moto's standalone server in a child process bound to 127.0.0.1 only; the child dies
with us (``PR_SET_PDEATHSIG`` on Linux) and is stopped cleanly on Ctrl-C or SIGTERM. The same
:class:`LocalMotoServer` serves the test suite's fixtures.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from keyshift.core.errors import KeyshiftError

from .context import Context

__all__ = ["LocalMotoServer", "DemoSetup", "run_demo", "setup_demo", "start_activity", "reset_moto",
           "DEMO_ENV", "SPEC_TEMPLATE"]

HOST = "127.0.0.1"  # never anything else: the demo and the tests stay on loopback

#: Dummy credentials for the local server (also what the printed instructions export).
DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}

UPSTREAM_BUCKET = "keyshift-demo-upstream"
DUMPS_BUCKET = "keyshift-demo-dumps"
DUMP_PREFIX = "exports"

SPEC_TEMPLATE = """\
# keyshift demo migration: orders (keyed by a typed customer name) -> orders_v2 (customer id)
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"

[target]
table = "orders_v2"
partition_key = "customer_id"
legacy_attribute = "legacy_customer"

[normalize]
rules = ["strip-ignorable", "nfkc", "fold-space"]

[reference]
uri = "s3://{upstream}/customers.jsonl"
name_field = "name"
id_field = "id"

[control]
table = "keyshift-control"
flag = "orders-cutover"
"""


def reset_moto(endpoint_url: str) -> None:
    """Forget every table, bucket and stream of the moto server at ``endpoint_url``."""
    req = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the server when its parent dies (no orphaned servers after a kill)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class LocalMotoServer:
    """moto's standalone server (DynamoDB, Streams, S3...) as a child process on 127.0.0.1.

    ``port=0`` picks a free port (retrying if another process grabs it first). ``log`` receives
    the server's request log (``None``: discarded).
    """

    port: int = 0
    log: Path | None = None
    startup_timeout: float = 30.0
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _log_file: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> "LocalMotoServer":
        """Start the server and wait until it answers; raises RuntimeError if it cannot."""
        fixed = self.port != 0
        last_error = ""
        for _ in range(1 if fixed else 5):
            if not fixed:
                self.port = _free_port()
            if self._spawn_and_wait():
                return self
            last_error = self._tail_log()
            self._kill()
        raise RuntimeError(f"the local moto server did not start on {HOST}:{self.port}. {last_error}".strip())

    def _spawn_and_wait(self) -> bool:
        if self.log is not None:
            self._log_file = open(self.log, "ab")
        out = self._log_file if self._log_file is not None else subprocess.DEVNULL
        env = {**os.environ, "MOTO_PORT": str(self.port)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it cleanly
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.answers():
                return True
            time.sleep(0.05)
        return False

    def answers(self) -> bool:
        """Whether the server answers HTTP right now."""
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def reset(self) -> None:
        """Forget every table, bucket and stream (``POST /moto-api/reset``)."""
        reset_moto(self.endpoint_url)

    def alive(self) -> bool:
        """Whether the child process is still running."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the server, then SIGKILL if it lingers; idempotent."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _tail_log(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-400:]

    def __enter__(self) -> "LocalMotoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class DemoSetup:
    """What :func:`setup_demo` built: where everything is."""

    directory: Path
    spec_path: Path
    workspace_path: Path
    dump_uri: str
    summary: dict[str, Any]
    #: The items the dump holds and the names the reference knows (what the demo's activity uses).
    items: list[dict[str, Any]] = field(default_factory=list, repr=False)
    reference_names: set[str] = field(default_factory=set, repr=False)


def _say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def setup_demo(obj: Context, directory: Path, n_records: int, *, say=_say) -> DemoSetup:
    """Fill the server ``obj.aws`` points at with the demo table, reference data and dump; plan it."""
    from keyshift.core.plan.planner import plan_to_completion
    from keyshift.core.spec import load_spec
    from keyshift.core.store.workspace import Workspace

    from . import demo_data as dd

    t0 = time.perf_counter()
    data = dd.build_demo_data(n_records)
    ddb, s3 = obj.aws.client("dynamodb"), obj.aws.client("s3")
    say("creating table orders (customer, order_id) with a NEW_AND_OLD_IMAGES stream")
    ddb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                   {"AttributeName": "order_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                              {"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.get_waiter("table_exists").wait(TableName="orders", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    say(f"writing {len(data.items):,} orders with dirty customer names")
    _batch_write(ddb, "orders", data.items, say)
    say(f"uploading reference data s3://{UPSTREAM_BUCKET}/customers.jsonl ({len(data.reference)} rows)")
    dd.put_objects(s3, UPSTREAM_BUCKET, {"customers.jsonl": data.reference_jsonl()})
    say("scanning orders into a native Export-to-S3 dump (with manifests)")
    # The dump's point in time is the scan's start, after the stream was enabled: design (a), which
    # `keyshift stream-sync` checks against the export's exportTime.
    point_in_time = datetime.now(timezone.utc)
    scanned = _scan(ddb, "orders", say)
    lines = [dd.item_line(item) for item in scanned]
    lines += data.extra_lines  # a malformed line, a numeric customer...: the plan quarantines them
    base, objects = dd.export_objects(lines, bucket=DUMPS_BUCKET, prefix=DUMP_PREFIX, table="orders",
                                      when=point_in_time)
    dd.put_objects(s3, DUMPS_BUCKET, objects)
    dump_uri = f"s3://{DUMPS_BUCKET}/{base}/"
    say(f"dump: {dump_uri} ({len(lines):,} lines in {sum(1 for k in objects if '/data/' in k)} files)")

    directory.mkdir(parents=True, exist_ok=True)
    spec_path = directory / "keyshift.toml"
    spec_path.write_text(SPEC_TEMPLATE.format(upstream=UPSTREAM_BUCKET), encoding="utf-8")
    workspace_path = directory / ".keyshift"
    say(f"planning into {workspace_path}")
    result = plan_to_completion(Workspace(workspace_path), load_spec(spec_path), dump_uri, s3=s3,
                                operator=obj.operator)
    s = result.summary
    ids = s["identifiers"]
    say(f"plan: {s['lines']:,} lines = {s['records']:,} records + {s['quarantined']} quarantined; "
        f"identifiers {ids['total']:,}: {ids['fixed']} fixed, {ids['ambiguous']} ambiguous, "
        f"{ids['orphaned']} orphaned, {ids['invalid']} invalid; {s['conflicts']} conflicts, "
        f"{s['suspicious']} suspicious ({time.perf_counter() - t0:.1f}s)")
    _init_control(obj, spec_path, workspace_path, say)
    return DemoSetup(directory, spec_path, workspace_path, dump_uri, s, items=scanned,
                     reference_names={r["name"] for r in data.reference})


def _init_control(obj: Context, spec_path: Path, workspace_path: Path, say=_say) -> None:
    """Create the control table and the flag (state ``old``), as ``keyshift flag init`` does, so
    the demo's services register from the start and the cut-over screen has something to show."""
    from keyshift.core.cutover.flag import init_flag
    from keyshift.core.spec import load_spec
    from keyshift.core.store.workspace import Workspace

    spec = load_spec(spec_path)
    ws = Workspace(workspace_path, create=False)
    try:
        result = init_flag(ws, spec, obj.aws.client("dynamodb"), operator=obj.operator)
    finally:
        ws.close()
    state = result["flag"]
    say(f"control table {spec.control.table}: flag {state.flag} in state {state.state} (version {state.version})")


_PROGRESS_EVERY = 10_000


def _batch_write(ddb: Any, table: str, items: list[dict[str, Any]], say=_say,
                 deadline_s: float = 600.0) -> None:
    """BatchWriteItem in 25s, retrying UnprocessedItems with backoff and jitter until a deadline."""
    import random

    deadline = time.monotonic() + deadline_s
    for start in range(0, len(items), 25):
        if start and start % _PROGRESS_EVERY == 0:
            say(f"  {start:,} / {len(items):,} written")
        pending = [{"PutRequest": {"Item": it}} for it in items[start:start + 25]]
        attempt = 0
        while pending:
            resp = ddb.batch_write_item(RequestItems={table: pending})
            pending = resp.get("UnprocessedItems", {}).get(table, [])
            if pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(pending)} demo items still unprocessed after {deadline_s:.0f}s")
                attempt += 1
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * random.random())


def _scan(ddb: Any, table: str, say=_say) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    shown = 0
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
        if len(items) - shown >= _PROGRESS_EVERY:
            shown = len(items)
            say(f"  {shown:,} scanned")
    return items


def _instructions(server: LocalMotoServer, setup: DemoSetup) -> str:
    """The exact shell lines that point another terminal at the demo."""
    from .demo_activity import LOG_NAME

    env = " ".join(f"{k}={v}" for k, v in DEMO_ENV.items())
    ks = (f"keyshift --spec {shlex.quote(str(setup.spec_path))}"
          f" --workspace {shlex.quote(str(setup.workspace_path))}")
    return "\n".join([
        f"keyshift demo is serving a local AWS on {server.endpoint_url} (Ctrl-C stops it).",
        f"Demo directory: {setup.directory}",
        f"The live writer and the services log to: {setup.directory / LOG_NAME}",
        "",
        "Point other shells at it:",
        f"  export AWS_ENDPOINT_URL={server.endpoint_url} {env}",
        f"  {ks} records --status ambiguous",
        f"  {ks} console",
        f"  {ks} plan --dump {setup.dump_uri}",
        f"  {ks} restore --create-table --allow-unresolved",
        f"  {ks} stream-sync --allow-unresolved --follow    # the orders table keeps its stream",
        f"  {ks} verify",
        "",
    ])


#: What ``q`` asks in the demo: the console is all there is of the demo's AWS.
DEMO_QUIT_WARNING = ("Quitting stops the demo's live writer, its three services and its embedded AWS server: "
                     "its tables, streams and the flag are gone, and a running restore or sync stops with them. "
                     "The workspace files stay on disk.")


class _Stop(Exception):
    """SIGTERM arrived: leave the serving loop and stop the server."""


def start_activity(obj: Context, setup: DemoSetup, options: Any = None) -> Any:
    """Start the live writer and the services on the demo just set up (a started
    :class:`~keyshift.console.demo_activity.DemoActivity`; ``stop()`` it before the server)."""
    from keyshift.core.spec import load_spec

    from .demo_activity import ActivityOptions, DemoActivity, demo_client

    ddb = demo_client(obj.aws.endpoint_url, obj.aws.region_name)
    return DemoActivity(ddb, load_spec(setup.spec_path), setup.workspace_path, setup.directory, setup.items,
                        setup.reference_names, options or ActivityOptions()).start()


def run_demo(obj: Context, *, n_records: int = 2000, open_console: bool = True, port: int = 0,
             demo_dir: Path | None = None, writes_per_second: float = 3.0, max_writes: int = 5000) -> None:
    """Start the local server, build and plan the demo, start its live writer and services, then
    open the console or serve until Ctrl-C.

    The demo's own workspace is always planned; ``obj.read_only`` only opens the console in audit
    mode. Ctrl-C (SIGINT) or SIGTERM stops the activity, then the server, and returns normally.
    """
    from .demo_activity import ActivityOptions

    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise KeyshiftError("keyshift demo needs moto's server: pip install 'keyshift[demo]'",
                            title="moto is not installed")
    for key, value in DEMO_ENV.items():
        os.environ.setdefault(key, value)
    if demo_dir is None:
        directory = Path(tempfile.mkdtemp(prefix="keyshift-demo-"))
    else:
        directory = Path(demo_dir).resolve()
        directory.mkdir(parents=True, exist_ok=True)
    _say(f"demo directory: {directory}")
    server = LocalMotoServer(port=port, log=directory / "moto-server.log")
    previous = signal.getsignal(signal.SIGTERM)
    app: Any = None
    activity: Any = None

    def on_term(signum: int, frame: Any) -> None:
        if app is not None:  # let the console restore the terminal on its way out
            app.exit()
            return
        raise _Stop()

    signal.signal(signal.SIGTERM, on_term)
    try:
        started = time.perf_counter()
        try:
            server.start()
        except RuntimeError as exc:
            raise KeyshiftError(str(exc), title="The local server did not start") from None
        _say(f"local AWS (moto) listening on {server.endpoint_url} "
             f"(ready in {time.perf_counter() - started:.1f}s; log: {server.log})")
        obj.aws.endpoint_url = server.endpoint_url
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
        setup = setup_demo(obj, directory, n_records)
        # After the dump: what the writer does from now on reaches the new table only by the stream.
        activity = start_activity(obj, setup, ActivityOptions(writes_per_second=writes_per_second,
                                                              max_writes=max_writes))
        _say(activity.describe())
        ctx = Context(spec_path=setup.spec_path, workspace_path=setup.workspace_path,
                      read_only=obj.read_only, operator=obj.operator, aws=obj.aws)
        if open_console:
            from .app import make_app

            app = make_app(ctx, quit_warning=DEMO_QUIT_WARNING)
            app.run()
            return
        print(_instructions(server, setup), flush=True)
        while server.alive():
            time.sleep(0.5)
        raise KeyshiftError(f"the local server exited unexpectedly; see {server.log}")
    except (KeyboardInterrupt, _Stop):
        _say("stopping")
    finally:
        if activity is not None:  # before the server: a thread must not outlive its endpoint
            activity.stop()
            _say(f"demo activity stopped: {activity.summary_line()} (log: {activity.log_path})")
        server.stop()
        signal.signal(signal.SIGTERM, previous)
        _say("local server stopped")
