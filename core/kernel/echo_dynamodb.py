"""The write log (:class:`~keyshift.core.kernel.echo.EchoLog`) in a DynamoDB table, for Lambdas.

Both directions' handlers run in separate functions (and many instances), so their write log must
be shared: one item per ``(direction, table, key, digest)``:

==========  ====  ======================================================================
attribute   type  meaning
==========  ====  ======================================================================
``pk``      S     partition key: ``<direction>#<table>#<key_json>``
``digest``  S     sort key: :func:`~keyshift.core.kernel.echo.item_digest` of the write
``n``       N     writes noted and not yet matched (``note`` adds 1, a match takes 1)
``expires`` N     epoch seconds, 48 h after the last note: the table's TTL attribute
``noted``   SS    the stream records whose writes were noted (a retried batch notes once)
``seen``    SS    the stream records that consumed a match (a retried record matches again)
==========  ====  ======================================================================

Lambda delivers at least once and retries batches, so both operations take an optional
``token`` (the stream record's ``SequenceNumber`` and stream): noting the same record's write
twice counts once, and the record that consumed a match still finds it on a retry. Without a
token they are exactly the protocol's semantics. Standard library and boto3 only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

__all__ = ["TTL_SECONDS", "DynamoDBEchoLog", "echo_table_definition"]

#: How long a note waits for its echo: longer than a stream's 24-hour retention.
TTL_SECONDS = 48 * 3600


def echo_table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for an echo table (tests and docs/deploy.md use the same)."""
    return {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "digest", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                     {"AttributeName": "digest", "AttributeType": "S"}]}


def _conditional_failed(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDBEchoLog:
    """An :class:`~keyshift.core.kernel.echo.EchoLog` backed by ``table`` through client ``ddb``."""

    def __init__(self, ddb: Any, table: str, *, clock: Any = time.time) -> None:
        self.ddb, self.table, self.clock = ddb, table, clock

    @staticmethod
    def _pk(direction: str, table: str, key: str) -> str:
        return f"{direction}#{table}#{key}"

    def note(self, direction: str, table: str, writes: Iterable[tuple[str, str]],
             *, token: str | None = None) -> None:
        """``ADD n 1`` per write (once per ``token``), with the TTL pushed 48 h out."""
        expires = str(int(self.clock()) + TTL_SECONDS)
        for key, digest in writes:
            args: dict[str, Any] = {
                "TableName": self.table,
                "Key": {"pk": {"S": self._pk(direction, table, key)}, "digest": {"S": digest}},
                "UpdateExpression": "ADD n :one SET expires = :exp",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":exp": {"N": expires}},
            }
            if token is not None:
                args["UpdateExpression"] = "ADD n :one, noted :tok SET expires = :exp"
                args["ConditionExpression"] = "attribute_not_exists(noted) OR NOT contains(noted, :t)"
                args["ExpressionAttributeValues"].update({":tok": {"SS": [token]}, ":t": {"S": token}})
            try:
                self.ddb.update_item(**args)
            except Exception as exc:
                if token is None or not _conditional_failed(exc):
                    raise  # a note that did not land must stop the write it announces

    def is_echo(self, direction: str, table: str, key: str, digest: str, *, token: str | None = None) -> bool:
        """Whether the *other* direction noted this write; a match is consumed (``n`` - 1)."""
        other = "reverse" if direction == "forward" else "forward"
        key_attrs = {"pk": {"S": self._pk(other, table, key)}, "digest": {"S": digest}}
        args: dict[str, Any] = {
            "TableName": self.table, "Key": key_attrs,
            "UpdateExpression": "ADD n :minus",
            "ConditionExpression": "n > :zero",
            "ExpressionAttributeValues": {":minus": {"N": "-1"}, ":zero": {"N": "0"}},
        }
        if token is not None:
            args["UpdateExpression"] = "ADD n :minus, seen :tok"
            args["ConditionExpression"] = "n > :zero AND (attribute_not_exists(seen) OR NOT contains(seen, :t))"
            args["ExpressionAttributeValues"].update({":tok": {"SS": [token]}, ":t": {"S": token}})
        try:
            self.ddb.update_item(**args)
            return True
        except Exception as exc:
            if not _conditional_failed(exc):
                raise
        if token is None:
            return False
        # The condition failed: no match left, or this very record consumed it on an earlier try.
        item = self.ddb.get_item(TableName=self.table, Key=key_attrs, ConsistentRead=True).get("Item") or {}
        return token in (item.get("seen") or {}).get("SS", [])
