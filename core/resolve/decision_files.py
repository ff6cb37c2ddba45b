"""Export and import decisions as a reviewable JSON file (``keyshift-decisions/1``).

The file carries every decision in force with its case id, kind, action, payload, reason, who and
when, so decisions can be reviewed and committed, or applied to another workspace or another table
that shares the identifier (case ids are hashes of the identifiers, not workspace row ids).
Import is idempotent: a decision already in force is skipped; a case that holds a different
decision is reported as a conflict and left alone; a decision that no longer validates (unknown
case, new collision) is reported with the reason.
"""

from __future__ import annotations

from typing import Any

from .cases import CaseError, list_cases
from .decisions import decide
from ..errors import KeyshiftError
from ..store.workspace import Workspace, utcnow

__all__ = ["FORMAT", "export_decisions", "import_decisions"]

FORMAT = "keyshift-decisions/1"


def export_decisions(ws: Workspace) -> dict[str, Any]:
    """Every decision in force, one per case."""
    decisions = []
    for case in list_cases(ws):
        d = case.decision
        if d is not None:
            decisions.append({"case_id": case.id, "kind": case.kind, "action": d["action"],
                              "payload": d["payload"], "reason": d["reason"],
                              "operator": d["operator"], "ts": d["ts"],
                              "members": [m.escaped for m in case.members]})
    return {"format": FORMAT, "exported_at": utcnow(), "decisions": decisions}


def import_decisions(ws: Workspace, doc: dict[str, Any], *, operator: str) -> dict[str, Any]:
    """Apply a decisions file; returns counts and the list of conflicts/refusals."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyshiftError(f"not a keyshift decisions file (expected format {FORMAT!r})")
    cases = {c.id: c for c in list_cases(ws)}
    report: dict[str, Any] = {"applied": 0, "already": 0, "conflicts": [], "refused": []}
    for entry in doc.get("decisions", []):
        cid = entry.get("case_id")
        case = cases.get(cid)
        if case is None:
            report["refused"].append({"case_id": cid, "reason": "no such case in this plan"})
            continue
        current = case.decision
        if current is not None:
            same = (current["action"], current["payload"]) == (entry["action"], entry["payload"])
            if same:
                report["already"] += 1
            else:
                report["conflicts"].append({"case_id": cid, "here": current["action"], "file": entry["action"],
                                            "here_by": current["operator"], "file_by": entry.get("operator")})
            continue
        payload = entry.get("payload", {})
        try:
            decide(ws, case, entry["action"], reason=entry.get("reason", ""),
                   operator=f"{entry.get('operator', '?')} (imported by {operator})",
                   new_id=payload.get("id"), mapping=payload.get("map"),
                   raws=payload.get("raws") or ([payload["raw"]] if "raw" in payload else None),
                   allow_suspicious=bool(payload.get("allow_suspicious")))
        except CaseError as exc:
            report["refused"].append({"case_id": cid, "reason": exc.message})
            continue
        report["applied"] += 1
        cases = {c.id: c for c in list_cases(ws)}  # later entries validate against this one
    return report
