"""broker/mappings.py: AWS's defaults, ranges and error texts for event source mappings
(pure, table-driven), and their storage and lifecycle in a real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from broker.errors import LambdaError
from broker.keys import Keys
from broker.mappings import (
    EventSourceMapping,
    MappingRegistry,
    load_mappings,
    plan_project,
    save_mappings,
)

SQS = "arn:aws:sqs:us-east-1:123456789012:jobs"
FIFO = "arn:aws:sqs:us-east-1:123456789012:jobs.fifo"
KINESIS = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
DDB = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
S3 = "arn:aws:s3:::uploads"
SNS = "arn:aws:sns:us-east-1:123456789012:alerts"
SOURCES = {"sqs": SQS, "fifo": FIFO, "kinesis": KINESIS, "dynamodb": DDB, "s3": S3, "sns": SNS}
VALIDATION = "ValidationException"
INVALID = "InvalidParameterValueException"


def body(source: str, **params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"FunctionName": "fn", "EventSourceArn": SOURCES[source]}
    if source in ("kinesis", "dynamodb"):
        out["StartingPosition"] = "TRIM_HORIZON"
    out.update(params)
    return {k: v for k, v in out.items() if v is not None}


def parse(source: str, **params: Any) -> EventSourceMapping:
    return EventSourceMapping.parse(body(source, **params))


@pytest.mark.parametrize(
    "source, kind, batch, reason",
    [("sqs", "sqs", 10, "USER_INITIATED"), ("fifo", "sqs", 10, "USER_INITIATED"), ("kinesis", "kinesis", 100, "User action"),
     ("dynamodb", "dynamodb", 100, "User action"), ("s3", "s3", 10, "USER_INITIATED"), ("sns", "sns", 10, "USER_INITIATED")],
)
def test_defaults_per_source(source: str, kind: str, batch: int, reason: str) -> None:
    m = parse(source)
    assert (m.kind, m.batch_size, m.state_transition_reason, m.state, m.revision) == (kind, batch, reason, "Creating", 0)
    assert m.maximum_batching_window_s == 0 and m.enabled and m.function_name == "fn"
    assert m.fifo == (source == "fifo")
    assert m.last_modified == pytest.approx(time.time(), abs=5)
    if kind in ("kinesis", "dynamodb"):
        assert (m.parallelization_factor, m.maximum_retry_attempts, m.maximum_record_age_s, m.tumbling_window_s) == (1, -1, -1, 0)
        assert not m.bisect_batch_on_function_error and m.on_failure_destination is None
    assert m.s3_events == (("s3:ObjectCreated:*",) if kind == "s3" else ())


def test_function_name_may_be_an_arn_and_enabled_false_is_kept() -> None:
    m = parse("sqs", FunctionName="arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST", Enabled=False)
    assert m.function_name == "fn" and not m.enabled and m.state == "Creating"


@pytest.mark.parametrize(
    "source, params, field, value",
    [
        ("sqs", {"BatchSize": 1}, "batch_size", 1),
        ("sqs", {"BatchSize": 10}, "batch_size", 10),
        ("sqs", {"BatchSize": 10000, "MaximumBatchingWindowInSeconds": 1}, "batch_size", 10000),
        ("fifo", {"BatchSize": 10}, "batch_size", 10),
        ("kinesis", {"BatchSize": 10000}, "batch_size", 10000),
        ("dynamodb", {"BatchSize": 1}, "batch_size", 1),
        ("sqs", {"MaximumBatchingWindowInSeconds": 300}, "maximum_batching_window_s", 300),
        ("kinesis", {"MaximumBatchingWindowInSeconds": 0}, "maximum_batching_window_s", 0),
        ("kinesis", {"ParallelizationFactor": 1}, "parallelization_factor", 1),
        ("kinesis", {"ParallelizationFactor": 10}, "parallelization_factor", 10),
        ("kinesis", {"MaximumRetryAttempts": -1}, "maximum_retry_attempts", -1),
        ("dynamodb", {"MaximumRetryAttempts": 0}, "maximum_retry_attempts", 0),
        ("kinesis", {"MaximumRetryAttempts": 10000}, "maximum_retry_attempts", 10000),
        ("kinesis", {"MaximumRecordAgeInSeconds": -1}, "maximum_record_age_s", -1),
        ("kinesis", {"MaximumRecordAgeInSeconds": 60}, "maximum_record_age_s", 60),
        ("dynamodb", {"MaximumRecordAgeInSeconds": 604800}, "maximum_record_age_s", 604800),
        ("kinesis", {"TumblingWindowInSeconds": 0}, "tumbling_window_s", 0),
        ("kinesis", {"TumblingWindowInSeconds": 900}, "tumbling_window_s", 900),
        ("sqs", {"ScalingConfig": {"MaximumConcurrency": 2}}, "scaling_max_concurrency", 2),
        ("sqs", {"ScalingConfig": {"MaximumConcurrency": 1000}}, "scaling_max_concurrency", 1000),
        ("sqs", {"FunctionResponseTypes": ["ReportBatchItemFailures"]}, "function_response_types", ("ReportBatchItemFailures",)),
        ("dynamodb", {"FunctionResponseTypes": []}, "function_response_types", ()),
        ("kinesis", {"BisectBatchOnFunctionError": True}, "bisect_batch_on_function_error", True),
        ("kinesis", {"DestinationConfig": {"OnFailure": {"Destination": SQS}}}, "on_failure_destination", SQS),
        ("dynamodb", {"DestinationConfig": {"OnFailure": {"Destination": SNS}}}, "on_failure_destination", SNS),
        ("kinesis", {"DestinationConfig": {"OnFailure": {}}}, "on_failure_destination", None),
        ("kinesis", {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1700000000}, "starting_position_timestamp", 1700000000.0),
        ("dynamodb", {"StartingPosition": "LATEST"}, "starting_position", "LATEST"),
        ("sqs", {"FilterCriteria": {"Filters": [{"Pattern": '{"body": {"a": [1]}}'}]}}, "filter_criteria", {"Filters": [{"Pattern": '{"body": {"a": [1]}}'}]}),
        ("sqs", {"FilterCriteria": {}}, "filter_criteria", None),
        ("s3", {"S3Events": ["s3:ObjectRemoved:*"]}, "s3_events", ("s3:ObjectRemoved:*",)),
        ("s3", {"S3FilterRules": [{"Name": "Prefix", "Value": "in/"}, {"Name": "suffix", "Value": ".csv"}]}, "s3_filter_rules", (("prefix", "in/"), ("suffix", ".csv"))),
        ("sns", {"QueueUrl": "http://localhost:4566/123456789012/q"}, "queue_url", "http://localhost:4566/123456789012/q"),
        ("sqs", {"Tags": {"team": "a"}}, "batch_size", 10),
    ],
)
def test_valid_values_accepted(source: str, params: dict[str, Any], field: str, value: Any) -> None:
    assert getattr(parse(source, **params), field) == value


def _unsupported(param: str) -> str:
    return f"Unsupported '{param}' parameter for given event source mapping type."


@pytest.mark.parametrize(
    "source, params, code, message",
    [
        # the API model's ranges: ValidationException with the model's member name
        ("sqs", {"BatchSize": 0}, VALIDATION, "1 validation error detected: Value '0' at 'batchSize' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        ("kinesis", {"BatchSize": 10001}, VALIDATION, "1 validation error detected: Value '10001' at 'batchSize' failed to satisfy constraint: Member must have value less than or equal to 10000"),
        ("sqs", {"MaximumBatchingWindowInSeconds": -1}, VALIDATION, "Value '-1' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value greater than or equal to 0"),
        ("kinesis", {"MaximumBatchingWindowInSeconds": 301}, VALIDATION, "Value '301' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value less than or equal to 300"),
        ("kinesis", {"ParallelizationFactor": 0}, VALIDATION, "Value '0' at 'parallelizationFactor' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        ("kinesis", {"ParallelizationFactor": 11}, VALIDATION, "Value '11' at 'parallelizationFactor' failed to satisfy constraint: Member must have value less than or equal to 10"),
        ("kinesis", {"MaximumRetryAttempts": -2}, VALIDATION, "Value '-2' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value greater than or equal to -1"),
        ("dynamodb", {"MaximumRetryAttempts": 10001}, VALIDATION, "Value '10001' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 10000"),
        ("kinesis", {"MaximumRecordAgeInSeconds": -2}, VALIDATION, "Value '-2' at 'maximumRecordAgeInSeconds' failed to satisfy constraint: Member must have value greater than or equal to -1"),
        ("kinesis", {"MaximumRecordAgeInSeconds": 604801}, VALIDATION, "Value '604801' at 'maximumRecordAgeInSeconds' failed to satisfy constraint: Member must have value less than or equal to 604800"),
        ("kinesis", {"TumblingWindowInSeconds": -1}, VALIDATION, "Value '-1' at 'tumblingWindowInSeconds' failed to satisfy constraint: Member must have value greater than or equal to 0"),
        ("dynamodb", {"TumblingWindowInSeconds": 901}, VALIDATION, "Value '901' at 'tumblingWindowInSeconds' failed to satisfy constraint: Member must have value less than or equal to 900"),
        ("sqs", {"ScalingConfig": {"MaximumConcurrency": 1}}, VALIDATION, "Value '1' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value greater than or equal to 2"),
        ("sqs", {"ScalingConfig": {"MaximumConcurrency": 1001}}, VALIDATION, "Value '1001' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value less than or equal to 1000"),
        ("kinesis", {"StartingPosition": "0"}, VALIDATION, "1 validation error detected: Value '0' at 'startingPosition' failed to satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]"),
        ("sqs", {"StartingPosition": "0"}, VALIDATION, "Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]"),
        ("sqs", {"FunctionResponseTypes": ["Nope"]}, VALIDATION, "Value '[Nope]' at 'functionResponseTypes' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]"),
        ("sqs", {"BatchSize": "5"}, INVALID, "BatchSize must be an integer, got '5'"),
        ("sqs", {"Enabled": "yes"}, INVALID, "Enabled must be a boolean, got 'yes'"),
        # SQS rules (SEMANTICS §A)
        ("sqs", {"BatchSize": 11}, INVALID, "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"),
        ("sqs", {"BatchSize": 11, "MaximumBatchingWindowInSeconds": 0}, INVALID, "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"),
        ("fifo", {"BatchSize": 11, "MaximumBatchingWindowInSeconds": 1}, INVALID, "Maximum batch size must be between 1 and 10 inclusive"),
        ("fifo", {"MaximumBatchingWindowInSeconds": 1}, INVALID, "Batching window is not supported for FIFO queues"),
        ("sqs", {"StartingPosition": "LATEST"}, INVALID, "StartingPosition is not valid for SQS event sources."),
        ("fifo", {"StartingPositionTimestamp": 1}, INVALID, "StartingPosition is not valid for SQS event sources."),
        ("sqs", {"MaximumRetryAttempts": 1}, INVALID, _unsupported("maximumRetryAttempts")),
        ("sqs", {"MaximumRecordAgeInSeconds": 60}, INVALID, _unsupported("maximumRecordAgeInSeconds")),
        ("sqs", {"ParallelizationFactor": 2}, INVALID, _unsupported("parallelizationFactor")),
        ("sqs", {"BisectBatchOnFunctionError": True}, INVALID, _unsupported("bisectBatchOnFunctionError")),
        ("sqs", {"TumblingWindowInSeconds": 60}, INVALID, _unsupported("tumblingWindowInSeconds")),
        ("sqs", {"DestinationConfig": {"OnFailure": {"Destination": SQS}}}, INVALID, _unsupported("destinationConfig")),
        ("sqs", {"Topics": ["t"]}, INVALID, _unsupported("topics")),
        # stream rules (SEMANTICS §C)
        ("kinesis", {"StartingPosition": None}, INVALID, "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null."),
        ("dynamodb", {"StartingPosition": None}, INVALID, "Value null at 'startingPosition'"),
        ("dynamodb", {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1}, INVALID, f"Unsupported starting position for arn type: {DDB}"),
        ("kinesis", {"StartingPosition": "LATEST", "StartingPositionTimestamp": 1}, INVALID, "Timestamp only valid with StartingPosition AT_TIMESTAMP"),
        ("kinesis", {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": -5}, INVALID, "Received Exception while reading from provided stream. class java.lang.Long can not be converted to a Timestamp"),
        ("kinesis", {"StartingPosition": "AT_TIMESTAMP"}, INVALID, "StartingPositionTimestamp is required with StartingPosition AT_TIMESTAMP"),
        ("kinesis", {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": time.time() + 3600}, INVALID, "StartingPositionTimestamp cannot be in the future"),
        ("kinesis", {"MaximumRecordAgeInSeconds": 0}, INVALID, "MaximumRecordAgeInSeconds must be -1 (infinite) or between 60 and 604800, got 0"),
        ("dynamodb", {"MaximumRecordAgeInSeconds": 59}, INVALID, "MaximumRecordAgeInSeconds must be -1 (infinite) or between 60 and 604800, got 59"),
        ("kinesis", {"ScalingConfig": {"MaximumConcurrency": 5}}, INVALID, _unsupported("scalingConfig")),
        ("kinesis", {"DestinationConfig": {"OnSuccess": {"Destination": SQS}}}, INVALID, "Unsupported DestinationConfig parameter for given event source mapping type."),
        ("kinesis", {"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:123456789012:function:x"}}}, INVALID, "OnFailure must be an SQS queue or SNS topic ARN"),
        # filters (pollers/filtering.py gives AWS's text)
        ("sqs", {"FilterCriteria": {"Filters": [{"Pattern": "{not json"}]}}, INVALID, "Invalid filter pattern definition."),
        ("kinesis", {"FilterCriteria": {"Filters": [{"Pattern": '{"data": "plain"}'}]}}, INVALID, "Invalid filter pattern definition."),
        ("sqs", {"FilterCriteria": {"Filters": [{"Pattern": "{}"}] * 6}}, INVALID, "Invalid filter criteria. The maximum number of filters per event source mapping is 5."),
        # sources
        ("sqs", {"EventSourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"}, INVALID, "Unrecognized event source, must be kinesis, dynamodb stream or sqs"),
        ("sqs", {"EventSourceArn": "not-an-arn"}, INVALID, "Unrecognized event source"),
        ("sqs", {"EventSourceArn": None}, INVALID, "Unrecognized event source."),
        ("sqs", {"FunctionName": None}, VALIDATION, "Value null at 'functionName' failed to satisfy constraint: Member must not be null"),
        ("sqs", {"FunctionName": "fn:live"}, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:fn:live"),
        ("s3", {"S3Events": ["s3:Nope"]}, INVALID, "The event is not supported for notifications: s3:Nope"),
        ("s3", {"S3FilterRules": [{"Name": "prefix", "Value": "a"}, {"Name": "prefix", "Value": "b"}]}, INVALID, "Cannot specify more than one prefix rule in a filter."),
        ("s3", {"BatchSize": 5}, INVALID, _unsupported("batchSize")),
        ("sns", {"S3Events": ["s3:ObjectCreated:*"]}, INVALID, _unsupported("s3Events")),
        ("sns", {"FilterCriteria": {"Filters": []}}, INVALID, _unsupported("filterCriteria")),
        ("sqs", {"QueueUrl": "http://x"}, INVALID, _unsupported("queueUrl")),
    ],
)
def test_invalid_values_refused_with_aws_text(source: str, params: dict[str, Any], code: str, message: str) -> None:
    with pytest.raises(LambdaError) as info:
        EventSourceMapping.parse(body(source, **params))  # a None param removes a default one
    assert info.value.code == code
    assert message in info.value.message


def test_update_changes_only_given_fields_and_bumps_revision() -> None:
    base = parse("sqs", BatchSize=5, FunctionResponseTypes=["ReportBatchItemFailures"])
    updated = EventSourceMapping.parse({"BatchSize": 7}, base)
    assert (updated.uuid, updated.batch_size, updated.function_response_types) == (base.uuid, 7, ("ReportBatchItemFailures",))
    assert (updated.revision, updated.state, updated.state_transition_reason) == (1, "Updating", "USER_INITIATED")
    again = EventSourceMapping.parse({"FunctionResponseTypes": []}, updated)
    assert again.function_response_types == () and again.revision == 2 and again.batch_size == 7


@pytest.mark.parametrize("enabled_before, enabled, state", [(True, False, "Disabling"), (False, True, "Enabling"), (True, True, "Updating"), (False, False, "Updating")])
def test_update_state_follows_enabled(enabled_before: bool, enabled: bool, state: str) -> None:
    base = parse("kinesis", Enabled=enabled_before)
    assert EventSourceMapping.parse({"Enabled": enabled}, base).state == state


def test_update_is_validated_as_a_whole() -> None:
    base = parse("sqs")
    with pytest.raises(LambdaError, match="Maximum batch window in seconds must be greater than 0"):
        EventSourceMapping.parse({"BatchSize": 100}, base)
    windowed = EventSourceMapping.parse({"MaximumBatchingWindowInSeconds": 5}, base)
    assert EventSourceMapping.parse({"BatchSize": 100}, windowed).batch_size == 100
    with pytest.raises(LambdaError, match="Unsupported 'parallelizationFactor'"):
        EventSourceMapping.parse({"ParallelizationFactor": 2}, base)


def test_update_refuses_create_only_fields_and_deleting_mappings() -> None:
    base = parse("kinesis")
    with pytest.raises(LambdaError, match="StartingPosition cannot be changed"):
        EventSourceMapping.parse({"StartingPosition": "LATEST"}, base)
    assert EventSourceMapping.parse({"EventSourceArn": KINESIS}, base).event_source_arn == KINESIS  # unchanged is fine
    with pytest.raises(LambdaError) as info:
        EventSourceMapping.parse({"BatchSize": 5}, replace(base, state="Deleting"))
    assert info.value.code == "ResourceInUseException"


SQS_KEYS = ["UUID", "BatchSize", "MaximumBatchingWindowInSeconds", "EventSourceArn", "FunctionArn", "LastModified", "State",
            "StateTransitionReason", "FunctionResponseTypes", "EventSourceMappingArn"]
STREAM_KEYS = ["UUID", "StartingPosition", "BatchSize", "MaximumBatchingWindowInSeconds", "ParallelizationFactor", "EventSourceArn",
               "FunctionArn", "LastModified", "LastProcessingResult", "State", "StateTransitionReason", "DestinationConfig",
               "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError", "MaximumRetryAttempts", "TumblingWindowInSeconds",
               "FunctionResponseTypes", "EventSourceMappingArn"]


@pytest.mark.parametrize("source, keys", [("sqs", SQS_KEYS), ("fifo", SQS_KEYS), ("kinesis", STREAM_KEYS), ("dynamodb", STREAM_KEYS)])
def test_to_api_returns_the_fields_aws_returns_for_the_source(source: str, keys: list[str]) -> None:
    out = parse(source).to_api()
    assert list(out) == keys
    assert out["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    if source in ("kinesis", "dynamodb"):  # SEMANTICS §33: the recorded defaults
        assert out["DestinationConfig"] == {"OnFailure": {}} and out["LastProcessingResult"] == "No records processed"
        assert (out["MaximumRetryAttempts"], out["MaximumRecordAgeInSeconds"], out["BisectBatchOnFunctionError"]) == (-1, -1, False)


def test_to_api_optional_fields() -> None:
    out = parse("sqs", ScalingConfig={"MaximumConcurrency": 5}, FilterCriteria={"Filters": [{"Pattern": '{"a": [1]}'}]}).to_api()
    assert out["ScalingConfig"] == {"MaximumConcurrency": 5}
    assert out["FilterCriteria"] == {"Filters": [{"Pattern": '{"a": [1]}'}]}
    stream = parse("kinesis", StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=1700000000,
                   DestinationConfig={"OnFailure": {"Destination": SNS}}).to_api()
    assert stream["StartingPositionTimestamp"] == 1700000000.0 and stream["DestinationConfig"] == {"OnFailure": {"Destination": SNS}}


@pytest.mark.parametrize("source", list(SOURCES))
def test_storage_round_trip(source: str) -> None:
    extra: dict[str, Any] = {"s3": {"S3FilterRules": [{"Name": "prefix", "Value": "in/"}]}, "sqs": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}}
    m = parse(source, **extra.get(source, {}))
    assert EventSourceMapping.from_dict(m.to_dict()) == m
    assert EventSourceMapping.from_dict({**m.to_dict(), "field_from_the_future": 1}) == m


@pytest.fixture
async def registry(redis_url: str, em_prefix: str) -> AsyncIterator[MappingRegistry]:
    client = aredis.Redis.from_url(redis_url)
    yield MappingRegistry(client, Keys(em_prefix))
    await client.aclose()


async def test_registry_lifecycle(registry: MappingRegistry, redis_client: redis.Redis) -> None:
    keys = registry.keys
    a, b = parse("sqs"), parse("kinesis")
    await registry.put(a)
    await registry.put(b)
    assert await registry.get(a.uuid) == a
    assert [m.uuid for m in await registry.all()] == sorted([a.uuid, b.uuid])
    assert {m.uuid for m in load_mappings(redis_client, keys)} == {a.uuid, b.uuid}
    with pytest.raises(LambdaError, match="The resource you requested does not exist."):
        await registry.get("nope")

    settled = await registry.settle(a.uuid, revision=0)
    assert settled is not None and settled.state == "Enabled"
    updated = await registry.change(a.uuid, lambda m: EventSourceMapping.parse({"Enabled": False}, m))
    assert updated is not None and updated.state == "Disabling" and updated.revision == 1
    stale = await registry.settle(a.uuid, revision=0)  # a poller that has not seen revision 1
    assert stale is not None and stale.state == "Disabling"
    done = await registry.settle(a.uuid, revision=1)
    assert done is not None and done.state == "Disabled"

    assert not await registry.finalize_deleted(b.uuid)  # not Deleting: kept
    await registry.change(b.uuid, lambda m: replace(m, state="Deleting"))
    assert await registry.finalize_deleted(b.uuid)
    assert await registry.find(b.uuid) is None and not await registry.finalize_deleted(b.uuid)
    assert [m.uuid for m in load_mappings(redis_client, keys)] == [a.uuid]


def test_project_mappings_apply_idempotently(redis_client: redis.Redis, em_prefix: str, tmp_path: Path) -> None:
    keys = Keys(em_prefix)
    path = tmp_path / "eventmill.yaml"
    path.write_text(f"event_source_mappings:\n  - {{FunctionName: fn, EventSourceArn: '{SQS}', BatchSize: 5}}\n"
                    f"  - {{FunctionName: fn, EventSourceArn: '{KINESIS}', StartingPosition: LATEST}}\n")
    first = plan_project(redis_client, keys, path, {"fn"})
    save_mappings(redis_client, keys, first)
    assert plan_project(redis_client, keys, path, {"fn"}) == []  # unchanged: nothing to write
    path.write_text(path.read_text().replace("BatchSize: 5", "BatchSize: 6"))
    [changed] = plan_project(redis_client, keys, path, {"fn"})
    old = next(m for m in first if m.kind == "sqs")
    assert (changed.uuid, changed.batch_size, changed.revision, changed.state) == (old.uuid, 6, 1, "Updating")
    with pytest.raises(LambdaError, match=r"event_source_mappings\[0\] \(fn\): Function not found"):
        plan_project(redis_client, keys, path, set())
