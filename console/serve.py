"""``keyshift console --serve``: the console in a partner's browser, behind a per-start token.

textual-serve has no authentication of its own, and it starts one console process per websocket
connection with the server's environment: AWS credentials included. Anyone who can reach the port
can therefore act on the migration with them. So this wrapper

* binds to loopback unless ``--host`` says otherwise (and then warns loudly on stderr);
* makes a fresh random token at each start and prints the one URL that carries it on stdout;
* answers every route (page, static files, websocket, downloads) with HTTP 403 unless the request
  carries the token, in the ``token`` query parameter or in the cookie the first good page request
  set. The cookie matters because textual-serve's page script builds the websocket address itself
  and appends its own query (``?width=…&height=…``), dropping ours; the browser still sends the
  cookie with the websocket handshake (same origin).

Each browser session runs ``keyshift … console --ask-operator``: its first screen asks who is at
that browser, and that name, not the server's login, is what its decisions and audit entries record.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import secrets
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from keyshift.core.errors import KeyshiftError

from .context import Context

__all__ = ["COOKIE", "TOKEN_PARAM", "is_loopback", "make_token", "console_command", "serve_console"]

#: The query parameter and the cookie that carry the token.
TOKEN_PARAM = "token"
COOKIE = "keyshift_token"


def make_token() -> str:
    """A fresh unguessable token (256 bits, URL-safe): one per server start, never stored."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything, so treat it as reachable


def console_command(context: Context) -> str:
    """The shell command textual-serve runs per browser connection: this console, asking the name.

    The interpreter and module path (not a ``keyshift`` found on PATH) so the browser gets the very
    keyshift that serves it; paths made absolute because the command runs in the server's cwd but
    must not depend on it.
    """
    argv = [sys.executable, "-m", "keyshift.console.cli",
            "--spec", str(context.spec_path.absolute()),
            "--workspace", str(context.workspace_path.absolute())]
    aws = context.aws
    for option, value in (("--endpoint-url", aws.endpoint_url), ("--region", aws.region),
                          ("--profile", aws.profile)):
        if value:
            argv += [option, value]
    if context.read_only:
        argv.append("--read-only")
    argv += ["console", "--ask-operator"]
    return shlex.join(argv)


def token_middleware(token: str) -> Any:
    """An aiohttp middleware: 403 unless the request carries ``token``; sets the cookie on a good
    query token so the page's own requests (static files, the websocket) carry it."""
    from aiohttp import web

    @web.middleware
    async def check_token(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        from_query = request.query.get(TOKEN_PARAM, "")
        from_cookie = request.cookies.get(COOKIE, "")
        # compare_digest: the time a comparison takes says nothing about how much of it matched.
        query_ok = bool(from_query) and hmac.compare_digest(from_query.encode(), token.encode())
        cookie_ok = bool(from_cookie) and hmac.compare_digest(from_cookie.encode(), token.encode())
        if not (query_ok or cookie_ok):
            raise web.HTTPForbidden(text="keyshift: forbidden: open the URL that `keyshift console --serve` printed\n")
        response = await handler(request)
        if query_ok and not cookie_ok and not response.prepared:
            # HttpOnly: no page script reads it; Strict: no other site's page makes the browser send it.
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return check_token


def _server_class() -> type:
    """textual-serve's Server with the token gate, quiet stdout and no token in the access log."""
    try:
        from textual_serve.server import Server
    except ImportError as exc:
        raise KeyshiftError("console --serve needs textual-serve: pip install 'keyshift[serve]'") from exc
    from aiohttp import web
    from rich.console import Console

    class TokenServer(Server):  # type: ignore[misc, valid-type]
        """Serves the console; every route behind :func:`token_middleware`."""

        def __init__(self, command: str, *, host: str, port: int, token: str) -> None:
            super().__init__(command, host=host, port=port, title="keyshift")
            self.token = token
            # stdout carries only the URL line (scripts and tests read it); logs go to stderr.
            self.console = Console(stderr=True)

        def initialize_logging(self) -> None:
            super().initialize_logging()
            # The access log would write every ?token=… URL into whatever collects stderr.
            logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(token_middleware(self.token))
            return app

        async def on_startup(self, app: web.Application) -> None:
            """Nothing on stdout here: startup runs before the socket is bound (see :meth:`serve`)."""

        def serve(self, debug: bool = False) -> None:
            """textual-serve's ``serve`` with one change: the URL line is printed from aiohttp's
            ``print`` hook, which runs once the socket listens, so whoever reads it can connect."""
            self.debug = debug
            self.initialize_logging()
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.add_signal_handler(signal.SIGINT, self.request_exit)
                loop.add_signal_handler(signal.SIGTERM, self.request_exit)
            except NotImplementedError:  # pragma: no cover - not on POSIX
                pass
            web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False,
                        loop=loop, print=self._listening)

        def _listening(self, *_: object) -> None:
            print(f"{self.public_url}/?{TOKEN_PARAM}={self.token}", flush=True)
            self.console.print("keyshift console served; open the URL above. Ctrl-C stops it.")

    return TokenServer


def serve_console(context: Context, *, host: str, port: int) -> None:
    """Serve the console on ``host:port`` until Ctrl-C or SIGTERM."""
    server_class = _server_class()
    if not is_loopback(host):
        sys.stderr.write(
            f"WARNING: serving on {host}, not loopback: anyone who can reach port {port} and learns the URL\n"
            "WARNING: acts on this migration with this machine's AWS credentials. Share the URL privately,\n"
            "WARNING: prefer an SSH tunnel to a loopback server, and stop the server when the pairing is done.\n")
        sys.stderr.flush()
    server = server_class(console_command(context), host=host, port=port, token=make_token())
    try:
        server.serve()
    except OSError as exc:  # the port is taken, the address is not this machine's: the operator's to fix
        raise KeyshiftError(f"cannot serve the console on {host}:{port}: {exc.strerror or exc}; "
                            "pass another --port or --host") from exc
