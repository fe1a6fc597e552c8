"""Replay batch mode does what the live mapping does, checked with the live tests' helpers;
and a Kinesis capture replays byte-equal."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from eventmill import replay
from tests.pollers.stream_helpers import assert_poison_onfailure, make_stream, put_records, recorder
from tests.stack import ROOT, Stack


def record_stream(stack: Stack, arn: str, out: Path, count: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "broker.cli", "record", "--aws-endpoint", stack.aws_endpoint,
         "--source", arn, "--out", str(out), "--limit", str(count)],
        env=stack.env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_bytes().splitlines()) == count


def test_batch_mode_poison_record_bisected_like_the_live_mapping(stack: Stack, tmp_path: Path) -> None:
    name = f"rb-{uuid.uuid4().hex[:8]}"
    arn = make_stream(stack, name, 1)
    put = put_records(stack, name, 300, 10)
    capture = tmp_path / "capture.jsonl"
    record_stream(stack, arn, capture, 300)

    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name + "-fail")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.start_worker(2)
    stack.create_function("poison", recorder(poison=(137,)))
    report = replay(
        "poison", [capture], mode="batch", source="kinesis", batch_size=100, redis_url=stack.redis_url,
        prefix=stack.prefix, aws_endpoint=stack.aws_endpoint,
        mapping={"BisectBatchOnFunctionError": True, "MaximumRetryAttempts": 2, "DestinationConfig": {"OnFailure": {"Destination": qarn}}},
    )
    assert report.succeeded == 299 and len(report.failed) == 1
    [failed] = report.failed
    assert failed.condition == "RetryAttemptsExhausted"
    assert json.loads(base64.b64decode(failed.event["kinesis"]["data"])) == {"i": 137}
    messages = stack.receive_all(url, expect=2, timeout=3)
    assert len(messages) == 1
    assert_poison_onfailure(
        json.loads(messages[0]["Body"]), function="poison", shard_id="shardId-000000000000",
        poison_seq=str(put[137][1]), stream_arn=arn,
    )
    seen = {tuple(item) for r in stack.results("poison") if r["status"] == "success" for item in r["payload"]["items"]}
    assert seen == set(put) - {put[137]}


def test_kinesis_capture_replays_byte_equal(stack: Stack, tmp_path: Path) -> None:
    name = f"rc-{uuid.uuid4().hex[:8]}"
    arn = make_stream(stack, name, 2)
    kinesis = stack.client("kinesis")
    blobs = [bytes([i, 0, 255, 10]) + f"payload-{i}".encode() for i in range(20)]
    for i, blob in enumerate(blobs):
        kinesis.put_record(StreamName=name, Data=blob, PartitionKey=f"pk-{i % 3}")
    capture = tmp_path / "k.jsonl"
    record_stream(stack, arn, capture, 20)
    captured = [orjson.loads(line) for line in capture.read_bytes().splitlines()]
    stack.start_worker()
    stack.create_function("seen", "def handler(event, context):\n    return event\n")
    report = replay("seen", [capture], mode="sync", redis_url=stack.redis_url, prefix=stack.prefix)
    assert report.ok and report.succeeded == 20
    delivered = {o.payload["Records"][0]["kinesis"]["sequenceNumber"]: o.payload["Records"][0] for o in report.outcomes}
    assert sorted(base64.b64decode(r["kinesis"]["data"]) for r in delivered.values()) == sorted(blobs)
    for original in captured:
        got = delivered[original["kinesis"]["sequenceNumber"]]
        assert got == original  # data, partition key, sequence number, arrival time, eventID, ARNs


PARTIAL = """
import json
def handler(event, context):
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        if body["n"] % 7 == 0 and (body.get("always") or record["attributes"]["ApproximateReceiveCount"] == "1"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures, "size": len(event["Records"])}
"""


def test_batch_mode_sqs_partial_failures_come_back_until_max_receive_count(stack: Stack, tmp_path: Path) -> None:
    records = [
        {"messageId": f"m{n}", "receiptHandle": f"h{n}", "body": json.dumps({"n": n, "always": n == 14}),
         "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"}, "messageAttributes": {},
         "md5OfMessageAttributes": None, "md5OfBody": "x", "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders", "awsRegion": "us-east-1"}
        for n in range(1, 31)
    ]
    src = tmp_path / "sqs.json"
    src.write_bytes(orjson.dumps({"Records": records}))
    stack.start_worker()
    stack.create_function("partial", PARTIAL)
    report = replay(
        "partial", [src], mode="batch", batch_size=10, redis_url=stack.redis_url, prefix=stack.prefix,
        mapping={"FunctionResponseTypes": ["ReportBatchItemFailures"]}, max_receive_count=3,
    )
    by_id = {o.event["messageId"]: o for o in report.outcomes}
    assert report.succeeded == 29 and [o.event["messageId"] for o in report.failed] == ["m14"]
    assert by_id["m14"].condition == "MovedToDeadLetterQueue" and by_id["m14"].attempts == 3
    assert by_id["m7"].status == "success" and by_id["m7"].attempts == 2  # failed once, came back, succeeded
    assert by_id["m8"].attempts == 1
    sizes = sorted(r["payload"]["size"] for r in stack.results("partial"))
    assert max(sizes) == 10 and sum(sizes) == 30 + 4 + 1  # 30 first receives, 4 second (7, 14, 21, 28), 1 third (14)
