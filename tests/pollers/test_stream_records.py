"""Our stream event records and OnFailure records against AWS's recorded shapes."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pollers.stream_records import dynamodb_record, kinesis_record, onfailure_record

REF = Path("/work/shared/reference")


def _ref(path: str) -> dict:
    return json.loads((REF / path).read_text())


def test_kinesis_record_matches_reference() -> None:
    expected = _ref("events/kinesis.json")["Records"][0]
    raw = {
        "SequenceNumber": expected["kinesis"]["sequenceNumber"], "PartitionKey": "1", "Data": b"Hello, this is a test.",
        "ApproximateArrivalTimestamp": datetime.fromtimestamp(1545084650.987, timezone.utc),
    }
    record = kinesis_record(raw, shard_id="shardId-000000000006", stream_arn=expected["eventSourceARN"], region="us-east-2", role=expected["invokeIdentityArn"])
    assert record.event == expected
    assert list(record.event) == list(expected) and list(record.event["kinesis"]) == list(expected["kinesis"])


def test_dynamodb_record_shape() -> None:
    ref = _ref("events/dynamodb-stream.json")["Records"][1]
    raw = {
        "eventID": "2", "eventName": "MODIFY", "eventVersion": "1.0", "eventSource": "aws:dynamodb", "awsRegion": "us-west-2",
        "dynamodb": {**ref["dynamodb"], "ApproximateCreationDateTime": datetime.fromtimestamp(1700000000.4, timezone.utc)},
    }
    record = dynamodb_record(raw, stream_arn=ref["eventSourceARN"], region="us-west-2")
    assert record.event["dynamodb"] == {**ref["dynamodb"], "ApproximateCreationDateTime": 1700000000}
    assert {k: v for k, v in record.event.items() if k not in ("dynamodb", "eventVersion")} == {
        k: v for k, v in ref.items() if k not in ("dynamodb", "eventVersion")
    }
    assert record.event["eventVersion"] == "1.1" and record.seq == 222


def _records(arrivals: list[float]) -> list:
    raws = [{"SequenceNumber": str(100 + i), "PartitionKey": "p", "Data": b"x", "ApproximateArrivalTimestamp": a} for i, a in enumerate(arrivals)]
    return [kinesis_record(r, shard_id="shardId-000000000001", stream_arn="arn:s", region="us-east-2", role="r") for r in raws]


def test_onfailure_kinesis_matches_reference_keys_and_formats() -> None:
    expected = _ref("records/stream-onfailure-kinesis.json")
    got = onfailure_record(
        info_key="KinesisBatchInfo", records=_records([1573691884.835, 1573691885.58]), shard_id="shardId-000000000001",
        stream_arn="arn:s", request_id="rid", function_arn="arn:f", condition="RetryAttemptsExhausted", invoke_count=1,
        function_error="Unhandled", now=1573691886.021,
    )
    assert list(got) == list(expected)
    assert got["responseContext"] == expected["responseContext"]
    assert list(got["KinesisBatchInfo"]) == list(expected["KinesisBatchInfo"])
    assert got["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"] == "2019-11-14T00:38:04.835Z"
    assert got["KinesisBatchInfo"]["approximateArrivalOfLastRecord"] == "2019-11-14T00:38:05.580Z"
    assert got["timestamp"] == "2019-11-14T00:38:06.021Z"


def test_onfailure_dynamodb_whole_seconds_and_age_has_no_response_context() -> None:
    expected = _ref("records/stream-onfailure-dynamodb.json")
    got = onfailure_record(
        info_key="DDBStreamBatchInfo", records=_records([1573690399.4]), shard_id="s", stream_arn="arn:s",
        request_id="rid", function_arn="arn:f", condition="RecordAgeExceeded", invoke_count=0, function_error=None, now=1573690429.717,
    )
    assert list(got) == [k for k in expected if k != "responseContext"]
    assert got["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"] == "2019-11-14T00:13:19Z"
    assert list(got["DDBStreamBatchInfo"]) == list(expected["DDBStreamBatchInfo"])
