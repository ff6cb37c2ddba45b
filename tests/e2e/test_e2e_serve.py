"""``keyshift console --serve`` end to end: the real server as a subprocess, on a free port.

HTTP level (always): the URL line on stdout; the page, static files and the websocket answer 403
without the token, with a wrong one, and with a wrong cookie; the token in the URL gets the page
and a cookie; the cookie alone then gets the page, the static files and the websocket (which is
how textual-serve's page script connects: it appends its own query to the websocket address).

Browser level (where Debian's ``chromium`` and the ``playwright`` package are installed): open the
URL headless, see the console ask for the operator, type a name, see the overview render with it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyshift.console.serve import COOKIE, console_command, is_loopback


pytestmark = pytest.mark.e2e

URL_LINE = re.compile(r"^http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{40,})$")


def _process_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without AWS or keyshift settings, plus the moto server's.

    Built here, not imported from conftest: with tests/ui collected too, ``conftest`` is that one.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYSHIFT_"))}
    return {**base, **env, "PYTHONIOENCODING": "utf-8"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """A running ``console --serve``: its process, URL and token."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, token: str) -> None:
        self.proc, self.url, self.token = proc, url, token
        self.base = url.split("/?", 1)[0]


def _start(world: Any, *extra: str) -> Served:
    port = _free_port()
    argv = [sys.executable, "-m", "keyshift.console.cli", "--spec", str(world.spec_path),
            "--workspace", str(world.workspace), "console", "--serve", "--port", str(port), *extra]
    proc = subprocess.Popen(argv, cwd=world.tmp, env=_process_env(world.env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = proc.stdout.readline().decode().strip()  # printed once the socket is bound
    assert time.monotonic() < deadline
    match = URL_LINE.match(line)
    if match is None:
        proc.kill()
        pytest.fail(f"no URL line on stdout: {line!r}; stderr: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    assert int(match.group(1)) == port
    return Served(proc, line, match.group(2))


def _stop(served: Served) -> str:
    served.proc.terminate()
    try:
        _, stderr = served.proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        _, stderr = served.proc.communicate()
    return stderr.decode("utf-8", "replace")


@pytest.fixture
def served(world: Any) -> Iterator[Served]:
    server = _start(world)
    yield server
    stderr = _stop(server)
    assert "Traceback" not in stderr, stderr
    assert server.token not in stderr  # the access log never writes the token


def _get(url: str, cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _ws_status(url: str, cookie: str | None = None) -> int:
    """The HTTP status of a websocket handshake (101 when it upgraded)."""
    import aiohttp

    async def connect() -> int:
        cookies = {COOKIE: cookie} if cookie else None
        async with aiohttp.ClientSession(cookies=cookies) as session:
            try:
                async with session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
                    await ws.close()
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    return asyncio.run(connect())


def test_page_static_and_websocket_need_the_token(served: Served) -> None:
    base, token = served.base, served.token
    # No token, a wrong token, a wrong cookie: 403 everywhere, with a line that says what to do.
    status, _, body = _get(f"{base}/")
    assert status == 403 and b"open the URL" in body
    assert _get(f"{base}/?token=wrong")[0] == 403
    assert _get(f"{base}/?token={token[:-1]}")[0] == 403
    assert _get(f"{base}/", cookie="wrong")[0] == 403
    assert _get(f"{base}/static/js/textual.js")[0] == 403
    assert _ws_status(f"{base.replace('http', 'ws')}/ws?width=80&height=24") == 403
    assert _ws_status(f"{base.replace('http', 'ws')}/ws?width=80&height=24", cookie="wrong") == 403

    # The printed URL: the page, and a cookie scoped to this server, unreadable by scripts.
    status, headers, body = _get(served.url)
    assert status == 200 and b"textual" in body.lower()
    set_cookie = headers.get("Set-Cookie", "")
    assert set_cookie.startswith(f"{COOKIE}={token}") and "HttpOnly" in set_cookie
    assert "SameSite=Strict" in set_cookie

    # The cookie alone: what the page's own requests carry.
    status, headers, _ = _get(f"{base}/?fontsize=14", cookie=token)
    assert status == 200 and "Set-Cookie" not in headers
    assert _get(f"{base}/static/js/textual.js", cookie=token)[0] == 200
    assert _ws_status(f"{base.replace('http', 'ws')}/ws?width=80&height=24", cookie=token) == 101


def test_a_fresh_token_at_each_start(world: Any) -> None:
    first = _start(world)
    _stop(first)
    second = _start(world)
    try:
        assert second.token != first.token
        assert _get(f"{second.base}/?token={first.token}")[0] == 403
        assert _get(second.url)[0] == 200
    finally:
        _stop(second)


def test_non_loopback_host_warns_loudly(world: Any) -> None:
    port = _free_port()
    argv = [sys.executable, "-m", "keyshift.console.cli", "--spec", str(world.spec_path),
            "--workspace", str(world.workspace), "console", "--serve", "--host", "0.0.0.0", "--port", str(port)]
    proc = subprocess.Popen(argv, cwd=world.tmp, env=_process_env(world.env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    proc.terminate()
    _, stderr = proc.communicate(timeout=20)
    assert line.startswith(f"http://0.0.0.0:{port}/?token=")
    assert "WARNING: serving on 0.0.0.0, not loopback" in stderr.decode()
    assert "AWS credentials" in stderr.decode()


def test_loopback_and_the_per_connection_command(world: Any) -> None:
    from keyshift.console.context import Context

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.internal")
    command = console_command(Context(spec_path=world.spec_path, workspace_path=world.workspace, read_only=True))
    assert command.endswith("--read-only console --ask-operator")
    assert str(world.workspace.absolute()) in command and "--serve" not in command


def _browser() -> tuple[str, Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (`apt-get install chromium`; .ci/run does where apt exists)")
    playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    return chromium, playwright


def test_browser_asks_the_operator_and_renders_the_console(world: Any, tmp_path: Path) -> None:
    chromium, playwright = _browser()
    world.run("plan", "--dump", world.export_uri, "--json").json()
    server = _start(world)
    frames = bytearray()
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--no-sandbox", "--headless=new"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.extend(
                payload if isinstance(payload, bytes) else payload.encode())))
            page.goto(server.url)
            page.wait_for_timeout(500)
            _wait_for_text(page, frames, "Who is operating?")
            page.click("#terminal")  # keystrokes go to xterm's focused textarea
            page.keyboard.type("Ada Lovelace", delay=20)
            page.keyboard.press("Enter")
            _wait_for_text(page, frames, "Ada Lovelace")
            # Help opens only once the prompt is gone (in its field "?" would be typed): the name was
            # taken and the next key reached the console.
            page.keyboard.press("?")
            _wait_for_text(page, frames, "Keys of ")
            shot = page.screenshot(path=str(tmp_path / "serve.png"))
            browser.close()
    finally:
        _stop(server)
    assert len(frames) > 1000, "the console sent (almost) nothing over the websocket"
    assert len(set(shot)) > 50, "the screenshot is blank"


def _wait_for_text(page: Any, frames: bytearray, text: str, timeout: float = 30.0) -> None:
    """Wait until ``text`` reaches the browser: in xterm's DOM rows when it renders to the DOM, else
    in the console's output over the websocket (a canvas or WebGL terminal has no text to read)."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = page.evaluate("() => document.body.innerText")
        if text in seen or text.encode() in frames:
            return
        page.wait_for_timeout(250)
    pytest.fail(f"the browser never showed {text!r}; it showed: {seen[-1000:]!r}, "
                f"and received: {bytes(frames[-1000:])!r}")


def test_a_taken_port_and_serve_options_alone_are_one_line_errors(world: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = world.run("console", "--serve", "--port", str(port), timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert f"cannot serve the console on 127.0.0.1:{port}" in result.message and "--port" in result.message
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    alone = world.run("console", "--port", "8001", timeout=30)
    assert alone.returncode == 2 and "--port is only used with --serve" in alone.message


class TerminalConsole:
    """A terminal console (the real App under Pilot, on its own event loop in a thread: the sync
    Playwright API owns this thread's) on the same workspace, its resolution queue open. It records
    when it first showed a decided case and whom it listed as attached."""

    def __init__(self, world: Any) -> None:
        import threading

        self.world = world
        self.ready, self.stop = threading.Event(), threading.Event()
        self.decided_seen_at: float | None = None
        self.attached: list[tuple[str, str, str | None]] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="terminal-console", daemon=True)

    def __enter__(self) -> TerminalConsole:
        self.thread.start()
        assert self.ready.wait(60), "the terminal console did not start"
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        if self.error is not None and exc[0] is None:
            raise self.error

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported to the test's thread
            self.error = exc
            self.ready.set()

    async def _run(self) -> None:
        from keyshift.console.app import make_app
        from keyshift.console.context import Context
        from keyshift.core.aws import AwsContext
        from keyshift.screens.resolve_queue import ResolveQueueScreen

        env = self.world.env
        context = Context(spec_path=self.world.spec_path, workspace_path=self.world.workspace, operator="terminal-op",
                          aws=AwsContext(endpoint_url=env.get("AWS_ENDPOINT_URL"), region=env.get("AWS_DEFAULT_REGION")))
        app = make_app(context)
        async with app.run_test(size=(160, 48)) as pilot:
            app.action_open_queue()
            while not (isinstance(app.screen, ResolveQueueScreen) and app.screen.loaded):
                await pilot.pause(0.05)
            queue = app.screen
            assert not any(not c.is_open for c in queue.cases), "a case was decided before the browser decided"
            self.ready.set()
            while not self.stop.is_set():
                if self.decided_seen_at is None and any(not c.is_open for c in queue.cases):
                    self.decided_seen_at = time.monotonic()
                self.attached = [(c.operator, c.kind, c.last_action) for c in app.attached_consoles]
                await pilot.pause(0.05)


def _newest_decision(workspace: Path) -> tuple[str, str] | None:
    """(operator, action) of the newest decision in the workspace, read with sqlite3 directly."""
    import sqlite3

    conn = sqlite3.connect(workspace / "keyshift.db", timeout=30)
    try:
        row = conn.execute("SELECT operator, action FROM decisions ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return (row[0], row[1]) if row else None


def test_a_decision_made_in_the_browser_appears_in_a_terminal_console(world: Any) -> None:
    chromium, playwright = _browser()
    world.run("plan", "--dump", world.export_uri, "--json").json()
    ambiguous = [c for c in world.run("resolve", "list", "--open", "--json").json() if c["kind"] == "ambiguous"]
    assert ambiguous, "the curated data has ambiguous cases to decide"
    server = _start(world)
    frames = bytearray()
    try:
        with TerminalConsole(world) as terminal, playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--no-sandbox", "--headless=new"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.extend(
                payload if isinstance(payload, bytes) else payload.encode())))
            page.goto(server.url)
            _wait_for_text(page, frames, "Who is operating?")
            page.click("#terminal")
            page.keyboard.type("Grace Hopper", delay=20)
            page.keyboard.press("Enter")
            _wait_for_text(page, frames, "Grace Hopper")
            page.keyboard.press("c")  # the resolution queue; its first open case is selected
            _wait_for_text(page, frames, "decided")
            page.keyboard.press("1")  # ambiguous cases only: the first one is selected
            _wait_for_text(page, frames, "ambiguous:")
            page.keyboard.press("s")  # "same": the dialog offers the candidate
            _wait_for_text(page, frames, "why this decision")
            page.keyboard.press("Enter")
            page.keyboard.type("paired in the browser", delay=10)
            page.keyboard.press("Enter")
            deadline = time.monotonic() + 30
            while (newest := _newest_decision(world.workspace)) is None and time.monotonic() < deadline:
                page.wait_for_timeout(20)
            recorded = time.monotonic()
            assert newest == ("Grace Hopper", "same"), f"no decision by the browser's operator: {newest}"
            while terminal.decided_seen_at is None and time.monotonic() < recorded + 5:
                page.wait_for_timeout(20)
            assert terminal.decided_seen_at is not None, "the terminal console never showed the decision"
            took = terminal.decided_seen_at - recorded
            assert took <= 2.0, f"the terminal console showed the browser's decision after {took:.2f} s"
            # And the terminal lists the browser session: its operator, its kind, what it did last.
            while not any(op == "Grace Hopper" and (last or "").startswith("decided")
                          for op, _, last in terminal.attached) and time.monotonic() < recorded + 5:
                page.wait_for_timeout(50)
            assert ("Grace Hopper", "browser") in {(op, kind) for op, kind, _ in terminal.attached}, terminal.attached
            browser.close()
    finally:
        _stop(server)
