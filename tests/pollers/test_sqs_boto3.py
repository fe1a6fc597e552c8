"""Only boto3: Lambda API (eventmill) + SQS (moto), the way a user's own test would drive it."""

from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest

from tests.stack import Stack

POISON = """
def handler(event, context):
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "poison"]}
"""


def test_boto3_only_mapping_with_redrive(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.start_pollers()
    lam, sqs = stack.lambda_client, stack.client("sqs")
    stack.create_function("b3", POISON, Timeout=1)
    name = em_prefix.rstrip(":") + "b3"
    dlq_url = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": "1", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    with pytest.raises(botocore.exceptions.ClientError) as bad:
        lam.create_event_source_mapping(FunctionName="b3", EventSourceArn=arn, BatchSize=100)
    assert bad.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert bad.value.response["Error"]["Message"] == "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
    with pytest.raises(botocore.exceptions.ClientError):
        lam.create_event_source_mapping(FunctionName="b3", EventSourceArn=arn + "-missing")

    esm = lam.create_event_source_mapping(FunctionName="b3", EventSourceArn=arn, BatchSize=10,
                                          FunctionResponseTypes=["ReportBatchItemFailures"])
    stack.wait_for(lambda: lam.get_event_source_mapping(UUID=esm["UUID"])["State"] == "Enabled", what="Enabled")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(["a", "poison", "b"])])
    deadline = time.monotonic() + 30
    dead: list[dict[str, str]] = []
    while not dead and time.monotonic() < deadline:
        dead = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in dead] == ["poison"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    lam.delete_event_source_mapping(UUID=esm["UUID"])
    stack.wait_for(lambda: not lam.list_event_source_mappings(FunctionName="b3")["EventSourceMappings"], what="mapping deleted")
