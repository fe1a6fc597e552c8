"""Event source mapping API through boto3: create / get / list / update / disable / delete
for SQS, FIFO, Kinesis and DynamoDB streams, AWS's refusals (queue visibility timeout,
missing queue, unknown function, duplicates) and mappings declared in eventmill.yaml.
Sources are real moto resources; no workers or pollers are needed."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aredis
from botocore.exceptions import ClientError

from broker.deploy import apply_project
from broker.mappings import MappingRegistry
from tests.stack import Stack

HANDLER = "def handler(event, context):\n    return None\n"


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def queue_arn(stack: Stack, name: str, **attributes: str) -> str:
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def kinesis_arn(stack: Stack, name: str) -> str:
    kinesis = stack.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    return str(kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"])


def dynamodb_stream_arn(stack: Stack, name: str) -> str:
    table = stack.client("dynamodb").create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(table["TableDescription"]["LatestStreamArn"])


def finalize(stack: Stack, uuid: str) -> bool:
    """What a pollers process does once a Deleting mapping's poller has stopped."""

    async def run() -> bool:
        client = aredis.Redis.from_url(stack.redis_url)
        try:
            return await MappingRegistry(client, stack.keys).finalize_deleted(uuid)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_sqs_round_trip(stack: Stack) -> None:
    lam = stack.lambda_client
    stack.create_function("worker", HANDLER)
    arn = queue_arn(stack, f"{stack.prefix[:-1]}-jobs")
    created = lam.create_event_source_mapping(FunctionName="worker", EventSourceArn=arn, BatchSize=5,
                                              FunctionResponseTypes=["ReportBatchItemFailures"])
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (created["State"], created["StateTransitionReason"], created["BatchSize"]) == ("Creating", "USER_INITIATED", 5)
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:worker"
    assert created["MaximumBatchingWindowInSeconds"] == 0 and created["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "StartingPosition" not in created and "MaximumRetryAttempts" not in created
    uuid = created["UUID"]
    got = lam.get_event_source_mapping(UUID=uuid)
    assert got["EventSourceArn"] == arn and got["State"] == "Creating" and got["LastModified"] == created["LastModified"]

    with pytest.raises(ClientError) as dup:
        lam.create_event_source_mapping(FunctionName="worker", EventSourceArn=arn)
    assert error(dup)[0] == "ResourceConflictException" and f"existing mapping with UUID {uuid}" in error(dup)[1]

    by_function = lam.list_event_source_mappings(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:worker")
    assert [m["UUID"] for m in by_function["EventSourceMappings"]] == [uuid]
    assert [m["UUID"] for m in lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]] == [uuid]
    assert lam.list_event_source_mappings(EventSourceArn=arn + "-other")["EventSourceMappings"] == []

    updated = lam.update_event_source_mapping(UUID=uuid, BatchSize=50, MaximumBatchingWindowInSeconds=2)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (updated["State"], updated["BatchSize"], updated["MaximumBatchingWindowInSeconds"]) == ("Updating", 50, 2)
    assert updated["FunctionResponseTypes"] == ["ReportBatchItemFailures"]  # untouched
    disabled = lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert disabled["State"] == "Disabling" and disabled["BatchSize"] == 50
    with pytest.raises(ClientError) as window:
        lam.update_event_source_mapping(UUID=uuid, MaximumBatchingWindowInSeconds=0)
    assert error(window) == ("InvalidParameterValueException",
                             "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")

    deleted = lam.delete_event_source_mapping(UUID=uuid)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202 and deleted["State"] == "Deleting"
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Deleting"  # until a pollers process finishes it
    with pytest.raises(ClientError) as in_use:
        lam.update_event_source_mapping(UUID=uuid, BatchSize=5)
    assert error(in_use)[0] == "ResourceInUseException"
    assert finalize(stack, uuid)
    with pytest.raises(ClientError) as gone:
        lam.get_event_source_mapping(UUID=uuid)
    assert error(gone) == ("ResourceNotFoundException", "The resource you requested does not exist.")


def test_fifo_queue_limits(stack: Stack) -> None:
    lam = stack.lambda_client
    stack.create_function("ordered", HANDLER)
    arn = queue_arn(stack, f"{stack.prefix[:-1]}-orders.fifo", FifoQueue="true")
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"BatchSize": 11, "MaximumBatchingWindowInSeconds": 1}, "Maximum batch size must be between 1 and 10 inclusive"),
        ({"MaximumBatchingWindowInSeconds": 1}, "Batching window is not supported for FIFO queues"),
        ({"StartingPosition": "LATEST"}, "StartingPosition is not valid for SQS event sources."),
        ({"MaximumRetryAttempts": 2}, "Unsupported 'maximumRetryAttempts' parameter for given event source mapping type."),
    ]
    for params, message in refusals:
        with pytest.raises(ClientError) as exc:
            lam.create_event_source_mapping(FunctionName="ordered", EventSourceArn=arn, **params)
        assert error(exc) == ("InvalidParameterValueException", message)
    created = lam.create_event_source_mapping(FunctionName="ordered", EventSourceArn=arn, BatchSize=10, ScalingConfig={"MaximumConcurrency": 2})
    assert created["BatchSize"] == 10 and created["ScalingConfig"] == {"MaximumConcurrency": 2}


@pytest.mark.parametrize("kind", ["kinesis", "dynamodb"])
def test_stream_round_trip(stack: Stack, kind: str) -> None:
    lam = stack.lambda_client
    stack.create_function("reader", HANDLER)
    name = f"{stack.prefix[:-1]}-{kind}"
    arn = kinesis_arn(stack, name) if kind == "kinesis" else dynamodb_stream_arn(stack, name)
    with pytest.raises(ClientError) as missing:
        lam.create_event_source_mapping(FunctionName="reader", EventSourceArn=arn)
    assert error(missing)[0] == "InvalidParameterValueException" and "Value null at 'startingPosition'" in error(missing)[1]
    created = lam.create_event_source_mapping(FunctionName="reader", EventSourceArn=arn, StartingPosition="TRIM_HORIZON")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (created["State"], created["StateTransitionReason"], created["LastProcessingResult"]) == ("Creating", "User action", "No records processed")
    assert (created["BatchSize"], created["ParallelizationFactor"], created["TumblingWindowInSeconds"]) == (100, 1, 0)
    assert (created["MaximumRetryAttempts"], created["MaximumRecordAgeInSeconds"], created["BisectBatchOnFunctionError"]) == (-1, -1, False)
    assert created["DestinationConfig"] == {"OnFailure": {}} and created["StartingPosition"] == "TRIM_HORIZON"
    uuid = created["UUID"]
    dlq = queue_arn(stack, f"{name}-failures")
    updated = lam.update_event_source_mapping(
        UUID=uuid, MaximumRetryAttempts=2, MaximumRecordAgeInSeconds=60, BisectBatchOnFunctionError=True,
        ParallelizationFactor=10, DestinationConfig={"OnFailure": {"Destination": dlq}}, TumblingWindowInSeconds=900,
    )
    assert (updated["MaximumRetryAttempts"], updated["MaximumRecordAgeInSeconds"], updated["ParallelizationFactor"]) == (2, 60, 10)
    assert updated["DestinationConfig"] == {"OnFailure": {"Destination": dlq}} and updated["BisectBatchOnFunctionError"]
    assert updated["State"] == "Updating" and updated["TumblingWindowInSeconds"] == 900
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
    with pytest.raises(ClientError) as bad:
        lam.update_event_source_mapping(UUID=uuid, ScalingConfig={"MaximumConcurrency": 5})
    assert error(bad) == ("InvalidParameterValueException", "Unsupported 'scalingConfig' parameter for given event source mapping type.")
    if kind == "dynamodb":
        with pytest.raises(ClientError) as at:
            lam.create_event_source_mapping(FunctionName="reader", EventSourceArn=arn, StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=1)
        assert error(at) == ("InvalidParameterValueException", f"Unsupported starting position for arn type: {arn}")
    assert lam.delete_event_source_mapping(UUID=uuid)["State"] == "Deleting"


def test_kinesis_at_timestamp(stack: Stack) -> None:
    stack.create_function("reader", HANDLER)
    arn = kinesis_arn(stack, f"{stack.prefix[:-1]}-ts")
    created = stack.lambda_client.create_event_source_mapping(
        FunctionName="reader", EventSourceArn=arn, StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=1700000000,
    )
    assert created["StartingPosition"] == "AT_TIMESTAMP" and created["StartingPositionTimestamp"].timestamp() == 1700000000


def test_queue_visibility_timeout_shorter_than_function_timeout_is_refused(stack: Stack) -> None:
    lam = stack.lambda_client
    stack.create_function("slow", HANDLER, Timeout=60)
    stack.create_function("quick", HANDLER, Timeout=30)
    arn = queue_arn(stack, f"{stack.prefix[:-1]}-short", VisibilityTimeout="30")
    with pytest.raises(ClientError) as exc:
        lam.create_event_source_mapping(FunctionName="slow", EventSourceArn=arn)
    assert error(exc) == ("InvalidParameterValueException", "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds")
    uuid = lam.create_event_source_mapping(FunctionName="quick", EventSourceArn=arn)["UUID"]  # equal is fine
    with pytest.raises(ClientError) as moved:
        lam.update_event_source_mapping(UUID=uuid, FunctionName="slow")
    assert error(moved)[1] == "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds"
    assert lam.get_event_source_mapping(UUID=uuid)["FunctionArn"].endswith(":function:quick")


def test_missing_queue_unknown_function_and_unknown_uuid(stack: Stack) -> None:
    lam = stack.lambda_client
    stack.create_function("worker", HANDLER)
    missing = f"arn:aws:sqs:us-east-1:123456789012:{stack.prefix[:-1]}-nowhere"
    with pytest.raises(ClientError) as exc:
        lam.create_event_source_mapping(FunctionName="worker", EventSourceArn=missing)
    code, message = error(exc)
    assert code == "InvalidParameterValueException"
    assert message.startswith("Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue.")
    assert missing in message
    arn = queue_arn(stack, f"{stack.prefix[:-1]}-real")
    with pytest.raises(ClientError) as nofn:
        lam.create_event_source_mapping(FunctionName="nope", EventSourceArn=arn)
    assert error(nofn) == ("ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope")
    for call in (lam.get_event_source_mapping, lam.delete_event_source_mapping):
        with pytest.raises(ClientError) as unknown:
            call(UUID="00000000-0000-0000-0000-000000000000")
        assert error(unknown) == ("ResourceNotFoundException", "The resource you requested does not exist.")
    with pytest.raises(ClientError) as unknown_update:
        lam.update_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000", BatchSize=1)
    assert error(unknown_update)[0] == "ResourceNotFoundException"


def test_list_pages_with_marker(stack: Stack) -> None:
    lam = stack.lambda_client
    stack.create_function("worker", HANDLER)
    uuids = sorted(
        lam.create_event_source_mapping(FunctionName="worker", EventSourceArn=queue_arn(stack, f"{stack.prefix[:-1]}-p{i}"))["UUID"]
        for i in range(3)
    )
    seen: list[str] = []
    kwargs: dict[str, Any] = {"FunctionName": "worker", "MaxItems": 2}
    while True:
        page = lam.list_event_source_mappings(**kwargs)
        seen += [m["UUID"] for m in page["EventSourceMappings"]]
        if "NextMarker" not in page:
            break
        kwargs["Marker"] = page["NextMarker"]
    assert seen == uuids


def test_yaml_mappings_applied_after_functions(stack: Stack, tmp_path: Path) -> None:
    arn = queue_arn(stack, f"{stack.prefix[:-1]}-yaml")
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(HANDLER)
    project = tmp_path / "eventmill.yaml"
    project.write_text(textwrap.dedent(f"""\
        functions:
          - {{FunctionName: fromyaml, Runtime: python3.11, Handler: app.handler, Code: ./fn}}
        event_source_mappings:
          - FunctionName: fromyaml
            EventSourceArn: "{arn}"
            BatchSize: 20
            MaximumBatchingWindowInSeconds: 1
            FilterCriteria: {{Filters: [{{Pattern: '{{"body": {{"kind": ["a"]}}}}'}}]}}
        """))
    assert apply_project(stack.redis, stack.keys, stack.data_dir, project) == ["fromyaml"]
    [mapping] = stack.lambda_client.list_event_source_mappings(FunctionName="fromyaml")["EventSourceMappings"]
    assert (mapping["BatchSize"], mapping["State"], mapping["EventSourceArn"]) == (20, "Creating", arn)
    assert mapping["FilterCriteria"] == {"Filters": [{"Pattern": '{"body": {"kind": ["a"]}}'}]}
    apply_project(stack.redis, stack.keys, stack.data_dir, project)  # re-applying does not duplicate
    again = stack.lambda_client.list_event_source_mappings(FunctionName="fromyaml")["EventSourceMappings"]
    assert [m["UUID"] for m in again] == [mapping["UUID"]] and again[0]["State"] == "Creating"
