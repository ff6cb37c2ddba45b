"""The stream-sync screen (step 4): replay the old table's stream into the new table, and watch it.

:func:`prepare_stream_sync` runs in the App's ``stream-sync`` run worker
(``host.start_run("stream-sync", follow=…)``, :mod:`.runs`): it checks and asks, then hands
:func:`keyshift.core.migrate.stream.sync.run_stream_sync` to the run's driver; the App keeps the run's
progress and outcome in its ``stream-sync`` slot and forwards the run's messages to every screen.
``s`` catches up once and stops; ``f`` follows until Escape; ``r`` switches the direction
(forward: the old table's stream into the new table; reverse: the new table's stream back into
the old one, ``stream-sync --reverse``). When
idle the screen shows the latest run in the workspace (:func:`latest_stream_sync`), whoever ran it
(a ``keyshift stream-sync --follow`` elsewhere shows as following, with its lag).
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Sparkline, Static
from textual.worker import get_current_worker

from keyshift.core.migrate.preflight import stream_sync_preflight
from keyshift.core.migrate.restore import latest_restore
from keyshift.core.migrate.stream.source import StreamSyncError
from keyshift.core.cutover.reverse_start import unnamed_start
from keyshift.core.migrate.stream.reverse import StartPosition
from keyshift.core.migrate.stream.sync import (
    SyncProgress,
    latest_stream_sync,
    run_stream_sync,
    shard_positions,
    watermark,
)
from keyshift.core.store.runs import Run
from keyshift.core.store.workspace import Workspace

from keyshift.core.text.plural import possessive
from .confirm import ConfirmScreen
from .host import ConsoleHost
from .overview import sync_mark
from .news import RunsChanged
from .runs import STREAM_SYNC, Launch, RunFinished, RunProgressed, RunRequest, RunSlot, RunStarted
from .widgets import visible_text

__all__ = ["StreamSyncScreen", "prepare_stream_sync"]

#: How often the idle screen re-reads the latest run (a follower elsewhere moves on).
REFRESH_SECONDS = 2.0
#: How many lag samples the sparkline keeps (one per progress message or idle refresh).
LAG_SAMPLES = 120


@dataclass
class SyncInfo(Message, bubble=False):
    """The latest stream-sync run, read in a thread."""

    run: Run | None


# -- the run -----------------------------------------------------------------------------------
def prepare_stream_sync(request: RunRequest) -> Launch | None:
    """Check and confirm a replay in the worker thread; the :class:`Launch` that runs it, or None
    when the operator declined.

    The same checks as ``keyshift stream-sync``; open cases are asked about here, not refused.
    Options: ``follow`` (run until stopped rather than until caught up).
    """
    context, follow = request.context, bool(request.options.get("follow"))
    direction = request.options.get("direction") or "forward"
    context.require_writable("stream-sync")
    ws, spec = context.workspace, context.spec
    ddb = context.aws.client("dynamodb")
    pre = stream_sync_preflight(ws, spec, ddb, allow_unresolved=True, direction=direction)
    if pre.blockers:
        raise StreamSyncError("; ".join(b.message for b in pre.blockers), title="Stream sync not started")
    build = pre.build
    assert build is not None
    open_cases = "".join(f"\n\n⚠ {w}" for w in pre.warnings)
    how = ("until you press Escape on this screen (b leaves it running)" if follow
           else "until it has caught up with every shard, then stop")
    start = None
    if direction == "reverse":
        # A first run starts where the flip to new recorded the new table's stream, so the writes
        # made since the flip go back too; before any flip, from this second on loses nothing
        # (no service writes the new table yet).
        origin, found = unnamed_start(ws, ddb, spec)
        if origin == "checkpoint":
            where = "from the last reverse run's checkpoint"
        elif found is not None:
            start, where = found.start, found.describe()
        else:
            start = StartPosition("latest")
            where = ("from this second on (no flip to new is recorded yet, so no service has written "
                     f"{spec.target.table})")
        body = (f"Replay {possessive(spec.target.table)} stream back into {spec.source.table} through the inverse of "
                f"keymap {build.keymap.version}, {how}, {where}. Forward sync's own writes are skipped.")
    else:
        body = (f"Replay {possessive(spec.source.table)} stream into {spec.target.table} through keymap "
                f"{build.keymap.version}, {how}. It continues from the last run's checkpoint, or starts from "
                "the trim horizon (the first time, and after a restore completed).")
    # Forward, after a complete restore and with nothing open, there is nothing to weigh: no question.
    restored = direction == "forward" and _restore_complete(ws)
    if direction == "forward" and not restored:
        body += ("\n\n⚠ No restore has completed yet. The new table gets only what changes on the old "
                 "table (what the stream still holds, then every change from now on): items that do not "
                 "change stay missing from the new table until a restore writes them.")
    if not restored or pre.warnings:
        question = ConfirmScreen(
            "Follow the stream?" if follow else "Replay the stream?", f"{body}{open_cases}",
            confirm_label="Follow" if follow else "Replay", cancelled="no replay started")
        if not request.confirm(question):
            return None
    gen = run_stream_sync(ws, spec, build.keymap, ddb=ddb, streams=context.aws.client("dynamodbstreams"),
                          follow=follow, operator=context.operator, cancel=request.cancel,
                          direction=direction, start=start)
    # A stopped replay returns its summary too: its state says how it ended (complete, stopped).
    return Launch(gen, snapshot=lambda p: dataclasses.replace(p, skipped=dict(p.skipped)),
                  result=lambda summary: (summary["state"], summary))


def _restore_complete(ws: Workspace) -> bool:
    """A restore of this workspace completed (the new table holds the dump, not only the stream's)."""
    run = latest_restore(ws)
    return run is not None and run.state == "complete"


# -- the screen ----------------------------------------------------------------------------------
class StreamSyncScreen(Screen[None]):
    """Step 4: replay the old table's stream through the keymap into the new table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back_or_stop", "Back / stop", id="sync.stop",
                tooltip="Stop this console's replay (it keeps its checkpoint), or go back"),
        # A follow is meant to outlive this screen (the flip's gates need it following): leaving
        # must not take stopping it along, so "back" has its own key.
        Binding("b", "leave", "Back, keep running", id="sync.leave",
                tooltip="Back to the previous screen; the replay keeps running (the overview shows it)"),
        Binding("s", "sync_once", "Catch up", id="sync.once",
                tooltip="Replay the stream until caught up with every shard, then stop"),
        Binding("f", "sync_follow", "Follow", id="sync.follow",
                tooltip="Replay the stream and keep following it until Escape"),
        Binding("r", "switch_direction", "Direction", id="sync.direction",
                tooltip="Switch between forward (old → new) and reverse (new → old, the way back)"),
    ]

    def __init__(self, host: ConsoleHost) -> None:
        super().__init__()
        self.host = host
        self.run_info: Run | None = None
        self.loaded = False
        self.direction = "forward"  # which replay the screen shows and starts
        self.lag_history: deque[float] = deque(maxlen=LAG_SAMPLES)  # seconds, oldest first
        self._sampled_at: float | None = None  # the ledger measurement last added to the history

    @property
    def slot(self) -> RunSlot:
        """This console's replay (running, its newest progress, how the last one ended)."""
        return self.host.slot(STREAM_SYNC)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="stream-sync", classes="box") as box:
            box.border_title = "Stream sync: the old table's stream → the new table"
            yield Static(_direction_text(self.direction), id="sync-direction")
            yield Static("reading the workspace…", id="sync-state")
            yield Static("", id="sync-report")
            # Below the status (a direction switch goes above it): how far behind, and what waits.
            yield Static("", id="sync-lag")
            yield Sparkline([], summary_function=max, id="sync-lag-spark")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._refresh_idle)

    def on_screen_resume(self) -> None:
        self.reload()

    @on(RunsChanged)  # another console's sync moved: show it now, not at the next tick
    def _refresh_idle(self) -> None:
        if not self.slot.running and self.is_current:
            self.reload()

    def reload(self) -> None:
        """Re-read the latest stream-sync run (in a thread)."""
        context = self.host.context

        direction = self.direction

        def load() -> None:
            run = latest_stream_sync(context.workspace, direction)
            if not get_current_worker().is_cancelled:
                self.post_message(SyncInfo(run))

        self.host.run_blocking(load, group="sync-info", description="read the latest stream sync")

    @on(SyncInfo)
    def _info(self, message: SyncInfo) -> None:
        self.run_info, self.loaded = message.run, True
        self._show_state()

    @on(RunStarted)
    @on(RunProgressed)
    @on(RunFinished)
    def _news(self, message: RunStarted | RunProgressed | RunFinished) -> None:
        if message.kind != STREAM_SYNC:
            return
        self._show_state()
        if not isinstance(message, RunProgressed):
            self.refresh_bindings()
            self.reload()

    def _show_state(self) -> None:
        slot = self.slot
        state = self.query_one("#sync-state", Static)
        report = self.query_one("#sync-report", Static)
        live: SyncProgress | None = slot.progress
        if slot.running:
            if live is None:
                state.update(Text("◐ starting…", style="yellow"))
                return
            lag = "catching up" if live.caught_up_at is None else f"caught up {time.time() - live.caught_up_at:.0f} s ago"
            how = "following" if slot.options.get("follow") else "replaying"
            state.update(Text(f"◐ {how} — {lag} — b leaves it running · Escape stops it (checkpoint kept)", style="yellow"))
            report.update(_counts(live.records, live.puts, live.deletes, live.skipped, live.shards,
                                  live.shards_done, live.restarts, live.retries, live.throttles))
            self._show_lag(live.lag_seconds, live.iterator_age_seconds, live.unmapped, live.held_applied)
            return
        if slot.outcome == "failed":
            state.update(Text(f"✘ failed: {slot.error}", style="red"))
        elif slot.outcome == "refused":
            state.update(Text(f"✘ not started: {slot.error}", style="red"))
        elif not self.loaded:
            state.update(Text("reading the workspace…", style="dim"))
        elif self.run_info is None and self.direction == "reverse":
            state.update(Text("No reverse replay yet. After the cut-over, press s to replay the new table's "
                              "stream back into the old table (f keeps following it)."))
        elif self.run_info is None:
            state.update(Text("No replay yet. After the restore, press s to replay the old table's stream "
                              "from its trim horizon (f keeps following it)."))
        else:
            mark, style, label, _ = sync_mark(self.run_info)
            state.update(Text(f"{mark} latest run #{self.run_info.id}: {label}", style=style))
        if self.run_info is not None:
            report.update(_run_report(self.run_info))
            mark = watermark(self.run_info)
            self._show_lag(mark["lag_seconds"], mark["iterator_age_seconds"], mark["unmapped"],
                           self.run_info.totals.get("held_applied", 0),
                           # a sample per new measurement: a follower elsewhere, a run's last figure
                           sample=mark["measured_at"] != self._sampled_at)
            self._sampled_at = mark["measured_at"]

    def _show_lag(self, lag: float | None, age: float | None, unmapped: int, applied: int, *,
                  sample: bool = True) -> None:
        """The lag line and its sparkline (a sample per update while a replay runs)."""
        if sample and lag is not None:
            self.lag_history.append(float(lag))
        line = Text()
        line.append("lag ", style="bold")
        line.append("–" if lag is None else f"{lag:.0f} s", style="green" if lag == 0 else "yellow")
        line.append("   iterator age ", style="bold")
        line.append("–" if age is None else f"{age:.0f} s")
        line.append("   held ", style="bold")
        line.append(f"{unmapped:,} record(s) waiting", style="magenta" if unmapped else "dim")
        if unmapped:
            # A replay applies held records whose cases are decided when it starts (not mid-follow:
            # the keymap it applies is fixed for the run), so say how to get them applied.
            line.append(" (decide their unmapped cases with c; decided ones apply when the replay starts"
                        " again: Escape, then f)", style="dim")
        line.append(f"   {applied:,} held applied", style="dim")
        self.query_one("#sync-lag", Static).update(line)
        self.query_one("#sync-lag-spark", Sparkline).data = list(self.lag_history)

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        host = self.host
        if action in host.MUTATING_ACTIONS and host.read_only:
            return None
        if action in ("sync_once", "sync_follow", "switch_direction"):
            return None if self.slot.running else True
        return True

    def action_back_or_stop(self) -> None:
        """Stop this console's replay (only it), or go back when none runs."""
        if self.host.cancel_run(STREAM_SYNC):
            self.query_one("#sync-state", Static).update(Text("stopping…", style="yellow"))
        else:
            self.dismiss()

    def action_leave(self) -> None:
        """Go back; a running replay keeps running (Escape is the one that stops it)."""
        self.dismiss()

    def action_sync_once(self) -> None:
        """Replay until caught up, then stop."""
        if self.check_action("sync_once", ()) is True:
            self.host.start_run(STREAM_SYNC, follow=False, direction=self.direction)

    def action_sync_follow(self) -> None:
        """Replay and keep following until Escape."""
        if self.check_action("sync_follow", ()) is True:
            self.host.start_run(STREAM_SYNC, follow=True, direction=self.direction)

    def action_switch_direction(self) -> None:
        """Show (and start) the other direction: forward ⇄ reverse."""
        if self.check_action("switch_direction", ()) is not True:
            return
        self.direction = "reverse" if self.direction == "forward" else "forward"
        box = self.query_one("#stream-sync", Vertical)
        box.border_title = ("Reverse sync: the new table's stream → the old table" if self.direction == "reverse"
                            else "Stream sync: the old table's stream → the new table")
        self.query_one("#sync-direction", Static).update(_direction_text(self.direction))
        self.run_info, self.loaded = None, False
        self._show_state()
        self.reload()


# -- rendering -----------------------------------------------------------------------------------
def _direction_text(direction: str) -> Text:
    if direction == "reverse":
        return Text("direction: reverse — new table → old table, for a flip back (r: forward)", style="bold magenta")
    return Text("direction: forward — old table → new table (r: reverse)", style="bold")


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
                   c.get("shard_count", len(shards)), c.get("shards_done", sum(1 for s in shards.values() if s["done"])),
                   c.get("restarts", 0), c.get("retries", 0), c.get("throttles", 0))
    params = run.params
    grid.add_row("run", Text(f"#{run.id} · {params.get('origin', '?')} · keymap {run.keymap} · "
                             f"{'follow' if params.get('follow') else 'once'} · by {run.operator}"))
    grid.add_row("when", Text(f"{run.started_at} → {run.finished_at or '…'}"))
    grid.add_row("stream", visible_text(params.get("stream_arn", "?")))
    for warning in c.get("warnings", []):
        grid.add_row("warning", Text(warning, style="yellow"))
    return grid
