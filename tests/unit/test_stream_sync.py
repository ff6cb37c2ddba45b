"""Stream records to writes: the same decisions as the restore, reduced to the last per key."""

from keyshift.core.migrate.stream.sync import record_outcome, reduce_outcomes
from keyshift.core.kernel.keymap import Keymap, KeymapEntry, sort_key_json
from keyshift.core.kernel.transform import Delete, KeyNames, Put, Skip

NAMES = KeyNames(source_pk="customer", source_sk="order_id", target_pk="customer_id", legacy="legacy_customer")
KEYMAP = Keymap(
    version="v1",
    entries={"Acme": KeymapEntry("C1", "rule"), "Acme\u200b": KeymapEntry("C1", "decision:1"),
             "Gone": KeymapEntry(None, "decision:2", "test data")},
    unresolved={"Mystery": "ambiguous case amb-1 is open"},
    winners={("C1", sort_key_json({"S": "o1"})): "Acme"},
)


def rec(event, customer, order, **image):
    body = {"Keys": {"customer": {"S": customer}, "order_id": {"S": order}}, "SequenceNumber": "1"}
    if event != "REMOVE":
        body["NewImage"] = {**body["Keys"], **image}
    return {"eventName": event, "dynamodb": body}


def test_insert_and_modify_put_the_transformed_new_image():
    for event in ("INSERT", "MODIFY"):
        out = record_outcome(rec(event, "Acme", "o2", v={"N": "1"}), KEYMAP, NAMES)
        assert out == Put({"order_id": {"S": "o2"}, "v": {"N": "1"}, "customer_id": {"S": "C1"},
                           "legacy_customer": {"S": "Acme"}})


def test_remove_deletes_the_new_key():
    out = record_outcome(rec("REMOVE", "Acme", "o2"), KEYMAP, NAMES)
    assert out == Delete({"customer_id": {"S": "C1"}, "order_id": {"S": "o2"}})


def test_losers_dropped_and_unresolved_are_skipped_with_their_kind():
    assert record_outcome(rec("MODIFY", "Acme\u200b", "o1"), KEYMAP, NAMES).kind == "conflict-loser"
    # A loser's delete must not remove the winner's item.
    assert record_outcome(rec("REMOVE", "Acme\u200b", "o1"), KEYMAP, NAMES).kind == "conflict-loser"
    assert record_outcome(rec("INSERT", "Gone", "o1"), KEYMAP, NAMES).kind == "dropped"
    assert record_outcome(rec("INSERT", "Mystery", "o1"), KEYMAP, NAMES).kind == "unresolved"


def test_records_without_an_image_or_of_unknown_events_are_skipped_not_guessed():
    keys_only = {"eventName": "MODIFY", "dynamodb": {"Keys": {"customer": {"S": "Acme"}}}}
    assert record_outcome(keys_only, KEYMAP, NAMES).kind == "no-image"
    assert record_outcome({"eventName": "TRUNCATE", "dynamodb": {}}, KEYMAP, NAMES).kind == "unknown-event"


def test_reduce_keeps_the_last_write_per_new_key_in_first_seen_order():
    a1 = Put({"customer_id": {"S": "C1"}, "order_id": {"S": "o1"}, "v": {"N": "1"}})
    b = Put({"customer_id": {"S": "C2"}, "order_id": {"S": "o1"}})
    a_del = Delete({"customer_id": {"S": "C1"}, "order_id": {"S": "o1"}})
    a3 = Put({"customer_id": {"S": "C1"}, "order_id": {"S": "o1"}, "v": {"N": "3"}})
    other_order = Put({"customer_id": {"S": "C1"}, "order_id": {"S": "o2"}})
    assert reduce_outcomes([a1, b, Skip("x", "dropped"), a_del], NAMES) == [a_del, b]
    assert reduce_outcomes([a1, a_del, a3, other_order], NAMES) == [a3, other_order]


# -- design (a)'s window: stream before the dump, dump inside the retention -----------------------
def test_replay_window_problems():
    from keyshift.core.migrate.stream.source import RETENTION_S, replay_window_problems

    now = 1_800_000_000.0
    dump = now - 3600
    assert replay_window_problems(dump - 60, dump, now) == []  # stream first, dump an hour ago
    assert replay_window_problems(None, None, now) == []  # nothing known: the caller warns
    late = replay_window_problems(dump + 60, dump, now)
    assert len(late) == 1 and "after the dump's point in time" in late[0]
    old = replay_window_problems(now - 3 * RETENTION_S, now - RETENTION_S - 1, now)
    assert len(old) == 1 and "more than 24 hours ago" in old[0]
