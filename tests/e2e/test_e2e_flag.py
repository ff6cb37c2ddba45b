"""The cut-over flag against the moto server: ``keyshift flag …`` as an operator runs it.

- init creates the control table and the flag once (a second init leaves it as it is);
- gates refuse a flip (exit 1, audited, not in the history) and ``--force --reason`` flips,
  marked forced in the history and the audit log;
- two flips racing on one version: exactly one wins, the other is told who won and at which
  version (threads meeting at a barrier after both read version 0, and two processes);
- the two-person rule: a request, the same operator refused, another executes it, expiry;
- the history lists every change with its gates; status shows routers written directly into
  the control table (acknowledged, stale, stragglers, cut over) and shadow counters;
- both tables' stream positions are recorded at a flip and ``flag positions --out`` writes what
  ``stream-sync --reverse --from-positions`` reads;
- read-only mode: status and history work, flip/init/approve refuse; bad input is one line, exit 2;
- the runbook end to end: plan, restore, follow, verify, every gate passing without --force, reverse
  sync from the recorded positions carrying a write on the new table back, the flip back passing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from keyshift.core.aws import AwsContext
from keyshift.core.cutover.flag import FlipRefused, commit_flip, prepare_flip
from keyshift.core.migrate.stream.reverse import positions_from_file
from keyshift.core.spec import load_spec
from keyshift.core.store.workspace import Workspace


pytestmark = pytest.mark.e2e

CONTROL = "keyshift-control"
FLAG = "orders-cutover"


def _process_env(env: dict[str, str]) -> dict[str, str]:
    """A subprocess environment as the e2e fixtures build it (no inherited AWS or keyshift settings)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYSHIFT_"))}
    return {**base, **env, "COLUMNS": "400", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}


def _ws(world: Any, name: str = ".keyshift") -> Path:
    """A workspace (created empty: the flag needs its audit log and run ledger, not a plan)."""
    path = world.tmp / name
    Workspace(path).close()
    return path


def _spec(world: Any, extra: str) -> Path:
    """The demo spec with more [control] keys."""
    text = world.spec_path.read_text(encoding="utf-8").replace(f'flag = "{FLAG}"\n', f'flag = "{FLAG}"\n{extra}\n')
    path = world.tmp / "keyshift-extra.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _tables(ddb: Any, *names: str) -> None:
    for name in names:
        key = "customer" if name == "orders" else "customer_id"
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"},
                                               {"AttributeName": "order_id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": key, "KeyType": "HASH"},
                                    {"AttributeName": "order_id", "KeyType": "RANGE"}],
                         StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})


def _audit(path: Path) -> list[Any]:
    ws = Workspace(path, read_only=True, create=False)
    try:
        return ws.audit_log(1000)
    finally:
        ws.close()


def _flag_item(ddb: Any) -> dict[str, Any]:
    return ddb.get_item(TableName=CONTROL, Key={"pk": {"S": f"flag#{FLAG}"}, "sk": {"S": "state"}},
                        ConsistentRead=True)["Item"]


def test_init_is_idempotent(world: Any, boto_clients: Any) -> None:
    _ws(world)
    first = world.run("flag", "init", "--json").json()
    assert first["table_created"] and first["flag_created"]
    assert (first["state"], first["version"], first["old_table"], first["new_table"]) == ("old", 0, "orders", "orders_v2")
    desc = boto_clients.dynamodb.describe_table(TableName=CONTROL)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in desc["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    before = _flag_item(boto_clients.dynamodb)
    again = world.run("flag", "init")
    assert again.returncode == 0, again.stderr
    assert "exists, left as it is" in again.stdout and "control table keyshift-control exists" in again.stdout
    assert _flag_item(boto_clients.dynamodb) == before
    assert [e.action for e in _audit(world.workspace)] == ["flag.init"]  # the second init changed nothing
    copies = boto_clients.dynamodb.query(TableName=CONTROL, KeyConditionExpression="pk = :p AND begins_with(sk, :a)",
                                         ExpressionAttributeValues={":p": {"S": f"flag#{FLAG}"}, ":a": {"S": "audit#"}})
    assert [i["action"]["S"] for i in copies["Items"]] == ["flag.init"]


def test_status_before_init_is_one_line(world: Any) -> None:
    result = world.run("flag", "status")
    assert result.returncode == 2
    assert "control table keyshift-control does not exist: keyshift flag init" in result.message
    assert "Traceback" not in result.stderr


def test_gates_refuse_then_force(world: Any, boto_clients: Any) -> None:
    _ws(world)
    world.run("flag", "init")
    refused = world.run("flag", "flip", "--to", "new", "--reason", "go live", "--yes", "--json")
    assert refused.returncode == 1, refused.stderr
    doc = json.loads(refused.stdout)
    gates = {g["name"]: g for g in doc["gates"]}
    assert set(gates) == {"cases", "held", "verify", "forward-sync", "reverse-ready"}
    assert not gates["verify"]["ok"] and "no verify run" in gates["verify"]["detail"]
    assert not gates["forward-sync"]["ok"] and not gates["reverse-ready"]["ok"]
    assert doc["outcome"] == "refused" and "gate(s) failed" in refused.message
    assert world.run("flag", "history", "--json").json()["history"] == []
    assert world.run("flag", "status", "--json").json()["version"] == 0
    assert "flag.flip.refused" in [e.action for e in _audit(world.workspace)]

    printed = world.run("flag", "flip", "--to", "new", "--reason", "go live", "--yes")
    assert printed.returncode == 1 and "FAIL verify" in " ".join(printed.stderr.split())

    forced = world.run("flag", "flip", "--to", "new", "--reason", "incident 42: go now", "--yes", "--force", "--json",
                       global_args=("--operator", "alice"))
    out = forced.json()
    assert (out["outcome"], out["state"], out["version"], out["forced"]) == ("flipped", "new", 1, True)
    history = world.run("flag", "history", "--json").json()["history"]
    assert len(history) == 1
    h = history[0]
    assert (h["from"], h["to"], h["version"], h["operator"], h["forced"]) == ("old", "new", 1, "alice", True)
    assert h["reason"] == "incident 42: go now"
    assert {g["name"] for g in h["gates"] if not g["ok"]} >= {"verify", "forward-sync", "reverse-ready"}
    actions = [e.action for e in _audit(world.workspace)]
    assert "flag.flip" in actions and "flag.flip.forced" in actions
    status = world.run("flag", "status", "--json").json()
    assert (status["state"], status["version"], status["updated_by"], status["forced"]) == ("new", 1, "alice", True)


def test_flip_back_needs_reverse_sync_or_accept_loss(world: Any) -> None:
    _ws(world)
    world.run("flag", "init")
    assert world.run("flag", "flip", "--to", "new", "--reason", "r", "--yes", "--force", "--json").json()["version"] == 1
    back = world.run("flag", "flip", "--to", "old", "--reason", "rollback", "--yes", "--json")
    assert back.returncode == 1
    gates = json.loads(back.stdout)["gates"]
    assert [g["name"] for g in gates] == ["reverse-caught-up"] and not gates[0]["ok"]
    assert "no reverse sync run" in gates[0]["detail"] and gates[0]["remedy"] == "follow-reverse"
    accepted = world.run("flag", "flip", "--to", "old", "--reason", "rollback, loss accepted", "--yes",
                         "--accept-loss", "--json").json()
    assert (accepted["state"], accepted["version"], accepted["forced"]) == ("old", 2, False)
    assert accepted["history"]["accept_loss"] is True
    assert "loss ACCEPTED" in accepted["gates"][0]["detail"]
    same = world.run("flag", "flip", "--to", "old", "--reason", "again", "--yes")
    assert same.returncode == 1 and "already old" in same.message


def test_two_threads_racing_exactly_one_wins(world: Any, boto_clients: Any) -> None:
    """Both read version 0 (a barrier after prepare), both compare-and-set: one wins, the other is told who."""
    _ws(world)
    world.run("flag", "init")
    spec = load_spec(world.spec_path)
    barrier = threading.Barrier(2)
    outcomes: dict[str, Any] = {}

    def operator(name: str) -> None:
        ws = Workspace(world.tmp / f".ws-{name}")  # two operators, two machines: two workspaces
        aws = AwsContext(endpoint_url=boto_clients.endpoint_url)
        ddb, streams = aws.client("dynamodb"), aws.client("dynamodbstreams")
        plan = prepare_flip(ws, spec, ddb, streams, to_state="shadow")
        assert plan.current.version == 0
        barrier.wait(timeout=30)
        try:
            outcomes[name] = commit_flip(ws, ddb, streams, spec, plan, operator=name, reason=f"{name} flips",
                                         force=True)
        except FlipRefused as exc:
            outcomes[name] = exc
        finally:
            ws.close()

    threads = [threading.Thread(target=operator, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [n for n, o in outcomes.items() if not isinstance(o, FlipRefused)]
    losers = [n for n, o in outcomes.items() if isinstance(o, FlipRefused)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    loss = outcomes[losers[0]]
    assert loss.exit_code == 1
    assert f"flag {FLAG} moved to version 1 by {winners[0]} at" in loss.message and "nothing changed" in loss.message
    history = world.run("flag", "history", "--json").json()["history"]
    assert [(h["version"], h["operator"]) for h in history] == [(1, winners[0])]
    lost = [e for e in _audit(world.tmp / f".ws-{losers[0]}") if e.action == "flag.flip.lost"]
    assert len(lost) == 1 and lost[0].details["winner"]["updated_by"] == winners[0]


def test_two_processes_racing_exactly_one_wins(world: Any, spawn_cli: Any) -> None:
    _ws(world)
    world.run("flag", "init")
    procs = {name: spawn_cli(["--spec", str(world.spec_path), "--workspace", str(_ws(world, f".ws-{name}")),
                              "--operator", name, "flag", "flip", "--to", "shadow", "--reason", name, "--yes",
                              "--force"], world.env, world.tmp) for name in ("alice", "bob")}
    results = {n: (p.wait(60), " ".join(p.communicate()[1].decode().split())) for n, p in procs.items()}
    codes = sorted(code for code, _ in results.values())
    assert codes == [0, 1], results
    winner = next(n for n, (code, _) in results.items() if code == 0)
    loser_msg = next(msg for code, msg in results.values() if code == 1)
    # Either the compare-and-set failed, or the loser read the flag after the winner's flip: both name the winner.
    assert f"by {winner} at" in loser_msg and "version 1" in loser_msg and "nothing changed" in loser_msg
    assert "Traceback" not in loser_msg


def test_typed_table_name_confirms(world: Any) -> None:
    _ws(world)
    world.run("flag", "init")
    argv = [sys.executable, "-m", "keyshift.console.cli", "--spec", str(world.spec_path), "--workspace",
            str(world.workspace), "flag", "flip", "--to", "shadow", "--reason", "try", "--force"]
    wrong = subprocess.run(argv, input=b"orders\n", capture_output=True, env=_process_env(world.env), cwd=world.tmp,
                           timeout=60)
    assert wrong.returncode == 1 and b"cancelled" in wrong.stderr
    assert world.run("flag", "status", "--json").json()["version"] == 0
    right = subprocess.run(argv, input=b"orders_v2\n", capture_output=True, env=_process_env(world.env), cwd=world.tmp,
                           timeout=60)
    assert right.returncode == 0, right.stderr
    assert world.run("flag", "status", "--json").json()["state"] == "shadow"


def test_two_person_rule(world: Any) -> None:
    _ws(world)
    spec = _spec(world, "require_approval = true\napproval_ttl_minutes = 30")
    world.run("flag", "init", spec=spec)
    filed = world.run("flag", "flip", "--to", "shadow", "--reason", "start shadow reads", "--force", "--json",
                      spec=spec, global_args=("--operator", "alice")).json()
    assert filed["outcome"] == "requested"
    rid = filed["request"]["id"]
    assert world.run("flag", "status", "--json", spec=spec).json()["version"] == 0  # nothing flipped
    listed = world.run("flag", "requests", "--json", spec=spec).json()["requests"]
    assert [(r["id"], r["state"], r["requested_by"]) for r in listed] == [(rid, "pending", "alice")]

    same = world.run("flag", "approve", rid, "--yes", spec=spec, global_args=("--operator", "alice"))
    assert same.returncode == 1 and "another operator must approve it" in same.message
    assert world.run("flag", "status", "--json", spec=spec).json()["version"] == 0

    done = world.run("flag", "approve", rid, "--yes", "--json", spec=spec, global_args=("--operator", "bob")).json()
    assert (done["state"], done["version"], done["updated_by"], done["requested_by"]) == ("shadow", 1, "bob", "alice")
    history = world.run("flag", "history", "--json", spec=spec).json()["history"]
    assert [(h["version"], h["operator"], h["requested_by"]) for h in history] == [(1, "bob", "alice")]
    assert world.run("flag", "requests", "--json", spec=spec).json()["requests"][0]["state"] == "approved"
    twice = world.run("flag", "approve", rid, "--yes", spec=spec, global_args=("--operator", "carol"))
    assert twice.returncode == 1 and "approved, not pending" in twice.message
    actions = [e.action for e in _audit(world.workspace)]
    assert {"flag.request", "flag.approve", "flag.approve.refused"} <= set(actions)


def test_requests_expire(world: Any) -> None:
    _ws(world)
    spec = _spec(world, "require_approval = true\napproval_ttl_minutes = 0.002")  # 0.12 s
    world.run("flag", "init", spec=spec)
    filed = world.run("flag", "flip", "--to", "shadow", "--reason", "r", "--force", "--json", spec=spec,
                      global_args=("--operator", "alice")).json()
    time.sleep(0.3)
    late = world.run("flag", "approve", filed["request"]["id"], "--yes", spec=spec, global_args=("--operator", "bob"))
    assert late.returncode == 1 and "expired" in late.message
    assert world.run("flag", "requests", "--json", spec=spec).json()["requests"][0]["state"] == "expired"
    assert world.run("flag", "status", "--json", spec=spec).json()["version"] == 0


def test_history_lists_every_change_with_gates(world: Any, boto_clients: Any) -> None:
    _ws(world)
    world.run("flag", "init")
    steps = [("shadow", ("--force",)), ("new", ("--force",)), ("shadow", ("--accept-loss",)), ("old", ("--accept-loss",))]
    for to, extra in steps:
        world.run("flag", "flip", "--to", to, "--reason", f"to {to}", "--yes", *extra, "--json").json()
    history = world.run("flag", "history", "--json").json()["history"]
    assert [(h["version"], h["from"], h["to"]) for h in history] == [
        (1, "old", "shadow"), (2, "shadow", "new"), (3, "new", "shadow"), (4, "shadow", "old")]
    assert [h["forced"] for h in history] == [True, True, False, False]  # orders_v2 missing: new-table failed
    assert [[g["name"] for g in h["gates"]] for h in history] == [
        ["new-table"], ["cases", "held", "verify", "forward-sync", "reverse-ready"], ["reverse-caught-up"],
        ["reverse-caught-up"]]
    text = world.run("flag", "history")
    assert text.returncode == 0 and "v2" in text.stdout and "FORCED" in text.stdout and "ACCEPT-LOSS" in text.stdout
    # Every flag change is also in the control table, append-only, under the workspace chain's hash;
    # and the workspace chain is whole.
    copies = boto_clients.dynamodb.query(
        TableName=CONTROL, KeyConditionExpression="pk = :p AND begins_with(sk, :a)",
        ExpressionAttributeValues={":p": {"S": f"flag#{FLAG}"}, ":a": {"S": "audit#"}})["Items"]
    chain = {e.id: e for e in _audit(world.workspace)}
    assert len(copies) == 5  # init and four flips (forced flips add a flag.flip.forced entry, workspace only)
    for item in copies:
        entry = chain[int(item["entry_id"]["N"])]
        assert item["hash"]["S"] == entry.hash and item["action"]["S"] == entry.action
        assert item["sk"]["S"].startswith(f"audit#{entry.id:012d}#{entry.hash[:16]}")
    verified = world.run("audit", "--verify", "--json").json()
    assert verified["chain_ok"] is True and verified["first_broken"] is None


def test_status_shows_routers_and_shadow(world: Any, boto_clients: Any) -> None:
    _ws(world)
    world.run("flag", "init")
    world.run("flag", "flip", "--to", "shadow", "--reason", "shadow", "--yes", "--force")
    ddb = boto_clients.dynamodb
    now = time.time()

    def report(service: str, instance: str, version: int, seen_ago: float) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - seen_ago))
        ddb.put_item(TableName=CONTROL, Item={
            "pk": {"S": f"flag#{FLAG}"}, "sk": {"S": f"router#{service}#{instance}"}, "service": {"S": service},
            "instance": {"S": instance}, "version": {"N": str(version)}, "state": {"S": "shadow"},
            "last_seen": {"S": stamp}, "acked_at": {"S": stamp}, "host": {"S": "h1"}, "pid": {"N": "42"}})

    report("billing", "i-1", 1, 10)
    report("billing", "i-2", 0, 20)        # seen recently, still on version 0: a straggler
    report("search", "i-9", 0, 3600)       # an hour ago: stale, not waited for
    ddb.update_item(TableName=CONTROL, Key={"pk": {"S": f"flag#{FLAG}"}, "sk": {"S": "shadow#1"}},
                    UpdateExpression="ADD #r :r, #m :m, #e :e",  # reads and errors are reserved words
                    ExpressionAttributeNames={"#r": "reads", "#m": "mismatches", "#e": "errors"},
                    ExpressionAttributeValues={":r": {"N": "200"}, ":m": {"N": "3"}, ":e": {"N": "1"}})
    doc = world.run("flag", "status", "--json").json()
    assert {k for k in ("flag", "state", "version", "updated_by", "updated_at", "reason", "routers", "shadow",
                        "cut_over", "stragglers")} <= set(doc)
    routers = {(r["service"], r["instance"]): r for r in doc["routers"]}
    assert (routers[("billing", "i-1")]["acknowledged"], routers[("billing", "i-1")]["stale"]) == (True, False)
    assert (routers[("billing", "i-2")]["acknowledged"], routers[("billing", "i-2")]["stale"]) == (False, False)
    assert routers[("search", "i-9")]["stale"] is True and routers[("search", "i-9")]["version"] == 0
    assert doc["cut_over"] is False and doc["stragglers"] == ["billing/i-2"]
    assert doc["shadow"] == {**doc["shadow"], "reads": 200, "mismatches": 3, "errors": 1, "sample": 0.01}
    report("billing", "i-2", 1, 1)
    after = world.run("flag", "status", "--json").json()
    assert after["cut_over"] is True and after["stragglers"] == []
    text = world.run("flag", "status")
    assert "cut over" in text.stdout and "3 mismatch(es)" in text.stdout


def test_positions_recorded_at_the_flip(world: Any, boto_clients: Any) -> None:
    ddb, streams = boto_clients.dynamodb, boto_clients.dynamodbstreams
    _tables(ddb, "orders", "orders_v2")
    for i in range(3):
        ddb.put_item(TableName="orders", Item={"customer": {"S": f"c{i}"}, "order_id": {"S": "o"}})
    for i in range(5):
        ddb.put_item(TableName="orders_v2", Item={"customer_id": {"S": f"C{i}"}, "order_id": {"S": "o"}})

    def last_seq(table: str) -> dict[str, str]:
        arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        out = {}
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            records = streams.get_records(ShardIterator=it, Limit=1000)["Records"]
            out[shard["ShardId"]] = records[-1]["dynamodb"]["SequenceNumber"]
        return out

    _ws(world)
    world.run("flag", "init")
    flipped = world.run("flag", "flip", "--to", "shadow", "--reason", "shadow", "--yes", "--json").json()
    assert flipped["forced"] is False and flipped["gates"] == [{"name": "new-table", "ok": True,
                                                                 "detail": "table orders_v2 is ACTIVE", "remedy": ""}]
    assert flipped["positions"] == {"old": last_seq("orders"), "new": last_seq("orders_v2")}
    assert world.run("flag", "history", "--json").json()["history"][0]["positions"] == flipped["positions"]
    out_file = world.tmp / "new-positions.json"
    written = world.run("flag", "positions", "--table", "new", "--out", str(out_file), "--json").json()
    assert written["positions"] == last_seq("orders_v2")
    start = positions_from_file(out_file)  # what stream-sync --reverse --from-positions reads
    assert (start.mode, start.positions) == ("positions", last_seq("orders_v2"))
    ddb.put_item(TableName="orders_v2", Item={"customer_id": {"S": "C9"}, "order_id": {"S": "o"}})
    live = world.run("flag", "positions", "--table", "new", "--live", "--json").json()["positions"]
    assert live == last_seq("orders_v2") and live != written["positions"]


def test_read_only(world: Any) -> None:
    _ws(world)
    world.run("flag", "init")
    ro = ("--read-only",)
    assert world.run("flag", "status", "--json", global_args=ro).json()["state"] == "old"
    assert world.run("flag", "history", "--json", global_args=ro).json()["history"] == []
    for args in (("flag", "flip", "--to", "new", "--reason", "x", "--yes"), ("flag", "init"),
                 ("flag", "approve", "abc", "--yes")):
        result = world.run(*args, global_args=ro)
        assert result.returncode == 2 and "refused in read-only (audit) mode" in result.message, args
    assert world.run("flag", "status", "--json").json()["version"] == 0


def test_the_runbook_forward_and_back_with_every_gate_passing(aws_env, boto_clients, tmp_path, run_cli, spawn_cli):
    """Plan, restore, follow, verify: every gate passes and the flip to new needs no --force; then
    reverse sync from the positions recorded at the flip catches up a write made on the new table,
    and the flip back passes without --accept-loss."""
    from test_e2e_stream_sync import Pipeline, create_orders
    from keyshift.console.demo_data import item_line
    from keyshift.core.migrate.stream.sync import sync_lag

    p = Pipeline(tmp_path, aws_env, boto_clients, run_cli)
    p.spec_path.write_text(p.spec_path.read_text(encoding="utf-8") + f'\n[control]\nflag = "{FLAG}"\n',
                           encoding="utf-8")
    create_orders(p.ddb)
    for i in range(20):
        p.put(f"CUST-{i % 4}", f"ORD-{i:03d}", total={"N": str(i)})
    p.put("  Globex\u00a0", "ORD-G0", total={"N": "7"})
    items = [i for page in p.ddb.get_paginator("scan").paginate(TableName="orders") for i in page["Items"]]
    (tmp_path / "dump.json").write_bytes(b"".join(item_line(i) + b"\n" for i in items))
    assert p.run("plan", "--dump", str(tmp_path / "dump.json"), "--format", "ddbjson", "--json").json()["records"] == 21
    p.run("restore", "--create-table", "--json").json()
    assert p.run("flag", "init").returncode == 0
    ws = Workspace(p.workspace, read_only=True)
    procs = []

    def wait_for(condition, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, what
            for proc in procs:
                assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)

    try:
        procs.append(spawn_cli(p.argv("stream-sync", "--follow"), p.env, p.tmp))
        wait_for(lambda: sync_lag(ws, "forward")["live"] and sync_lag(ws, "forward")["lag_seconds"] == 0,
                 "forward sync did not catch up")
        assert p.run("verify", "--json").json()["equal"] is True
        forward = p.run("flag", "flip", "--to", "new", "--reason", "verified, lag 0", "--yes", "--json").json()
        assert forward["forced"] is False and all(g["ok"] for g in forward["gates"]), forward["gates"]
        assert [g["name"] for g in forward["gates"]] == ["cases", "held", "verify", "forward-sync", "reverse-ready"]
        assert forward["positions"]["old"] and forward["positions"]["new"]

        positions = tmp_path / "flip-positions.json"
        p.run("flag", "positions", "--table", "new", "--out", str(positions), "--json").json()
        procs.append(spawn_cli(p.argv("stream-sync", "--reverse", "--follow", "--from-positions", str(positions)),
                               p.env, p.tmp))
        # A service switched to the new table writes there after the flip.
        key = {"customer_id": {"S": "CUST-1"}, "order_id": {"S": "ORD-001"}}
        new_item = p.ddb.get_item(TableName="orders_v2", Key=key, ConsistentRead=True)["Item"]
        p.ddb.put_item(TableName="orders_v2", Item={**new_item, "total": {"N": "4242"}})
        written = time.time()
        wait_for(lambda: (lambda lag: lag["live"] and lag["lag_seconds"] == 0 and (lag["caught_up_at"] or 0) > written)(
            sync_lag(ws, "reverse")), "reverse sync did not catch up")
        old_item = p.ddb.get_item(TableName="orders", Key=_key_old("CUST-1", "ORD-001"), ConsistentRead=True)["Item"]
        assert old_item["total"] == {"N": "4242"}  # the write made on the new table reached the old one
        back = p.run("flag", "flip", "--to", "old", "--reason", "rollback rehearsal", "--yes", "--json").json()
        assert back["forced"] is False and back["history"]["accept_loss"] is False
        assert back["gates"][0]["name"] == "reverse-caught-up" and back["gates"][0]["ok"], back["gates"]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        ws.close()
    history = p.run("flag", "history", "--json").json()["history"]
    assert [(h["from"], h["to"], h["forced"]) for h in history] == [("old", "new", False), ("new", "old", False)]


def _key_old(customer: str, order: str) -> dict[str, Any]:
    return {"customer": {"S": customer}, "order_id": {"S": order}}


def test_bad_input_is_one_line_exit_2(world: Any, boto_clients: Any) -> None:
    _ws(world)
    no_control = world.tmp / "no-control.toml"
    no_control.write_text(world.spec_path.read_text(encoding="utf-8").split("[control]")[0], encoding="utf-8")
    for args in (("flag", "status"), ("flag", "init"), ("flag", "flip", "--to", "new", "--reason", "x", "--yes")):
        result = world.run(*args, spec=no_control)
        assert result.returncode == 2 and "has no [control] section" in result.message, (args, result.stderr)
    boto_clients.dynamodb.create_table(TableName=CONTROL, BillingMode="PAY_PER_REQUEST",
                                       AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                                       KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    wrong = world.run("flag", "init")
    assert wrong.returncode == 2 and "table keyshift-control exists but is not a control table" in wrong.message
    boto_clients.dynamodb.delete_table(TableName=CONTROL)
    world.run("flag", "init")
    missing = world.run("flag", "approve", "nope", "--yes")
    assert missing.returncode == 2 and "no approval request 'nope' for flag orders-cutover" in missing.message
    bad = world.run("flag", "flip", "--to", "sideways", "--reason", "x")
    assert bad.returncode == 2 and "sideways" in bad.message
    empty = world.run("flag", "positions", "--table", "new")
    assert empty.returncode == 2 and "no stream position of orders_v2 recorded at version 0" in empty.message
    for result in (wrong, missing, bad, empty):
        assert "Traceback" not in result.stderr
