"""The flag and the router library together: services running ``MigrationRouter`` follow a
``keyshift flag flip``, acknowledge it, and ``flag status`` says when the cut-over is done and
names the stragglers (the two halves were built against one control-table schema; this checks
they agree)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from keyshift.core.router import MigrationRouter
from test_e2e_flag import CONTROL, FLAG, _tables, _ws

pytestmark = pytest.mark.e2e


def test_routers_switch_after_a_flip_and_status_names_the_straggler(world: Any, boto_clients: Any) -> None:
    _ws(world)
    _tables(boto_clients.dynamodb, "orders_v2")
    assert world.run("flag", "init").returncode == 0
    routers = [MigrationRouter(CONTROL, FLAG, "orders", "orders_v2", service=f"svc-{i}", ttl_seconds=0.5,
                               client=boto_clients.dynamodb, instance=f"host-{i}") for i in range(3)]
    assert {r.table() for r in routers} == {"orders"}
    status = world.run("flag", "status", "--json").json()
    assert {r["service"] for r in status["routers"]} == {"svc-0", "svc-1", "svc-2"}
    assert status["cut_over"] is True  # every router acts on version 0, the flag's

    flip = world.run("flag", "flip", "--to", "new", "--reason", "go", "--yes", "--force", "--json")
    assert flip.returncode == 0, flip.stderr
    time.sleep(0.6)  # one TTL
    for r in routers[:2]:  # the third service is not called: it has not seen the flip
        assert r.table() == "orders_v2" and r.version() == 1
    status = world.run("flag", "status", "--json").json()
    assert (status["state"], status["version"]) == ("new", 1)
    assert status["cut_over"] is False and status["stragglers"] == ["svc-2/host-2"]
    acked = {r["service"]: r["acknowledged"] for r in status["routers"]}
    assert acked == {"svc-0": True, "svc-1": True, "svc-2": False}

    assert routers[2].table() == "orders_v2"  # it reads the flag on its next call and reports
    status = world.run("flag", "status", "--json").json()
    assert status["cut_over"] is True and status["stragglers"] == []
