"""The real ``keyshift console`` in a real terminal (tmux), driven by keystrokes, read from the pane.

Pilot tests run the App in-process with a fake driver; this runs what an operator runs: the
installed command line, a pseudo-terminal of 160×48, the moto server fixture behind it. A short
migration goes through with ``send-keys`` (resolve the one case, build the keymap, restore, verify,
init the flag and flip it to shadow with the typed table name) and every step is checked twice: on
the pane (``capture-pane``, polled until a deadline) and through the CLI's ``--json`` afterwards.

The tmux server is private (``-L`` with a unique name, ``-f /dev/null``), so an operator's own
sessions and configuration are never touched, and it is killed in a finalizer whatever happens.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from keyshift.console import demo_data as dd

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
]

COLS, ROWS = 160, 48
#: Text that only a Python traceback (or Textual's crash report) puts on a screen.
TRACEBACK_MARKS = ("Traceback (most recent call last)", "─ locals ─")
SPEC = """\
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"

[target]
table = "orders_v2"
partition_key = "customer_id"
legacy_attribute = "legacy_customer"

[control]
table = "tmux-control"
flag = "orders-e2e"
"""


class Pane:
    """One private tmux server with one session running a command; read and typed into by name."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.socket = f"keyshift-e2e-{uuid.uuid4().hex[:12]}"
        self.env = env
        # remain-on-exit: a console that dies leaves its last screen (the traceback) readable.
        self.seen: list[str] = []
        self._tmux("new-session", "-d", "-x", str(COLS), "-y", str(ROWS), "-s", "ks", "-c", str(cwd),
                   shlex.join(command))
        try:
            self.socket_path = Path(self._tmux("display-message", "-p", "#{socket_path}").strip())
            self._tmux("set-option", "-t", "ks", "remain-on-exit", "on")
            # Without this tmux holds an Escape for 500 ms and glues it to the next key (Alt+3).
            self._tmux("set-option", "-s", "escape-time", "0")
        except BaseException:
            self.kill()  # the fixture's finalizer never sees a Pane that failed here
            raise

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], env=self.env,
                              capture_output=True, timeout=10)
        if proc.returncode != 0:
            raise AssertionError(f"tmux {args[0]} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout.decode("utf-8", "replace")

    def text(self) -> str:
        """The visible screen now (every capture is kept, for the no-traceback check)."""
        screen = self._tmux("capture-pane", "-p", "-t", "ks")
        self.seen.append(screen)
        return screen

    def keys(self, *keys: str) -> None:
        """tmux key names (``Enter``, ``BTab``, ``Escape``) or single characters."""
        self._tmux("send-keys", "-t", "ks", *keys)

    def type(self, text: str) -> None:
        """Literal text, character by character as typed."""
        self._tmux("send-keys", "-t", "ks", "-l", text)

    def wait_for(self, *needles: str, timeout: float = 20.0, absent: str | None = None) -> str:
        """Poll the pane until every needle is on it (and ``absent`` is not); fail with the screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            assert not any(mark in screen for mark in TRACEBACK_MARKS), f"a traceback reached the pane:\n{screen}"
            if all(n in screen for n in needles) and (absent is None or absent not in screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"not on the pane after {timeout:.0f}s: {needles!r}\n{screen}")
            time.sleep(0.05)  # a poll interval, not a wait for an effect: the deadline bounds the wait

    def wait_for_cursor_on(self, needle: str, timeout: float = 10.0) -> None:
        """Poll until the terminal's cursor is on the row showing ``needle`` (the focused input's).

        Focus moves by messages handled after keys already sent, so typing before the cursor is
        there can land in the previous field; Textual puts the terminal cursor in the focused input.
        """
        deadline = time.monotonic() + timeout
        while True:
            row = int(self._tmux("display-message", "-p", "-t", "ks", "#{cursor_y}").strip())
            lines = self.text().splitlines()
            if row < len(lines) and needle in lines[row]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the cursor is not on {needle!r} after {timeout:.0f}s (row {row}):\n"
                                     + "\n".join(lines))
            time.sleep(0.05)  # a poll interval; the deadline bounds the wait

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "kill-server"], env=self.env,
                       capture_output=True, timeout=10)
        if getattr(self, "socket_path", None) is not None:  # tmux leaves the socket file behind
            self.socket_path.unlink(missing_ok=True)


def _terminal_env(env: dict[str, str]) -> dict[str, str]:
    """The server's AWS settings and nobody else's, as a terminal would have them (no forced width).

    Built here, not imported from conftest: with tests/ui collected too, ``conftest`` is that one.
    """
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "KEYSHIFT_")) and k not in ("COLUMNS", "LINES", "NO_COLOR", "TMUX")}
    return {**base, **env, "TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8"}


@pytest.fixture
def migration(aws_env: dict[str, str], boto_clients: Any, tmp_path: Path, run_cli: Callable[..., Any]) -> Callable[..., Any]:
    """An old table (streamed) of 162 orders, one ambiguous pair in it, its dump in S3, planned.

    Returns ``cli(*args)`` running ``keyshift --spec … --workspace … args`` in a subprocess.
    """
    ddb, s3 = boto_clients.dynamodb, boto_clients.s3
    ddb.create_table(
        TableName="orders", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "order_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                              {"AttributeName": "order_id", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    items = [{"customer": {"S": f"CUST-{i % 20:03d}"}, "order_id": {"S": f"ORD-{i:04d}"}, "total": {"N": f"{i}.5"}}
             for i in range(160)]
    items += [{"customer": {"S": raw}, "order_id": {"S": f"ORD-A{n}"}} for n, raw in enumerate(["Acme", "Acme\u200b"])]
    for n in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={"orders": [{"PutRequest": {"Item": i}} for i in items[n:n + 25]]})
    # The dump's point in time is after the stream was enabled (what the demo does too).
    base, objects = dd.export_objects([dd.item_line(i) for i in items], bucket="tmux-dumps", prefix="exports",
                                      table="orders", when=datetime.now(timezone.utc))
    dd.put_objects(s3, "tmux-dumps", objects)
    spec = tmp_path / "keyshift.toml"
    spec.write_text(SPEC, encoding="utf-8")

    def cli(*args: str) -> Any:
        return run_cli(["--spec", str(spec), "--workspace", str(tmp_path / ".keyshift"), *args],
                            aws_env, tmp_path)

    plan = cli("plan", "--dump", f"s3://tmux-dumps/{base}/", "--json").json()
    assert plan["identifiers"]["ambiguous"] == 2 and plan["records"] == 162
    return cli


@pytest.fixture
def console(migration: Callable[..., Any], aws_env: dict[str, str], tmp_path: Path) -> Iterator[Pane]:
    """``keyshift console`` on the planned workspace, in a private tmux server (killed afterwards)."""
    command = [sys.executable, "-m", "keyshift.console.cli", "--spec", str(tmp_path / "keyshift.toml"),
               "--workspace", str(tmp_path / ".keyshift"), "console"]
    pane = Pane(command, _terminal_env(aws_env), tmp_path)
    try:
        yield pane
    finally:
        pane.kill()


def test_a_short_migration_by_keystrokes(console: Pane, migration: Callable[..., Any]) -> None:
    pane = console
    pane.wait_for("Migration steps", "0 of 1 decided", "1 ambiguous (c Resolve)")

    # Resolve the one case: same entity, the offered id, a reason.
    pane.keys("c")
    pane.wait_for("0 of 1 decided   1 open", "Acme⟨ZWSP⟩")
    pane.keys("s")
    pane.wait_for("Same entity ·", "a reason is required")
    pane.wait_for_cursor_on("Acme")  # the new id field, the candidate offered in it
    pane.keys("Enter")  # keeps the candidate and moves on to the reason
    pane.wait_for_cursor_on("why this decision")
    pane.type("one customer")
    pane.keys("Enter")
    pane.wait_for("1 of 1 decided   0 open", "same · ")
    pane.keys("Escape")
    pane.wait_for("Migration steps", "1 of 1 decided")

    # The keymap, built where the operator sees it.
    pane.keys("k")
    pane.wait_for("No keymap built yet")
    pane.keys("b")
    pane.wait_for("version ", "the first build: nothing to compare with")
    assert "unresolved      0" in pane.text()
    pane.keys("Escape")
    pane.wait_for("Migration steps")

    # Restore: the console offers to create the table; Cancel has the focus, so Shift+Tab first.
    pane.keys("3")
    pane.wait_for("Restore into orders_v2", "No restore yet")
    pane.keys("s")
    pane.wait_for("Create the target table?", "Create table and restore")
    pane.keys("BTab", "Enter")
    pane.wait_for("✔ complete: 162 items written into orders_v2", timeout=30)
    pane.keys("Escape")
    pane.wait_for("Migration steps")

    # Verify.
    pane.keys("5")
    pane.wait_for("Verify: new table = transform(old table)?")
    pane.keys("s")
    pane.wait_for("verdict  ✔ equal", "compared 162   missing 0   extra 0   different 0", timeout=30)
    pane.keys("Escape")
    pane.wait_for("Migration steps")

    # Cut over: create the flag, then flip old → shadow (its only gate: the new table exists),
    # choosing shadow in the radio set and typing the target table's name to confirm.
    pane.keys("6")
    pane.wait_for("Flag", "Gates")
    pane.keys("i")
    pane.wait_for("version 0", "created (state old, version 0)", "before a flip to new", "no flip yet")
    pane.keys("f")
    pane.wait_for("Flip flag orders-e2e (now old)", "to shadow", "to new")
    pane.keys("BTab")          # from the reason to the radio set
    pane.keys("Enter")         # the highlight starts on the first choice, "to shadow": select it
    pane.wait_for("Type 'orders_v2' to flip to shadow")
    pane.keys("Tab")           # back to the reason
    pane.wait_for_cursor_on("reason (recorded")
    pane.type("shadow reads first")
    pane.keys("Tab", "Tab", "Tab")  # past force and accept-loss to the table name
    pane.wait_for_cursor_on("the target table's name")
    pane.type("orders_v2")
    pane.keys("Enter")
    pane.wait_for("flipped to shadow (version 1)", timeout=30)

    # The same facts, from the command line: the decision, a fresh verify, the flag and its history.
    (case,) = migration("resolve", "list", "--json").json()
    assert case["status"] == "decided" and case["decision"]["reason"] == "one customer"
    report = migration("verify", "--json").json()
    assert report["equal"] and report["compared"] == 162, report
    flag = migration("flag", "status", "--json").json()
    assert flag["state"] == "shadow" and flag["version"] == 1, flag
    history = migration("flag", "history", "--json").json()["history"]
    assert len(history) == 1 and history[0]["reason"] == "shadow reads first", history
    assert len(pane.seen) > 10 and not any(mark in screen for screen in pane.seen for mark in TRACEBACK_MARKS)
