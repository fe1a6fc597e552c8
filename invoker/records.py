"""Records Lambda emits for async invocations, in AWS's exact shapes
(../shared/reference/records/): destination invocation records and DLQ attributes."""

from __future__ import annotations

import time
from typing import Any

import orjson

from broker.config import function_arn

ERROR_MESSAGE_MAX = 1024


def iso_ms(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s)) + f".{int(epoch_s * 1000) % 1000:03d}Z"


def _json_or_text(raw: str | bytes | None) -> Any:
    if raw is None or raw == b"" or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def invocation_record(
    *, request_id: str, function: str, condition: str, attempts: int, request_payload: str,
    response_payload: bytes | None, function_error: str | None, now_s: float | None = None,
) -> dict[str, Any]:
    """`condition`: Success | RetriesExhausted | EventAgeExceeded. functionArn is qualified."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_ms(time.time() if now_s is None else now_s),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn(function, "$LATEST"),
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": _json_or_text(request_payload),
    }
    if attempts > 0:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            response["functionError"] = function_error
        record["responseContext"] = response
        record["responsePayload"] = _json_or_text(response_payload)
    return record


def dlq_attributes(request_id: str, error_code: int, error_message: str) -> dict[str, dict[str, str]]:
    """SQS MessageAttributes Lambda puts on a DLQ message (SEMANTICS §55)."""
    return {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": str(error_code)},
        "ErrorMessage": {"DataType": "String", "StringValue": (error_message or "")[:ERROR_MESSAGE_MAX] or "-"},
    }
