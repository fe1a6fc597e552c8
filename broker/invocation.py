"""Invoke input rules shared by the HTTP API and the CLI (which talks to Redis directly)."""

from __future__ import annotations

import orjson

from broker.errors import InvalidRequestContentException, RequestEntityTooLargeException

SYNC_MAX_BYTES = 6 * 1024 * 1024
ASYNC_MAX_BYTES = 1024 * 1024  # AWS raised the async limit from 256 KB to 1 MB (SEMANTICS §57)
CLIENT_CONTEXT_MAX = 3583


def check_payload(raw: bytes, limit: int) -> str:
    """The payload as text, or AWS's error for an oversize or non-JSON payload."""
    if len(raw) > limit:
        raise RequestEntityTooLargeException(f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
    if not raw:
        return "{}"
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise InvalidRequestContentException("Could not parse request body into json: payload is not UTF-8") from None
