"""core.verify: the item-level diff of new table vs transform(old table), against in-process moto."""

from __future__ import annotations

import threading

import boto3
import pytest
from keyshift.core.errors import KeyshiftError
from keyshift.core.spec import parse_spec
from keyshift.core.kernel.keymap import Keymap, KeymapEntry
from keyshift.core.kernel.transform import KeyNames, transform
from keyshift.core.migrate.verify.run import (
    MAX_OFFENDERS,
    VerifyCancelled,
    VerifyError,
    _Tables,
    check_source_page,
    check_target_page,
    diff_attributes,
    latest_verify,
    run_verify,
    same_value,
    verify_to_completion,
)
from keyshift.core.store.workspace import Workspace
from moto import mock_aws

SPEC = """\
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"

[target]
table = "orders_v2"
partition_key = "customer_id"
{legacy}
"""
ZW = "\u200b"


def make_keymap(version: str = "v1") -> Keymap:
    entries = {f"C{i}": KeymapEntry(f"N{i}", "rule") for i in range(8)}
    entries["C0" + ZW] = KeymapEntry("N0", "decision:1")  # merged into N0 (distinct order ids)
    entries["Spam"] = KeymapEntry(None, "decision:2", "test data")
    return Keymap(version, entries, unresolved={"Open": "open ambiguous case amb-1"})


def source_items() -> list[dict]:
    items = [{"customer": {"S": f"C{i % 8}"}, "order_id": {"S": f"o{i:03d}"}, "qty": {"N": str(i)},
              "tags": {"SS": ["b", "a", "c"]}, "m": {"M": {"x": {"NS": ["1", "2"]}}}} for i in range(120)]
    items += [{"customer": {"S": "C0" + ZW}, "order_id": {"S": f"z{i}"}, "qty": {"N": "1"}} for i in range(5)]
    items += [{"customer": {"S": "Spam"}, "order_id": {"S": f"s{i}"}} for i in range(3)]
    items += [{"customer": {"S": "Open"}, "order_id": {"S": f"u{i}"}} for i in range(2)]
    return items


class Env:
    def __init__(self, ddb, ws, spec, keymap):
        self.ddb, self.ws, self.spec, self.keymap = ddb, ws, spec, keymap
        self.names = KeyNames.from_spec(spec)

    def verify(self, **kw):
        kw.setdefault("keymap", self.keymap)
        kw.setdefault("page_size", 25)
        return verify_to_completion(self.ws, self.spec, self.ddb, **kw)

    def new_key(self, customer: str, order: str) -> dict:
        return {"customer_id": {"S": customer}, "order_id": {"S": order}}

    def tables(self) -> _Tables:
        return _Tables(self.ddb, "orders", "orders_v2", self.names, self.keymap)


def _create(ddb, name, pk):
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": "order_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"},
                              {"AttributeName": "order_id", "AttributeType": "S"}])


BOTH = pytest.mark.parametrize("env", ["legacy", "no-legacy"], indirect=True)


@pytest.fixture
def env(request, tmp_path, monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    mode = getattr(request, "param", "legacy")
    legacy = 'legacy_attribute = "legacy_customer"' if mode == "legacy" else ""
    spec = parse_spec(SPEC.format(legacy=legacy))
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _create(ddb, "orders", "customer")
        _create(ddb, "orders_v2", "customer_id")
        e = Env(ddb, Workspace(tmp_path / "ws"), spec, make_keymap())
        olds = source_items()
        news = [out.item for out in (transform(i, e.keymap, e.names) for i in olds) if hasattr(out, "item")]
        for table, items in (("orders", olds), ("orders_v2", news)):
            for n in range(0, len(items), 25):
                ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}}
                                                           for i in items[n:n + 25]]})
        yield e


# -- pure helpers -------------------------------------------------------------------------------
def test_same_value_sets_are_unordered_everything_else_as_stored():
    assert same_value({"SS": ["a", "b"]}, {"SS": ["b", "a"]})
    assert same_value({"M": {"s": {"NS": ["1", "2"]}}}, {"M": {"s": {"NS": ["2", "1"]}}})
    assert same_value({"L": [{"BS": [b"a", b"b"]}]}, {"L": [{"BS": [b"b", b"a"]}]})
    assert not same_value({"L": [{"S": "a"}, {"S": "b"}]}, {"L": [{"S": "b"}, {"S": "a"}]})
    assert not same_value({"N": "1"}, {"N": "1.0"})  # numbers compare as stored
    assert not same_value({"S": "1"}, {"N": "1"})
    assert not same_value({"SS": ["a"]}, {"SS": ["a", "b"]})


def test_diff_attributes_names_added_removed_and_changed():
    a = {"k": {"S": "1"}, "x": {"N": "1"}, "gone": {"S": "g"}}
    b = {"k": {"S": "1"}, "x": {"N": "2"}, "new": {"S": "n"}}
    assert diff_attributes(a, b) == ["gone", "new", "x"]
    assert diff_attributes(a, dict(a)) == []


# -- whole runs ---------------------------------------------------------------------------------
@BOTH
def test_equal_tables_verify_clean(env):
    r = env.verify()
    s = r.summary
    assert r.equal and s["equal"]
    assert s["compared"] == 125  # 120 + 5 merged; Spam (dropped) and Open (unresolved) not expected
    assert s["skipped"] == {"dropped": 3, "unresolved": 2}
    assert s["scanned"] == {"source": 130, "target": 125}
    assert (s["missing"], s["extra"], s["different"]) == (0, 0, 0)
    assert s["keymap"] == "v1" and s["segments"] == 4
    assert latest_verify(env.ws).id == s["run_id"]
    row = env.ws.connect().execute("SELECT kind, state, keymap FROM runs").fetchone()
    assert tuple(row) == ("verify", "complete", "v1")


@BOTH
def test_missing_extra_different_reported_with_keys(env):
    ddb = env.ddb
    ddb.delete_item(TableName="orders_v2", Key=env.new_key("N1", "o001"))
    ddb.put_item(TableName="orders_v2", Item={**env.new_key("N9", "x1"), "qty": {"N": "1"}})
    # A dropped identifier's item must be absent: present is extra.
    ddb.put_item(TableName="orders_v2", Item={**env.new_key("N0", "s0"), "legacy_customer": {"S": "Spam"}})
    ddb.update_item(TableName="orders_v2", Key=env.new_key("N2", "o002"),
                    UpdateExpression="SET qty = :q, extra_attr = :e",
                    ExpressionAttributeValues={":q": {"N": "99"}, ":e": {"S": "e"}})
    s = env.verify(segments=3).summary
    assert not s["equal"]
    assert (s["missing"], s["extra"], s["different"]) == (1, 2, 1)
    off = s["offenders"]
    assert off["missing"] == [env.new_key("N1", "o001")]
    assert sorted(k["order_id"]["S"] for k in off["extra"]) == ["s0", "x1"]
    assert off["different"][0]["key"] == env.new_key("N2", "o002")
    assert off["different"][0]["attributes"] == ["extra_attr", "qty"]
    rows = env.ws.connect().execute("SELECT kind, count(*) FROM offenders GROUP BY kind").fetchall()
    assert dict(map(tuple, rows)) == {"different": 1, "extra": 2, "missing": 1}
    assert latest_verify(env.ws).summary == s


def test_offenders_capped_but_counted(env):
    for i in range(30):
        env.ddb.delete_item(TableName="orders_v2", Key=env.new_key(f"N{i % 8}", f"o{i:03d}"))
    s = env.verify().summary
    assert s["missing"] == 30 and len(s["offenders"]["missing"]) == MAX_OFFENDERS


def test_sample_checks_only_n_source_items(env):
    env.ddb.put_item(TableName="orders_v2", Item={**env.new_key("N9", "x1")})  # extra: not looked for
    s = env.verify(sample=37, segments=4, page_size=5).summary
    assert s["scanned"] == {"source": 37, "target": 0}
    assert s["sample"] == 37 and s["extra_checked"] is False and s["equal"]


def test_cancel_then_resume_gives_the_same_totals(env):
    env.ddb.delete_item(TableName="orders_v2", Key=env.new_key("N3", "o003"))
    env.ddb.put_item(TableName="orders_v2", Item={**env.new_key("N9", "x1")})
    cancel = threading.Event()
    gen = run_verify(env.ws, env.spec, env.ddb, keymap=env.keymap, page_size=5, cancel=cancel)
    first = next(gen)
    assert first.phase == "source" and first.done > 0 and first.total == 130
    cancel.set()
    with pytest.raises(VerifyCancelled):
        while True:
            next(gen)
    state = env.ws.connect().execute("SELECT state FROM runs").fetchone()[0]
    assert state == "cancelled"
    with pytest.raises(VerifyError, match="keymap"):
        env.verify(resume=True, keymap=make_keymap("v2"))
    resumed = env.verify(resume=True, segments=2).summary  # the run's own parameters win
    assert resumed["resumed"] and resumed["segments"] == 4
    fresh = env.verify().summary
    for k in ("compared", "missing", "extra", "different", "skipped", "scanned", "offenders"):
        assert resumed[k] == fresh[k], k
    assert resumed["missing"] == 1 and resumed["extra"] == 1
    with pytest.raises(VerifyError, match="no interrupted"):
        env.verify(resume=True)


def test_unprocessed_keys_are_retried(env):
    class Flaky:
        def __init__(self, ddb):
            self._ddb, self.calls = ddb, 0

        def __getattr__(self, name):
            return getattr(self._ddb, name)

        def batch_get_item(self, RequestItems):
            self.calls += 1
            if self.calls % 2:  # every other call: nothing processed
                return {"Responses": {}, "UnprocessedKeys": RequestItems}
            return self._ddb.batch_get_item(RequestItems=RequestItems)

    flaky = Flaky(env.ddb)
    # A sampled run fetches each old item's new item (BatchGetItem); a full run joins two scans.
    s = verify_to_completion(env.ws, env.spec, flaky, keymap=env.keymap, page_size=50, sample=130).summary
    assert s["equal"] and s["compared"] == 125 and flaky.calls > 4
    calls = flaky.calls
    s = verify_to_completion(env.ws, env.spec, flaky, keymap=env.keymap, page_size=50).summary
    assert s["equal"] and s["compared"] == 125 and flaky.calls == calls  # none more


@BOTH
def test_second_look_ignores_writes_between_scan_and_check(env):
    t = env.tables()
    stale = {"customer": {"S": "C4"}, "order_id": {"S": "o004"}, "qty": {"N": "4"}}
    # The scan saw the old version; both tables now hold a newer one.
    env.ddb.update_item(TableName="orders", Key={"customer": {"S": "C4"}, "order_id": {"S": "o004"}},
                        UpdateExpression="SET qty = :q", ExpressionAttributeValues={":q": {"N": "7"}})
    env.ddb.update_item(TableName="orders_v2", Key=env.new_key("N4", "o004"),
                        UpdateExpression="SET qty = :q", ExpressionAttributeValues={":q": {"N": "7"}})
    assert check_source_page(t, [stale]).offenders == []
    # An item deleted from both tables after the scan saw it: not missing, not extra.
    gone_src = {"customer": {"S": "C5"}, "order_id": {"S": "o005"}}
    env.ddb.delete_item(TableName="orders", Key=gone_src)
    new_seen = env.ddb.get_item(TableName="orders_v2", Key=env.new_key("N5", "o005"))["Item"]
    env.ddb.delete_item(TableName="orders_v2", Key=env.new_key("N5", "o005"))
    assert check_source_page(t, [gone_src]).offenders == []
    assert check_target_page(t, [new_seen]).offenders == []


def test_missing_table_is_unusable_input(env):
    env.ddb.delete_table(TableName="orders_v2")
    with pytest.raises(KeyshiftError, match="orders_v2"):
        env.verify()


# -- the join of a full run ---------------------------------------------------------------------
def test_item_digest_compares_what_same_value_compares():
    from keyshift.core.migrate.verify.expected import item_digest

    a = {"k": {"S": "1"}, "s": {"SS": ["b", "a"]}, "m": {"M": {"y": {"NS": ["2", "1"]}, "x": {"BS": [b"b", b"a"]}}},
         "l": {"L": [{"S": "a"}, {"N": "1"}]}, "n": {"NULL": True}, "b": {"B": b"\x00\x01"}}
    b = {"b": {"B": b"\x00\x01"}, "n": {"NULL": True}, "l": {"L": [{"S": "a"}, {"N": "1"}]},
         "m": {"M": {"x": {"BS": [b"a", b"b"]}, "y": {"NS": ["1", "2"]}}}, "s": {"SS": ["a", "b"]}, "k": {"S": "1"}}
    assert item_digest(a) == item_digest(b) and diff_attributes(a, b) == []
    for change in ({"l": {"L": [{"N": "1"}, {"S": "a"}]}}, {"k": {"N": "1"}}, {"n": {"NULL": True}, "extra": {"S": ""}},
                   {"s": {"SS": ["a"]}}, {"b": {"B": b"\x00"}}, {"m": {"M": {"y": {"NS": ["1.0", "2"]}}}}):
        c = {**a, **change}
        assert item_digest(c) != item_digest(a) and diff_attributes(a, c), change
    assert item_digest({"a": {"S": "x"}, "b": {"S": "y"}}) != item_digest({"a": {"S": "xb"}})


def _corrupt(env):
    """Every kind of offence, a collision and a reordered set (not an offence)."""
    ddb = env.ddb
    ddb.delete_item(TableName="orders_v2", Key=env.new_key("N1", "o001"))
    ddb.delete_item(TableName="orders_v2", Key=env.new_key("N1", "o009"))
    ddb.put_item(TableName="orders_v2", Item={**env.new_key("N9", "x1"), "qty": {"N": "1"}})
    ddb.update_item(TableName="orders_v2", Key=env.new_key("N2", "o002"),
                    UpdateExpression="SET qty = :q", ExpressionAttributeValues={":q": {"N": "99"}})
    ddb.update_item(TableName="orders_v2", Key=env.new_key("N3", "o003"),
                    UpdateExpression="SET tags = :t", ExpressionAttributeValues={":t": {"SS": ["c", "a", "b"]}})
    # Two old items (a merged identifier) that both transform to (N0, o000): only the spelling
    # first in precedence ("C0", code point order: kernel/merged) must stand there, and it does,
    # so the other's differing item is not an offence.
    ddb.put_item(TableName="orders", Item={"customer": {"S": "C0" + ZW}, "order_id": {"S": "o000"},
                                           "qty": {"N": "5"}})


@BOTH
def test_the_join_finds_what_fetching_every_item_finds(env):
    _corrupt(env)
    joined = env.verify(segments=3).summary
    fetched = env.verify(segments=3, sample=1000).summary  # every old item, each new item fetched
    assert joined["scanned"] == {"source": 131, "target": 124}
    for k in ("compared", "missing", "different", "skipped"):
        assert joined[k] == fetched[k], k
    assert (joined["missing"], joined["extra"], joined["different"]) == (2, 1, 1)
    off = joined["offenders"]
    assert sorted(k["order_id"]["S"] for k in off["missing"]) == ["o001", "o009"]
    assert off["extra"] == [env.new_key("N9", "x1")]
    assert sorted(d["key"]["order_id"]["S"] for d in off["different"]) == ["o002"]
    assert not list(env.ws.path.glob("verify-*.expected.sqlite*"))  # removed once complete


def test_cancel_in_the_target_pass_then_resume_gives_the_same_totals(env):
    _corrupt(env)
    cancel = threading.Event()
    gen = run_verify(env.ws, env.spec, env.ddb, keymap=env.keymap, page_size=5, cancel=cancel)
    for progress in gen:
        if progress.phase == "target":
            cancel.set()
            break
    with pytest.raises(VerifyCancelled):
        for _ in gen:
            pass
    assert list(env.ws.path.glob("verify-*.expected.sqlite"))  # kept for the resume
    resumed = env.verify(resume=True).summary
    fresh = env.verify().summary
    for k in ("compared", "missing", "extra", "different", "skipped", "scanned", "offenders"):
        assert resumed[k] == fresh[k], k
    assert (fresh["missing"], fresh["extra"], fresh["different"]) == (2, 1, 1)


def test_a_page_replayed_after_a_kill_changes_nothing(env, tmp_path):
    from keyshift.core.migrate.verify.expected import ExpectedStore
    from keyshift.core.migrate.verify.run import index_source_page, join_target_page, sweep_missing

    t = env.tables()
    store = ExpectedStore(tmp_path / "expected.sqlite")
    olds = env.ddb.scan(TableName="orders")["Items"]
    news = env.ddb.scan(TableName="orders_v2")["Items"]
    for _ in range(2):  # killed after the store's commit, before the checkpoint: the page again
        assert index_source_page(t, store, olds).compared == 125
    for _ in range(2):
        assert join_target_page(t, store, news[:60]).offenders == []
    assert len(store.unseen(0, 1, 0, 1000)) == 125 - 60
    assert join_target_page(t, store, news[60:]).offenders == []
    assert store.unseen(0, 1, 0, 1000) == [] and sweep_missing(t, store, []).offenders == []
    store.remove()


def test_resume_refused_when_the_expected_items_are_gone(env):
    cancel = threading.Event()
    gen = run_verify(env.ws, env.spec, env.ddb, keymap=env.keymap, page_size=5, cancel=cancel)
    next(gen)
    cancel.set()
    with pytest.raises(VerifyCancelled):
        for _ in gen:
            pass
    for path in env.ws.path.glob("verify-*.expected.sqlite*"):
        path.unlink()
    with pytest.raises(VerifyError, match="expected-items file"):
        env.verify(resume=True)
