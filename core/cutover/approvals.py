"""The two-person rule (``[control] require_approval = true``): a flip is filed, another operator runs it.

``flag flip`` with the rule on checks the gates (a failing gate still refuses unless ``--force``)
and files a request (``request#<id>``: target, reason, who, when, ``expires_at`` after
``approval_ttl_minutes``, the flag version it was filed against, ``force``/``accept_loss``);
nothing flips. ``flag approve ID`` by a *different* operator checks the request (pending, not
expired, filed against the flag's current version) and the gates again, then flips: the request's
update to ``approved`` (on condition ``pending``) is part of the flip's transaction, so two
approvers cannot both run it. The requester approving their own request is refused (exit 1), as
is an expired request (marked ``expired``) or one whose flag has moved since (marked ``refused``).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from botocore.exceptions import ClientError

from .control_table import ApprovalRequest, ControlError, FlagState, flag_pk, iso
from .flag import FlipRefused, audit_both, control_spec, requests

__all__ = ["check_approvable", "file_request", "get_request", "list_requests", "settle_request"]


def file_request(ws: Any, ddb: Any, spec: Any, current: FlagState, *, to_state: str, reason: str, operator: str,
                 force: bool, accept_loss: bool, gates: list[dict[str, Any]]) -> ApprovalRequest:
    """File a request to flip ``current`` to ``to_state`` (audited ``flag.request``); returns it."""
    control = control_spec(spec)
    ttl = float(getattr(control, "approval_ttl_minutes", 30.0)) * 60.0
    now = time.time()
    request = ApprovalRequest(id=secrets.token_hex(4), to_state=to_state, reason=reason, requested_by=operator,
                              requested_at=iso(now), expires_at=iso(now + ttl), state="pending", force=force,
                              version=current.version, accept_loss=accept_loss)
    ddb.put_item(TableName=control.table, Item=request.item(current.flag), ConditionExpression="attribute_not_exists(pk)")
    audit_both(ws, ddb, control.table, current.flag, operator, "flag.request",
               {"flag": current.flag, "request": request.id, "to": to_state, "from": current.state,
                "version": current.version, "reason": reason, "force": force, "accept_loss": accept_loss,
                "expires_at": request.expires_at, "gates": gates})
    return request


def list_requests(ddb: Any, spec: Any) -> list[ApprovalRequest]:
    """Every request of the flag, newest first."""
    control = control_spec(spec)
    return requests(ddb, control.table, control.flag)


def get_request(ddb: Any, spec: Any, request_id: str) -> ApprovalRequest:
    """One request; :class:`ControlError` (exit 2: bad input) naming it when there is none."""
    control = control_spec(spec)
    item = ddb.get_item(TableName=control.table, ConsistentRead=True,
                        Key={"pk": {"S": flag_pk(control.flag)}, "sk": {"S": f"request#{request_id}"}}).get("Item")
    if item is None:
        raise ControlError(f"no approval request {request_id!r} for flag {control.flag} in {control.table}:"
                           " keyshift flag requests lists them")
    return ApprovalRequest.from_item(item)


def settle_request(ddb: Any, spec: Any, request: ApprovalRequest, state: str, operator: str) -> None:
    """Mark a pending request ``state`` (expired, refused); a request no longer pending is left."""
    control = control_spec(spec)
    try:
        ddb.update_item(TableName=control.table,
                        Key={"pk": {"S": flag_pk(control.flag)}, "sk": {"S": f"request#{request.id}"}},
                        UpdateExpression="SET #s = :state, decided_by = :by, decided_at = :at",
                        ConditionExpression="#s = :pending", ExpressionAttributeNames={"#s": "state"},
                        ExpressionAttributeValues={":state": {"S": state}, ":pending": {"S": "pending"},
                                                   ":by": {"S": operator}, ":at": {"S": iso()}})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise


def check_approvable(ws: Any, ddb: Any, spec: Any, request: ApprovalRequest, current: FlagState, *,
                     operator: str, now: float | None = None) -> None:
    """Refuse (exit 1, audited ``flag.approve.refused``) what cannot be approved by ``operator``."""
    now = time.time() if now is None else now
    problem, settle = None, None
    state = request.effective_state(now)
    if state != "pending":
        problem = f"request {request.id} is {state}, not pending"
        settle = "expired" if state == "expired" and request.state == "pending" else None
    elif request.requested_by == operator:
        problem = (f"request {request.id} was filed by {operator}: another operator must approve it"
                   " (two-person rule)")
    elif request.version != current.version:
        problem = (f"request {request.id} was filed against version {request.version}; flag {current.flag} is at"
                   f" version {current.version} now (by {current.updated_by} at {current.updated_at}): file it again")
        settle = "refused"
    if problem is None:
        return
    if settle:
        settle_request(ddb, spec, request, settle, operator)
    control = control_spec(spec)
    audit_both(ws, ddb, control.table, current.flag, operator, "flag.approve.refused",
               {"flag": current.flag, "request": request.id, "reason": problem})
    raise FlipRefused(f"{problem}: nothing changed", {"outcome": "refused", "request": request.to_dict(now),
                                                      "message": problem})


