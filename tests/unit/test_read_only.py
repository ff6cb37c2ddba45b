"""Read-only mode underneath the commands: every client of a read-only AwsContext refuses writes
before a request is built, let alone sent (no server here: a refusal must not even try to connect)."""

from __future__ import annotations

import pytest

from keyshift.core.aws import AwsContext, ReadOnlyRefused, is_read_operation
from keyshift.core.errors import KeyshiftError


@pytest.fixture(autouse=True)
def _dummy_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")


def _ctx(sent: list, read_only: bool = True) -> AwsContext:
    # Port 9 (discard): nothing answers, so a call that is sent fails with a connection error.
    return AwsContext(endpoint_url="http://127.0.0.1:9", region="us-east-1", max_attempts=1, read_only=read_only,
                      hooks=[("before-send", lambda request, **_: sent.append(request.url))])


@pytest.mark.parametrize("operation, ok", [
    ("GetItem", True), ("BatchGetItem", True), ("Query", True), ("Scan", True), ("DescribeTable", True),
    ("ListTables", True), ("GetRecords", True), ("GetShardIterator", True), ("DescribeStream", True),
    ("GetObject", True), ("HeadObject", True), ("HeadBucket", True), ("ListObjectsV2", True),
    ("ListBuckets", True), ("TransactGetItems", True),
    ("PutItem", False), ("UpdateItem", False), ("DeleteItem", False), ("BatchWriteItem", False),
    ("TransactWriteItems", False), ("CreateTable", False), ("DeleteTable", False), ("UpdateTable", False),
    ("ExecuteStatement", False), ("ImportTable", False), ("PutObject", False), ("DeleteObject", False),
    ("CreateBucket", False), ("UpdateTimeToLive", False), ("TagResource", False),
])
def test_the_allow_list(operation, ok):
    assert is_read_operation(operation) is ok


@pytest.mark.parametrize("call, words", [
    (lambda c: c.client("dynamodb").put_item(TableName="orders", Item={"pk": {"S": "a"}}),
     "refusing dynamodb PutItem on table orders"),
    (lambda c: c.client("dynamodb").delete_table(TableName="orders_v2"), "refusing dynamodb DeleteTable on table orders_v2"),
    (lambda c: c.writer_client().batch_write_item(RequestItems={"orders_v2": [{"PutRequest": {"Item": {}}}]}),
     "refusing dynamodb BatchWriteItem on table orders_v2"),
    (lambda c: c.client("dynamodb").transact_write_items(TransactItems=[
        {"Put": {"TableName": "keyshift-control", "Item": {"pk": {"S": "flag#x"}}}}]),
     "refusing dynamodb TransactWriteItems on table keyshift-control"),
    (lambda c: c.client("s3").put_object(Bucket="dumps", Key="k/x.json", Body=b"x"),
     "refusing s3 PutObject on s3://dumps/k/x.json"),
    (lambda c: c.client("dynamodb").update_time_to_live(
        TableName="t", TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}),
     "refusing dynamodb UpdateTimeToLive on table t"),
])
def test_a_write_is_refused_before_anything_is_sent(call, words):
    sent: list = []
    with pytest.raises(ReadOnlyRefused) as info:
        call(_ctx(sent))
    assert isinstance(info.value, KeyshiftError) and info.value.exit_code == 2
    assert info.value.message.startswith("read-only mode: ") and words in info.value.message
    assert sent == []


def test_a_read_goes_out_and_a_writable_context_is_unchanged():
    from botocore.exceptions import EndpointConnectionError

    sent: list = []
    with pytest.raises(EndpointConnectionError):
        _ctx(sent).client("dynamodb").get_item(TableName="orders", Key={"pk": {"S": "a"}})
    assert sent  # it was sent (and nothing answered)
    sent.clear()
    with pytest.raises(EndpointConnectionError):
        _ctx(sent, read_only=False).client("dynamodb").put_item(TableName="orders", Item={"pk": {"S": "a"}})
    assert sent


def test_parameter_validation_still_happens_after_the_refusal_check():
    """A malformed write is refused as a write (the hook runs first), not as a botocore error."""
    sent: list = []
    with pytest.raises(ReadOnlyRefused):
        _ctx(sent).client("dynamodb").put_item(TableName="orders")  # Item missing
    assert sent == []
