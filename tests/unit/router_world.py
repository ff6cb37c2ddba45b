"""What the router tests share: the control table and flag item written per the fixed schema
(docs/cutover.md, "Control table"), the old and new tables, a keymap artifact, call counters and a
clock the test moves.

The flag engineer's ``flag init`` / ``flip`` are not used: these tests write the items directly, so
they hold the router to the schema, not to another part's code.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from keyshift.core.kernel.keymap import FORMAT

CONTROL = "keyshift-control"
FLAG = "orders-customer-id"
OLD = "orders"
NEW = "orders-v2"
NAMES = {"source_pk": "customer", "source_sk": "order_id", "target_pk": "customer_id", "legacy": "legacy_customer"}


def create_control_table(ddb: Any, name: str = CONTROL) -> None:
    """On demand, ``pk`` (S) + ``sk`` (S), as ``flag init`` creates it."""
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])


def create_data_tables(ddb: Any) -> None:
    """The old table (customer + order_id) and the new one (customer_id + order_id)."""
    for table, pk in ((OLD, NAMES["source_pk"]), (NEW, NAMES["target_pk"])):
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"},
                                               {"AttributeName": "order_id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": pk, "KeyType": "HASH"},
                                    {"AttributeName": "order_id", "KeyType": "RANGE"}])


def put_flag(ddb: Any, state: str = "old", version: int = 0, *, flag: str = FLAG, table: str = CONTROL,
             shadow_sample: float | None = None, keymap_uri: str | None = None,
             keymap_version: str | None = None, by: str = "alice") -> None:
    """The flag item ``pk="flag#<flag>", sk="state"`` as ``flag init`` / ``flag flip`` write it."""
    item: dict[str, Any] = {
        "pk": {"S": f"flag#{flag}"}, "sk": {"S": "state"}, "state": {"S": state},
        "version": {"N": str(version)}, "old_table": {"S": OLD}, "new_table": {"S": NEW},
        "updated_by": {"S": by}, "updated_at": {"S": "2026-12-01T10:00:00Z"}, "reason": {"S": "test"},
        "forced": {"BOOL": False}, "positions": {"S": '{"old": {}, "new": {}}'},
    }
    if shadow_sample is not None:
        item["shadow_sample"] = {"N": repr(shadow_sample)}
    if keymap_uri is not None:
        item["keymap_uri"] = {"S": keymap_uri}
    if keymap_version is not None:
        item["keymap_version"] = {"S": keymap_version}
    ddb.put_item(TableName=table, Item=item)


def flip(ddb: Any, to: str, *, flag: str = FLAG, table: str = CONTROL) -> int:
    """A compare-and-set flip of the flag (what ``flag flip`` does, minus the gates); the new version."""
    key = {"pk": {"S": f"flag#{flag}"}, "sk": {"S": "state"}}
    current = int(ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["version"]["N"])
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET #s = :s, #v = :n",
                    ConditionExpression="#v = :v", ExpressionAttributeNames={"#s": "state", "#v": "version"},
                    ExpressionAttributeValues={":s": {"S": to}, ":n": {"N": str(current + 1)},
                                               ":v": {"N": str(current)}})
    return current + 1


def control_items(ddb: Any, prefix: str, *, flag: str = FLAG, table: str = CONTROL) -> list[dict[str, Any]]:
    """The control table's items of the flag whose sort key starts with ``prefix``."""
    got = ddb.query(TableName=table, KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                    ExpressionAttributeValues={":p": {"S": f"flag#{flag}"}, ":s": {"S": prefix}},
                    ConsistentRead=True)
    return got["Items"]


def keymap_doc(entries: dict[str, str | None], version: str = "km-1") -> dict[str, Any]:
    """A ``keyshift-keymap/1`` artifact with the migration section the router reads key names from."""
    return {"format": FORMAT, "version": version,
            "entries": {raw: {"new_id": new, "source": "rule"} for raw, new in entries.items()},
            "unresolved": {}, "winners": [], "primaries": {},
            "migration": {"source_table": OLD, "target_table": NEW, **NAMES}}


@dataclass
class Calls:
    """Requests one client made, by operation, counted by a ``before-call`` hook (thread-safe)."""

    seen: list[tuple[str, str, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, model: Any, params: Any, **_: Any) -> None:
        body = params.get("body") if isinstance(params, dict) else None
        table = ""
        if isinstance(body, (bytes, str)):
            import json

            try:
                table = json.loads(body).get("TableName", "")
            except ValueError:
                table = ""
        with self.lock:
            self.seen.append((model.name, table, time.monotonic()))

    def count(self, operation: str, table: str | None = None) -> int:
        with self.lock:
            return sum(1 for op, t, _ in self.seen if op == operation and (table is None or t == table))


def counted(client: Any) -> Calls:
    """Count every request ``client`` sends (the hook runs just before the HTTP request)."""
    calls = Calls()
    client.meta.events.register("before-call.dynamodb", calls.hook)
    return calls


class FakeClock:
    """A monotonic clock the test moves by hand (TTL expiry, heartbeat minute, flush period)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
