"""The verify screen: diff the new table against transform(old table), read the report, open offenders.

:func:`prepare_verify` runs in the App's ``verify`` run worker (``host.start_run("verify")``,
:mod:`.runs`): it makes the same checks as ``keyshift verify`` and hands
:func:`keyshift.core.migrate.verify.run.run_verify` to the run's driver; the App keeps the run's
progress and outcome in its ``verify`` slot and forwards the run's messages to every screen.
When idle the screen shows the latest stored report (:func:`latest_verify`): the counts and the first offenders
of each kind in a table. Enter on an offender reads both sides in a thread (:func:`fetch_offender`):
the expected item, transform(old item) through the current keymap, and the actual new item, side
by side with the differing attributes marked.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import get_current_worker

from keyshift.core.text.plural import count
from keyshift.core.text.escape import visible
from keyshift.core.resolve.keymap_build import build_keymap
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.migrate.verify.run import (
    MAX_OFFENDERS,
    VerifyError,
    VerifyProgress,
    diff_attributes,
    latest_verify,
    run_verify,
)

from keyshift.core.migrate.preflight import verify_preflight
from keyshift.core.store.runs import Run

from .host import ConsoleHost, HostContext
from .news import RunsChanged
from .runs import VERIFY, Launch, RunFinished, RunProgressed, RunRequest, RunSlot, RunStarted
from .widgets import ProgressPanel, visible_text

__all__ = [
    "Offender",
    "VerifyScreen",
    "prepare_verify",
    "fetch_offender",
    "report_of",
    "verify_mark",
]

#: Parallel scan segments of a verify started here (the CLI's default).
SEGMENTS = 4
_KIND_STYLES = {"missing": "red", "extra": "magenta", "different": "yellow"}
_HINT = Text("Enter on an offender reads both items now: the expected one, transform(old item) through "
             "the keymap, and the new table's, side by side with the differing attributes marked.",
             style="dim")


@dataclass
class VerifyInfo(Message, bubble=False):
    """The latest verify run (its report when complete), read in a thread."""

    report: dict[str, Any] | None


@dataclass(frozen=True)
class Offender:
    """One row of the offender table: ``key`` is the new table's key as the report stores it."""

    kind: str
    key: dict[str, Any]
    attributes: tuple[str, ...] = ()
    source_key: dict[str, Any] | None = None


@dataclass
class OffenderLoaded(Message, bubble=False):
    """Both sides of an offender, read now: ``expected`` is transform(old item), ``actual`` the new item."""

    offender: Offender
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None
    attributes: list[str]
    keys: tuple[str, ...] = ()  # the new table's key attributes (listed first)
    note: str = ""


def report_of(run: Run | None) -> dict[str, Any] | None:
    """What the screens show of a verify run: its report once complete, else its state."""
    if run is None:
        return None
    if run.state == "complete" and run.summary:
        return dict(run.summary)
    state = run.state if run.finished or run.alive() else "not responding"
    return {"run_id": run.id, "state": state, "keymap": run.keymap, "started_at": run.started_at,
            "finished_at": run.finished_at}


def verify_mark(report: dict[str, Any] | None) -> tuple[str, str, str]:
    """(mark, style, label) of the latest verify, for the overview's step 5 and this screen."""
    if report is None:
        return "○", "dim", "not started"
    state = report.get("state", "complete")
    if state == "complete":
        if report.get("equal"):
            return "✔", "green", "equal"
        n = sum(report.get(k, 0) for k in ("missing", "extra", "different"))
        return "✘", "red", f"{n:,} difference{'s' if n != 1 else ''}"
    if state == "running":
        return "◐", "yellow", "running"
    if state == "cancelled":
        return "✘", "yellow", "cancelled — resumable"
    return "✘", "red", f"{state} — resumable"


# -- the run -------------------------------------------------------------------------------------
def prepare_verify(request: RunRequest) -> Launch:
    """The same checks as ``keyshift verify``, in the worker thread; the :class:`Launch` that scans
    both tables (nothing to confirm: a verify writes nothing to AWS). Options: ``resume``.

    A read-only console verifies too, but records nothing (``record=False``, as ``keyshift
    --read-only verify`` does): the report lives in the run's summary (``recorded`` False) only."""
    context, resume = request.context, bool(request.options.get("resume"))
    record = not context.read_only
    if record:
        context.require_writable("verify")
    elif resume:
        raise VerifyError("a read-only verify records nothing, so there is no run of its to resume",
                          title="Verify not started")
    ws, spec, ddb = context.workspace, context.spec, context.aws.client("dynamodb")
    pre = verify_preflight(ws, spec, ddb, resume=resume)
    if pre.blockers:
        raise VerifyError("; ".join(b.message for b in pre.blockers), title="Verify not started")
    gen = run_verify(ws, spec, ddb, segments=SEGMENTS, resume=resume, operator=context.operator,
                     cancel=request.cancel, keymap=pre.build.keymap if pre.build is not None else None,
                     record=record)
    return Launch(gen, details={"recorded": record},
                  snapshot=lambda p: dataclasses.replace(p, segments=dict(p.segments)),
                  result=lambda report: ("complete", report.summary))


def _wire_key(key: dict[str, Any]) -> dict[str, Any]:
    """A report's key (binary values in base64) in wire format."""
    return {k: ({"B": base64.b64decode(v["B"])} if isinstance(v, dict) and "B" in v else v)
            for k, v in key.items()}


def fetch_offender(context: HostContext, offender: Offender, report_keymap: str | None) -> OffenderLoaded:
    """Read both sides of ``offender`` now (consistent reads): the new item and transform(old item).

    The old item is the report's source key when it has one, else every raw identifier that could
    produce the key (the legacy attribute, the keymap's reverse index). The keymap is built as
    verify builds it (open cases' items skipped).
    """
    spec, ws = context.spec, context.workspace
    ddb = context.aws.client("dynamodb")
    names = KeyNames.from_spec(spec)
    keymap = build_keymap(ws, allow_unresolved=True).keymap
    key = _wire_key(offender.key)

    def get(table: str, item_key: dict[str, Any]) -> dict[str, Any] | None:
        return ddb.get_item(TableName=table, Key=item_key, ConsistentRead=True).get("Item")

    actual = get(spec.target.table, key)
    raws: list[str] = []
    if offender.source_key is not None:
        raw = offender.source_key.get(names.source_pk, {}).get("S")
        raws += [raw] if isinstance(raw, str) else []
    if names.legacy and actual is not None and isinstance(actual.get(names.legacy), dict):
        raw = actual[names.legacy].get("S")
        raws += [raw] if isinstance(raw, str) and raw not in raws else []
    new_id = key.get(names.target_pk, {}).get("S")
    if isinstance(new_id, str):
        raws += [r for r in keymap.raws_for(new_id) if r not in raws]
    expected = None
    for raw in raws:
        old_key = {names.source_pk: {"S": raw}}
        if names.source_sk:
            old_key[names.source_sk] = key[names.source_sk]
        old = get(spec.source.table, old_key)
        out = transform(old, keymap, names) if old is not None else None
        if type(out) is Put and all(out.item.get(k) == v for k, v in key.items()):
            expected = out.item
            break
    notes = []
    if report_keymap and report_keymap != keymap.version:
        notes.append(f"the keymap changed since this report ({report_keymap} → {keymap.version})")
    if expected is not None and actual is not None and not diff_attributes(expected, actual):
        notes.append("both sides are equal now (fixed since the report)")
    attributes = diff_attributes(expected or {}, actual or {}) if expected and actual else []
    keys = (names.target_pk, *([names.source_sk] if names.source_sk else []))
    return OffenderLoaded(offender, expected, actual, attributes, keys, "; ".join(notes))


# -- the screen ----------------------------------------------------------------------------------
class VerifyScreen(Screen[None]):
    """Step 5: run a verify, read its report, look at the offenders."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back_or_cancel", "Back / cancel", id="verify.cancel",
                tooltip="Cancel this console's running verify (resumable with r), or go back"),
        Binding("s", "verify_start", "Verify", id="verify.start",
                tooltip="Scan both tables and diff every item (recorded in the workspace; read-only: not recorded)"),
        Binding("r", "verify_resume", "Resume run", id="verify.resume",
                tooltip="Continue the interrupted verify run from its checkpoints"),
    ]

    def __init__(self, host: ConsoleHost) -> None:
        super().__init__()
        self.host = host
        self.report: dict[str, Any] | None = None
        self.offenders: list[Offender] = []
        self.loaded = False

    @property
    def slot(self) -> RunSlot:
        """This console's verify (running, its newest progress, how the last one ended)."""
        return self.host.slot(VERIFY)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="verify"):
            with Vertical(id="verify-run", classes="box") as box:
                box.border_title = "Verify: new table = transform(old table)?"
                yield Static("reading the workspace…", id="verify-state")
                yield ProgressPanel("items", id="verify-progress")
                yield Static("", id="verify-report")
            table: DataTable[Any] = DataTable(id="offenders", cursor_type="row", zebra_stripes=True)
            table.border_title = "Offenders (Enter shows both items)"
            yield table
            with Horizontal(id="offender-detail"):
                with VerticalScroll(id="offender-expected", classes="side") as expected:
                    expected.border_title = "expected: transform(old item)"
                    yield Static(_HINT, id="expected-item")
                with VerticalScroll(id="offender-actual", classes="side") as actual:
                    actual.border_title = "actual: new table"
                    yield Static("", id="actual-item")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#offenders", DataTable)
        table.add_column("kind", width=9)
        table.add_column("key", width=60)
        table.add_column("attributes")
        table.focus()

    @on(RunsChanged)
    def _elsewhere(self) -> None:
        """Another console's verify started or ended: show its run (this console's own arrive as news)."""
        if self.is_current and not self.slot.running:
            self.reload()

    def on_screen_resume(self) -> None:
        self.reload()
        self._render_live()

    def reload(self) -> None:
        """Re-read the latest verify run (in a thread)."""
        context = self.host.context

        def load() -> None:
            report = report_of(latest_verify(context.workspace))
            if not get_current_worker().is_cancelled:
                self.post_message(VerifyInfo(report))

        self.host.run_blocking(load, group="verify-info", description="read the latest verify")

    @property
    def unrecorded(self) -> dict[str, Any] | None:
        """This console's last verify when it was not recorded (read-only): the ledger lacks it."""
        summary = self.slot.summary
        return summary if summary is not None and summary.get("recorded") is False else None

    @on(VerifyInfo)
    def _info(self, message: VerifyInfo) -> None:
        report = self.unrecorded or message.report  # a read-only run is newer than the ledger's
        self.report, self.loaded = report, True
        self.query_one("#verify-report", Static).update(_report(report))
        self._fill(report)
        self._render_live()
        self.refresh_bindings()

    def _fill(self, report: dict[str, Any] | None) -> None:
        offenders: list[Offender] = []
        found = (report or {}).get("offenders") or {}
        offenders += [Offender("missing", key) for key in found.get("missing", [])]
        offenders += [Offender("extra", key) for key in found.get("extra", [])]
        offenders += [Offender("different", d["key"], tuple(d.get("attributes", [])), d.get("source_key"))
                      for d in found.get("different", [])]
        if offenders == self.offenders and self.query_one("#offenders", DataTable).row_count == len(offenders):
            return
        self.offenders = offenders
        table = self.query_one("#offenders", DataTable)
        table.clear()
        table.add_rows((Text(o.kind, style=_KIND_STYLES[o.kind]), key_text(o.key),
                        Text(visible(", ".join(o.attributes)))) for o in offenders)
        self.query_one("#expected-item", Static).update(_HINT if offenders else "")
        self.query_one("#actual-item", Static).update("")

    # -- live state ------------------------------------------------------------------------------
    @on(RunStarted)
    @on(RunProgressed)
    @on(RunFinished)
    def _news(self, message: RunStarted | RunProgressed | RunFinished) -> None:
        if message.kind != VERIFY:
            return
        self._render_live()
        if not isinstance(message, RunProgressed):
            self.refresh_bindings()
            self.reload()

    def _render_live(self) -> None:
        slot = self.slot
        live: VerifyProgress | None = slot.progress
        panel = self.query_one(ProgressPanel)
        panel.display = slot.running or live is not None
        if live is not None:
            panel.show(phase=f"scanning {live.phase} table" if slot.running else live.phase,
                       done=live.done, fraction=live.fraction, rate=live.rate, eta=live.eta)
        state = self.query_one("#verify-state", Static)
        if slot.running:
            text = Text("◐ running (not recorded: read-only) — Escape cancels" if self.host.read_only
                        else "◐ running — Escape cancels (resumable)", style="yellow")
            if live is not None:
                text.append(f"   so far: missing {live.missing:,} · extra {live.extra:,} · "
                            f"different {live.different:,}", style="bold" if live.missing or live.extra
                            or live.different else "")
            state.update(text)
            return
        if slot.outcome == "cancelled":
            panel.finish("cancelled")
            state.update(Text("✘ cancelled — resumable (r continues it)", style="yellow"))
        elif slot.outcome == "failed":
            panel.finish("failed")
            state.update(Text(f"✘ failed: {slot.error} — r resumes once fixed", style="red"))
        elif slot.outcome == "refused":
            state.update(Text(f"✘ not started: {visible(slot.error)}", style="red"))
        elif not self.loaded:
            state.update(Text("reading the workspace…", style="dim"))
        elif self.report is None:
            state.update(Text("No verify yet. Press s to scan both tables and diff every item through "
                              "the keymap (nothing in AWS is written)."))
        else:
            if slot.outcome == "complete":
                panel.finish("complete")
            mark, style, label = verify_mark(self.report)
            if self.report.get("recorded") is False:
                state.update(Text(f"{mark} this console's verify: {label} (not recorded: read-only)", style=style))
            else:
                state.update(Text(f"{mark} latest run #{self.report['run_id']}: {label}", style=style))

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        host = self.host
        if action in host.MUTATING_ACTIONS and host.read_only:
            return None
        running = self.slot.running
        if action == "verify_start":
            return None if running else True
        if action == "verify_resume":
            resumable = self.report is not None and self.report.get("state", "complete") != "complete"
            return True if resumable and not running else None
        return True

    def action_back_or_cancel(self) -> None:
        """Cancel this console's running verify (only it), or go back when none runs."""
        if self.host.cancel_run(VERIFY):
            self.query_one("#verify-state", Static).update(Text("cancelling…", style="yellow"))
        else:
            self.dismiss()

    def action_verify_start(self) -> None:
        """Start a new verify run."""
        if self.check_action("verify_start", ()) is True:
            self.host.start_run(VERIFY, resume=False)

    def action_verify_resume(self) -> None:
        """Continue the interrupted verify run."""
        if self.check_action("verify_resume", ()) is True:
            self.host.start_run(VERIFY, resume=True)

    @on(DataTable.RowSelected, "#offenders")
    def _selected(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.offenders):
            self.show_offender(self.offenders[event.cursor_row])

    def show_offender(self, offender: Offender) -> None:
        """Read both sides of ``offender`` (in a thread) and show them side by side."""
        context = self.host.context
        keymap = (self.report or {}).get("keymap")
        self.query_one("#expected-item", Static).update(Text("reading…", style="dim"))
        self.query_one("#actual-item", Static).update(Text("reading…", style="dim"))

        def load() -> None:
            loaded = fetch_offender(context, offender, keymap)
            if not get_current_worker().is_cancelled:
                self.post_message(loaded)

        self.host.run_blocking(load, group="verify-offender", description="read an offender's items")

    @on(OffenderLoaded)
    def _offender_loaded(self, message: OffenderLoaded) -> None:
        marked = set(message.attributes) | set(message.offender.attributes)
        keys = set(message.keys)
        expected = _item(message.expected, marked, keys, "no old item transforms to this key (read now)")
        actual = _item(message.actual, marked, keys, "absent from the new table (read now)")
        head = Text(f"{message.offender.kind}  ", style=f"bold {_KIND_STYLES[message.offender.kind]}")
        head.append_text(key_text(message.offender.key))
        if message.attributes:
            head.append(f"\ndiffer: {visible(', '.join(message.attributes))}", style="yellow")
        if message.note:
            head.append(f"\n{message.note}", style="dim")
        self.query_one("#expected-item", Static).update(_stack(head, expected))
        self.query_one("#actual-item", Static).update(_stack(Text("\n" * head.plain.count("\n")), actual))


# -- rendering -----------------------------------------------------------------------------------
def key_text(key: dict[str, Any]) -> Text:
    """``customer=Acme⟨ZWSP⟩  order=1``: a key's attributes and values, invisible characters marked."""
    text = Text()
    for n, (name, value) in enumerate(sorted(key.items())):
        if n:
            text.append("  ")
        text.append(f"{name}=", style="dim")
        inner = next(iter(value.values())) if isinstance(value, dict) and len(value) == 1 else value
        text.append_text(visible_text(inner if isinstance(inner, str) else json.dumps(inner)))
    return text


def _value(value: Any) -> str:
    def b64(raw: Any) -> str:
        return base64.b64encode(raw).decode() if isinstance(raw, (bytes, bytearray)) else str(raw)

    return visible(json.dumps(value, ensure_ascii=False, sort_keys=True, default=b64))


def _item(item: dict[str, Any] | None, marked: set[str], keys: set[str], absent: str) -> Table | Text:
    if item is None:
        return Text(absent, style="bold red")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for name in sorted(item.keys() | marked, key=lambda n: (n not in keys, n)):
        style = "bold red" if name in marked else ("bold" if name in keys else "")
        value = Text(_value(item[name]), style="red" if name in marked else "") if name in item \
            else Text("(absent)", style="dim red")
        grid.add_row(Text(("≠ " if name in marked else "  ") + visible(name), style=style), value)
    return grid


def _stack(head: Text, body: Table | Text) -> Table:
    grid = Table.grid()
    grid.add_column()
    grid.add_row(head)
    grid.add_row(Text(""))
    grid.add_row(body)
    return grid


def _report(report: dict[str, Any] | None) -> Table | Text:
    if report is None:
        return Text("")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    mark, style, label = verify_mark(report)
    if report.get("state", "complete") != "complete":
        grid.add_row("run", Text(f"#{report['run_id']} {label} (keymap {report.get('keymap')},"
                                 f" started {report.get('started_at')})", style=style))
        return grid
    scope = f"sample of {report['sample']:,}" if report.get("sample") else "full"
    grid.add_row("verdict", Text(f"{mark} {label}", style=f"bold {style}"))
    run = "not recorded (read-only)" if report.get("run_id") is None else f"#{report['run_id']}"
    grid.add_row("run", Text(f"{run} · {scope} · keymap {report['keymap']} · "
                             f"{count(int(report['segments']), 'segment')} · {report['seconds']:.1f} s · "
                             f"{report['source_table']} → {report['target_table']}"))
    grid.add_row("when", Text(f"{report['started_at']} → {report['finished_at']}"))
    skipped = report.get("skipped") or {}
    counts = Text(f"compared {report['compared']:,}   ")
    for kind in ("missing", "extra", "different"):
        n = report[kind]
        shown = "not checked (sample)" if kind == "extra" and not report.get("extra_checked") else f"{n:,}"
        counts.append(f"{kind} {shown}", style=_KIND_STYLES[kind] if n else "")
        counts.append("   ")
    counts.append(f"not expected {sum(skipped.values()):,}", style="dim")
    grid.add_row("items", counts)
    if skipped:
        grid.add_row("skipped", Text(", ".join(f"{n:,} {kind}" for kind, n in skipped.items()), style="dim"))
    if report.get("live"):
        unsettled = report.get("unsettled", 0)
        grid.add_row("live", Text(f"{report.get('cleared_by_sync', 0):,} cleared once stream sync caught up · "
                                  f"{unsettled:,} unsettled (sync never caught up past them)",
                                  style="yellow" if unsettled else "dim"))
    listed = sum(len(v) for v in (report.get("offenders") or {}).values())
    total = report["missing"] + report["extra"] + report["different"]
    if total > listed:
        grid.add_row("listed", Text(f"the first {MAX_OFFENDERS} of each kind: {listed:,} of {total:,}",
                                    style="dim"))
    return grid
