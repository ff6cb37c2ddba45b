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
