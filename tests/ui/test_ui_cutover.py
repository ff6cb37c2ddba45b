"""Step 6 in the console: the cut-over screen against the moto server (Pilot).

The flag, the gates as a checklist that refreshes, routers written into the control table, the
flip dialog (the target table's name typed), approval of another operator's request, read-only.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual.widgets import Button, Checkbox, Input

from keyshift.console.context import Context
from keyshift.core.aws import AwsContext
from keyshift.core.cutover import flag as core_flag
from keyshift.core.cutover.approvals import file_request
from keyshift.core.store.workspace import Workspace
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.cutover_screen import CutoverScreen, FlipDialog
from ui_support import SIZE, make, settle, text_of, wait_until

CONTROL, FLAG, OLD, NEW = "ui-control", "ui-cutover", "Orders", "Orders-v2"
SPEC = (f'[source]\ntable = "{OLD}"\npartition_key = "customer"\nsort_key = "order"\n\n'
        f'[target]\ntable = "{NEW}"\n\n[control]\ntable = "{CONTROL}"\nflag = "{FLAG}"\n')


def _context(tmp: Path, endpoint: str, *, operator: str = "alice", read_only: bool = False, extra: str = "") -> Context:
    (tmp / "keyshift.toml").write_text(SPEC + extra, encoding="utf-8")
    if not (tmp / "ws").exists():
        Workspace(tmp / "ws").close()
    return Context(spec_path=tmp / "keyshift.toml", workspace_path=tmp / "ws", read_only=read_only,
                   operator=operator, aws=AwsContext(endpoint_url=endpoint, region="us-east-1"))


def shown(screen, selector: str) -> str:
    return text_of(screen.query_one(selector).content)


async def _open(pilot) -> CutoverScreen:
    await settle(pilot)
    await pilot.press("6")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, CutoverScreen))
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.info is not None, timeout=15)
    return screen


async def test_init_then_the_checklist(tmp_path, aws_env):
    context = _context(tmp_path, aws_env["AWS_ENDPOINT_URL"])
    app = make(context)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot)
        assert f"control table {CONTROL} does not exist: keyshift flag init" in shown(screen, "#cut-flag")
        await pilot.press("i")
        await wait_until(pilot, lambda: "version 0" in shown(screen, "#cut-flag"), timeout=15)
        assert "created (state old, version 0)" in shown(screen, "#cut-outcome")
        gates = shown(screen, "#cut-gates")
        assert "before a flip to new" in gates and "✘ verify: no verify run" in gates
        assert "✘ forward-sync" in gates and "✘ reverse-ready" in gates
        assert "no router has reported yet" in shown(screen, "#cut-routers")
        assert "no flip yet" in shown(screen, "#cut-history")


async def test_flip_through_the_dialog_and_routers(tmp_path, aws_env):
    context = _context(tmp_path, aws_env["AWS_ENDPOINT_URL"])
    core_flag.init_flag(context.workspace, context.spec, context.aws.client("dynamodb"), operator="alice")
    app = make(context)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, FlipDialog))
        dialog = app.screen
        assert dialog.to_state == "new"
        dialog.query_one("#flip-reason", Input).value = "go live"
        dialog.query_one("#flip-table", Input).value = OLD  # the wrong table: the button stays disabled
        await pilot.pause()
        assert dialog.query_one("#flip-yes", Button).disabled
        dialog.query_one("#flip-table", Input).value = NEW
        await pilot.pause()
        assert not dialog.query_one("#flip-yes", Button).disabled
        # Without --force the failing gates refuse: nothing changes, the screen says why.
        dialog.query_one("#flip-yes", Button).press()
        await wait_until(pilot, lambda: "gate(s) failed" in shown(screen, "#cut-outcome"), timeout=15)
        assert "version 0" in shown(screen, "#cut-flag")
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, FlipDialog))
        dialog = app.screen
        dialog.query_one("#flip-reason", Input).value = "incident: go now"
        dialog.query_one("#flip-force", Checkbox).value = True
        dialog.query_one("#flip-table", Input).value = NEW
        await pilot.pause()
        dialog.query_one("#flip-yes", Button).press()
        await wait_until(pilot, lambda: "flipped to new (version 1) FORCED" in shown(screen, "#cut-outcome"),
                         timeout=15)
        await wait_until(pilot, lambda: "version 1" in shown(screen, "#cut-flag"), timeout=15)
        history = shown(screen, "#cut-history")
        assert "old → new" in history and "FORCED" in history and "alice" in history
        assert "before a flip to old" in shown(screen, "#cut-gates")  # the way back is what is checked now

        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ddb = context.aws.client("dynamodb")
        for instance, version in (("i-1", 1), ("i-2", 0)):
            ddb.put_item(TableName=CONTROL, Item={
                "pk": {"S": f"flag#{FLAG}"}, "sk": {"S": f"router#billing#{instance}"}, "service": {"S": "billing"},
                "instance": {"S": instance}, "version": {"N": str(version)}, "state": {"S": "new"},
                "last_seen": {"S": stamp}})
        await wait_until(pilot, lambda: "straggler" in shown(screen, "#cut-routers"), timeout=15)  # the refresh
        routers = shown(screen, "#cut-routers")
        assert "✔ acknowledged" in routers and "stragglers billing/i-2" in routers


async def test_approve_another_operators_request(tmp_path, aws_env):
    context = _context(tmp_path, aws_env["AWS_ENDPOINT_URL"], extra="require_approval = true\n")
    ddb = context.aws.client("dynamodb")
    core_flag.init_flag(context.workspace, context.spec, ddb, operator="bob")
    current = core_flag.read_flag(ddb, CONTROL, FLAG)
    request = file_request(context.workspace, ddb, context.spec, current, to_state="shadow",
                           reason="bob wants shadow", operator="bob", force=True, accept_loss=False, gates=[])
    app = make(context)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot)
        assert request.id in shown(screen, "#cut-requests")
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        app.screen.query_one("#confirm-text", Input).value = NEW
        await pilot.pause()
        app.screen.query_one("#confirm-yes", Button).press()
        await wait_until(pilot, lambda: f"request {request.id} approved: flipped to shadow (version 1)"
                         in shown(screen, "#cut-outcome"), timeout=15)
    state = core_flag.read_flag(ddb, CONTROL, FLAG)
    assert (state.state, state.version, state.updated_by) == ("shadow", 1, "alice")


async def test_read_only_shows_but_does_not_flip(tmp_path, aws_env):
    writable = _context(tmp_path, aws_env["AWS_ENDPOINT_URL"])
    core_flag.init_flag(writable.workspace, writable.spec, writable.aws.client("dynamodb"), operator="alice")
    context = _context(tmp_path, aws_env["AWS_ENDPOINT_URL"], read_only=True)
    app = make(context)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot)
        await wait_until(pilot, lambda: "version 0" in shown(screen, "#cut-flag"), timeout=15)
        assert screen.check_action("flag_flip", ()) is None and screen.check_action("flag_init", ()) is None
        await pilot.press("f")
        await pilot.pause()
        assert app.screen is screen  # no dialog
    assert core_flag.read_flag(writable.aws.client("dynamodb"), CONTROL, FLAG).version == 0


async def test_a_flip_that_cannot_run_says_why_and_leaves_the_screen_usable(tmp_path, aws_env):
    context = _context(tmp_path, aws_env["AWS_ENDPOINT_URL"])
    ddb = context.aws.client("dynamodb")
    core_flag.init_flag(context.workspace, context.spec, ddb, operator="alice")
    app = make(context)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot)
        await wait_until(pilot, lambda: "version 0" in shown(screen, "#cut-flag"), timeout=15)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, FlipDialog))
        dialog = app.screen
        dialog.query_one("#flip-reason", Input).value = "go"
        dialog.query_one("#flip-force", Checkbox).value = True
        dialog.query_one("#flip-table", Input).value = NEW
        await pilot.pause()
        ddb.delete_table(TableName=CONTROL)  # someone removed the control table meanwhile
        dialog.query_one("#flip-yes", Button).press()
        await wait_until(pilot, lambda: f"control table {CONTROL} does not exist" in shown(screen, "#cut-outcome"),
                         timeout=15)
        assert screen.busy is False and app.screen is screen  # no error modal, nothing stuck
        await wait_until(pilot, lambda: "does not exist" in shown(screen, "#cut-flag"), timeout=15)
