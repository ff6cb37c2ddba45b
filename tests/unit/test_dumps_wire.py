"""Wire format: every casing converts to uppercase; every malformed descriptor is named."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyshift.core.dumps.wire import (WireError, canonical_type_key, convert_item, is_number,
                                      is_wire, to_wire)

# --------------------------------------------------------------------------------------------
# Canonical items: fast path, no copy.


def test_canonical_item_is_returned_as_is():
    item = {"a": {"S": "x"}, "b": {"N": "1.5"}, "c": {"M": {"d": {"L": [{"NULL": True}]}}},
            "e": {"BOOL": False}, "f": {"SS": ["p", "q"]}, "g": {"NS": ["1", "-2e3"]},
            "h": {"B": "AQID"}, "i": {"BS": ["AQID", "BAUG"]}}
    snapshot = copy.deepcopy(item)
    assert is_wire(item.values())
    assert convert_item(item) is item
    assert item == snapshot


@pytest.mark.parametrize("key, expected", [
    ("s", "S"), ("S", "S"), ("n", "N"), ("b", "B"), ("sS", "SS"), ("SS", "SS"), ("ss", "SS"),
    ("Ss", "SS"), ("nS", "NS"), ("bS", "BS"), ("m", "M"), ("l", "L"), ("bOOL", "BOOL"),
    ("Bool", "BOOL"), ("nULL", "NULL"), ("NULL", "NULL"), ("null", "NULL"),
    ("nULLValue", "NULL"), ("NULLVALUE", "NULL"), ("X", None), ("string", None), ("ſ", None),
])
def test_canonical_type_key(key, expected):
    assert canonical_type_key(key) == expected


def test_lower_camel_item_converts_recursively():
    dp = {"Id": {"n": "103"}, "Title": {"s": "Book 103"}, "Authors": {"sS": ["A1", "A2"]},
          "InPublication": {"bOOL": False}, "Blob": {"b": "AQID"}, "Tags": {"l": [{"s": "x"}]},
          "Dims": {"m": {"w": {"n": "8.5"}, "deep": {"l": [{"m": {"z": {"nULL": True}}}]}}},
          "Gone": {"nULLValue": True}, "Nums": {"nS": ["1"]}, "Bins": {"bS": ["AQID"]}}
    assert not is_wire(dp.values())
    assert to_wire(dp) == {
        "Id": {"N": "103"}, "Title": {"S": "Book 103"}, "Authors": {"SS": ["A1", "A2"]},
        "InPublication": {"BOOL": False}, "Blob": {"B": "AQID"}, "Tags": {"L": [{"S": "x"}]},
        "Dims": {"M": {"w": {"N": "8.5"}, "deep": {"L": [{"M": {"z": {"NULL": True}}}]}}},
        "Gone": {"NULL": True}, "Nums": {"NS": ["1"]}, "Bins": {"BS": ["AQID"]}}


def test_mixed_casing_keeps_attribute_order():
    item = {"z": {"S": "1"}, "a": {"s": "2"}, "m": {"N": "3"}}
    out = convert_item(item)
    assert list(out) == ["z", "a", "m"]
    assert out == {"z": {"S": "1"}, "a": {"S": "2"}, "m": {"N": "3"}}


# --------------------------------------------------------------------------------------------
# Errors name the attribute path and the reason.


@pytest.mark.parametrize("item, message", [
    ({"a": {"X": "1"}}, "unknown type key 'X' in attribute 'a'"),
    ({"a": {"M": {"b": {"zz": 1}}}}, "unknown type key 'zz' in attribute 'a.b'"),
    ({"a": {"L": [{"S": "x"}, {"Q": 1}]}}, "unknown type key 'Q' in attribute 'a[1]'"),
    ({"a": {"m": {"b": {"l": [{"m": {"c": {"s": 5}}}]}}}}, "in attribute 'a.b[0].c'"),
    ({"a": "S"}, "type descriptor must be an object with one key, got string in attribute 'a'"),
    ({"a": ["N"]}, "got array in attribute 'a'"),
    ({"a": 5}, "got number in attribute 'a'"),
    ({"a": None}, "got null in attribute 'a'"),
    ({"a": {}}, "exactly one key, got an empty object in attribute 'a'"),
    ({"a": {"S": "x", "N": "1"}}, "exactly one key, got 2 keys ('S', 'N') in attribute 'a'"),
    ({"a": {"S": 1}}, "S value must be a string, got number in attribute 'a'"),
    ({"a": {"s": None}}, "s value must be a string, got null in attribute 'a'"),
    ({"a": {"N": 5}}, "N value must be a string, got number in attribute 'a'"),
    ({"a": {"N": "abc"}}, "invalid number \"abc\" in attribute 'a'"),
    ({"a": {"N": ""}}, "invalid number"),
    ({"a": {"N": "1_000"}}, "invalid number"),
    ({"a": {"N": "NaN"}}, "invalid number"),
    ({"a": {"N": "\u0661"}}, "invalid number"),  # an Arabic-Indic digit: not ASCII
    ({"a": {"B": "AQ"}}, "invalid base64 in attribute 'a'"),
    ({"a": {"B": "not base64!"}}, "invalid base64"),
    ({"a": {"B": 12}}, "B value must be a base64 string, got number"),
    ({"a": {"BOOL": "true"}}, "BOOL value must be true or false, got string"),
    ({"a": {"NULL": False}}, "NULL value must be true, got false in attribute 'a'"),
    ({"a": {"nULLValue": 1}}, "nULLValue value must be true"),
    ({"a": {"SS": "x"}}, "SS value must be an array of strings, got string"),
    ({"a": {"SS": []}}, "empty SS set in attribute 'a'"),
    ({"a": {"sS": ["x", 1]}}, "sS value must be an array of strings, found number"),
    ({"a": {"SS": ["x", "x"]}}, "duplicate values in SS set"),
    ({"a": {"NS": ["1", "one"]}}, "invalid number \"one\" in NS set"),
    ({"a": {"BS": ["AQID", "%%"]}}, "invalid base64 in BS set"),
    ({"a": {"M": []}}, "M value must be an object, got array"),
    ({"a": {"L": {}}}, "L value must be an array, got object"),
    ({"a": {"L": "abc"}}, "L value must be an array, got string"),
])
def test_errors_name_attribute_and_reason(item, message):
    assert not is_wire(item.values())
    with pytest.raises(WireError) as exc:
        to_wire(item)
    assert message in str(exc.value)


@pytest.mark.parametrize("value", ["0", "-1", "12.5", "-0.001", ".5", "5.", "1e10", "1E+5",
                                   "-2.5e-3", "00012", "+1"])
def test_numbers_accepted(value):
    assert is_number(value)
    assert is_wire([{"N": value}])


@pytest.mark.parametrize("value", ["", "-", ".", "e5", "1e", "1.2.3", "--1", "1-", " 1", "1 ",
                                   "inf", "-Infinity", "nan", "0x10", "1_0", "\uff11"])
def test_numbers_rejected(value):
    assert not is_number(value)
    assert not is_wire([{"N": value}])


def test_non_object_descriptors_never_raise_from_is_wire():
    for bad in ("S", "N", "M", "L", "SS", ["S"], ["N"], [0], 1, 1.5, None, True, {"L": {}},
                {"L": ""}, {"M": "x"}, {"N": ["1"]}, {"N": 1}, {"S": None}):
        assert is_wire([bad]) is False


def test_deep_nesting_is_a_wire_error_not_a_crash():
    d: dict = {"S": "x"}
    for _ in range(5000):
        d = {"L": [d]}
    assert is_wire([d]) is False
    with pytest.raises((WireError, RecursionError)):
        to_wire({"a": d})


# --------------------------------------------------------------------------------------------
# Properties: any valid wire item passes unchanged; any re-casing converts back to it.

_scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=8)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-10**12, 10**12)),
    st.builds(lambda n: {"N": repr(n)}, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda b: {"B": __import__("base64").b64encode(b).decode()}, st.binary(max_size=8)),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=4), min_size=1, max_size=3)),
    st.builds(lambda s: {"NS": sorted(map(str, s))}, st.sets(st.integers(), min_size=1, max_size=3)),
)
_descs = st.recursive(_scalars, lambda inner: st.one_of(
    st.builds(lambda m: {"M": m}, st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=3)),
), max_leaves=10)
_items = st.dictionaries(st.text(min_size=1, max_size=6), _descs, max_size=6)

_SPELLINGS = {"S": ["s", "S"], "N": ["n", "N"], "B": ["b", "B"], "SS": ["sS", "ss", "SS"],
              "NS": ["nS", "Ns"], "BS": ["bS", "bs"], "M": ["m", "M"], "L": ["l", "L"],
              "BOOL": ["bOOL", "bool", "Bool"], "NULL": ["nULL", "nULLValue", "null", "NULL"]}


def _recase(desc: dict, pick) -> dict:
    (k, v), = desc.items()
    key = pick(_SPELLINGS[k])
    if k == "M":
        v = {n: _recase(d, pick) for n, d in v.items()}
    elif k == "L":
        v = [_recase(d, pick) for d in v]
    return {key: v}


@settings(max_examples=60, deadline=None)
@given(_items)
def test_valid_wire_items_pass_unchanged(item):
    assert is_wire(item.values())
    assert convert_item(item) is item


@settings(max_examples=60, deadline=None)
@given(_items, st.randoms(use_true_random=False))
def test_any_casing_converts_back(item, rnd):
    recased = {n: _recase(d, rnd.choice) for n, d in item.items()}
    assert to_wire(recased) == item
