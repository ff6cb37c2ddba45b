"""core.transform: the one item rewrite (examples + hypothesis properties)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keyshift.core.spec import parse_spec
from keyshift.core.kernel.keymap import Keymap, KeymapEntry, sort_key_json
from keyshift.core.kernel.transform import (
    Delete,
    KeyNames,
    Put,
    Skip,
    inverse,
    transform,
    transform_key,
)

ZW = "\u200b"
NAMES = KeyNames(
    source_pk="customer",
    source_sk="order_id",
    target_pk="customer_id",
    legacy="legacy_customer",
)
NAMES_NO_LEGACY = KeyNames("customer", "order_id", "customer_id", None)
NAMES_SAME_PK = KeyNames("customer", "order_id", "customer", "legacy_customer")
NAMES_SAME_PK_NO_LEGACY = KeyNames("customer", "order_id", "customer", None)
NAMES_NO_SK = KeyNames("customer", None, "customer_id", "legacy_customer")
NAMES_LEGACY_IS_SOURCE = KeyNames("customer", "order_id", "customer_id", "customer")
ALL_NAMES = [
    NAMES,
    NAMES_NO_LEGACY,
    NAMES_SAME_PK,
    NAMES_SAME_PK_NO_LEGACY,
    NAMES_NO_SK,
    NAMES_LEGACY_IS_SOURCE,
]


def keymap(**kw) -> Keymap:
    entries = {
        "Acme": KeymapEntry("acme", "rule"),
        "Acme" + ZW: KeymapEntry("acme", "decision:3", "same entity"),
        "Globex": KeymapEntry("globex", "reference"),
        "Spam": KeymapEntry(None, "decision:12", "test data"),
    }
    return Keymap(
        version="v1",
        entries=entries,
        unresolved={"ＡＣＭＥ": "ambiguous group awaiting decision"},
        **kw,
    )


def item(customer="Acme", order="1", **extra) -> dict:
    return {
        "customer": {"S": customer},
        "order_id": {"S": order},
        "total": {"N": "3"},
        **extra,
    }


# ---------------------------------------------------------------- examples


def test_basic_put_replaces_key_and_keeps_values():
    src = item(customer="Acme" + ZW)
    out = transform(src, keymap(), NAMES)
    assert isinstance(out, Put)
    assert out.item == {
        "customer_id": {"S": "acme"},
        "legacy_customer": {"S": "Acme" + ZW},
        "order_id": {"S": "1"},
        "total": {"N": "3"},
    }
    assert out.item["total"] is src["total"]
    assert out.item["order_id"] is src["order_id"]
    assert "customer" in src  # input untouched
    assert out.item is not src


def test_same_pk_name_in_source_and_target():
    spec = parse_spec(
        '[source]\ntable="a"\npartition_key="customer"\nsort_key="order_id"\n[target]\ntable="b"\n'
    )
    names = KeyNames.from_spec(spec)
    assert names == NAMES_SAME_PK_NO_LEGACY
    src = item()
    out = transform(src, keymap(), names)
    assert out == Put(
        {"customer": {"S": "acme"}, "order_id": {"S": "1"}, "total": {"N": "3"}}
    )
    assert src["customer"] == {"S": "Acme"}
    with pytest.raises(
        ValueError, match="cannot invert"
    ):  # "acme" maps back from two raws
        inverse(out.item, names, keymap())
    globex = item(customer="Globex")
    assert inverse(transform(globex, keymap(), names).item, names, keymap()) == globex


def test_from_spec_with_legacy():
    spec = parse_spec(
        '[source]\ntable="a"\npartition_key="customer"\n'
        '[target]\ntable="b"\npartition_key="customer_id"\nlegacy_attribute="old"\n'
    )
    assert KeyNames.from_spec(spec) == KeyNames("customer", None, "customer_id", "old")


def test_keynames_rejects_legacy_on_a_key():
    with pytest.raises(ValueError):
        KeyNames("a", "b", "c", "c")
    with pytest.raises(ValueError):
        KeyNames("a", "b", "c", "b")
    with pytest.raises(ValueError):
        KeyNames("a", "b", "b", None)


def test_skip_dropped_names_the_decision():
    out = transform(item(customer="Spam"), keymap(), NAMES)
    assert isinstance(out, Skip) and out.kind == "dropped"
    assert (
        "decision:12" in out.reason
        and "'Spam'" in out.reason
        and "test data" in out.reason
    )


def test_skip_unresolved_carries_keymap_reason():
    out = transform(item(customer="ＡＣＭＥ"), keymap(), NAMES)
    assert isinstance(out, Skip) and out.kind == "unresolved"
    assert "ambiguous group awaiting decision" in out.reason
    out = transform(item(customer="Nobody"), keymap(), NAMES)
    assert out.kind == "unresolved" and "not in keymap v1" in out.reason


@pytest.mark.parametrize(
    "src, fragment",
    [
        ({"order_id": {"S": "1"}}, "missing identifier"),
        ({"customer": {"N": "7"}, "order_id": {"S": "1"}}, "is N, not a string"),
        ({"customer": {"NULL": True}, "order_id": {"S": "1"}}, "is NULL"),
        ({"customer": "Acme", "order_id": {"S": "1"}}, "is str"),
        ({"customer": {"S": "Acme"}}, "missing sort key"),
    ],
)
def test_skip_bad_key(src, fragment):
    out = transform(src, keymap(), NAMES)
    assert isinstance(out, Skip) and out.kind == "bad-key" and fragment in out.reason
    assert transform_key(src, keymap(), NAMES).kind == "bad-key"


def test_skip_invalid_new_id():
    km = Keymap(
        "v", {"x": KeymapEntry("", "rule"), "y": KeymapEntry("é" * 1025, "rule")}
    )
    assert transform(item(customer="x"), km, NAMES).kind == "invalid"
    assert transform(item(customer="y"), km, NAMES).kind == "invalid"


def test_conflict_loser_skipped_winner_put():
    sk = sort_key_json({"S": "1"})
    km = keymap(winners={("acme", sk): "Acme" + ZW})
    loser = transform(item(customer="Acme"), km, NAMES)
    assert isinstance(loser, Skip) and loser.kind == "conflict-loser"
    assert "'Acme'" in loser.reason and repr("Acme" + ZW) in loser.reason
    assert isinstance(transform(item(customer="Acme" + ZW), km, NAMES), Put)
    # another sort key: no conflict
    assert isinstance(transform(item(customer="Acme", order="2"), km, NAMES), Put)


def test_conflict_without_sort_key():
    km = keymap(winners={("acme", None): "Acme"})
    assert isinstance(transform(item(customer="Acme"), km, NAMES_NO_SK), Put)
    assert (
        transform(item(customer="Acme" + ZW), km, NAMES_NO_SK).kind == "conflict-loser"
    )


@pytest.mark.parametrize("attr", ["customer_id", "legacy_customer"])
def test_attribute_collision_never_overwrites(attr):
    src = item(**{attr: {"S": "precious"}})
    out = transform(src, keymap(), NAMES)
    assert isinstance(out, Skip) and out.kind == "collision" and attr in out.reason


def test_legacy_attribute_same_as_source_pk_keeps_it():
    src = item()
    out = transform(src, keymap(), NAMES_LEGACY_IS_SOURCE)
    assert out.item == {**src, "customer_id": {"S": "acme"}}
    assert out.item["customer"] is src["customer"]
    assert inverse(out.item, NAMES_LEGACY_IS_SOURCE) == src


def test_transform_key_for_remove():
    km = keymap()
    assert transform_key(
        {"customer": {"S": "Acme"}, "order_id": {"S": "1"}}, km, NAMES
    ) == Delete({"customer_id": {"S": "acme"}, "order_id": {"S": "1"}})
    assert transform_key({"customer": {"S": "Globex"}}, km, NAMES_NO_SK) == Delete(
        {"customer_id": {"S": "globex"}}
    )
    assert (
        transform_key(
            {"customer": {"S": "Spam"}, "order_id": {"S": "1"}}, km, NAMES
        ).kind
        == "dropped"
    )
    assert (
        transform_key(
            {"customer": {"S": "Nope"}, "order_id": {"S": "1"}}, km, NAMES
        ).kind
        == "unresolved"
    )
    same = transform_key(
        {"customer": {"S": "Acme"}, "order_id": {"N": "1"}}, km, NAMES_SAME_PK
    )
    assert same == Delete({"customer": {"S": "acme"}, "order_id": {"N": "1"}})


def test_transform_key_conflict_loser_does_not_delete_winner():
    km = keymap(winners={("acme", sort_key_json({"S": "1"})): "Acme"})
    out = transform_key(
        {"customer": {"S": "Acme" + ZW}, "order_id": {"S": "1"}}, km, NAMES
    )
    assert isinstance(out, Skip) and out.kind == "conflict-loser"
    assert isinstance(
        transform_key({"customer": {"S": "Acme"}, "order_id": {"S": "1"}}, km, NAMES),
        Delete,
    )


def test_inverse_with_legacy_recovers_merged_raws():
    for raw in ("Acme", "Acme" + ZW):
        src = item(customer=raw)
        assert inverse(transform(src, keymap(), NAMES).item, NAMES) == src


def test_inverse_without_legacy():
    km = keymap()
    src = item(customer="Globex")
    new = transform(src, km, NAMES_NO_LEGACY).item
    assert inverse(new, NAMES_NO_LEGACY, km) == src
    merged = transform(item(customer="Acme"), km, NAMES_NO_LEGACY).item
    with pytest.raises(ValueError, match="cannot invert: 2 raw identifiers"):
        inverse(merged, NAMES_NO_LEGACY, km)
    with pytest.raises(ValueError, match="cannot invert: no raw"):
        inverse({"customer_id": {"S": "zzz"}}, NAMES_NO_LEGACY, km)
    with pytest.raises(ValueError, match="cannot invert"):
        inverse(new, NAMES_NO_LEGACY)
    with pytest.raises(ValueError, match="cannot invert"):
        inverse({"customer_id": {"N": "1"}}, NAMES_NO_LEGACY, km)
    with pytest.raises(ValueError, match="cannot invert: legacy"):
        inverse({"customer_id": {"S": "acme"}}, NAMES)


def test_inverse_refuses_to_overwrite_source_pk():
    with pytest.raises(ValueError, match="collision"):
        inverse(
            {
                "customer_id": {"S": "acme"},
                "legacy_customer": {"S": "Acme"},
                "customer": {"S": "x"},
            },
            NAMES,
        )


def test_keymap_reverse_index_is_cached():
    km = keymap()
    assert km.reverse is km.reverse
    assert sorted(km.raws_for("acme")) == ["Acme", "Acme" + ZW]
    assert km.raws_for("nobody") == ()
    assert km.lookup("Spam") == KeymapEntry(None, "decision:12", "test data")
    assert km.lookup("x") is None


# ---------------------------------------------------------------- properties

names_st = st.text(min_size=1, max_size=8)
scalar = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=10)),
    st.builds(lambda n: {"N": str(n)}, st.integers()),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
)
wire_value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=4)),
        st.builds(lambda m: {"M": m}, st.dictionaries(names_st, inner, max_size=4)),
    ),
    max_leaves=12,
)
raw_st = st.text(min_size=1, max_size=6)
KEY_ATTRS = {"customer", "order_id", "customer_id", "legacy_customer"}


@st.composite
def mapped_world(draw):
    """A keymap over some raws (some merged, some dropped) and items using them."""
    raws = draw(st.lists(raw_st, min_size=1, max_size=6, unique=True))
    new_ids = draw(
        st.lists(
            st.sampled_from(["a", "b", "c", "d", "e", "f"]),
            min_size=len(raws),
            max_size=len(raws),
        )
    )
    dropped = draw(st.sets(st.sampled_from(raws), max_size=1))
    entries = {
        r: KeymapEntry(None if r in dropped else n, "rule")
        for r, n in zip(raws, new_ids)
    }
    km = Keymap("h", entries)
    extra = draw(
        st.dictionaries(
            names_st.filter(lambda n: n not in KEY_ATTRS), wire_value, max_size=6
        )
    )
    raw = draw(st.sampled_from(raws))
    src = {
        "customer": {"S": raw},
        "order_id": draw(scalar.filter(lambda v: bool(v.get("S")) or "N" in v)),  # a storable sort key
        **extra,
    }
    return km, src


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mapped_world(), st.sampled_from(ALL_NAMES))
def test_prop_non_key_attributes_are_the_same_objects(world, names):
    km, src = world
    before = dict(src)
    out = transform(src, km, names)
    assert src == before and all(src[k] is before[k] for k in before)  # input untouched
    entry = km.lookup(src["customer"]["S"])
    if entry.new_id is None:
        assert isinstance(out, Skip) and out.kind == "dropped"
        return
    assert isinstance(out, Put)
    keys = {names.source_pk, names.target_pk, names.legacy}
    for name, value in src.items():
        if name not in keys:
            assert out.item[name] is value
            assert out.item[name] == value
    assert set(out.item) - keys == set(src) - keys


@settings(max_examples=80, deadline=None)
@given(mapped_world(), st.sampled_from(ALL_NAMES))
def test_prop_output_key_is_exactly_the_entry_new_id(world, names):
    km, src = world
    raw = src["customer"]["S"]
    out = transform(src, km, names)
    if isinstance(out, Put):
        assert out.item[names.target_pk] == {"S": km.entries[raw].new_id}
        # so two raws share a new id only when their entries say so
        others = {
            r for r, e in km.entries.items() if e.new_id == km.entries[raw].new_id
        }
        assert set(km.raws_for(out.item[names.target_pk]["S"])) == others
        if names.legacy:
            assert out.item[names.legacy] == {"S": raw}
        key = transform_key(
            {"customer": src["customer"], "order_id": src["order_id"]}, km, names
        )
        assert key == Delete(
            {names.target_pk: out.item[names.target_pk], "order_id": src["order_id"]}
            if names.source_sk
            else {names.target_pk: out.item[names.target_pk]}
        )


@settings(max_examples=80, deadline=None)
@given(mapped_world(), st.sampled_from(ALL_NAMES))
def test_prop_inverse_round_trips(world, names):
    km, src = world
    out = transform(src, km, names)
    if not isinstance(out, Put):
        return
    raw = src["customer"]["S"]
    one_to_one = len(km.raws_for(km.entries[raw].new_id)) == 1
    if names.legacy is not None:
        assert inverse(out.item, names) == src
        assert inverse(out.item, names, km) == src
    elif one_to_one:
        assert inverse(out.item, names, km) == src
    else:
        with pytest.raises(ValueError, match="cannot invert"):
            inverse(out.item, names, km)


@settings(max_examples=50, deadline=None)
@given(mapped_world(), st.sampled_from(ALL_NAMES))
def test_prop_conflict_loser_never_written(world, names):
    km, src = world
    raw = src["customer"]["S"]
    entry = km.entries[raw]
    if entry.new_id is None:
        return
    sk = sort_key_json(src["order_id"]) if names.source_sk else None
    other = "\x00winner"
    km2 = Keymap(km.version, km.entries, winners={(entry.new_id, sk): other})
    out = transform(src, km2, names)
    assert isinstance(out, Skip) and out.kind == "conflict-loser"
    assert (
        transform_key(
            {"customer": src["customer"], "order_id": src["order_id"]}, km2, names
        ).kind
        == "conflict-loser"
    )
    km3 = Keymap(km.version, km.entries, winners={(entry.new_id, sk): raw})
    assert isinstance(transform(src, km3, names), Put)


def test_sort_key_json_is_byte_for_byte_what_the_planner_writes() -> None:
    """The kernel renders sort keys with the stdlib; the planner with orjson. Winners are looked up
    by that text, so one differing character would let a conflict loser through."""
    import orjson

    values = [{"S": "k" + chr(cp)} for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    values += [{"N": "-1.50"}, {"B": "AQID"}, {"S": "\"\\\n\t\x00\u2028"}]
    mismatches = [v for v in values if sort_key_json(v) != orjson.dumps(v).decode()]
    assert mismatches == []


@pytest.mark.parametrize("item", [
    {"customer": {"S": "x" * 2049}, "order_id": {"S": "o"}},
    {"customer": {"S": "é" * 1025}, "order_id": {"S": "o"}},  # 2,050 UTF-8 bytes
    {"customer": {"S": ""}, "order_id": {"S": "o"}},
    {"customer": {"S": "Acme"}, "order_id": {"S": "o" * 1025}},
    {"customer": {"S": "Acme"}, "order_id": {"S": ""}},
])
def test_an_item_no_table_can_hold_is_never_written_whatever_the_keymap(item):
    """Regression: a dump line keyed over 2,048 bytes, mapped by a decision, was restored, and
    verify (which reads the old table, where it cannot be) then called it extra."""
    raw = item["customer"]["S"]
    keymap = Keymap("v", {raw: KeymapEntry("X", "decision:1")})
    for outcome in (transform(item, keymap, NAMES), transform_key(item, keymap, NAMES)):
        assert isinstance(outcome, Skip) and outcome.kind == "bad-key", outcome
        assert "DynamoDB" in outcome.reason
