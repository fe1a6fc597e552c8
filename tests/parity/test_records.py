"""Our async destination records and DLQ message attributes against AWS's recorded shapes
in /work/shared/reference/records (same keys, same nesting, same value types).

requestPayload / responsePayload are user data (the event and the function's answer), so
only their presence is compared, not their inner keys. The e2e suite (tests/e2e/
test_async.py) runs `assert_same_shape` on the records a live deployment delivers.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from invoker.records import dlq_attributes, invocation_record

REFERENCE = Path(os.environ.get("EVENTMILL_REFERENCE", "/work/shared/reference"))
USER_DATA = {"requestPayload", "responsePayload"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def reference(name: str) -> dict[str, Any]:
    path = REFERENCE / "records" / name
    if not path.exists():
        pytest.skip(f"reference file {path} not available")
    data: dict[str, Any] = json.loads(path.read_text())
    data.pop("_comment", None)
    return data


def assert_same_shape(ours: Any, theirs: Any, path: str = "$") -> None:
    """Same keys (in every nested object), same JSON types; user data compared by presence."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: expected an object, got {type(ours).__name__}"
        assert set(ours) == set(theirs), f"{path}: keys {sorted(ours)} != AWS {sorted(theirs)}"
        for key, value in theirs.items():
            if path == "$" and key in USER_DATA:
                continue
            assert_same_shape(ours[key], value, f"{path}.{key}")
    elif isinstance(theirs, bool):
        assert isinstance(ours, bool), f"{path}: expected bool, got {ours!r}"
    elif isinstance(theirs, int):
        assert isinstance(ours, int) and not isinstance(ours, bool), f"{path}: expected an integer, got {ours!r}"
    elif isinstance(theirs, str):
        assert isinstance(ours, str), f"{path}: expected a string, got {ours!r}"
    elif isinstance(theirs, list):
        assert isinstance(ours, list), f"{path}: expected a list, got {ours!r}"
    else:
        assert type(ours) is type(theirs), f"{path}: {type(ours).__name__} != {type(theirs).__name__}"


ERROR = {"errorMessage": "boom", "errorType": "Exception", "stackTrace": ['  File "/var/task/app.py", line 2, in handler\n']}
RID = "e4b46cbf-b738-4a3b-8880-a18cdf61200e"


def failure_record(condition: str = "RetriesExhausted", attempts: int = 3) -> dict[str, Any]:
    record = invocation_record(
        request_id=RID, function="my-function", condition=condition, attempts=attempts,
        request_payload='{"ORDER_IDS": ["a", "b"]}', response_payload=orjson.dumps(ERROR), function_error="Unhandled",
    )
    # what the target receives is JSON text
    return json.loads(orjson.dumps(record))  # type: ignore[no-any-return]


def success_record() -> dict[str, Any]:
    record = invocation_record(
        request_id=RID, function="my-function", condition="Success", attempts=1,
        request_payload='{"ORDER_IDS": ["a"]}', response_payload=b'{"hello": "world"}', function_error=None,
    )
    return json.loads(orjson.dumps(record))  # type: ignore[no-any-return]


def test_failure_record_shape_matches_aws() -> None:
    ours = failure_record()
    assert_same_shape(ours, reference("async-destination-failure.json"))
    assert ours["version"] == "1.0"
    assert TIMESTAMP.match(ours["timestamp"]), ours["timestamp"]
    ctx = ours["requestContext"]
    assert ctx == {
        "requestId": RID,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:my-function:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert ours["requestPayload"] == {"ORDER_IDS": ["a", "b"]}
    assert ours["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert ours["responsePayload"] == ERROR


def test_success_record_shape_matches_aws() -> None:
    ours = success_record()
    theirs = reference("async-destination-success.json")
    assert_same_shape(ours, theirs)
    assert "functionError" not in ours["responseContext"]
    assert ours["requestContext"]["condition"] == "Success"
    assert ours["requestContext"]["approximateInvokeCount"] == 1
    assert ours["responsePayload"] == theirs["responsePayload"] == {"hello": "world"}


def test_key_order_matches_aws() -> None:
    """Consumers that diff records textually see AWS's order."""
    theirs = reference("async-destination-failure.json")
    ours = failure_record()
    assert list(ours) == list(theirs)
    assert list(ours["requestContext"]) == list(theirs["requestContext"])
    assert list(ours["responseContext"]) == list(theirs["responseContext"])


def test_event_age_exceeded_record_keeps_the_shape() -> None:
    ours = failure_record("EventAgeExceeded", 2)
    assert_same_shape(ours, reference("async-destination-failure.json"))
    assert ours["requestContext"]["condition"] == "EventAgeExceeded"
    assert ours["requestContext"]["approximateInvokeCount"] == 2


def test_non_json_payloads_are_kept_as_text() -> None:
    record = invocation_record(
        request_id=RID, function="f", condition="Success", attempts=1,
        request_payload='"just a string"', response_payload=b"null", function_error=None,
    )
    assert record["requestPayload"] == "just a string"
    assert record["responsePayload"] is None


def test_dlq_attributes_match_aws() -> None:
    theirs = reference("dlq-message-attributes.json")["MessageAttributes"]
    ours = dlq_attributes(RID, 200, "Test exception (this is intentional)")
    assert_same_shape(ours, theirs)
    for name, attr in theirs.items():
        assert ours[name]["DataType"] == attr["DataType"], name
    assert ours["RequestID"]["StringValue"] == RID
    assert ours["ErrorCode"]["StringValue"] == "200"
    assert ours["ErrorMessage"]["StringValue"] == theirs["ErrorMessage"]["StringValue"]


def test_dlq_error_message_is_first_kilobyte() -> None:
    ours = dlq_attributes(RID, 200, "x" * 5000)
    assert len(ours["ErrorMessage"]["StringValue"]) == 1024


def test_shape_checker_catches_differences() -> None:
    """The checker itself can fail (a parity test that cannot fail proves nothing)."""
    theirs = reference("async-destination-failure.json")
    broken = failure_record()
    del broken["responseContext"]["executedVersion"]
    with pytest.raises(AssertionError):
        assert_same_shape(broken, theirs)
    broken = failure_record()
    broken["requestContext"]["approximateInvokeCount"] = "3"
    with pytest.raises(AssertionError):
        assert_same_shape(broken, theirs)
    broken = failure_record()
    broken["extra"] = 1
    with pytest.raises(AssertionError):
        assert_same_shape(broken, theirs)
    assert UUID.match(RID)
