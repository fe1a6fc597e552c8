"""broker/config.py: AWS defaults and AWS's validation errors for function settings,
event invoke configs and reserved concurrency (pure, no Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.config import (
    EventInvokeConfig,
    FunctionConfig,
    function_arn,
    parse_reserved_concurrency,
    parse_settings,
    resolve_name,
)
from broker.errors import InvalidParameterValueException, LambdaError, ValidationException

BASE = {"Runtime": "python3.11", "Handler": "app.handler", "Role": "arn:aws:iam::123456789012:role/r"}


def test_create_defaults_are_aws_defaults() -> None:
    out = parse_settings(BASE)
    assert out["runtime"] == "python3.11"
    assert out["handler"] == "app.handler"
    assert out["memory_mb"] == 128
    assert out["timeout_s"] == 3
    assert out["ephemeral_mb"] == 512
    assert out["environment"] == {}
    assert out["dead_letter_target"] is None
    assert out["log_format"] == "Text"


@pytest.mark.parametrize(
    "change, field, value",
    [
        ({"MemorySize": 128}, "memory_mb", 128),
        ({"MemorySize": 10240}, "memory_mb", 10240),
        ({"Timeout": 1}, "timeout_s", 1),
        ({"Timeout": 900}, "timeout_s", 900),
        ({"EphemeralStorage": {"Size": 512}}, "ephemeral_mb", 512),
        ({"EphemeralStorage": {"Size": 10240}}, "ephemeral_mb", 10240),
        ({"Runtime": "python3.12"}, "runtime", "python3.12"),
        ({"Runtime": "provided.al2023", "Handler": None}, "runtime", "provided.al2023"),
        ({"Environment": {"Variables": {"A_B": "1", "xy": "z"}}}, "environment", {"A_B": "1", "xy": "z"}),
        ({"DeadLetterConfig": {"TargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"}}, "dead_letter_target", "arn:aws:sqs:us-east-1:123456789012:dlq"),
        ({"DeadLetterConfig": {"TargetArn": "arn:aws:sns:us-east-1:123456789012:t"}}, "dead_letter_target", "arn:aws:sns:us-east-1:123456789012:t"),
        ({"LoggingConfig": {"LogFormat": "JSON"}}, "log_format", "JSON"),
    ],
)
def test_valid_values_accepted(change: dict[str, Any], field: str, value: Any) -> None:
    body = {**BASE, **change}
    body = {k: v for k, v in body.items() if v is not None}
    assert parse_settings(body)[field] == value


@pytest.mark.parametrize(
    "change, code, fragment",
    [
        ({"MemorySize": 64}, "ValidationException", "memorySize"),
        ({"MemorySize": 10241}, "ValidationException", "memorySize"),
        ({"MemorySize": "big"}, "InvalidParameterValueException", "MemorySize"),
        ({"MemorySize": True}, "InvalidParameterValueException", "MemorySize"),
        ({"Timeout": 0}, "ValidationException", "timeout"),
        ({"Timeout": 901}, "ValidationException", "timeout"),
        ({"EphemeralStorage": {"Size": 100}}, "ValidationException", "ephemeralStorage.size"),
        ({"EphemeralStorage": {"Size": 10241}}, "ValidationException", "ephemeralStorage.size"),
        ({"Runtime": "python2.1"}, "ValidationException", "runtime"),
        ({"Runtime": "nodejs20.x"}, "InvalidParameterValueException", "not supported"),
        ({"Handler": "has space"}, "ValidationException", "handler"),
        ({"Handler": None}, "InvalidParameterValueException", "Handler"),
        ({"Environment": {"Variables": {"AWS_REGION": "eu-west-1"}}}, "InvalidParameterValueException", "AWS_REGION"),
        ({"Environment": {"Variables": {"LAMBDA_TASK_ROOT": "x"}}}, "InvalidParameterValueException", "LAMBDA_TASK_ROOT"),
        ({"Environment": {"Variables": {"_HANDLER": "x"}}}, "ValidationException", "environment.variables"),  # fails the key pattern first
        ({"Environment": {"Variables": {"AWS_ACCESS_KEY_ID": "x"}}}, "InvalidParameterValueException", "AWS_ACCESS_KEY_ID"),
        ({"Environment": {"Variables": {"1BAD": "x"}}}, "ValidationException", "environment.variables"),
        ({"Environment": {"Variables": {"BIG": "x" * 4100}}}, "InvalidParameterValueException", "4KB"),
        ({"DeadLetterConfig": {"TargetArn": "arn:aws:s3:::bucket"}}, "InvalidParameterValueException", "arn:aws:s3:::bucket"),
        ({"LoggingConfig": {"LogFormat": "XML"}}, "ValidationException", "logFormat"),
    ],
)
def test_invalid_values_give_aws_errors(change: dict[str, Any], code: str, fragment: str) -> None:
    body = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(LambdaError) as info:
        parse_settings(body)
    assert info.value.code == code
    assert fragment in info.value.message
    assert info.value.status == 400


def test_validation_message_is_aws_wording() -> None:
    with pytest.raises(ValidationException) as info:
        parse_settings({**BASE, "MemorySize": 64})
    assert info.value.message == (
        "1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: "
        "Member must have value greater than or equal to 128"
    )


def test_update_changes_only_given_fields() -> None:
    base = FunctionConfig(name="f", handler="app.handler", code_dir="/x", timeout_s=7, memory_mb=256,
                          environment={"K": "v"}).to_dict()
    out = parse_settings({"Timeout": 10}, base=base)
    assert out == {"timeout_s": 10}
    out = parse_settings({"Environment": {"Variables": {}}}, base=base)
    assert out == {"environment": {}}
    with pytest.raises(ValidationException):
        parse_settings({"Timeout": 901}, base=base)


@pytest.mark.parametrize(
    "raw, name, qualifier",
    [
        ("hello", "hello", None),
        ("hello:$LATEST", "hello", "$LATEST"),
        ("arn:aws:lambda:us-east-1:123456789012:function:hello", "hello", None),
        ("arn:aws:lambda:us-east-1:123456789012:function:hello:prod", "hello", "prod"),
        ("123456789012:function:hello", "hello", None),
    ],
)
def test_resolve_name(raw: str, name: str, qualifier: str | None) -> None:
    assert resolve_name(raw) == (name, qualifier)


@pytest.mark.parametrize("raw", ["", "has space", "x" * 65, "bad/slash"])
def test_resolve_name_rejects(raw: str) -> None:
    with pytest.raises(ValidationException):
        resolve_name(raw)


def test_function_arn() -> None:
    assert function_arn("f") == "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert function_arn("f", "$LATEST") == "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST"


# --- EventInvokeConfig ---------------------------------------------------------------

SQS = "arn:aws:sqs:us-east-1:123456789012:q"
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:other"


def test_invoke_config_defaults() -> None:
    ic = EventInvokeConfig.parse({})
    assert ic.maximum_retry_attempts == 2
    assert ic.maximum_event_age_s == 21600
    assert ic.destinations.on_success is None and ic.destinations.on_failure is None


@pytest.mark.parametrize(
    "body, retries, age, on_success, on_failure",
    [
        ({"MaximumRetryAttempts": 0}, 0, 21600, None, None),
        ({"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60}, 2, 60, None, None),
        ({"MaximumEventAgeInSeconds": 21600}, 2, 21600, None, None),
        ({"DestinationConfig": {"OnSuccess": {"Destination": SQS}}}, 2, 21600, SQS, None),
        ({"DestinationConfig": {"OnFailure": {"Destination": LAMBDA}}}, 2, 21600, None, LAMBDA),
        ({"DestinationConfig": {"OnFailure": {"Destination": "redis:sink"}}}, 2, 21600, None, "redis:sink"),
        ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:us-east-1:123456789012:t"}}}, 2, 21600, None, "arn:aws:sns:us-east-1:123456789012:t"),
    ],
)
def test_invoke_config_valid(body: dict[str, Any], retries: int, age: int, on_success: str | None, on_failure: str | None) -> None:
    ic = EventInvokeConfig.parse(body)
    assert (ic.maximum_retry_attempts, ic.maximum_event_age_s) == (retries, age)
    assert (ic.destinations.on_success, ic.destinations.on_failure) == (on_success, on_failure)


@pytest.mark.parametrize(
    "body, code, fragment",
    [
        ({"MaximumRetryAttempts": 3}, "ValidationException", "maximumRetryAttempts"),
        ({"MaximumRetryAttempts": -1}, "ValidationException", "maximumRetryAttempts"),
        ({"MaximumEventAgeInSeconds": 30}, "ValidationException", "maximumEventAgeInSeconds"),
        ({"MaximumEventAgeInSeconds": 21601}, "ValidationException", "maximumEventAgeInSeconds"),
        ({"DestinationConfig": {"OnSuccess": {"Destination": "not-an-arn"}}}, "InvalidParameterValueException", "not-an-arn"),
        ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:s3:::b"}}}, "InvalidParameterValueException", "arn:aws:s3:::b"),
        ({"DestinationConfig": {"OnFailure": {"Destination": SQS + ".fifo"}}}, "InvalidParameterValueException", "FIFO"),
    ],
)
def test_invoke_config_invalid(body: dict[str, Any], code: str, fragment: str) -> None:
    with pytest.raises(LambdaError) as info:
        EventInvokeConfig.parse(body)
    assert info.value.code == code
    assert fragment in info.value.message


def test_invoke_config_update_keeps_other_fields() -> None:
    base = EventInvokeConfig.parse({"MaximumRetryAttempts": 1, "DestinationConfig": {"OnFailure": {"Destination": SQS}}})
    updated = EventInvokeConfig.parse({"MaximumEventAgeInSeconds": 120}, base=base)
    assert updated.maximum_retry_attempts == 1
    assert updated.maximum_event_age_s == 120
    assert updated.destinations.on_failure == SQS
    replaced = EventInvokeConfig.parse({"MaximumEventAgeInSeconds": 120})
    assert replaced.maximum_retry_attempts == 2 and replaced.destinations.on_failure is None


def test_invoke_config_retries_zero_survives_update() -> None:
    base = EventInvokeConfig.parse({"MaximumRetryAttempts": 0})
    assert EventInvokeConfig.parse({"MaximumEventAgeInSeconds": 60}, base=base).maximum_retry_attempts == 0


def test_invoke_config_api_shape() -> None:
    ic = EventInvokeConfig.parse({"MaximumRetryAttempts": 1, "DestinationConfig": {"OnSuccess": {"Destination": SQS}}})
    api = ic.to_api("f")
    assert api["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST"
    assert api["MaximumRetryAttempts"] == 1
    assert api["MaximumEventAgeInSeconds"] == 21600
    assert api["DestinationConfig"] == {"OnSuccess": {"Destination": SQS}, "OnFailure": {}}


def test_function_config_round_trips_through_dict() -> None:
    config = FunctionConfig(
        name="f", handler="app.handler", code_dir="/c", reserved_concurrency=3,
        invoke_config=EventInvokeConfig.parse({"MaximumRetryAttempts": 0, "DestinationConfig": {"OnFailure": {"Destination": SQS}}}),
    )
    assert FunctionConfig.from_dict(config.to_dict()) == config


def test_function_config_api_shape() -> None:
    api = FunctionConfig(name="f", handler="app.handler", code_dir="/c", dead_letter_target=SQS).to_api()
    assert api["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert api["Version"] == "$LATEST"
    assert api["MemorySize"] == 128 and api["Timeout"] == 3
    assert api["EphemeralStorage"] == {"Size": 512}
    assert api["DeadLetterConfig"] == {"TargetArn": SQS}
    assert "DeadLetterConfig" not in FunctionConfig(name="f", handler="h", code_dir="/c").to_api()


@pytest.mark.parametrize("value", [0, 1, 1000])
def test_reserved_concurrency_valid(value: int) -> None:
    assert parse_reserved_concurrency({"ReservedConcurrentExecutions": value}) == value


@pytest.mark.parametrize(
    "body, exc",
    [({}, ValidationException), ({"ReservedConcurrentExecutions": -1}, ValidationException),
     ({"ReservedConcurrentExecutions": "x"}, InvalidParameterValueException)],
)
def test_reserved_concurrency_invalid(body: dict[str, Any], exc: type[LambdaError]) -> None:
    with pytest.raises(exc):
        parse_reserved_concurrency(body)
