"""Planning: every record classified once, counts reconcile, re-planning is idempotent."""

import json
import re
import threading

import orjson
import pytest

from keyshift.core.errors import DumpError
from keyshift.core.plan.planner import PlanCancelled, plan_to_completion, run_plan
from keyshift.core.plan.queries import (
    count_records,
    get_identifier,
    latest_plan,
    records_page,
    status_counts,
)
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace

SPEC = """
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"
[target]
table = "orders_v2"
partition_key = "customer_id"
"""


def item(customer, order, **extra):
    out = {"customer": {"S": customer}, "order_id": {"S": order}}
    out.update(extra)
    return out


def write_dump(path, lines):
    with open(path, "wb") as fh:
        for line in lines:
            fh.write(line if isinstance(line, bytes) else orjson.dumps(line))
            fh.write(b"\n")
    return str(path)


GOOD = [
    item("Acme", "1"),
    item("Acme\u200b", "1"),          # same canonical + same sort key: a conflict
    item("Acme\u200b", "2"),
    item("Bob\u00a0Smith", "3"),      # fixed
    item("Carol", "4"),               # unchanged
    item("Carol", "5"),
    item("\u200b\ufeff", "6"),        # empty after normalization: invalid
    item("\ufdfa" * 70, "7"),         # 210 bytes, but NFKC makes it 2,310: invalid
    item("\u0440\u0430\u0443\u0440\u0430l", "8"),  # Cyrillic look-alike: suspicious, unchanged
]
BAD = [
    b'{"customer": {"S": "broken"',                              # malformed JSON
    orjson.dumps({"customer": {"N": "42"}, "order_id": {"S": "9"}}),  # non-string identifier
    orjson.dumps({"order_id": {"S": "10"}}),                     # missing identifier
    orjson.dumps(item("Dave", "11", blob={"S": "y" * (410 * 1024)})),  # over 400 KB
    orjson.dumps({"customer": {"S": "Eve"}}),                    # missing sort key
    orjson.dumps(item("x" * 2049, "12")),                        # a key no table can hold
    orjson.dumps(item("Frank", "")),                             # an empty sort key, likewise
]


@pytest.fixture
def planned(tmp_path):
    dump = write_dump(tmp_path / "dump.json", GOOD + BAD)
    ws = Workspace(tmp_path / "ws")
    result = plan_to_completion(ws, parse_spec(SPEC), dump, operator="tester")
    return ws, result.summary, dump


def test_summary_counts_and_reconciles(planned):
    _, s, _ = planned
    assert s["format"] == "ddbjson"
    assert s["files"] == 1
    assert s["lines"] == len(GOOD) + len(BAD)
    assert s["records"] == len(GOOD)
    assert s["quarantined"] == len(BAD)
    assert s["lines"] == s["records"] + s["quarantined"] and s["reconciled"]
    ids = s["identifiers"]
    assert ids == {"total": 7, "unchanged": 2, "fixed": 1, "ambiguous": 2, "orphaned": 0, "invalid": 2,
                   "remapped": 0}
    assert s["conflicts"] == 1
    assert s["suspicious"] == 1


def test_statuses_per_identifier(planned):
    ws, _, _ = planned
    assert get_identifier(ws, "Acme").status == "ambiguous"
    assert get_identifier(ws, "Acme\u200b").new_id is None
    bob = get_identifier(ws, "Bob\u00a0Smith")
    assert (bob.status, bob.canonical, bob.new_id) == ("fixed", "Bob Smith", "Bob Smith")
    assert bob.changes and "NO-BREAK SPACE" in bob.changes[0]["description"]
    assert get_identifier(ws, "Carol").status == "unchanged"
    assert get_identifier(ws, "Carol").items == 2
    empty = get_identifier(ws, "\u200b\ufeff")
    assert empty.status == "invalid" and "empty" in empty.reason
    assert "2048" in get_identifier(ws, "\ufdfa" * 70).reason
    lookalike = get_identifier(ws, "\u0440\u0430\u0443\u0440\u0430l")
    assert lookalike.status == "unchanged" and lookalike.suspicious
    assert get_identifier(ws, "Acme").sample == item("Acme", "1")


def test_quarantine_keeps_file_line_and_reason(planned):
    ws, _, dump = planned
    rows = records_page(ws, status="quarantined")
    reasons = {r.line: r.reason for r in rows}
    assert all(r.file == dump for r in rows)
    first_bad = len(GOOD) + 1
    assert reasons[first_bad].startswith("malformed JSON")
    assert "not a string" in reasons[first_bad + 1]
    assert "missing identifier" in reasons[first_bad + 2]
    assert "400" in reasons[first_bad + 3] or "409600" in reasons[first_bad + 3]
    assert "missing sort key" in reasons[first_bad + 4]
    assert "identifier is 2,049 bytes, over DynamoDB's 2,048-byte limit" in reasons[first_bad + 5]
    assert "sort key is empty" in reasons[first_bad + 6]


def test_records_paging_and_filters(planned):
    ws, _, _ = planned
    page1 = records_page(ws, limit=4)
    page2 = records_page(ws, after_seq=page1[-1].seq, limit=4)
    assert [r.line for r in page1 + page2] == list(range(1, 9))
    assert records_page(ws, before_seq=page2[0].seq, limit=4) == page1
    amb = records_page(ws, status="ambiguous")
    assert {r.raw for r in amb} == {"Acme", "Acme\u200b"} and len(amb) == 3
    assert count_records(ws, status="ambiguous") == 3
    assert [r.line for r in records_page(ws, search="Acme")] == [1, 2, 3]
    assert [r.raw for r in records_page(ws, identifier="Carol")] == ["Carol", "Carol"]
    counts = status_counts(ws)
    assert counts["ambiguous"] == {"identifiers": 2, "records": 3}
    assert counts["quarantined"]["records"] == len(BAD)


def test_replanning_is_idempotent(planned, tmp_path):
    ws, first, dump = planned
    again = plan_to_completion(ws, parse_spec(SPEC), dump, operator="tester").summary
    strip = lambda s: {k: v for k, v in s.items() if k != "seconds"}  # noqa: E731
    assert strip(again) == strip(first)
    assert count_records(ws) == first["records"]
    assert latest_plan(ws).state == "complete"
    actions = [e.action for e in ws.audit_log()]
    assert actions.count("plan.complete") == 2


def test_reference_data_orphans_and_ambiguity(tmp_path):
    ref = tmp_path / "customers.jsonl"
    ref.write_text(
        "\n".join(json.dumps(r) for r in [
            {"name": "Bob Smith", "id": "C-1"},
            {"name": "Carol", "id": "C-2"},
            {"name": "carol ", "id": "C-3"},   # normalizes to "carol": different without casefold
            {"name": "Frank", "id": "C-4"},
            {"name": "Frank\u200b", "id": "C-5"},  # two ids for one canonical name
            {"id": "C-6"},                      # unusable row: reported, not fatal
        ]) + "\n"
    )
    dump = write_dump(tmp_path / "dump.json", [
        item("Bob\u00a0Smith", "1"), item("Carol", "2"), item("Frank", "3"), item("Zed", "4"),
    ])
    spec = parse_spec(SPEC + f'[reference]\nuri = "{ref}"\n')
    ws = Workspace(tmp_path / "ws")
    s = plan_to_completion(ws, spec, dump).summary
    # Regression: with reference data every identifier was "fixed" (the new id always differs from
    # the raw spelling). Statuses say what the rules did; "remapped" counts upstream's new ids.
    assert s["identifiers"] == {"total": 4, "unchanged": 1, "fixed": 1, "ambiguous": 1, "orphaned": 1, "invalid": 0,
                                "remapped": 2}
    assert s["remapped_records"] == 2
    carol, bob = get_identifier(ws, "Carol"), get_identifier(ws, "Bob\u00a0Smith")
    assert (carol.status, carol.new_id, carol.reason) == ("unchanged", "C-2", "new id from reference data")
    assert (bob.status, bob.new_id, bob.reason) == ("fixed", "C-1", "normalized; new id from reference data")
    assert [r.raw for r in records_page(ws, status="remapped")] == ["Bob\u00a0Smith", "Carol"]
    assert count_records(ws, status="remapped") == 2
    assert get_identifier(ws, "Frank").ref_ids == ["C-4", "C-5"]
    assert get_identifier(ws, "Zed").status == "orphaned"
    assert s["reference_problem_count"] == 1


def test_casefold_rule_merges_case_variants(tmp_path):
    dump = write_dump(tmp_path / "d.json", [item("ACME", "1"), item("acme", "2")])
    spec = parse_spec(SPEC + '[normalize]\nrules = ["strip-ignorable", "nfkc", "fold-space", "casefold"]\n')
    s = plan_to_completion(Workspace(tmp_path / "ws"), spec, dump).summary
    assert s["identifiers"]["ambiguous"] == 2


def test_missing_dump_is_a_dump_error(tmp_path):
    with pytest.raises(DumpError):
        plan_to_completion(Workspace(tmp_path / "ws"), parse_spec(SPEC), str(tmp_path / "nope"))


def test_cancel_leaves_a_cancelled_plan(tmp_path):
    dump = write_dump(tmp_path / "d.json", [item(f"c{i}", str(i)) for i in range(12000)])
    ws = Workspace(tmp_path / "ws")
    cancel = threading.Event()
    gen = run_plan(ws, parse_spec(SPEC), dump, cancel=cancel)
    next(gen)
    cancel.set()
    with pytest.raises(PlanCancelled):
        for _ in gen:
            pass
    assert latest_plan(ws).state == "cancelled"


def _snapshot(ws):
    """The plan's content, independent of internal identifier ids (they follow arrival order)."""
    conn = ws.connect()
    identifier_columns = "raw, escaped, canonical, new_id, status, reason, items, changes, suspicious, ref_ids"
    return (
        conn.execute("SELECT r.seq, r.file_id, r.line, i.raw, r.sort_key, r.size FROM records r"
                     " JOIN identifiers i ON i.id = r.ident ORDER BY r.seq").fetchall(),
        conn.execute("SELECT * FROM quarantine ORDER BY seq").fetchall(),
        conn.execute(f"SELECT {identifier_columns} FROM identifiers ORDER BY raw").fetchall(),
        conn.execute("SELECT i.raw, s.item FROM samples s JOIN identifiers i ON i.id = s.ident"
                     " ORDER BY i.raw").fetchall(),
        conn.execute("SELECT canonical, sort_key, records, raws FROM conflicts ORDER BY canonical, sort_key").fetchall(),
    )


def test_child_process_extraction_gives_the_same_workspace(tmp_path):
    dump = write_dump(tmp_path / "dump.json", GOOD + BAD)
    serial, child = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    one = plan_to_completion(serial, parse_spec(SPEC), dump, parallel=False).summary
    two = plan_to_completion(child, parse_spec(SPEC), dump, parallel=True).summary
    strip = lambda s: {k: v for k, v in s.items() if k != "seconds"}  # noqa: E731
    assert strip(one) == strip(two)
    assert _snapshot(serial) == _snapshot(child)


def test_several_child_processes_give_the_same_workspace(tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    lines = GOOD + BAD + [item(f"c{i % 7}\u00a0x", str(i)) for i in range(40)]
    for part in range(5):  # five files dealt out to two children
        write_dump(folder / f"part-{part}.json", lines[part::5])
    serial, child = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    one = plan_to_completion(serial, parse_spec(SPEC), str(folder), parallel=False).summary
    two = plan_to_completion(child, parse_spec(SPEC), str(folder), parallel=True).summary
    strip = lambda s: {k: v for k, v in s.items() if k != "seconds"}  # noqa: E731
    assert one["files"] == 5 and one["lines"] == len(lines)
    assert strip(one) == strip(two)
    assert _snapshot(serial) == _snapshot(child)


def test_child_process_errors_are_raised_in_the_parent(tmp_path):
    with pytest.raises(DumpError, match="nope"):
        plan_to_completion(Workspace(tmp_path / "ws"), parse_spec(SPEC), str(tmp_path / "nope"), parallel=True)


def test_cancel_stops_the_child_process(tmp_path):
    dump = write_dump(tmp_path / "d.json", [item(f"c{i}", str(i)) for i in range(30000)])
    ws = Workspace(tmp_path / "ws")
    cancel = threading.Event()
    gen = run_plan(ws, parse_spec(SPEC), dump, cancel=cancel, parallel=True)
    next(gen)
    cancel.set()
    with pytest.raises(PlanCancelled):
        for _ in gen:
            pass
    assert latest_plan(ws).state == "cancelled"


def test_child_process_reads_s3_with_the_parents_credentials(boto_clients, tmp_path):
    s3 = boto_clients.s3
    s3.create_bucket(Bucket="dumps")
    body = b"".join(orjson.dumps(i) + b"\n" for i in GOOD)
    s3.put_object(Bucket="dumps", Key="plain/part-0.json", Body=body)
    result = plan_to_completion(Workspace(tmp_path / "ws"), parse_spec(SPEC), "s3://dumps/plain/",
                                s3=s3, parallel=True)
    assert result.summary["records"] == len(GOOD)
    assert result.summary["files"] == 1


def test_one_reference_id_for_two_canonical_forms_is_ambiguous(tmp_path):
    from keyshift.core.resolve.cases import list_cases

    ref = tmp_path / "ref.jsonl"
    ref.write_text('{"name": "Acme Corp", "id": "C-1"}\n{"name": "ACME Corporation", "id": "C-1"}\n'
                   '{"name": "Bolt", "id": "C-2"}\n')
    dump = write_dump(tmp_path / "d.json", [item("Acme Corp", "1"), item("ACME Corporation", "2"),
                                            item("Bolt", "3")])
    ws = Workspace(tmp_path / "ws")
    s = plan_to_completion(ws, parse_spec(SPEC + f'[reference]\nuri = "{ref}"\n'), dump).summary
    assert s["identifiers"]["ambiguous"] == 2 and s["identifiers"]["unchanged"] == 1  # Bolt: the rules left it
    assert "C-1" in get_identifier(ws, "Acme Corp").reason
    (case,) = list_cases(ws, kind="ambiguous")
    assert {m.raw for m in case.members} == {"Acme Corp", "ACME Corporation"}
    assert case.candidates == ["C-1"]


def _explained_row(ident, normalizer, raw):
    """The identifier row the long way: every identifier through Normalizer.explain."""
    from keyshift.core.plan.planner import _local_status
    from keyshift.core.text.escape import escape

    norm = normalizer.explain(raw)
    status = _local_status(norm.canonical, raw)
    return (ident, raw, escape(raw), norm.canonical, None if status == "invalid" else norm.canonical,
            status, orjson.dumps([c.to_dict() for c in norm.changes]).decode(),
            orjson.dumps(list(norm.suspicious)).decode())


@pytest.mark.parametrize("rules", [("strip-ignorable", "nfkc", "fold-space"), ("nfkc",),
                                   ("strip-ignorable", "nfkc", "fold-space", "casefold")])
def test_identifier_row_short_cuts_match_the_full_explanation(rules):
    from keyshift.console import demo_data as dd
    from keyshift.core.plan.planner import _identifier_row
    from keyshift.core.text.normalize import Normalizer

    normalizer = Normalizer(rules)
    raws = [raw for raw, _, _, _ in dd.CURATED] + [
        "Acme", "São Paulo Café", "Zürich", "Kraków Ltd", "C:\\temp", "a  b", " x", "a\x01b", "ACME",
        "\u0440\u0430\u0443\u0440\u0430l", "Ｔｏｋｙｏ", "e\u0301", "Москва", "東京", "x" * 2049, "",
        "Acme\u200b", "Bob\u00a0Smith"]
    for raw in raws:
        row = _identifier_row(7, normalizer, raw)
        # (the reason wording is the planner's own; the rest must be what explain says)
        assert row[:6] + row[7:] == _explained_row(7, normalizer, raw), raw


def test_identifier_with_a_backslash_is_stored_escaped(tmp_path):
    # The clean-ASCII short cut once stored escaped = raw: "C:\temp" read back as a tab.
    dump = write_dump(tmp_path / "d.json", [item("C:\\temp", "1")])
    ws = Workspace(tmp_path / "ws")
    plan_to_completion(ws, parse_spec(SPEC), dump)
    assert get_identifier(ws, "C:\\temp").escaped == "C:\\\\temp"


@pytest.mark.parametrize("stream, expected", [
    (b"", "ended unexpectedly (killed by signal 9)"),                      # died before a message
    ((1000).to_bytes(8, "little") + b"\x80\x05", "ended unexpectedly"),  # mid-message
    ((5).to_bytes(8, "little") + b"12345", "sent a damaged message"),      # not a pickle
])
def test_a_dead_or_garbled_child_is_an_operator_error(stream, expected):
    import io

    from keyshift.core.errors import KeyshiftError
    from keyshift.core.plan.extract import ChildExtraction, ExtractionError, _MessageReader

    class Proc:
        def wait(self):
            return -9

        def poll(self):
            return -9

    child = ChildExtraction.__new__(ChildExtraction)
    child._proc, child._out, child._finished = Proc(), io.BytesIO(stream), False
    child._reader = _MessageReader(child._out, 4)
    child._reader.start()
    with pytest.raises(ExtractionError, match=re.escape(expected)) as caught:
        child._get()
    assert isinstance(caught.value, KeyshiftError)


def test_a_bug_in_the_child_is_an_operator_error():
    from keyshift.core.plan.extract import ChildExtraction, ExtractionError

    with pytest.raises(ExtractionError, match="the extraction process failed: ZeroDivisionError: boom"):
        ChildExtraction._raise(ZeroDivisionError("boom"))
    with pytest.raises(DumpError, match="nope"):
        ChildExtraction._raise(DumpError("nope"))


def test_no_reader_thread_outlives_a_plan(tmp_path):
    dump = write_dump(tmp_path / "d.json", [item(f"c{i}", str(i)) for i in range(12000)])
    plan_to_completion(Workspace(tmp_path / "a"), parse_spec(SPEC), dump, parallel=True)
    cancel = threading.Event()
    gen = run_plan(Workspace(tmp_path / "b"), parse_spec(SPEC), dump, cancel=cancel, parallel=True)
    next(gen)
    cancel.set()
    with pytest.raises(PlanCancelled):
        for _ in gen:
            pass
    assert [t for t in threading.enumerate() if t.name == "keyshift-extract-reader"] == []
