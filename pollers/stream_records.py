"""The exact JSON Lambda builds for streams: event records and OnFailure records.

Shapes follow /work/shared/reference/events/{kinesis,dynamodb-stream}.json and
records/stream-onfailure-*.json (SEMANTICS §38-42). Kept apart from the pollers so the
parity tests can compare them field by field.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Sequence

import orjson

EVENT_OVERHEAD_BYTES = 2  # the comma and space between records in {"Records": [...]}


@dataclass(frozen=True)
class StreamRecord:
    """One record read from a shard: its Lambda event form plus what the poller needs."""

    seq: int           # sequence number as an int: moto's are small ints, AWS's 56 digits
    sequence: str      # as the source wrote it
    key: str           # partition key (Kinesis) or canonical item Keys (DynamoDB)
    arrival: float     # epoch seconds
    event: dict[str, Any]
    size: int          # bytes of the event record's JSON


def epoch(value: Any) -> float:
    """Epoch seconds from botocore's datetime (or an already numeric value)."""
    return value.timestamp() if isinstance(value, datetime) else float(value)


def iso_ms(ts: float) -> str:
    """`2019-11-14T00:38:04.835Z`: Kinesis batch-info arrival times and every record timestamp."""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_s(ts: float) -> str:
    """`2019-11-14T00:13:19Z`: DynamoDB batch-info arrival times are whole seconds (§40)."""
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sized(seq: int, sequence: str, key: str, arrival: float, event: dict[str, Any]) -> StreamRecord:
    return StreamRecord(seq, sequence, key, arrival, event, len(orjson.dumps(event)) + EVENT_OVERHEAD_BYTES)


def kinesis_record(raw: dict[str, Any], *, shard_id: str, stream_arn: str, region: str, role: str) -> StreamRecord:
    """A GetRecords record as Lambda's Kinesis event record (§42); the arrival time may be a
    datetime or epoch seconds, the data bytes or base64 text (PollerContext.client raw_values)."""
    arrival = epoch(raw["ApproximateArrivalTimestamp"])
    sequence = str(raw["SequenceNumber"])
    data = raw["Data"]  # bytes from a parsing client, the wire's base64 text from a raw one
    event = {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": raw["PartitionKey"],
            "sequenceNumber": sequence,
            "data": data if isinstance(data, str) else base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": round(arrival, 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }
    return _sized(int(sequence), sequence, raw["PartitionKey"], arrival, event)


DDB_FIELDS = ("ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType")


def dynamodb_record(raw: dict[str, Any], *, stream_arn: str, region: str) -> StreamRecord:
    """A DynamoDB Streams record as Lambda's event record (§41): eventVersion 1.1,
    ApproximateCreationDateTime in epoch seconds, eventSourceARN added (moto omits it)."""
    ddb = raw["dynamodb"]
    arrival = epoch(ddb["ApproximateCreationDateTime"]) if "ApproximateCreationDateTime" in ddb else 0.0
    inner: dict[str, Any] = {}
    for name in DDB_FIELDS:
        if name == "ApproximateCreationDateTime":
            inner[name] = int(arrival)
        elif name in ddb:
            inner[name] = ddb[name]
    event = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion", region),
        "dynamodb": inner,
        "eventSourceARN": stream_arn,
    }
    sequence = str(ddb["SequenceNumber"])
    key = orjson.dumps(ddb.get("Keys", {}), option=orjson.OPT_SORT_KEYS).decode()
    return _sized(int(sequence), sequence, key, arrival, event)


BatchInfoKey = Literal["KinesisBatchInfo", "DDBStreamBatchInfo"]


def onfailure_record(
    *, info_key: BatchInfoKey, records: Sequence[StreamRecord], shard_id: str, stream_arn: str,
    request_id: str, function_arn: str, condition: str, invoke_count: int,
    function_error: str | None, now: float,
) -> dict[str, Any]:
    """The batch description Lambda sends to an OnFailure destination (§38-40).

    `responseContext` only for RetryAttemptsExhausted: a RecordAgeExceeded record has
    none, as recorded from AWS (§39).
    """
    arrival = iso_ms if info_key == "KinesisBatchInfo" else iso_s
    out: dict[str, Any] = {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
    }
    if condition == "RetryAttemptsExhausted":
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error is not None:
            response["functionError"] = function_error
        out["responseContext"] = response
    out["version"] = "1.0"
    out["timestamp"] = iso_ms(now)
    out[info_key] = {
        "shardId": shard_id,
        "startSequenceNumber": records[0].sequence,
        "endSequenceNumber": records[-1].sequence,
        "approximateArrivalOfFirstRecord": arrival(records[0].arrival),
        "approximateArrivalOfLastRecord": arrival(records[-1].arrival),
        "batchSize": len(records),
        "streamArn": stream_arn,
    }
    return out


def batch_event(records: Sequence[StreamRecord], window: dict[str, Any] | None = None) -> dict[str, Any]:
    """The invocation payload: {"Records": [...]} plus the tumbling-window fields (§36)."""
    event: dict[str, Any] = {"Records": [r.event for r in records]}
    if window is not None:
        event.update(window)
    return event
