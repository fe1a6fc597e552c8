"""Set-up for stream poller tests: Kinesis streams / DynamoDB tables in the session's
moto server, handlers that report what they saw, and checks over `stack.results`."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from broker.mappings import EventSourceMapping
from tests.pollers.helpers import add_mapping
from tests.stack import Stack

# Reports each batch: its shard, (key, seq) items, and when it ran, so tests can check
# order per key and that no two batches of a shard overlapped.
RECORDER = """
import base64, json, time
def handler(event, context):
    start = time.time()
    recs = event.get("Records", [])
    items = []
    for r in recs:
        if "kinesis" in r:
            items.append([r["kinesis"]["partitionKey"], int(r["kinesis"]["sequenceNumber"])])
            if json.loads(base64.b64decode(r["kinesis"]["data"])).get("i") in POISON:
                raise ValueError("poison record")
        else:
            items.append([str(r["dynamodb"]["Keys"]), r["dynamodb"]["SequenceNumber"]])  # > 64 bits: keep text
    shard = recs[0]["eventID"].split(":")[0] if recs and "kinesis" in recs[0] else None
    time.sleep(SLEEP)
    return {"start": start, "end": time.time(), "shard": shard, "items": items}
"""


def recorder(sleep: float = 0.0, poison: tuple[int, ...] = ()) -> str:
    """The recording handler; it raises for a batch holding a record {"i": n} with n in `poison`."""
    return RECORDER.replace("SLEEP", repr(sleep)).replace("POISON", repr(set(poison)))


def make_stream(stack: Stack, name: str, shards: int = 1) -> str:
    kinesis = stack.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return str(kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"])


def put_records(stack: Stack, name: str, count: int, keys: int, start: int = 0, payload: Any = None) -> list[tuple[str, int]]:
    """Put `count` JSON records {"i": n} over `keys` partition keys; returns (key, seq) in put order."""
    kinesis = stack.client("kinesis")
    out: list[tuple[str, int]] = []
    for base in range(start, start + count, 500):
        entries = [
            {"Data": json.dumps(payload(i) if payload else {"i": i}).encode(), "PartitionKey": f"k{i % keys}"}
            for i in range(base, min(base + 500, start + count))
        ]
        resp = kinesis.put_records(StreamName=name, Records=entries)
        assert not resp.get("FailedRecordCount"), resp
        out.extend((e["PartitionKey"], int(r["SequenceNumber"])) for e, r in zip(entries, resp["Records"]))
    return out


def kinesis_mapping(stack: Stack, function: str, arn: str, **fields: Any) -> EventSourceMapping:
    fields.setdefault("starting_position", "TRIM_HORIZON")
    fields.setdefault("batch_size", 100)
    return add_mapping(stack, function, arn, kind="kinesis", **fields)


def batches(stack: Stack, function: str) -> list[dict[str, Any]]:
    """Successful invocations' payloads, by start time."""
    out = [r["payload"] for r in stack.results(function) if r["status"] == "success" and isinstance(r.get("payload"), dict)]
    return sorted(out, key=lambda p: p["start"])


def processed(stack: Stack, function: str) -> int:
    return sum(len(p["items"]) for p in batches(stack, function))


def seen_items(stack: Stack, function: str) -> set[tuple[str, int]]:
    return {(k, int(s)) for p in batches(stack, function) for k, s in p["items"]}


def assert_key_order(stack: Stack, function: str, allow_replay: bool = False) -> None:
    """Per key, sequence numbers increase in processing order (a replay after a crash may
    restart from an earlier point, but never skips back past a record not yet seen)."""
    last: dict[str, int] = {}
    for payload in batches(stack, function):
        for key, text in payload["items"]:
            seq = int(text)
            if key in last and seq <= last[key]:
                assert allow_replay, f"key {key}: {seq} after {last[key]}"
            last[key] = max(last.get(key, -1), seq) if allow_replay else seq


def assert_no_overlap(stack: Stack, function: str) -> None:
    """No two batches of one shard ran at the same time."""
    per_shard: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for payload in batches(stack, function):
        if payload["shard"]:
            per_shard[payload["shard"]].append((payload["start"], payload["end"]))
    for shard, spans in per_shard.items():
        spans.sort()
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            assert s2 >= e1, f"{shard}: batch at {s2} started before the one at {s1} ended ({e1})"


def lease_owners(stack: Stack, mapping: EventSourceMapping) -> dict[str, str]:
    raw = stack.redis.hgetall(stack.keys.stream_lease_owners(mapping.uuid))
    return {k.decode(): v.decode() for k, v in raw.items()}


def checkpoints(stack: Stack, mapping: EventSourceMapping) -> dict[str, str]:
    raw = stack.redis.hgetall(stack.keys.stream_checkpoints(mapping.uuid))
    return {k.decode(): v.decode() for k, v in raw.items()}


def assert_poison_onfailure(record: dict[str, Any], *, function: str, shard_id: str, poison_seq: str, stream_arn: str) -> None:
    """The OnFailure record a bisecting mapping (MaximumRetryAttempts 2) sends for one
    poison record, in AWS's shape. Shared by the live mapping test and replay's batch
    mode, which must do exactly what the live mapping does."""
    assert list(record) == ["requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{function}"
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["version"] == "1.0"
    info = record["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"], info["streamArn"]) == (
        shard_id, poison_seq, poison_seq, 1, stream_arn,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", info["approximateArrivalOfFirstRecord"])
