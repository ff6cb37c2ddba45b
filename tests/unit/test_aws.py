"""The client policy: connection failures give up after a few attempts, throttling keeps retrying."""

from __future__ import annotations

import time

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError

from keyshift.core.aws import CONNECT_ATTEMPTS, AwsContext, aws_error_text


class FakeRaw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_):
        yield self.body


def _context(hook, **options):
    return AwsContext(endpoint_url="http://127.0.0.1:9", region="us-east-1",
                      hooks=[("before-send.dynamodb.DescribeTable", hook)], **options)


def test_a_call_that_cannot_connect_gives_up_after_a_few_attempts(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    attempts = []

    def refuse(request, **_):
        attempts.append(time.monotonic())
        raise EndpointConnectionError(endpoint_url=request.url)

    ddb = _context(refuse).client("dynamodb")
    with pytest.raises(EndpointConnectionError) as failed:
        ddb.describe_table(TableName="orders")
    assert len(attempts) == CONNECT_ATTEMPTS
    assert "cannot connect to http://127.0.0.1:9/" in aws_error_text(failed.value)


def test_throttling_keeps_the_full_adaptive_retry_budget(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda seconds: None)  # backoff: not the point here
    monkeypatch.setattr("botocore.retries.bucket.TokenBucket.acquire", lambda self, amount=1, block=True: True)
    attempts = []

    def throttle(request, **_):
        attempts.append(1)
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}'
        return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ThrottlingException"}, FakeRaw(body))

    ctx = _context(throttle, max_attempts=CONNECT_ATTEMPTS + 2)  # botocore: retries after the first call
    with pytest.raises(ClientError):
        ctx.client("dynamodb").describe_table(TableName="orders")
    assert len(attempts) == ctx.max_attempts + 1 > CONNECT_ATTEMPTS


# -- the writer client's wire-JSON bodies ---------------------------------------------------------
def _sent_bodies(ctx_client, calls):
    """Call batch_write_item for each of ``calls`` on a client whose requests are captured, not sent."""
    import json

    bodies = []

    def capture(request, **_):
        bodies.append(json.loads(request.body))
        return AWSResponse(request.url, 200, {}, FakeRaw(b'{"UnprocessedItems":{}}'))

    ctx_client.meta.events.register("before-send.dynamodb.BatchWriteItem", capture)
    for request_items in calls:
        ctx_client.batch_write_item(RequestItems=request_items)
    return bodies


def test_the_writer_client_sends_the_same_body_as_botocore_with_binary_left_in_base64(monkeypatch):
    from keyshift.core.aws import sends_wire_json
    from keyshift.core.kernel.items import for_botocore

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    item = {"pk": {"S": "Café\u200b"}, "n": {"N": "-1.50"}, "b": {"B": "AQID"}, "ok": {"BOOL": False},
            "none": {"NULL": True}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]},
            "l": {"L": [{"M": {"bs": {"BS": ["AAE=", "/w=="]}, "x": {"S": ""}}}, {"N": "0"}]}}
    ctx = AwsContext(endpoint_url="http://127.0.0.1:9", region="us-east-1")
    plain, writer = ctx.client("dynamodb"), ctx.writer_client()
    assert sends_wire_json(writer) and not sends_wire_json(plain)
    # botocore must be handed bytes; the writer client takes the dump's base64 text as it is, and
    # bytes too (UnprocessedItems come back parsed, binary as bytes).
    expected = _sent_bodies(plain, [{"t": [{"PutRequest": {"Item": for_botocore(item)}}]}])
    got = _sent_bodies(writer, [{"t": [{"PutRequest": {"Item": item}}]},
                                {"t": [{"PutRequest": {"Item": for_botocore(item)}}]}])
    assert got == expected * 2
    assert got[0]["RequestItems"]["t"][0]["PutRequest"]["Item"]["b"] == {"B": "AQID"}


def test_hooks_see_the_real_requests_and_botocore_serializes_what_orjson_cannot(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    seen = []

    def hold_back(params, **_):  # like the fault-injection hooks: edits the requests themselves
        seen.append(len(params["RequestItems"]["t"]))
        params["RequestItems"]["t"] = params["RequestItems"]["t"][:1]

    ctx = AwsContext(endpoint_url="http://127.0.0.1:9", region="us-east-1",
                     hooks=[("before-parameter-build.dynamodb.BatchWriteItem", hold_back)])
    puts = [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(3)]
    bodies = _sent_bodies(ctx.writer_client(), [{"t": puts}, {"t": [{"PutRequest": {"Item": {"pk": {"N": 1 << 70}}}}]}])
    assert seen == [3, 1]
    assert bodies[0]["RequestItems"]["t"] == puts[:1]
    # An int too large for orjson: left to botocore's serializer, which writes it as it always did.
    assert bodies[1]["RequestItems"]["t"][0]["PutRequest"]["Item"]["pk"] == {"N": 1 << 70}
