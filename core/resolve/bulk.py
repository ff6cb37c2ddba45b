"""Bulk decisions: one filter, previewed with its count and a sample, applied as one decision per case.

A real dump has thousands of ``Acme`` / ``Acme\\u200b`` pairs that nobody should decide one by one.
A bulk decision names a kind, a condition and an action; :func:`preview_bulk` shows what it would
touch, :func:`apply_bulk` records one ordinary decision per matching case with the shared reason,
so history, undo, export and the audit log treat them like any other decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .cases import Case, CaseError, list_cases
from .decisions import ACTIONS, decide, effective_overrides
from ..store.workspace import Workspace

__all__ = ["CONDITIONS", "BULK_ACTIONS", "BulkPreview", "BulkResult", "preview_bulk", "apply_bulk"]


def _single_candidate(case: Case) -> bool:
    return len(case.candidates) == 1


#: Condition name -> (description, predicate on a case).
CONDITIONS: dict[str, tuple[str, Callable[[Case], bool]]] = {
    "single-candidate": (
        "every member resolves to one and the same candidate id (one reference id, or one "
        "canonical form when there is no reference data)",
        _single_candidate,
    ),
    "any": ("every open case of the kind", lambda case: True),
}

#: Actions that need no per-case input, so they can be applied in bulk.
BULK_ACTIONS: dict[str, tuple[str, ...]] = {
    "ambiguous": ("same",),      # with the single candidate as the new id
    "orphaned": ("keep", "drop"),
    "invalid": ("drop",),
    "suspicious": ("accept",),
}


@dataclass
class BulkPreview:
    """What a bulk decision would touch: every matching open case, and a sample to show."""

    kind: str
    condition: str
    action: str
    cases: list[Case]

    @property
    def count(self) -> int:
        return len(self.cases)

    def sample(self, n: int = 5) -> list[Case]:
        """The first ``n`` matching cases (for a preview)."""
        return self.cases[:n]


@dataclass
class BulkResult:
    """How a bulk decision went: decisions recorded, and cases refused with the reason."""

    applied: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)


def preview_bulk(ws: Workspace, *, kind: str, condition: str, action: str) -> BulkPreview:
    """The open cases of ``kind`` matching ``condition``, for ``action`` (validated here)."""
    if condition not in CONDITIONS:
        raise CaseError(f"unknown condition {condition!r} (known: {', '.join(CONDITIONS)})")
    allowed = BULK_ACTIONS.get(kind, ())
    if action not in allowed:
        choices = ", ".join(f"{k}: {'/'.join(v)}" for k, v in BULK_ACTIONS.items())
        raise CaseError(f"{action!r} cannot be applied in bulk to {kind} cases (bulk actions: {choices})")
    predicate = CONDITIONS[condition][1]
    cases = [c for c in list_cases(ws, kind=kind, open_only=True) if predicate(c)]
    if action == "same":
        cases = [c for c in cases if len(c.candidates) == 1]  # `same` needs the id it merges onto
    return BulkPreview(kind, condition, action, cases)


def apply_bulk(ws: Workspace, preview: BulkPreview, *, reason: str, operator: str,
               progress: Callable[[int, int], None] | None = None) -> BulkResult:
    """Record one decision per previewed case (a case decided meanwhile is refused, not redone)."""
    if not reason or not reason.strip():
        raise CaseError("a reason is required (--reason)")
    assert preview.action in ACTIONS[preview.kind]
    overrides = effective_overrides(ws)
    still_open = {c.id for c in list_cases(ws, kind=preview.kind, open_only=True)}
    result = BulkResult()
    for i, case in enumerate(preview.cases, 1):
        if case.id not in still_open:
            result.refused.append((case.id, "decided meanwhile"))
            continue
        try:
            decide(ws, case, preview.action, reason=reason, operator=operator,
                   new_id=case.candidates[0] if preview.action == "same" else None,
                   overrides=overrides)
        except CaseError as exc:
            result.refused.append((case.id, exc.message))
        else:
            result.applied += 1
        if progress is not None:
            progress(i, preview.count)
    ws.audit(operator, "resolve.bulk", {"kind": preview.kind, "condition": preview.condition,
                                        "action": preview.action, "applied": result.applied,
                                        "refused": len(result.refused), "reason": reason})
    return result
