"""S3 and SNS sources: notifications relayed through an SQS queue as async invocations."""

from __future__ import annotations

import json

from tests.pollers.helpers import add_mapping, esm_metric
from tests.stack import Stack

ECHO = """
def handler(event, context):
    return event
"""


def test_s3_puts_become_async_invocations(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("s3fn", ECHO)
    bucket = em_prefix.rstrip(":") + "-bkt"
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=bucket)
    mapping = add_mapping(stack, "s3fn", f"arn:aws:s3:::{bucket}", kind="s3",
                          s3_events=("s3:ObjectCreated:*",), s3_filter_rules=(("prefix", "in/"),))
    stack.start_pollers()
    stack.wait_for(lambda: s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations"), what="notification set")
    for i in range(50):
        s3.put_object(Bucket=bucket, Key=f"in/file {i}.txt", Body=b"hello")
    s3.put_object(Bucket=bucket, Key="other/skip.txt", Body=b"x")
    stack.wait_for(lambda: len(stack.results("s3fn")) >= 50, timeout=60, what="50 invocations")
    events = [r["event"] for r in stack.results("s3fn")]
    assert len(events) == 50 and all(len(e["Records"]) == 1 for e in events)
    record = events[0]["Records"][0]
    assert list(record) == ["eventVersion", "eventSource", "awsRegion", "eventTime", "eventName", "userIdentity",
                            "requestParameters", "responseElements", "s3"]
    assert (record["eventSource"], record["eventName"]) == ("aws:s3", "ObjectCreated:Put")
    assert record["s3"]["bucket"]["name"] == bucket and record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    keys = sorted(e["Records"][0]["s3"]["object"]["key"] for e in events)
    assert keys == sorted(f"in/file+{i}.txt" for i in range(50))  # AWS: '/' kept, space as '+'
    assert {"size", "eTag", "sequencer"} <= set(record["s3"]["object"])
    assert stack.metric("s3fn", "AsyncEventsReceived") == 50
    assert esm_metric(stack, mapping, "Filtered") >= 1  # the s3:TestEvent


def test_s3_failures_reach_async_dlq(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("s3bad", "def handler(event, context):\n    raise ValueError('no')\n")
    bucket = em_prefix.rstrip(":") + "-bad"
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=bucket)
    add_mapping(stack, "s3bad", f"arn:aws:s3:::{bucket}", kind="s3")
    stack.start_pollers()
    stack.wait_for(lambda: s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations"))
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    dead = stack.wait_for(lambda: (d := stack.dlq("s3bad")) and len(d) >= 3 and d, timeout=90, interval=0.5, what="DLQ records")
    assert sorted(d["event"]["Records"][0]["s3"]["object"]["key"] for d in dead) == ["k0", "k1", "k2"]


def test_sns_notifications_become_sns_events(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("snsfn", ECHO)
    sns = stack.client("sns")
    topic = sns.create_topic(Name=em_prefix.rstrip(":") + "-topic")["TopicArn"]
    add_mapping(stack, "snsfn", topic, kind="sns")
    stack.start_pollers()
    stack.wait_for(lambda: sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"], what="subscription")
    sns.publish(TopicArn=topic, Message="Hello from SNS!", Subject="TestInvoke",
                MessageAttributes={"Test": {"DataType": "String", "StringValue": "TestString"}})
    sns.publish(TopicArn=topic, Message=json.dumps({"a": 1}))
    stack.wait_for(lambda: len(stack.results("snsfn")) >= 2, timeout=30)
    records = {r["event"]["Records"][0]["Sns"]["Message"]: r["event"]["Records"][0] for r in stack.results("snsfn")}
    first = records["Hello from SNS!"]
    assert (first["EventSource"], first["EventVersion"]) == ("aws:sns", "1.0")
    assert first["EventSubscriptionArn"].startswith(topic + ":")
    assert set(first["Sns"]) == {"Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp", "SignatureVersion",
                                 "Signature", "SigningCertUrl", "UnsubscribeUrl", "MessageAttributes"}
    assert first["Sns"]["Subject"] == "TestInvoke" and first["Sns"]["TopicArn"] == topic
    assert first["Sns"]["MessageAttributes"] == {"Test": {"Type": "String", "Value": "TestString"}}
    assert records['{"a": 1}']["Sns"]["Subject"] is None
