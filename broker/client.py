"""Invoke through Redis directly, for the CLI, replay and tests: the same records the
HTTP API writes, so nothing downstream can tell the difference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import redis

from broker.errors import LambdaError, ResourceNotFoundException, TooManyRequestsException
from broker.events import AsyncEvent, SyncRequest, new_request_id, now_ms, queue_accept, queue_sync
from broker.invocation import ASYNC_MAX_BYTES, SYNC_MAX_BYTES, check_payload
from broker.keys import Keys
from broker.metrics import function_scope, incr
from broker.registry import load_function
from broker.errors import function_not_found


@dataclass(frozen=True)
class SyncReply:
    request_id: str
    payload: bytes
    function_error: str | None
    log_result: str | None


def invoke_async(client: redis.Redis, keys: Keys, function: str, payload: bytes, *, wake: bool = True, source: str = "api") -> str:
    if load_function(client, keys, function) is None:
        raise function_not_found(function)
    text = check_payload(payload, ASYNC_MAX_BYTES)
    event = AsyncEvent(new_request_id(), function, text, now_ms(), source=source)
    with client.pipeline(transaction=True) as pipe:
        queue_accept(pipe, keys, event, wake=wake)
        incr(pipe, keys, function_scope(function), "AsyncEventsReceived")
        pipe.execute()
    return event.request_id


def invoke_sync(client: redis.Redis, keys: Keys, function: str, payload: bytes, *, log_type: str = "None", wait_s: float | None = None) -> SyncReply:
    config = load_function(client, keys, function)
    if config is None:
        raise function_not_found(function)
    text = check_payload(payload, SYNC_MAX_BYTES)
    request = SyncRequest(new_request_id(), function, text, log_type, None, now_ms())
    with client.pipeline(transaction=True) as pipe:
        queue_sync(pipe, keys, request)
        pipe.execute()
    timeout = wait_s if wait_s is not None else config.timeout_s + 60
    popped = client.blpop([keys.sync_reply(request.request_id)], timeout=timeout)
    if popped is None:
        client.lrem(keys.sync_pending, 1, request.request_id)
        raise LambdaError(f"No worker answered within {timeout:.0f} s; is `eventmill worker` running?")
    reply: dict[str, Any] = orjson.loads(popped[1])
    if reply.get("error") == "TooManyRequestsException":
        raise TooManyRequestsException("Rate Exceeded.", Reason=reply.get("reason"))
    if reply.get("error"):
        raise ResourceNotFoundException(str(reply.get("message")))
    return SyncReply(request.request_id, reply["payload"].encode(), reply.get("functionError"), reply.get("logResult"))
