"""The durable records behind the event (async) path and sync requests.

An async event is acknowledged (202) only after its record and its schedule entry are
in Redis in one MULTI, so with AOF it survives a crash of anything but the disk.
Functions here only queue commands on a pipeline, so the async API and synchronous
producers share them (both redis-py pipeline kinds buffer commands the same way).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from broker.keys import Keys

WAKE_TOKENS_KEPT = 64
SYNC_REQUEST_TTL_S = 3600


def now_ms() -> int:
    return int(time.time() * 1000)


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass
class AsyncEvent:
    request_id: str
    function: str
    payload: str  # the event JSON text exactly as received
    received_ms: int
    attempts: int = 0  # function attempts made (throttles do not count)
    throttles: int = 0
    last_error: dict[str, Any] | None = None
    source: str = "api"
    # A LIST key the worker RPUSHes {"requestId", "condition", "attempts"} to when the
    # event is final (success or discard): how replay follows 100k events cheaply.
    notify: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: bytes) -> AsyncEvent:
        return cls(**orjson.loads(raw))


def queue_accept(pipe: Any, keys: Keys, event: AsyncEvent, due_ms: int | None = None, wake: bool = True) -> None:
    """Make an async event durable and due. `wake=False` for bulk producers (replay):
    dispatchers then batch many due events per rq job instead of one job each."""
    pipe.set(keys.event(event.request_id), event.dumps())
    pipe.zadd(keys.event_schedule, {event.request_id: due_ms if due_ms is not None else event.received_ms})
    if wake:
        pipe.lpush(keys.async_wake, b"1")
        pipe.ltrim(keys.async_wake, 0, WAKE_TOKENS_KEPT - 1)


@dataclass(frozen=True)
class SyncRequest:
    request_id: str
    function: str
    payload: str
    log_type: str = "None"
    client_context: str | None = None
    sent_ms: int = 0
    source: str = "RequestResponse"  # or the mapping UUID for event source mapping batches

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: bytes) -> SyncRequest:
        return cls(**orjson.loads(raw))


def queue_sync(pipe: Any, keys: Keys, request: SyncRequest) -> None:
    pipe.set(keys.sync_request(request.request_id), request.dumps(), ex=SYNC_REQUEST_TTL_S)
    pipe.rpush(keys.sync_pending, request.request_id)
