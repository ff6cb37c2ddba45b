"""Keys several raw identifiers share: precedence and settlement from the old table's state."""

from __future__ import annotations

from keyshift.core.kernel.keymap import Keymap, KeymapEntry, sort_key_json
from keyshift.core.kernel.merged import is_shared, precedence, settle_shared_key, shared_new_id
from keyshift.core.kernel.transform import Delete, KeyNames, Put, Skip, transform

NAMES = KeyNames("customer", "order_id", "customer_id", "legacy")
KEYMAP = Keymap("t", {"Acme": KeymapEntry("C1", "rule"), "Acme\u200b": KeymapEntry("C1", "decision:1"),
                      "ACME": KeymapEntry("C1", "decision:1"), "Globex": KeymapEntry("C2", "rule")},
                winners={("C1", sort_key_json({"S": "o-conflict"})): "Acme\u200b"},
                primaries={"C1": "ACME"})


def old(customer: str, order: str, **attrs) -> dict:
    return {"customer": {"S": customer}, "order_id": {"S": order}, **attrs}


def reader(*items: dict):
    table = {(i["customer"]["S"], i["order_id"]["S"]): i for i in items}
    reads = []

    def read(key: dict) -> dict | None:
        reads.append(key["customer"]["S"])
        return table.get((key["customer"]["S"], key["order_id"]["S"]))
    return read, reads


def new_key(order: str, new_id: str = "C1") -> dict:
    return {"customer_id": {"S": new_id}, "order_id": {"S": order}}


def test_precedence_is_the_winner_alone_else_the_primary_then_code_point_order():
    assert precedence(KEYMAP, "C1", {"S": "o-conflict"}) == ("Acme\u200b",)
    assert precedence(KEYMAP, "C1", {"S": "o1"}) == ("ACME", "Acme", "Acme\u200b")
    no_primary = Keymap("t", KEYMAP.entries)
    assert precedence(no_primary, "C1", {"S": "o1"}) == ("ACME", "Acme", "Acme\u200b")  # code points: C < c
    open_conflict = Keymap("t", KEYMAP.entries, winners={("C1", sort_key_json({"S": "o1"})): ""})
    assert precedence(open_conflict, "C1", {"S": "o1"}) == ()
    assert is_shared(KEYMAP, "C1") and not is_shared(KEYMAP, "C2")


def test_the_first_spelling_in_precedence_with_an_item_stands():
    read, reads = reader(old("Acme", "o1", v={"N": "1"}), old("Acme\u200b", "o1", v={"N": "2"}))
    out = settle_shared_key(read, KEYMAP, NAMES, new_key("o1"))
    assert type(out) is Put and out.item["v"] == {"N": "1"} and out.item["legacy"] == {"S": "Acme"}
    assert reads == ["ACME", "Acme"]  # stops at the first found


def test_a_delete_of_one_spelling_keeps_the_others_item():
    # The record says "Acme\u200b deleted o2"; the new table must still hold Acme's o2.
    read, _ = reader(old("Acme", "o2", v={"N": "7"}))
    record = Delete(new_key("o2"))
    assert shared_new_id(record, KEYMAP, NAMES) == "C1"
    out = settle_shared_key(read, KEYMAP, NAMES, record.key)
    assert out == transform(old("Acme", "o2", v={"N": "7"}), KEYMAP, NAMES)


def test_no_spelling_with_an_item_deletes_and_the_loser_of_a_decided_conflict_never_stands():
    read, _ = reader()
    assert settle_shared_key(read, KEYMAP, NAMES, new_key("o3")) == Delete(new_key("o3"))
    read, _ = reader(old("Acme", "o-conflict"))  # only the loser's item is left
    assert settle_shared_key(read, KEYMAP, NAMES, new_key("o-conflict")) == Delete(new_key("o-conflict"))


def test_writes_of_keys_nobody_shares_are_left_alone():
    put = transform(old("Globex", "o1"), KEYMAP, NAMES)
    assert type(put) is Put and shared_new_id(put, KEYMAP, NAMES) is None
    assert shared_new_id(Skip("x", "dropped"), KEYMAP, NAMES) is None
