"""The router's keymap (``key()``, from ``keymap=`` or the flag's ``keymap_uri``) and ``get_item``:
old, new, and shadow reads compared through ``transform`` and counted with an atomic ADD."""

from __future__ import annotations

import json
import random

import pytest

from keyshift.core.kernel.keymap import keymap_from_document
from keyshift.core.kernel.transform import KeyNames, Put, transform
from keyshift.core.router import MigrationRouter, RouterError, UnmappedIdentifier, same_item

from .router_world import (CONTROL, FLAG, NAMES, NEW, OLD, FakeClock, control_items, counted, create_control_table,
                           create_data_tables, flip, keymap_doc, put_flag)

ENTRIES = {"Acme\u200b": "C-1", "Acme": "C-1", "Beta": "C-2", "Gamma ": "C-3", "Delta": "C-4", "Gone": None}
DOC = keymap_doc(ENTRIES)
KEYMAP = keymap_from_document(DOC)
KEYNAMES = KeyNames.from_migration(DOC["migration"])


def old_items() -> list[dict]:
    items = []
    for n, raw in enumerate(r for r in ENTRIES):
        for o in range(4):
            items.append({"customer": {"S": raw}, "order_id": {"S": f"{raw.strip()}-{n}-{o}"},
                          "total": {"N": str(10 * o + n)}, "tags": {"SS": ["a", "b", "c"]},
                          "lines": {"L": [{"M": {"sku": {"S": "x"}, "qty": {"N": "2"}}}]}})
    return items


@pytest.fixture
def world(boto_clients):
    ddb = boto_clients.dynamodb
    create_control_table(ddb)
    create_data_tables(ddb)
    items = old_items()
    for item in items:
        ddb.put_item(TableName=OLD, Item=item)
        out = transform(item, KEYMAP, KEYNAMES)
        if type(out) is Put:
            new = dict(out.item)
            new["tags"] = {"SS": ["c", "a", "b"]}   # another order: still the same set
            ddb.put_item(TableName=NEW, Item=new)
    return ddb, items


def key_of(item: dict) -> dict:
    return {"customer": item["customer"], "order_id": item["order_id"]}


def test_key_maps_raw_identifiers_and_refuses_unknown_ones(boto_clients):
    ddb = boto_clients.dynamodb
    create_control_table(ddb)
    put_flag(ddb)
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, keymap=DOC)
    assert router.key("Acme\u200b") == "C-1" and router.key("Beta") == "C-2"
    with pytest.raises(KeyError) as info:
        router.key("Nobody")
    assert isinstance(info.value, UnmappedIdentifier)
    assert "'Nobody'" in str(info.value) and "km-1" in str(info.value)
    with pytest.raises(UnmappedIdentifier, match="dropped"):
        router.key("Gone")
    assert router.new_key({"customer": {"S": "Beta"}, "order_id": {"S": "o"}}) == {
        "customer_id": {"S": "C-2"}, "order_id": {"S": "o"}}
    # a Keymap object works as well as its document
    assert MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, keymap=KEYMAP).key("Delta") == "C-4"


def test_keymap_comes_from_the_flags_uri_and_follows_its_version(boto_clients):
    ddb, s3 = boto_clients.dynamodb, boto_clients.s3
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="keymap/1.json", Body=json.dumps(DOC).encode())
    create_control_table(ddb)
    put_flag(ddb, keymap_uri="s3://artifacts/keymap/1.json", keymap_version="km-1")
    clock = FakeClock()
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, s3_client=s3, clock=clock)
    s3_calls = []
    s3.meta.events.register("before-call.s3.GetObject", lambda **kw: s3_calls.append(1))
    assert router.key("Beta") == "C-2"
    for _ in range(20):
        router.key("Acme")
    assert len(s3_calls) == 1                                  # cached
    doc2 = keymap_doc({**ENTRIES, "Epsilon": "C-5"}, version="km-2")
    s3.put_object(Bucket="artifacts", Key="keymap/2.json", Body=json.dumps(doc2).encode())
    put_flag(ddb, keymap_uri="s3://artifacts/keymap/2.json", keymap_version="km-2")
    clock.advance(1.0)
    assert router.key("Epsilon") == "C-5" and router.keymap().version == "km-2"
    assert len(s3_calls) == 2
    # the flag names a keymap that cannot be read: the one loaded keeps serving
    put_flag(ddb, keymap_uri="s3://artifacts/keymap/missing.json", keymap_version="km-3")
    clock.advance(1.0)
    assert router.key("Epsilon") == "C-5"


def test_key_without_any_keymap_is_a_clear_error(boto_clients):
    ddb = boto_clients.dynamodb
    create_control_table(ddb)
    put_flag(ddb)
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb)
    with pytest.raises(RouterError, match="keymap_uri"):
        router.key("Beta")


def test_get_item_in_old_and_new(world):
    ddb, items = world
    put_flag(ddb, "old", 0)
    clock = FakeClock()
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, keymap=DOC, clock=clock)
    beta = next(i for i in items if i["customer"]["S"] == "Beta")
    got = router.get_item(Key=key_of(beta), TableName="ignored", ConsistentRead=True)
    assert got["Item"]["customer"] == {"S": "Beta"}
    flip(ddb, "new")
    clock.advance(1.0)
    got = router.get_item(Key=key_of(beta), ConsistentRead=True)
    assert got["Item"]["customer_id"] == {"S": "C-2"} and got["Item"]["legacy_customer"] == {"S": "Beta"}
    # a key already in the new form is used as it is
    assert router.get_item(key={"customer_id": {"S": "C-2"}, "order_id": beta["order_id"]})["Item"] == got["Item"]
    with pytest.raises(UnmappedIdentifier):
        router.get_item(Key={"customer": {"S": "Nobody"}, "order_id": {"S": "x"}})


def shadow_counts(ddb, version: int) -> dict:
    (item,) = control_items(ddb, f"shadow#{version}")
    return {k: int(item[k]["N"]) for k in ("reads", "mismatches", "errors")} | (
        {"last_mismatch": json.loads(item["last_mismatch"]["S"])} if "last_mismatch" in item else {})


def test_shadow_reads_count_mismatches(world):
    ddb, items = world
    put_flag(ddb, "shadow", 3, shadow_sample=1.0)
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, keymap=DOC, clock=FakeClock())
    # Make the new table differ: one attribute changed, one item missing, one extra attribute.
    mapped = [i for i in items if ENTRIES[i["customer"]["S"]] is not None]
    changed, missing, extra = mapped[1], mapped[6], mapped[11]
    new_key = lambda i: router.new_key(key_of(i))  # noqa: E731
    ddb.update_item(TableName=NEW, Key=new_key(changed), UpdateExpression="SET #t = :t",
                    ExpressionAttributeNames={"#t": "total"}, ExpressionAttributeValues={":t": {"N": "999"}})
    ddb.delete_item(TableName=NEW, Key=new_key(missing))
    ddb.update_item(TableName=NEW, Key=new_key(extra), UpdateExpression="SET surprise = :t",
                    ExpressionAttributeValues={":t": {"BOOL": True}})
    returned = []
    for item in items:
        got = router.get_item(Key=key_of(item), ConsistentRead=True)
        returned.append(got["Item"])
    router.flush()
    assert returned == [ddb.get_item(TableName=OLD, Key=key_of(i))["Item"] for i in items]   # old is the truth
    counts = shadow_counts(ddb, 3)
    assert counts["reads"] == len(mapped)         # a dropped identifier's items are not compared
    assert counts["mismatches"] == 3 and counts["errors"] == 0
    assert counts["last_mismatch"]["key"] in [key_of(i) for i in (changed, missing, extra)]
    assert counts["last_mismatch"]["why"]


def test_shadow_counts_an_old_item_whose_identifier_the_keymap_does_not_know(world):
    ddb, items = world
    put_flag(ddb, "shadow", 2, shadow_sample=1.0)
    ddb.put_item(TableName=OLD, Item={"customer": {"S": "Newcomer"}, "order_id": {"S": "n-1"}})
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, keymap=DOC, clock=FakeClock())
    router.get_item(Key={"customer": {"S": "Newcomer"}, "order_id": {"S": "n-1"}})
    # absent in both tables, raw unknown: nothing to compare
    router.get_item(Key={"customer": {"S": "Nobody"}, "order_id": {"S": "z"}})
    # absent in the old table, mapped: the new table must not hold it either
    router.get_item(Key={"customer": {"S": "Beta"}, "order_id": {"S": "no-such-order"}})
    router.flush()
    counts = shadow_counts(ddb, 2)
    assert (counts["reads"], counts["mismatches"], counts["errors"]) == (2, 1, 0)
    assert "Newcomer" in counts["last_mismatch"]["why"]


def test_a_failed_shadow_read_never_fails_the_caller(world, caplog):
    ddb, items = world
    put_flag(ddb, "shadow", 5, shadow_sample=1.0)
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, keymap=DOC, clock=FakeClock())
    calls = counted(ddb)

    def refuse_new(model, params, **_):
        if b'"orders-v2"' in params.get("body", b""):
            raise ConnectionError("new table unreachable")

    ddb.meta.events.register("before-call.dynamodb.GetItem", refuse_new)
    sample = items[:10]
    for item in sample:
        assert router.get_item(Key=key_of(item))["Item"] == item
    ddb.meta.events.unregister("before-call.dynamodb.GetItem", refuse_new)
    router.flush()
    assert calls.count("GetItem", OLD) == 10
    counts = shadow_counts(ddb, 5)
    compared = sum(1 for i in sample if ENTRIES[i["customer"]["S"]] is not None)
    assert (counts["reads"], counts["errors"], counts["mismatches"]) == (compared, compared, 0)


def test_shadow_samples_the_fraction_the_flag_names(world):
    ddb, items = world
    put_flag(ddb, "shadow", 1, shadow_sample=0.3)
    draws = random.Random(7)
    expected_draws = random.Random(7)
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, keymap=DOC, clock=FakeClock(), sample=draws.random)
    calls = counted(ddb)
    beta = next(i for i in items if i["customer"]["S"] == "Beta")
    for _ in range(200):
        router.get_item(Key=key_of(beta))
    sampled = sum(1 for _ in range(200) if expected_draws.random() < 0.3)
    assert 30 < sampled < 90
    assert calls.count("GetItem", NEW) == sampled
    assert calls.count("GetItem", OLD) == 200
    # not in shadow: never the new table
    flip(ddb, "old")
    router.refresh()
    before = calls.count("GetItem", NEW)
    for _ in range(50):
        router.get_item(Key=key_of(beta))
    assert calls.count("GetItem", NEW) == before


def test_shadow_counts_are_batched(world):
    ddb, items = world
    put_flag(ddb, "shadow", 9, shadow_sample=1.0)
    clock = FakeClock()
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, keymap=DOC, clock=clock, ttl_seconds=3600)
    calls = counted(ddb)
    beta = key_of(next(i for i in items if i["customer"]["S"] == "Beta"))
    for _ in range(120):
        router.get_item(Key=beta)
    assert calls.count("UpdateItem", CONTROL) == 2            # at 50 and 100 reads, not one per read
    assert shadow_counts(ddb, 9)["reads"] == 100
    router.get_item(Key=beta)
    assert calls.count("UpdateItem", CONTROL) == 2
    clock.advance(5.0)                                          # the oldest pending count is 5 s old
    router.get_item(Key=beta)
    assert calls.count("UpdateItem", CONTROL) == 3
    assert shadow_counts(ddb, 9) == {"reads": 122, "mismatches": 0, "errors": 0}


def test_a_failed_flush_keeps_the_counts_and_backs_off(world):
    ddb, items = world
    put_flag(ddb, "shadow", 4, shadow_sample=1.0)
    clock = FakeClock()
    router = MigrationRouter(CONTROL, FLAG, OLD, NEW, client=ddb, keymap=DOC, clock=clock, ttl_seconds=3600)
    beta = key_of(next(i for i in items if i["customer"]["S"] == "Beta"))
    router.get_item(Key=beta)
    from botocore.exceptions import EndpointConnectionError

    tries = []

    def refuse(model, **_):
        tries.append(model.name)
        raise EndpointConnectionError(endpoint_url="http://control")

    ddb.meta.events.register("before-call.dynamodb.UpdateItem", refuse)
    for _ in range(80):
        router.get_item(Key=beta)
    assert tries == ["UpdateItem"]                               # one try, then a back-off
    ddb.meta.events.unregister("before-call.dynamodb.UpdateItem", refuse)
    router.flush()
    assert shadow_counts(ddb, 4)["reads"] == 81                 # nothing lost, nothing twice


def test_same_item_compares_as_dynamodb_does():
    a = {"k": {"S": "x"}, "s": {"SS": ["a", "b"]}, "n": {"N": "1.50"}, "ns": {"NS": ["1", "2"]},
         "m": {"M": {"l": {"L": [{"N": "1"}, {"BS": [b"\x01", b"\x02"]}]}}}}
    b = {"k": {"S": "x"}, "s": {"SS": ["b", "a"]}, "n": {"N": "1.5"}, "ns": {"NS": ["2", "1"]},
         "m": {"M": {"l": {"L": [{"N": "1.0"}, {"BS": ["Ag==", "AQ=="]}]}}}}
    assert same_item(a, b) == (True, "")
    assert same_item(a, {**b, "m": {"M": {"l": {"L": [{"N": "2"}]}}}}) == (False, "attribute 'm' differs")
    assert same_item(a, None) == (False, "missing in the new table")
    assert same_item(None, a)[0] is False and same_item(None, None) == (True, "")
    # list order matters (it is a list)
    assert same_item({"l": {"L": [{"S": "a"}, {"S": "b"}]}}, {"l": {"L": [{"S": "b"}, {"S": "a"}]}})[0] is False
