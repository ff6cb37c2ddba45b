"""Keymap-level property: two raw identifiers share a new id only when a `same` decision says so."""

import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyshift.core.resolve.cases import CaseError, list_cases
from keyshift.core.resolve.decisions import ACTIONS, decide
from keyshift.core.resolve.keymap_build import build_keymap
from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace

from .test_plan import SPEC, item, write_dump

# Few base names and dirt, so collisions (ambiguous groups, conflicts) are common.
raws = st.builds(lambda base, dirt: base + dirt, st.sampled_from(["Acme", "Bolt", "Cog", "ACME"]),
                 st.sampled_from(["", "\u200b", "\u00a0", " ", "\ufeff"]))
choices = st.lists(st.tuples(st.integers(0, 99), st.sampled_from(["X", "Y", "Acme", "Bolt", "Z"])),
                   min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(identifiers=st.lists(raws, min_size=1, max_size=12), picks=choices)
def test_no_two_raws_share_a_new_id_without_a_same_decision(identifiers, picks):
    with tempfile.TemporaryDirectory() as tmp:
        dump = write_dump(Path(tmp) / "d.json", [item(r, str(i % 3)) for i, r in enumerate(identifiers)])
        ws = Workspace(Path(tmp) / "ws")
        plan_to_completion(ws, parse_spec(SPEC), dump)
        for pick, new_id in picks:  # random decisions; refusals are part of the property
            cases = list_cases(ws)
            if not cases:
                break
            case = cases[pick % len(cases)]
            action = ACTIONS[case.kind][pick % len(ACTIONS[case.kind])]
            members = [m.raw for m in case.members]
            try:
                decide(ws, case, action, reason="property", operator="h", new_id=new_id,
                       mapping={r: f"{new_id}-{i}" for i, r in enumerate(members)},
                       raws=members[:1])
            except CaseError:
                pass
        keymap = build_keymap(ws, allow_unresolved=True).keymap
        same_groups = [
            {m.raw for m in c.members} for c in list_cases(ws)
            if c.decision is not None and c.decision["action"] == "same"
        ]
        for (a, ea), (b, eb) in itertools.combinations(keymap.entries.items(), 2):
            if ea.new_id is not None and ea.new_id == eb.new_id:
                assert any({a, b} <= g for g in same_groups), (a, b, ea.new_id)
        ws.close()
