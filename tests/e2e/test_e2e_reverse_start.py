"""A first reverse sync with no ``--from`` starts where the flip to ``new`` recorded the new table.

Before this, the console started a first reverse run "from this second on", so every write a
switched service made on the new table between the flip and pressing "follow" never went back to
the old table. The flip records both tables' stream positions in the flag's history; reverse sync
now starts after them (:mod:`keyshift.core.cutover.reverse_start`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from keyshift.core.cutover.reverse_start import flip_start
from keyshift.core.spec import load_spec
from keyshift.core.store.workspace import Workspace


def _write_new(ddb: Any, customer_id: str, order_id: str) -> None:
    ddb.put_item(TableName="orders_v2", Item={"customer_id": {"S": customer_id}, "order_id": {"S": order_id},
                                              "total": {"N": "7"}})


def test_flip_start_is_the_newest_flip_to_new(world: Any, boto_clients: Any) -> None:
    ddb = boto_clients.dynamodb
    spec = load_spec(world.spec_path)
    assert flip_start(ddb, spec) is None  # no control table yet: the caller has to ask
    Workspace(world.workspace).close()
    assert world.run("plan", "--dump", world.export_uri, "--json").returncode == 0
    assert world.run("restore", "--create-table", "--allow-unresolved", "--json").returncode == 0
    world.run("flag", "init")
    world.run("flag", "flip", "--to", "shadow", "--reason", "shadow first", "--yes", "--force")
    assert flip_start(ddb, spec) is None  # shadow is not a switch of the source of truth
    flipped = world.run("flag", "flip", "--to", "new", "--reason", "go", "--yes", "--force", "--json").json()
    found = flip_start(ddb, spec)
    assert found is not None and found.entry.version == flipped["version"]
    assert (found.start.mode, found.start.positions) == ("positions", flipped["positions"]["new"])
    back = world.run("flag", "flip", "--to", "old", "--reason", "back", "--yes", "--force", "--accept-loss",
                     "--json").json()
    assert back["state"] == "old"
    again = flip_start(ddb, spec)  # a flip back does not move the start: new's writes still go back
    assert again is not None and again.entry.version == flipped["version"]
    assert "flip to new" in again.describe()


def _old_table(ddb: Any) -> None:
    """The live old table (the world fixture has only its dump): reverse sync writes back into it."""
    ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                           {"AttributeName": "order_id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                                {"AttributeName": "order_id", "KeyType": "RANGE"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})


def test_first_reverse_run_replays_writes_made_between_the_flip_and_the_start(world: Any, boto_clients: Any) -> None:
    ddb = boto_clients.dynamodb
    _old_table(ddb)
    assert world.run("plan", "--dump", world.export_uri, "--json").returncode == 0
    assert world.run("restore", "--create-table", "--allow-unresolved", "--json").returncode == 0
    world.run("flag", "init")
    world.run("flag", "flip", "--to", "new", "--reason", "go", "--yes", "--force")
    # A switched service writes on the new table before anyone starts reverse sync.
    customer_id = ddb.scan(TableName="orders_v2", Limit=1)["Items"][0]["customer_id"]["S"]
    _write_new(ddb, customer_id, "ORD-AFTER-FLIP-1")
    _write_new(ddb, customer_id, "ORD-AFTER-FLIP-2")
    out = world.run("stream-sync", "--reverse", "--allow-unresolved", "--json")
    assert out.returncode == 0, out.stderr
    doc = out.json()
    assert doc["origin"].startswith("from recorded positions"), doc
    assert doc["puts"] == 2, doc
    old_orders = {i["order_id"]["S"] for page in ddb.get_paginator("scan").paginate(TableName="orders")
                  for i in page["Items"]}
    assert {"ORD-AFTER-FLIP-1", "ORD-AFTER-FLIP-2"} <= old_orders


def test_without_a_flip_the_first_reverse_run_still_asks_for_a_start(world: Any) -> None:
    assert world.run("plan", "--dump", world.export_uri, "--json").returncode == 0
    assert world.run("restore", "--create-table", "--allow-unresolved", "--json").returncode == 0
    out = world.run("stream-sync", "--reverse", "--allow-unresolved", "--json")
    assert out.returncode == 2 and "needs a start" in out.message and "Traceback" not in out.stderr


def test_flip_back_gate_fails_when_reverse_sync_started_after_the_flip(world: Any, boto_clients: Any) -> None:
    _old_table(boto_clients.dynamodb)
    assert world.run("plan", "--dump", world.export_uri, "--json").returncode == 0
    assert world.run("restore", "--create-table", "--allow-unresolved", "--json").returncode == 0
    world.run("flag", "init")
    world.run("flag", "flip", "--to", "new", "--reason", "go", "--yes", "--force")
    time.sleep(2.1)  # a whole second later than the flip, on the workspace's one-second clock
    late = world.run("stream-sync", "--reverse", "--from", "latest", "--allow-unresolved", "--json")
    assert late.returncode == 0, late.stderr
    back = world.run("flag", "flip", "--to", "old", "--reason", "rollback", "--yes", "--json")
    assert back.returncode == 1
    gate = json.loads(back.stdout)["gates"][0]
    assert gate["name"] == "reverse-caught-up" and not gate["ok"], gate
    assert "after the flip to new" in gate["detail"] and gate["remedy"] == "follow-reverse", gate
    printed = world.run("flag", "flip", "--to", "old", "--reason", "rollback", "--yes")
    assert "keyshift stream-sync --reverse --follow" in printed.stderr  # the CLI words the remedy as a command
