"""DynamoDB table facts and creation: key schemas, the target table, streams.

Everything here takes a low-level boto3 DynamoDB client (items stay in wire format, the same form
the low-level client speaks), so the transform's output can be written as it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..errors import KeyshiftError
from ..spec import Spec

__all__ = ["TableError", "KeySchema", "source_key_schema", "target_key_schema", "new_table_schema",
           "create_target_table",
           "table_exists", "wait_active", "is_empty", "enable_stream"]


class TableError(KeyshiftError):
    """A table is missing, has the wrong key schema, or could not be created."""

    title = "Table problem"


@dataclass(frozen=True)
class KeySchema:
    """A table's key: partition key name and type, optional sort key name and type."""

    pk: str
    pk_type: str = "S"
    sk: str | None = None
    sk_type: str | None = None

    def key_of(self, item: dict[str, Any]) -> dict[str, Any]:
        """The key attributes of a wire-format item."""
        key = {self.pk: item[self.pk]}
        if self.sk:
            key[self.sk] = item[self.sk]
        return key

    def definition(self) -> dict[str, Any]:
        """``KeySchema`` and ``AttributeDefinitions`` for create_table / import_table."""
        schema = [{"AttributeName": self.pk, "KeyType": "HASH"}]
        attrs = [{"AttributeName": self.pk, "AttributeType": self.pk_type}]
        if self.sk:
            schema.append({"AttributeName": self.sk, "KeyType": "RANGE"})
            attrs.append({"AttributeName": self.sk, "AttributeType": self.sk_type or "S"})
        return {"KeySchema": schema, "AttributeDefinitions": attrs}


def describe(ddb: Any, table: str) -> dict[str, Any] | None:
    """``DescribeTable``'s Table, or None when the table does not exist."""
    try:
        return ddb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def table_exists(ddb: Any, table: str) -> bool:
    """Whether ``table`` exists."""
    return describe(ddb, table) is not None


def _schema_of(desc: dict[str, Any]) -> KeySchema:
    types = {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]}
    pk = next(k["AttributeName"] for k in desc["KeySchema"] if k["KeyType"] == "HASH")
    sk = next((k["AttributeName"] for k in desc["KeySchema"] if k["KeyType"] == "RANGE"), None)
    return KeySchema(pk, types[pk], sk, types.get(sk) if sk else None)


def source_key_schema(ddb: Any, spec: Spec) -> KeySchema:
    """The live table's key schema (checked against the spec)."""
    desc = describe(ddb, spec.source.table)
    if desc is None:
        raise TableError(f"source table {spec.source.table!r} does not exist")
    schema = _schema_of(desc)
    if schema.pk != spec.source.partition_key or schema.sk != spec.source.sort_key:
        raise TableError(
            f"source table {spec.source.table!r} is keyed ({schema.pk}, {schema.sk}) but the spec says"
            f" ({spec.source.partition_key}, {spec.source.sort_key})"
        )
    return schema


def target_key_schema(spec: Spec, sort_key_type: str | None = None) -> KeySchema:
    """The new table's key: the target partition key (string) and the source's sort key."""
    sk = spec.source.sort_key
    return KeySchema(spec.target.partition_key, "S", sk, (sort_key_type or "S") if sk else None)


def new_table_schema(ddb: Any, spec: Spec) -> KeySchema:
    """The new table's key schema, its sort key typed like the live table's (S when the live
    table cannot be described, e.g. a dump restored without its source)."""
    sk_type = source_key_schema(ddb, spec).sk_type if table_exists(ddb, spec.source.table) else None
    return target_key_schema(spec, sk_type)


def wait_active(ddb: Any, table: str, timeout: float = 300) -> dict[str, Any]:
    """Poll until ``table`` is ACTIVE; returns its description."""
    deadline = time.monotonic() + timeout
    while True:
        desc = describe(ddb, table)
        if desc is not None and desc.get("TableStatus") == "ACTIVE":
            return desc
        if time.monotonic() > deadline:
            raise TableError(f"table {table!r} did not become ACTIVE within {timeout:.0f} s")
        time.sleep(0.5)


def create_target_table(ddb: Any, spec: Spec, schema: KeySchema) -> dict[str, Any]:
    """Create the new table: key schema, on-demand billing, a NEW_AND_OLD_IMAGES stream (reverse
    sync needs both images). Refuses if it exists already."""
    if table_exists(ddb, spec.target.table):
        raise TableError(f"target table {spec.target.table!r} exists already")
    ddb.create_table(
        TableName=spec.target.table,
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        **schema.definition(),
    )
    return wait_active(ddb, spec.target.table)


def enable_stream(ddb: Any, table: str) -> None:
    """Turn on a NEW_AND_OLD_IMAGES stream (after ImportTable, which creates tables without one)."""
    desc = describe(ddb, table) or {}
    spec = desc.get("StreamSpecification") or {}
    if spec.get("StreamEnabled"):
        return
    ddb.update_table(TableName=table,
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    wait_active(ddb, table)


def is_empty(ddb: Any, table: str) -> bool:
    """Whether ``table`` holds no item (one Scan with Limit=1)."""
    return not ddb.scan(TableName=table, Limit=1, Select="COUNT").get("Count", 0)
