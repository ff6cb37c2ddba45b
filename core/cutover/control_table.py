"""The control table: one partition per flag (``pk = "flag#<flag>"``), items told apart by ``sk``.

Key schema (docs/cutover.md "Control table"): partition key ``pk`` (S), sort key ``sk`` (S),
on-demand. Items: ``state`` (the flag), ``router#<service>#<instance>`` (a router's report),
``shadow#<version>`` (shadow read counters), ``history#<version:010d>`` (one per flip),
``request#<id>`` (approval requests), ``audit#<entry id:012d>#<hash prefix>`` (copies of the
workspace's flag audit entries). Every write that must not overwrite uses ``attribute_not_exists``.

The codecs here turn plain Python values into wire-format attributes and back (S, N, BOOL only:
the control table holds nothing else), so the rest of the package never sees ``{"S": …}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from ..errors import KeyshiftError

__all__ = [
    "CONTROL_KEY",
    "ControlError",
    "FlagState",
    "HistoryEntry",
    "RouterReport",
    "ShadowCounts",
    "ApprovalRequest",
    "STATES",
    "audit_sk",
    "decode",
    "encode",
    "ensure_table",
    "flag_pk",
    "history_sk",
    "iso",
    "parse_iso",
    "query_prefix",
    "table_status",
]

#: The flag's states: the old table is the source of truth, shadow reads of the new, the new table.
STATES = ("old", "shadow", "new")
#: The control table's key schema.
CONTROL_KEY = {"pk": "S", "sk": "S"}


class ControlError(KeyshiftError):
    """The control table or the flag item is missing or unusable; the message names them."""

    title = "Control table"


def flag_pk(flag: str) -> str:
    """The partition of one flag."""
    return f"flag#{flag}"


def history_sk(version: int) -> str:
    """The history item of the flip that made ``version`` (zero-padded: text order is numeric)."""
    return f"history#{version:010d}"


def audit_sk(entry_id: int, digest: str) -> str:
    """The copy of workspace audit entry ``entry_id`` (``digest``: its hash, a prefix is kept)."""
    return f"audit#{entry_id:012d}#{digest[:16]}"


def iso(ts: float | None = None) -> str:
    """ISO 8601 UTC with seconds and a ``Z`` (the control table's times)."""
    when = datetime.now(timezone.utc) if ts is None else datetime.fromtimestamp(ts, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def parse_iso(text: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 time (``Z``, an offset, or naive UTC); None when unreadable."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


# -- codecs ------------------------------------------------------------------------------------------
def encode(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values to wire attributes: str -> S, bool -> BOOL, int/float -> N, dict/list -> S (JSON);
    None is left out (DynamoDB has no empty strings in keys, and absent reads as None)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[name] = {"BOOL": value}
        elif isinstance(value, (int, float)):
            out[name] = {"N": repr(value) if isinstance(value, float) else str(value)}
        elif isinstance(value, (dict, list)):
            out[name] = {"S": json.dumps(value, sort_keys=True, ensure_ascii=True, default=str)}
        else:
            out[name] = {"S": str(value)}
    return out


def decode(item: dict[str, Any] | None) -> dict[str, Any]:
    """Wire attributes to plain values (N -> int when integral, else float); unknown types as given."""
    out: dict[str, Any] = {}
    for name, attr in (item or {}).items():
        if "S" in attr:
            out[name] = attr["S"]
        elif "N" in attr:
            number = float(attr["N"])
            out[name] = int(number) if number.is_integer() and "." not in attr["N"] and "e" not in attr["N"].lower() \
                else number
        elif "BOOL" in attr:
            out[name] = bool(attr["BOOL"])
        elif "NULL" in attr:
            out[name] = None
        else:
            out[name] = attr
    return out


def _json(text: Any, default: Any) -> Any:
    if not isinstance(text, str):
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


@dataclass(frozen=True)
class FlagState:
    """The flag item (``sk = "state"``)."""

    flag: str
    state: str
    version: int
    old_table: str
    new_table: str
    updated_by: str = ""
    updated_at: str = ""
    reason: str = ""
    forced: bool = False
    shadow_sample: float = 0.0
    positions: dict[str, Any] = field(default_factory=dict)
    keymap_uri: str | None = None
    keymap_version: str | None = None

    @property
    def source_of_truth(self) -> str:
        """The table services treat as authoritative (the old one in ``old`` and ``shadow``)."""
        return self.new_table if self.state == "new" else self.old_table

    def item(self) -> dict[str, Any]:
        """The wire item."""
        return {"pk": {"S": flag_pk(self.flag)}, "sk": {"S": "state"}, **encode({
            "state": self.state, "version": self.version, "old_table": self.old_table,
            "new_table": self.new_table, "updated_by": self.updated_by, "updated_at": self.updated_at,
            "reason": self.reason or None, "forced": self.forced, "shadow_sample": float(self.shadow_sample),
            "positions": self.positions, "keymap_uri": self.keymap_uri, "keymap_version": self.keymap_version})}

    @classmethod
    def from_item(cls, flag: str, item: dict[str, Any]) -> FlagState:
        v = decode(item)
        return cls(flag=flag, state=str(v.get("state", "old")), version=int(v.get("version", 0)),
                   old_table=str(v.get("old_table", "")), new_table=str(v.get("new_table", "")),
                   updated_by=str(v.get("updated_by", "")), updated_at=str(v.get("updated_at", "")),
                   reason=str(v.get("reason", "")), forced=bool(v.get("forced", False)),
                   shadow_sample=float(v.get("shadow_sample", 0.0) or 0.0),
                   positions=_json(v.get("positions"), {}) or {},
                   keymap_uri=v.get("keymap_uri"), keymap_version=v.get("keymap_version"))

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "state": self.state, "version": self.version, "old_table": self.old_table,
                "new_table": self.new_table, "updated_by": self.updated_by, "updated_at": self.updated_at,
                "reason": self.reason, "forced": self.forced, "shadow_sample": self.shadow_sample,
                "positions": self.positions, "keymap_uri": self.keymap_uri, "keymap_version": self.keymap_version}


@dataclass(frozen=True)
class HistoryEntry:
    """One flip (``sk = "history#<version:010d>"``)."""

    version: int
    from_state: str
    to_state: str
    operator: str
    at: str
    reason: str
    forced: bool
    gates: list[dict[str, Any]]
    positions: dict[str, Any]
    requested_by: str | None = None
    accept_loss: bool = False

    def item(self, flag: str) -> dict[str, Any]:
        return {"pk": {"S": flag_pk(flag)}, "sk": {"S": history_sk(self.version)}, **encode({
            "from": self.from_state, "to": self.to_state, "version": self.version, "operator": self.operator,
            "at": self.at, "reason": self.reason, "forced": self.forced, "gates": self.gates,
            "positions": self.positions, "requested_by": self.requested_by, "accept_loss": self.accept_loss})}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> HistoryEntry:
        v = decode(item)
        return cls(version=int(v.get("version", 0)), from_state=str(v.get("from", "")), to_state=str(v.get("to", "")),
                   operator=str(v.get("operator", "")), at=str(v.get("at", "")), reason=str(v.get("reason", "")),
                   forced=bool(v.get("forced", False)), gates=_json(v.get("gates"), []) or [],
                   positions=_json(v.get("positions"), {}) or {}, requested_by=v.get("requested_by"),
                   accept_loss=bool(v.get("accept_loss", False)))

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "from": self.from_state, "to": self.to_state, "operator": self.operator,
                "at": self.at, "reason": self.reason, "forced": self.forced, "gates": self.gates,
                "positions": self.positions, "requested_by": self.requested_by, "accept_loss": self.accept_loss}


@dataclass(frozen=True)
class RouterReport:
    """A router's report (``sk = "router#<service>#<instance>"``), written by the router library."""

    service: str
    instance: str
    version: int | None
    state: str
    last_seen: str
    acked_at: str | None
    host: str | None
    pid: int | None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RouterReport:
        v = decode(item)
        sk = str(v.get("sk", ""))
        parts = sk.split("#", 2)
        version = v.get("version")
        pid = v.get("pid")
        return cls(service=str(v.get("service") or (parts[1] if len(parts) > 1 else "")),
                   instance=str(v.get("instance") or (parts[2] if len(parts) > 2 else "")),
                   version=int(version) if isinstance(version, (int, float)) else None,
                   state=str(v.get("state", "")), last_seen=str(v.get("last_seen", "")),
                   acked_at=v.get("acked_at"), host=v.get("host"),
                   pid=int(pid) if isinstance(pid, (int, float)) else None)


@dataclass(frozen=True)
class ShadowCounts:
    """The shadow reads of one version (``sk = "shadow#<version>"``), counted with atomic ADD."""

    reads: int = 0
    mismatches: int = 0
    errors: int = 0
    last_mismatch: Any = None

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> ShadowCounts:
        v = decode(item)
        return cls(int(v.get("reads", 0) or 0), int(v.get("mismatches", 0) or 0), int(v.get("errors", 0) or 0),
                   _json(v.get("last_mismatch"), v.get("last_mismatch")))


@dataclass(frozen=True)
class ApprovalRequest:
    """A flip waiting for a second operator (``sk = "request#<id>"``)."""

    id: str
    to_state: str
    reason: str
    requested_by: str
    requested_at: str
    expires_at: str
    state: str
    force: bool
    version: int
    accept_loss: bool = False
    decided_by: str | None = None
    decided_at: str | None = None

    def expired(self, now: float) -> bool:
        expires = parse_iso(self.expires_at)
        return expires is not None and now >= expires

    def effective_state(self, now: float) -> str:
        """``expired`` for a pending request past its time, else the stored state."""
        return "expired" if self.state == "pending" and self.expired(now) else self.state

    def item(self, flag: str) -> dict[str, Any]:
        return {"pk": {"S": flag_pk(flag)}, "sk": {"S": f"request#{self.id}"}, **encode({
            "to": self.to_state, "reason": self.reason, "requested_by": self.requested_by,
            "requested_at": self.requested_at, "expires_at": self.expires_at, "state": self.state,
            "force": self.force, "version": self.version, "accept_loss": self.accept_loss,
            "decided_by": self.decided_by, "decided_at": self.decided_at})}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ApprovalRequest:
        v = decode(item)
        return cls(id=str(v.get("sk", "")).removeprefix("request#"), to_state=str(v.get("to", "")),
                   reason=str(v.get("reason", "")), requested_by=str(v.get("requested_by", "")),
                   requested_at=str(v.get("requested_at", "")), expires_at=str(v.get("expires_at", "")),
                   state=str(v.get("state", "pending")), force=bool(v.get("force", False)),
                   version=int(v.get("version", 0)), accept_loss=bool(v.get("accept_loss", False)),
                   decided_by=v.get("decided_by"), decided_at=v.get("decided_at"))

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        import time

        return {"id": self.id, "to": self.to_state, "reason": self.reason, "requested_by": self.requested_by,
                "requested_at": self.requested_at, "expires_at": self.expires_at,
                "state": self.effective_state(time.time() if now is None else now), "force": self.force,
                "accept_loss": self.accept_loss, "version": self.version, "decided_by": self.decided_by,
                "decided_at": self.decided_at}


# -- the table ---------------------------------------------------------------------------------------
def table_status(ddb: Any, table: str) -> str | None:
    """The control table's status (``ACTIVE``…), None when it does not exist."""
    try:
        return ddb.describe_table(TableName=table)["Table"]["TableStatus"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def ensure_table(ddb: Any, table: str) -> bool:
    """Create the control table when missing (on-demand, ``pk``/``sk``) and wait for it; True if created.

    An existing table must have the control key schema, else :class:`ControlError` names it."""
    if table_status(ddb, table) is not None:
        schema = ddb.describe_table(TableName=table)["Table"].get("KeySchema", [])
        names = {k["AttributeName"]: k["KeyType"] for k in schema}
        if names != {"pk": "HASH", "sk": "RANGE"}:
            raise ControlError(f"table {table} exists but is not a control table (its key is"
                               f" {', '.join(f'{n} {t}' for n, t in names.items()) or 'unknown'};"
                               " expected pk HASH, sk RANGE): set [control] table to another name")
        return False
    try:
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in CONTROL_KEY.items()],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        return False  # another operator created it a moment ago
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True


def query_prefix(ddb: Any, table: str, flag: str, prefix: str, *, newest_first: bool = False,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Every item of ``flag`` whose ``sk`` starts with ``prefix`` (paged, consistent)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table, "ConsistentRead": True,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": flag_pk(flag)}, ":prefix": {"S": prefix}},
        "ScanIndexForward": not newest_first,
    }
    while True:
        page = ddb.query(**kwargs)
        items.extend(page.get("Items", []))
        if limit is not None and len(items) >= limit:
            return items[:limit]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
