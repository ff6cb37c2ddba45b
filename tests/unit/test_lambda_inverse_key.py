"""The kernel's way back for keys (reverse direction REMOVE records) and the writer's key text."""

from __future__ import annotations

import pytest

from keyshift.core.kernel.batch_writer import key_text
from keyshift.core.kernel.inverse_key import inverse_item, inverse_key, raw_for_new_id
from keyshift.core.kernel.keymap import Keymap, KeymapEntry
from keyshift.core.kernel.transform import KeyNames, Put, transform

ENTRIES = {"Acme": KeymapEntry("C-1", "rule"), "Acme\u200b": KeymapEntry("C-1", "decision:1"),
           "Globex": KeymapEntry("C-2", "rule")}
MERGED = Keymap("v1", ENTRIES, primaries={"C-1": "Acme"})
NO_PRIMARY = Keymap("v2", ENTRIES)
NAMES = KeyNames("customer", "order_id", "customer_id", None)
LEGACY = KeyNames("customer", "order_id", "customer_id", "legacy")


def test_the_raw_a_new_id_goes_back_to():
    assert raw_for_new_id("C-2", MERGED) == "Globex"
    assert raw_for_new_id("C-1", MERGED) == "Acme"  # several raws: the decision's primary
    with pytest.raises(ValueError, match="2 raw identifiers and no primary"):
        raw_for_new_id("C-1", NO_PRIMARY)
    with pytest.raises(ValueError, match="no raw identifier"):
        raw_for_new_id("C-9", MERGED)


def test_inverse_key_is_the_key_of_the_inverse_item():
    for raw in ENTRIES:
        item = {"customer": {"S": raw}, "order_id": {"S": "o1"}, "total": {"N": "1"}}
        for names in (NAMES, LEGACY):
            new = transform(item, MERGED, names)
            assert type(new) is Put
            keys = {"customer_id": new.item["customer_id"], "order_id": new.item["order_id"]}
            old_key = inverse_key(keys, names, MERGED, old_image=new.item)
            old_item = inverse_item(new.item, names, MERGED)
            assert old_key == {"customer": old_item["customer"], "order_id": {"S": "o1"}}
            # With a legacy attribute the exact raw spelling comes back; without, the primary.
            expected = raw if names.legacy else ("Acme" if raw.startswith("Acme") else raw)
            assert old_key["customer"] == {"S": expected}


def test_inverse_key_refuses_what_it_cannot_recover():
    with pytest.raises(ValueError, match="cannot invert"):
        inverse_key({"customer_id": {"S": "C-9"}, "order_id": {"S": "o"}}, NAMES, MERGED)
    with pytest.raises(ValueError, match="sort key attribute 'order_id' is missing"):
        inverse_key({"customer_id": {"S": "C-2"}}, NAMES, MERGED)
    with pytest.raises(ValueError, match="cannot invert"):
        inverse_item({"customer_id": {"S": "C-1"}, "order_id": {"S": "o"}}, NAMES, NO_PRIMARY)


def test_key_text_is_the_same_for_base64_text_and_bytes():
    attrs = ("customer_id", "order_id")
    as_text = {"customer_id": {"S": "C-1"}, "order_id": {"B": "AQI="}, "x": {"N": "1"}}
    as_bytes = {"customer_id": {"S": "C-1"}, "order_id": {"B": b"\x01\x02"}}
    assert key_text(as_text, attrs) == key_text(as_bytes, attrs)
    assert key_text(as_text, attrs) != key_text({**as_text, "order_id": {"S": "AQI="}}, attrs)
