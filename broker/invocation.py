"""Invoke input rules shared by the HTTP API and the CLI (which talks to Redis directly)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from broker.errors import InvalidRequestContentException, RequestEntityTooLargeException
from broker.events import SyncRequest, new_request_id, now_ms, queue_sync

if TYPE_CHECKING:
    import redis.asyncio as aredis

    from broker.keys import Keys

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


async def invoke_and_wait(
    client: "aredis.Redis", keys: "Keys", function: str, payload: str, *, timeout_s: float,
    log_type: str = "None", client_context: str | None = None, source: str = "RequestResponse",
) -> dict[str, Any]:
    """Hand a synchronous invocation to the workers and wait for its outcome.

    Used by the API (RequestResponse) and by pollers (one batch = one invocation, as
    Lambda's ESMs invoke synchronously). Returns the worker's reply: {"payload",
    "functionError", "executedVersion", "logResult"} or {"error", "message", "reason"};
    raises TimeoutError when no worker answered in time (the request is withdrawn if no
    worker took it yet).
    """
    request = SyncRequest(new_request_id(), function, payload, log_type, client_context, now_ms(), source)
    async with client.pipeline(transaction=True) as pipe:
        queue_sync(pipe, keys, request)
        await pipe.execute()
    key = keys.sync_reply(request.request_id)
    try:
        popped = await client.blpop([key], timeout=timeout_s)
    except asyncio.CancelledError:
        await client.lrem(keys.sync_pending, 1, request.request_id)
        raise
    if popped is None:
        await client.lrem(keys.sync_pending, 1, request.request_id)
        raise TimeoutError(f"No worker answered within {timeout_s:.0f} s; is `eventmill worker` running?")
    reply: dict[str, Any] = orjson.loads(popped[1])
    reply["requestId"] = request.request_id
    return reply
