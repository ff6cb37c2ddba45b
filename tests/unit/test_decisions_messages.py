"""Refusal messages name identifiers in the escaped form the CLI's --raw and the dialogs read back."""

from __future__ import annotations

from keyshift.core.resolve import decisions
from keyshift.core.text.escape import escape, unescape


def test_collision_message_quotes_raws_in_the_escaped_form(monkeypatch):
    class Holders:
        def holders(self, new_id, base):
            return {"Initech\tLLC", 'Say "hi"\u200b'}

    monkeypatch.setattr(decisions, "settled_raws_with_new_id", lambda conn, new_id: set())
    ws = type("W", (), {"connect": lambda self: None})()
    case = type("C", (), {"members": []})()
    found = decisions._collisions(ws, case, {"a": "CUST-7"}, overrides=Holders())
    assert found == ["'CUST-7' is already the new id of \"Initech\\u0009LLC\"",
                     "'CUST-7' is already the new id of \"Say \"hi\"\\u200b\""]
    quoted = found[0].split('new id of "', 1)[1][:-1]
    assert unescape(quoted) == "Initech\tLLC" and quoted == escape("Initech\tLLC")
