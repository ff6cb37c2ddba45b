"""``keyshift demo --no-console`` end to end: it serves, other commands use it, Ctrl-C stops it."""

from __future__ import annotations

import queue
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

STARTUP_TIMEOUT = 90.0


def _pump(stream, lines: "queue.Queue[str | None]") -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", "replace"))
    lines.put(None)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def test_demo_serves_until_interrupted(tmp_path: Path, run_cli, spawn_cli) -> None:
    demo_dir = tmp_path / "demo"
    proc = spawn_cli(["demo", "--no-console", "--records", "300", "--dir", str(demo_dir)], {}, tmp_path)
    out: queue.Queue[str | None] = queue.Queue()
    err: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True).start()
    stdout: list[str] = []
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        export_line = records_line = None
        while records_line is None:
            left = deadline - time.monotonic()
            assert left > 0, "demo did not print its instructions in time:\n" + _drain(err)
            try:
                line = out.get(timeout=left)
            except queue.Empty:
                continue
            assert line is not None, f"demo exited early ({proc.wait()}):\n" + _drain(err)
            stdout.append(line)
            if line.strip().startswith("export AWS_ENDPOINT_URL="):
                export_line = line.strip()
            elif " records --status ambiguous" in line:
                records_line = line.strip()
        assert export_line is not None
        shell_env = dict(re.findall(r"(AWS_[A-Z_]+)=(\S+)", export_line))
        endpoint = shell_env["AWS_ENDPOINT_URL"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint)
        assert shell_env["AWS_ACCESS_KEY_ID"] == "testing"
        assert f"--workspace {demo_dir / '.keyshift'}" in records_line
        assert _answers(endpoint)

        argv = ["--spec", str(demo_dir / "keyshift.toml"), "--workspace", str(demo_dir / ".keyshift")]
        rows = run_cli([*argv, "records", "--json", "--limit", "20"], shell_env, tmp_path).json()
        assert len(rows) == 20 and all("status" in r for r in rows)
        ambiguous = run_cli([*argv, "records", "--status", "ambiguous", "--limit", "500", "--json"],
                                 shell_env, tmp_path).json()
        assert any(r["raw_escaped"] == "Acme Corp\\u200b" for r in ambiguous)

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0, _drain(err)
        assert not _answers(endpoint), "the local server must stop with the demo"
        errors = _drain(err)
        assert "stopped" in errors
        # The live writer and the three services ran (and said so before serving), logging to a file.
        assert f"their log: {demo_dir / 'demo-activity.log'}" in errors
        assert "3 services (checkout, billing, support)" in errors
        assert "demo activity stopped" in errors
        activity = (demo_dir / "demo-activity.log").read_text(encoding="utf-8")
        assert "checkout: now on orders (flag state old, version 0)" in activity
        assert "Traceback" not in errors
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _drain(q: "queue.Queue[str | None]") -> str:
    lines = []
    while True:
        try:
            line = q.get(timeout=1)
        except queue.Empty:
            break
        if line is None:
            break
        lines.append(line)
    return "".join(lines)
