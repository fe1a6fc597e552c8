"""`eventmill record` from a live source, then replay of the capture: lossless round trip."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from eventmill import replay
from tests.stack import ROOT, Stack

RETURN_EVENT = "def handler(event, context):\n    return event\n"


def record_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", "record", "--aws-endpoint", stack.aws_endpoint, *args],
        env=stack.env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120,
    )


def test_record_sqs_peek_then_consume_and_replay_round_trip(stack: Stack, tmp_path: Path) -> None:
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=f"rec-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    bodies = ["plain text", '{"json": [1, 2, {"deep": true}]}', "ünïcødé ✓", "  spaces  ", "x" * 3000]
    for i, body in enumerate(bodies):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
            "Index": {"DataType": "Number", "StringValue": str(i)},
            "Blob": {"DataType": "Binary", "BinaryValue": bytes([i, 255, 0])},
        })
    peeked = tmp_path / "peek.jsonl"
    proc = record_cli(stack, "--source", url, "--out", str(peeked), "--peek")
    assert proc.returncode == 0, proc.stderr
    records = [orjson.loads(line) for line in peeked.read_bytes().splitlines()]
    assert sorted(r["body"] for r in records) == sorted(bodies)
    assert all(r["eventSource"] == "aws:sqs" and r["messageAttributes"]["Index"]["dataType"] == "Number" for r in records)
    # peek left the messages for others
    visible = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert int(visible["ApproximateNumberOfMessages"]) == len(bodies)

    consumed = tmp_path / "consume.jsonl"
    proc = record_cli(stack, "--source", url, "--out", str(consumed), "--limit", "5")
    assert proc.returncode == 0, proc.stderr
    assert len(consumed.read_bytes().splitlines()) == 5
    left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert int(left["ApproximateNumberOfMessages"]) + int(left["ApproximateNumberOfMessagesNotVisible"]) == 0

    stack.start_worker()
    stack.create_function("seen", RETURN_EVENT)
    report = replay("seen", [consumed], mode="sync", redis_url=stack.redis_url, prefix=stack.prefix)
    assert report.ok and report.succeeded == 5
    originals = {r["messageId"]: r for r in (orjson.loads(line) for line in consumed.read_bytes().splitlines())}
    for outcome in report.outcomes:
        delivered = outcome.payload["Records"][0]
        original = originals[delivered["messageId"]]
        assert delivered["body"].encode() == original["body"].encode()
        assert delivered["messageAttributes"] == original["messageAttributes"]
        assert delivered["attributes"] == original["attributes"]


def test_record_rejects_unknown_source(stack: Stack, tmp_path: Path) -> None:
    proc = record_cli(stack, "--source", "ftp://nope", "--out", str(tmp_path / "x.jsonl"))
    assert proc.returncode == 1
    assert "--source must be" in proc.stderr and "Traceback" not in proc.stderr
