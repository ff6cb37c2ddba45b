"""``keyshift stream-sync --status``: the Lambda event source mappings on the migration's streams.

Design (a) for the Lambda: the mapping starts from TRIM_HORIZON *after* the restore completed
(docs/deploy.md). The real command reads the mappings from the moto server's Lambda API and says
which was created before the last complete restore (a problem) and which after.
"""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from test_e2e_stream_sync import pipeline  # noqa: F401  (fixture: plan of the orders table)

pytestmark = pytest.mark.e2e


def _function(clients_endpoint: str, name: str):
    import boto3

    kw = {"endpoint_url": clients_endpoint, "region_name": "us-east-1"}
    lam, iam = boto3.client("lambda", **kw), boto3.client("iam", **kw)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("placeholder.py", "")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role,
                        Handler="keyshift.core.lambda_handler.handler", Code={"ZipFile": buf.getvalue()})
    return lam


def test_status_reports_mappings_and_whether_they_started_after_the_restore(pipeline, boto_clients):  # noqa: F811
    p = pipeline
    arn = p.ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
    lam = _function(boto_clients.endpoint_url, "keyshift-forward")
    # Created (enabled) before the restore: what design (a) forbids. (Nothing writes the old table
    # from here on, so moto never tries to invoke the placeholder function.)
    early = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="keyshift-forward",
                                            StartingPosition="LATEST", Enabled=True)["UUID"]
    time.sleep(1.1)  # workspace timestamps have one-second resolution
    restored = p.run("restore", "--create-table", "--allow-unresolved", "--json").json()
    assert restored["written"] > 0
    time.sleep(1.1)
    late = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="keyshift-forward", StartingPosition="TRIM_HORIZON", Enabled=False,
        FunctionResponseTypes=["ReportBatchItemFailures"], BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=100, MaximumRecordAgeInSeconds=3600,
        DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:keyshift-dlq"}})["UUID"]

    doc = p.run("stream-sync", "--status", "--json").json()["lambda"]
    assert doc["forward"]["stream_arn"] == arn and doc["forward"]["error"] is None
    by_id = {m["uuid"]: m for m in doc["forward"]["mappings"]}
    assert set(by_id) == {early, late}
    assert by_id[early]["after_restore"] is False
    assert any("TRIM_HORIZON" in x for x in by_id[early]["problems"])
    assert any("before the last complete restore" in x for x in by_id[early]["problems"])
    assert any("ReportBatchItemFailures" in x for x in by_id[early]["problems"])
    assert by_id[late]["after_restore"] is True
    assert by_id[late]["starting_position"] == "TRIM_HORIZON" and by_id[late]["report_batch_item_failures"]
    assert by_id[late]["state"] == "Disabled"
    assert by_id[late]["problems"] == []
    assert doc["reverse"]["stream_arn"] is not None and doc["reverse"]["mappings"] == []  # the new table's stream
    assert doc["restore_finished_at"] is not None

    text = p.run("stream-sync", "--status")
    assert text.returncode == 0
    assert late in text.stdout and "after the last restore: True" in text.stdout
    assert "not TRIM_HORIZON" in text.message
