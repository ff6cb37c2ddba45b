"""The inverse keymap: ``inverse``, ``inverse_key`` and the reverse sync's record outcomes.

The property: for every item, ``inverse(transform(item))`` is the item itself under the spelling
the keymap sends the new key back to (the conflict's winner, the only raw, or the merged raws'
primary); with a legacy attribute it is exactly the item.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyshift.core.kernel.keymap import Keymap, KeymapEntry, sort_key_json
from keyshift.core.kernel.reverse_records import reduce_reverse, reverse_outcome
from keyshift.core.kernel.transform import (
    Delete,
    KeyNames,
    Put,
    Skip,
    inverse,
    inverse_key,
    spelling_for,
    transform,
    transform_key,
)

ZW = "\u200b"
NAMES = KeyNames("customer", "order_id", "customer_id", "legacy_customer")
NO_LEGACY = KeyNames("customer", "order_id", "customer_id", None)
SAME_PK = KeyNames("customer", "order_id", "customer", None)
NO_SK = KeyNames("customer", None, "customer_id", None)
LEGACY_IS_SOURCE = KeyNames("customer", "order_id", "customer_id", "customer")
ALL = [NAMES, NO_LEGACY, SAME_PK, NO_SK, LEGACY_IS_SOURCE]

KEYMAP = Keymap(
    "rev",
    {"Acme": KeymapEntry("C1", "rule"), "Acme" + ZW: KeymapEntry("C1", "decision:1"),
     "ＡＣＭＥ": KeymapEntry("C1", "decision:1"), "Globex": KeymapEntry("C2", "rule"),
     "Initech": KeymapEntry(None, "decision:2", "gone")},
    winners={("C1", sort_key_json({"S": "o9"})): "Acme" + ZW},
    primaries={"C1": "Acme"},
)


def item(raw: str, order: str = "o1", **extra) -> dict:
    return {"customer": {"S": raw}, "order_id": {"S": order}, "v": {"N": "1"}, **extra}


def test_merged_raws_go_back_to_the_primary():
    for raw in ("Acme", "Acme" + ZW, "ＡＣＭＥ"):
        new = transform(item(raw), KEYMAP, NO_LEGACY).item
        assert inverse(new, NO_LEGACY, KEYMAP) == item("Acme")
        assert inverse(transform(item(raw), KEYMAP, NAMES).item, NAMES, KEYMAP) == item(raw)  # legacy: exact


def test_a_conflict_key_goes_back_to_its_winner():
    new = transform(item("Acme" + ZW, "o9"), KEYMAP, NO_LEGACY).item
    assert inverse(new, NO_LEGACY, KEYMAP) == item("Acme" + ZW, "o9")
    assert inverse_key({"customer_id": {"S": "C1"}, "order_id": {"S": "o9"}}, NO_LEGACY, KEYMAP) == \
        {"customer": {"S": "Acme" + ZW}, "order_id": {"S": "o9"}}


def test_merged_without_a_primary_cannot_be_inverted():
    km = Keymap("x", dict(KEYMAP.entries))
    with pytest.raises(ValueError, match="names no primary"):
        inverse({"customer_id": {"S": "C1"}, "order_id": {"S": "o1"}}, NO_LEGACY, km)
    with pytest.raises(ValueError, match="no raw identifier"):
        inverse_key({"customer_id": {"S": "NEW"}, "order_id": {"S": "o1"}}, NO_LEGACY, KEYMAP)


def test_a_missing_legacy_attribute_falls_back_to_the_keymap():
    new = {"customer_id": {"S": "C2"}, "order_id": {"S": "o1"}, "v": {"N": "1"}}  # a service wrote it
    assert inverse(new, NAMES, KEYMAP) == item("Globex")
    with pytest.raises(ValueError, match="legacy"):
        inverse(new, NAMES)


def test_inverse_key_of_remove_keys():
    for names in ALL:
        old = item("Globex")
        new_key = transform_key({k: old[k] for k in ("customer", "order_id")}, KEYMAP, names).key
        expected = {"customer": {"S": "Globex"}}
        if names.source_sk:
            expected["order_id"] = {"S": "o1"}
        assert inverse_key(new_key, names, KEYMAP) == expected


def _record(event: str, *, new=None, keys=None) -> dict:
    body = {"SequenceNumber": "1"}
    if new is not None:
        body["NewImage"] = new
    if keys is not None:
        body["Keys"] = keys
    return {"eventName": event, "dynamodb": body}


def test_reverse_outcome_moves_a_merged_key_to_its_primary():
    new = {"customer_id": {"S": "C1"}, "order_id": {"S": "o1"}, "v": {"N": "2"}}
    out = reverse_outcome(_record("MODIFY", new=new), KEYMAP, NO_LEGACY)
    assert out[0] == Put({"customer": {"S": "Acme"}, "order_id": {"S": "o1"}, "v": {"N": "2"}})
    assert set(map(str, out[1:])) == {str(Delete({"customer": {"S": r}, "order_id": {"S": "o1"}}))
                                       for r in ("Acme" + ZW, "ＡＣＭＥ")}
    gone = reverse_outcome(_record("REMOVE", keys={"customer_id": {"S": "C1"}, "order_id": {"S": "o1"}}),
                           KEYMAP, NO_LEGACY)
    assert {d.key["customer"]["S"] for d in gone} == {"Acme", "Acme" + ZW, "ＡＣＭＥ"}
    assert all(type(d) is Delete for d in gone)
    # A conflict key: its losers' items are kept, never deleted.
    won = reverse_outcome(_record("REMOVE", keys={"customer_id": {"S": "C1"}, "order_id": {"S": "o9"}}),
                          KEYMAP, NO_LEGACY)
    assert won == (Delete({"customer": {"S": "Acme" + ZW}, "order_id": {"S": "o9"}}),)
    # The legacy attribute names the spelling: nothing else is touched.
    legacy = transform(item("ＡＣＭＥ"), KEYMAP, NAMES).item
    assert reverse_outcome(_record("INSERT", new=legacy), KEYMAP, NAMES) == (Put(item("ＡＣＭＥ")),)


def test_reverse_outcome_skips_what_has_no_old_spelling():
    out = reverse_outcome(_record("INSERT", new={"customer_id": {"S": "NEW-9"}, "order_id": {"S": "o"}}),
                          KEYMAP, NO_LEGACY)
    assert isinstance(out, Skip) and out.kind == "no-raw"
    assert reverse_outcome(_record("MODIFY"), KEYMAP, NO_LEGACY).kind == "no-image"
    assert reverse_outcome(_record("REMOVE"), KEYMAP, NO_LEGACY).kind == "bad-key"
    assert reverse_outcome(_record("BOGUS"), KEYMAP, NO_LEGACY).kind == "unknown-event"
    bad = reverse_outcome(_record("INSERT", new={"customer_id": {"N": "1"}, "order_id": {"S": "o"}}),
                          KEYMAP, NO_LEGACY)
    assert bad.kind == "bad-key"


def test_reduce_reverse_keeps_the_last_write_per_old_key():
    a1 = Put(item("Globex", v={"N": "1"}))
    a2 = Put(item("Globex", v={"N": "2"}))
    b = Delete({"customer": {"S": "Acme"}, "order_id": {"S": "o1"}})
    writes = reduce_reverse([(a1,), Skip("x", "no-raw"), (b,), (a2,)], NO_LEGACY)
    assert len(writes) == 2 and a2 in writes and b in writes and a1 not in writes


# -- the property ---------------------------------------------------------------------------------
scalar = st.one_of(st.builds(lambda s: {"S": s}, st.text(max_size=6)),
                   st.builds(lambda n: {"N": str(n)}, st.integers()),
                   st.builds(lambda b: {"BOOL": b}, st.booleans()))
raw_st = st.text(min_size=1, max_size=5)


@st.composite
def merged_world(draw):
    """A keymap that merges some raws (with a primary for each merge, as keymap build writes),
    drops some, has a conflict winner or not, and one item of one of its raws."""
    raws = draw(st.lists(raw_st, min_size=1, max_size=6, unique=True))
    ids = draw(st.lists(st.sampled_from("abc"), min_size=len(raws), max_size=len(raws)))
    dropped = draw(st.sets(st.sampled_from(raws), max_size=1))
    entries = {r: KeymapEntry(None if r in dropped else n, "rule") for r, n in zip(raws, ids)}
    groups: dict[str, list[str]] = {}
    for r, e in entries.items():
        if e.new_id is not None:
            groups.setdefault(e.new_id, []).append(r)
    primaries = {n: draw(st.sampled_from(rs)) for n, rs in groups.items() if len(rs) > 1}
    order = draw(st.builds(lambda s: {"S": s}, st.text(min_size=1, max_size=3)))
    winners = {}
    if groups and draw(st.booleans()):
        n = draw(st.sampled_from(sorted(groups)))
        winners[(n, sort_key_json(order))] = draw(st.sampled_from(groups[n]))
    km = Keymap("p", entries, winners=winners, primaries=primaries)
    extra = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), scalar, max_size=3))
    src = {"customer": {"S": draw(st.sampled_from(raws))}, "order_id": order, **extra}
    return km, src


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(merged_world(), st.sampled_from(ALL))
def test_prop_inverse_of_transform_is_the_item_under_its_spelling(world, names):
    km, src = world
    out = transform(src, km, names)
    if not isinstance(out, Put):
        return
    new_id = out.item[names.target_pk]["S"]
    sk_json = sort_key_json(src["order_id"]) if names.source_sk else None
    spelling = spelling_for(new_id, sk_json, km)
    back = inverse(out.item, names, km)
    if names.legacy is not None:
        assert back == src  # the legacy attribute carries the exact spelling
    else:
        assert back == {**src, "customer": {"S": spelling}}
    # and going forward again lands on the same new item (the reverse write is not a new conflict)
    again = transform(back, km, names)
    if spelling == src["customer"]["S"] or names.legacy is not None:
        assert again == out
    key = transform_key({k: src[k] for k in ("customer", "order_id") if k == "customer" or names.source_sk},
                        km, names)
    if isinstance(key, Delete):
        assert inverse_key(key.key, names, km)["customer"] == {"S": spelling}
