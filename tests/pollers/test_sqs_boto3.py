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


def destination_queue(stack: Stack, function: str, name: str) -> str:
    """An SQS queue set as the function's async OnSuccess destination, all through boto3."""
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.lambda_client.put_function_event_invoke_config(FunctionName=function, DestinationConfig={"OnSuccess": {"Destination": arn}})
    return url


def drain(stack: Stack, url: str, expect: int, timeout: float = 60) -> list[dict[str, object]]:
    sqs, got = stack.client("sqs"), []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def test_boto3_only_s3_and_sns_mappings(stack: Stack, em_prefix: str) -> None:
    """S3 bucket and SNS topic ARNs as EventSourceArn: each notification becomes an async
    invocation, seen here through the function's OnSuccess destination."""
    stack.start_worker()
    stack.start_pollers()
    lam, s3, sns = stack.lambda_client, stack.client("s3"), stack.client("sns")
    stack.create_function("b3echo", "def handler(event, context):\n    return 'ok'\n")
    out_url = destination_queue(stack, "b3echo", em_prefix.rstrip(":") + "b3-out")
    bucket = em_prefix.rstrip(":") + "-b3bkt"
    s3.create_bucket(Bucket=bucket)
    topic = sns.create_topic(Name=em_prefix.rstrip(":") + "-b3topic")["TopicArn"]
    for arn in (f"arn:aws:s3:::{bucket}", topic):
        esm = lam.create_event_source_mapping(FunctionName="b3echo", EventSourceArn=arn)
        stack.wait_for(lambda: lam.get_event_source_mapping(UUID=esm["UUID"])["State"] == "Enabled", what="Enabled")
    stack.wait_for(lambda: s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations"), what="bucket notification")
    stack.wait_for(lambda: sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"], what="topic subscription")
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    sns.publish(TopicArn=topic, Message="from sns")
    records = [r["requestPayload"]["Records"][0] for r in drain(stack, out_url, expect=4)]  # type: ignore[index]
    keys = sorted(r["s3"]["object"]["key"] for r in records if r.get("eventSource") == "aws:s3")
    assert keys == ["k0", "k1", "k2"]
    assert [r["Sns"]["Message"] for r in records if r.get("EventSource") == "aws:sns"] == ["from sns"]
