"""The stream-sync screen (step 4): replay the old table's stream into the new table, and watch it.

:func:`drive_stream_sync` runs in the App's ``stream-sync`` thread worker
(:meth:`KeyshiftApp.start_stream_sync`): it drives :func:`keyshift.core.migrate.stream.sync.run_stream_sync`
and posts :class:`SyncProgressed` (replaceable) and one :class:`SyncFinished` to the App, which
forwards them to every screen. ``s`` catches up once and stops; ``f`` follows until Escape. When
idle the screen shows the latest run in the workspace (:func:`latest_stream_sync`), whoever ran it
(a ``keyshift stream-sync --follow`` elsewhere shows as following, with its lag).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import get_current_worker

from keyshift.core.migrate.preflight import stream_sync_preflight
from keyshift.core.migrate.stream.source import StreamSyncError
from keyshift.core.migrate.stream.sync import SyncProgress, latest_stream_sync, run_stream_sync, shard_positions
from keyshift.core.store.runs import Run

from .confirm import ConfirmScreen
from .widgets import visible_text
from .worker_drive import drive_in_worker

if TYPE_CHECKING:
    from keyshift.console.app import KeyshiftApp
    from keyshift.console.context import Context

__all__ = ["StreamSyncScreen", "SyncFinished", "SyncProgressed", "SyncStarted", "drive_stream_sync"]

#: How often the idle screen re-reads the latest run (a follower elsewhere moves on).
REFRESH_SECONDS = 2.0


@dataclass
class SyncStarted(Message, bubble=False):
    """A replay began (``follow``: it runs until stopped)."""

    follow: bool


@dataclass
class SyncProgressed(Message, bubble=False):
    """Where the running replay is (a snapshot)."""

    progress: SyncProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SyncProgressed)


@dataclass
class SyncFinished(Message, bubble=False):
    """The replay ended: ``complete``, ``stopped``, ``failed`` or ``declined``."""

    outcome: str
    summary: dict[str, Any] | None = None
    error: str = ""


@dataclass
class SyncInfo(Message, bubble=False):
    """The latest stream-sync run, read in a thread."""

    run: Run | None


# -- the worker ----------------------------------------------------------------------------------
def drive_stream_sync(context: Context, *, follow: bool, cancel: threading.Event,
                      ask: Callable[[ConfirmScreen], bool], post: Callable[[Message], object]) -> dict[str, Any] | None:
    """Confirm, then run a replay to its end in the calling (worker) thread, reporting through ``post``.

    Returns the summary (None when declined). Errors are re-raised after :class:`SyncFinished` is
    posted, so the App's error modal shows them.
    """
    try:
        context.require_writable("stream-sync")
        ws, spec = context.workspace, context.spec
        ddb = context.aws.client("dynamodb")
        # The same checks as `keyshift stream-sync`; open cases are asked about here, not refused.
        pre = stream_sync_preflight(ws, spec, ddb, allow_unresolved=True)
        if pre.blockers:
            raise StreamSyncError("; ".join(b.message for b in pre.blockers), title="Stream sync not started")
        build = pre.build
        assert build is not None
        open_cases = "".join(f"\n\n⚠ {w}" for w in pre.warnings)
        how = "until you press Escape" if follow else "until it has caught up with every shard, then stop"
        question = ConfirmScreen(
            "Follow the stream?" if follow else "Replay the stream?",
            f"Replay {spec.source.table}'s stream into {spec.target.table} through keymap "
            f"{build.keymap.version}, {how}. It continues from the last run's checkpoint, or starts from "
            f"the trim horizon (the first time, and after a restore completed).{open_cases}",
            confirm_label="Follow" if follow else "Replay")
        if not ask(question) or cancel.is_set():
            post(SyncFinished("declined"))
            return None
        gen = run_stream_sync(ws, spec, build.keymap, ddb=ddb,
                              streams=context.aws.client("dynamodbstreams"), follow=follow,
                              operator=context.operator, cancel=cancel)
        post(SyncStarted(follow))
        summary: dict[str, Any] = drive_in_worker(
            gen, cancel, lambda progress: post(SyncProgressed(dataclasses.replace(
                progress, skipped=dict(progress.skipped)))))
    except BaseException as exc:
        post(SyncFinished("failed", error=getattr(exc, "message", str(exc))))
        raise
    post(SyncFinished(summary["state"], summary=summary))
    return summary


# -- the screen ----------------------------------------------------------------------------------
class StreamSyncScreen(Screen[None]):
    """Step 4: replay the old table's stream through the keymap into the new table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back_or_stop", "Back / stop", id="sync.stop",
                tooltip="Stop this console's replay (it keeps its checkpoint), or go back"),
        Binding("s", "sync_once", "Catch up", id="sync.once",
                tooltip="Replay the stream until caught up with every shard, then stop"),
        Binding("f", "sync_follow", "Follow", id="sync.follow",
                tooltip="Replay the stream and keep following it until Escape"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run_info: Run | None = None
        self.loaded = False

    @property
    def keyshift(self) -> KeyshiftApp:
        return cast("KeyshiftApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="stream-sync", classes="box") as box:
            box.border_title = "Stream sync: the old table's stream → the new table"
            yield Static("reading the workspace…", id="sync-state")
            yield Static("", id="sync-report")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._refresh_idle)

    def on_screen_resume(self) -> None:
        self.reload()

    def _refresh_idle(self) -> None:
        if not self.keyshift.sync_running and self.is_current:
            self.reload()

    def reload(self) -> None:
        """Re-read the latest stream-sync run (in a thread)."""
        context = self.keyshift.context

        def load() -> None:
            run = latest_stream_sync(context.workspace)
            if not get_current_worker().is_cancelled:
                self.post_message(SyncInfo(run))

        self.keyshift.run_blocking(load, group="sync-info", description="read the latest stream sync")

    @on(SyncInfo)
    def _info(self, message: SyncInfo) -> None:
        self.run_info, self.loaded = message.run, True
        self._show_state()

    @on(SyncStarted)
    @on(SyncProgressed)
    @on(SyncFinished)
    def _news(self, message: Message) -> None:
        self._show_state()
        if isinstance(message, (SyncStarted, SyncFinished)):
            self.refresh_bindings()
            self.reload()

    def _show_state(self) -> None:
        from .overview import sync_mark  # the overview imports this module's messages

        app = self.keyshift
        state = self.query_one("#sync-state", Static)
        report = self.query_one("#sync-report", Static)
        live, outcome = app.sync_live, app.sync_outcome
        if app.sync_running:
            if live is None:
                state.update(Text("◐ starting…", style="yellow"))
                return
            lag = "catching up" if live.lag_seconds is None else f"caught up {live.lag_seconds:.0f} s ago"
            state.update(Text(f"◐ {'following' if app.sync_follow else 'replaying'} — {lag} — Escape stops it "
                              "(the checkpoint is kept)", style="yellow"))
            report.update(_counts(live.records, live.puts, live.deletes, live.skipped, live.shards,
                                  live.shards_done, live.restarts, live.retries, live.throttles))
            return
        if outcome is not None and outcome.outcome == "failed":
            state.update(Text(f"✘ failed: {outcome.error}", style="red"))
        elif not self.loaded:
            state.update(Text("reading the workspace…", style="dim"))
        elif self.run_info is None:
            state.update(Text("No replay yet. After the restore, press s to replay the old table's stream "
                              "from its trim horizon (f keeps following it)."))
        else:
            mark, style, label, _ = sync_mark(self.run_info)
            state.update(Text(f"{mark} latest run #{self.run_info.id}: {label}", style=style))
        if self.run_info is not None:
            report.update(_run_report(self.run_info))

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.keyshift
        if action in app.MUTATING_ACTIONS and app.read_only:
            return None
        if action in ("sync_once", "sync_follow"):
            return None if app.sync_running else True
        return True

    def action_back_or_stop(self) -> None:
        """Stop this console's replay, or go back when none runs."""
        if self.keyshift.sync_running:
            self.keyshift.cancel_work("stream-sync")
            self.query_one("#sync-state", Static).update(Text("stopping…", style="yellow"))
        else:
            self.dismiss()

    def action_sync_once(self) -> None:
        """Replay until caught up, then stop."""
        if self.check_action("sync_once", ()) is True:
            self.keyshift.start_stream_sync(follow=False)

    def action_sync_follow(self) -> None:
        """Replay and keep following until Escape."""
        if self.check_action("sync_follow", ()) is True:
            self.keyshift.start_stream_sync(follow=True)


# -- rendering -----------------------------------------------------------------------------------
def _counts(records: int, puts: int, deletes: int, skipped: dict[str, int], shards: int, shards_done: int,
            restarts: int, retries: int, throttles: int) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("records", Text(f"{records:,} read · {puts:,} puts · {deletes:,} deletes"))
    grid.add_row("skipped", Text(", ".join(f"{n:,} {kind}" for kind, n in sorted(skipped.items())) or "none",
                                 style="dim"))
    grid.add_row("shards", Text(f"{shards:,} ({shards_done:,} closed and drained)"))
    grid.add_row("restarts", Text(f"{restarts} (from the trim horizon, after a restore completed)"))
    grid.add_row("writes", Text(f"{retries:,} unprocessed retried · {throttles:,} throttled"))
    return grid


def _run_report(run: Run) -> Table:
    c = run.totals
    shards = shard_positions(run)
    grid = _counts(c.get("records", 0), c.get("puts", 0), c.get("deletes", 0), c.get("skipped", {}),
                   c.get("shards", len(shards)), c.get("shards_done", sum(1 for s in shards.values() if s["done"])),
                   c.get("restarts", 0), c.get("retries", 0), c.get("throttles", 0))
    params = run.params
    grid.add_row("run", Text(f"#{run.id} · {params.get('origin', '?')} · keymap {run.keymap} · "
                             f"{'follow' if params.get('follow') else 'once'} · by {run.operator}"))
    grid.add_row("when", Text(f"{run.started_at} → {run.finished_at or '…'}"))
    grid.add_row("stream", visible_text(params.get("stream_arn", "?")))
    for warning in c.get("warnings", []):
        grid.add_row("warning", Text(warning, style="yellow"))
    return grid
