"""rq entry points. A job carries ids only; the durable state is in Redis (broker/keys.py).

`run_events` takes several async events per job (each keeps its own retry state), which
is how one worker gets past rq's ~365 jobs/s floor under load: the events are claimed
and read in two round trips per job, and each event then costs one slot acquire, the
sandbox call, and one pipeline that records and finishes it.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import orjson

from broker.config import FunctionConfig
from broker.events import AsyncEvent, SyncRequest, now_ms
from broker.metrics import function_scope, incr, observe
from broker.registry import load_function
from broker.results import log_tail, queue_dlq
from invoker import policy
from invoker.context import Context, current
from invoker.destinations import DeliveryError, deliver_record, send
from invoker.execute import Throttled, invoke, json_or_text, queue_result
from invoker.records import dlq_attributes, invocation_record
from invoker.scripts import CLAIM_MANY

log = logging.getLogger("eventmill.invoker")
SYNC_REPLY_TTL_S = 120


class FunctionCache:
    """Function configs read once per job: a job's events mostly share a function."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.configs: dict[str, FunctionConfig | None] = {}

    def get(self, name: str) -> FunctionConfig | None:
        if name not in self.configs:
            self.configs[name] = load_function(self.ctx.redis, self.ctx.keys, name)
        return self.configs[name]


def run_events(token: int, request_ids: list[str]) -> int:
    """Process dispatched async events; returns how many this job actually ran."""
    with current().execution:
        return _run_events(token, request_ids)


def _run_events(token: int, request_ids: list[str]) -> int:
    ctx = current()
    deadline = now_ms() + int(ctx.settings.lease_s * 1000)
    claimed = [r.decode() for r in ctx.script(CLAIM_MANY)(keys=[ctx.keys.event_schedule], args=[token, deadline, *request_ids])]
    if not claimed:
        return 0  # finished, or re-dispatched after this job was presumed lost
    ctx.claimed_events.update(claimed)
    functions = FunctionCache(ctx)
    try:
        raws = ctx.redis.mget([ctx.keys.event(rid) for rid in claimed])
        for rid, raw in zip(claimed, raws):
            try:
                if raw is None:
                    ctx.redis.zrem(ctx.keys.event_schedule, rid)
                    continue
                process_event(ctx, AsyncEvent.loads(raw), functions)
            finally:
                ctx.claimed_events.discard(rid)
    finally:
        ctx.claimed_events.difference_update(claimed)
    return len(claimed)


def process_event(ctx: Context, event: AsyncEvent, functions: FunctionCache) -> None:
    config = functions.get(event.function)
    if config is None:
        event.last_error = {"errorType": "ResourceNotFoundException", "errorMessage": f"Function not found: {event.function}", "status": 404}
        # Our own DLQ only (no config, so no destinations): not an AWS condition name.
        _discard(ctx, event, None, "FunctionNotFound", None)
        return
    ic = config.effective_invoke_config()
    scale = ctx.settings.time_scale
    if event.extra.get("discard"):
        _discard(ctx, event, config, event.extra["discard"], None)
        return
    age_s = (now_ms() - event.received_ms) / 1000
    if policy.event_expired(age_s, ic.maximum_event_age_s, scale):
        _discard(ctx, event, config, "EventAgeExceeded", None)
        return
    if config.reserved_concurrency == 0:
        ctx.redis.hincrby(ctx.keys.metrics(function_scope(config.name)), "Throttles", 1)
        event.last_error = {"errorType": "TooManyRequestsException", "errorMessage": "Reserved concurrency is 0", "status": 429}
        _discard(ctx, event, config, "RetriesExhausted", None)
        return
    outcome = invoke(ctx, config, event.request_id, event.payload)
    if isinstance(outcome, Throttled):
        event.throttles += 1
        event.last_error = {"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded.", "status": 429}
        _decide(ctx, event, config, policy.after_throttle(event.throttles, age_s, ic.maximum_event_age_s, scale), None)
        return
    event.attempts += 1
    if outcome.ok:
        with ctx.redis.pipeline(transaction=True) as pipe:
            observe(pipe, ctx.keys, function_scope(config.name), "AsyncEventAge", age_s * 1000)
            queue_result(pipe, ctx, config, outcome, event.payload, invocation_type="Event", attempts=event.attempts, final=True)
            if not ic.destinations.on_success:
                _queue_finish(pipe, ctx, event, "Success")
            pipe.execute()
        if ic.destinations.on_success:
            record = invocation_record(
                request_id=event.request_id, function=config.name, condition="Success", attempts=event.attempts,
                request_payload=event.payload, response_payload=outcome.payload, function_error=None,
            )
            deliver_record(ctx, config.name, ic.destinations.on_success, record)
            _finish(ctx, event, "Success")
        return
    parsed = json_or_text(outcome.payload)
    event.last_error = {
        "errorType": outcome.error_type or "Unhandled",
        "errorMessage": str(parsed.get("errorMessage", "")) if isinstance(parsed, dict) else str(parsed),
        "status": 200,
        "functionError": outcome.function_error,
        "payload": outcome.payload.decode(errors="replace"),
    }
    decision = policy.after_function_error(event.attempts, ic.maximum_retry_attempts, age_s, ic.maximum_event_age_s, scale)
    with ctx.redis.pipeline(transaction=True) as pipe:
        observe(pipe, ctx.keys, function_scope(config.name), "AsyncEventAge", age_s * 1000)
        queue_result(pipe, ctx, config, outcome, event.payload, invocation_type="Event", attempts=event.attempts, final=isinstance(decision, policy.Discard))
        if isinstance(decision, policy.Retry):
            _queue_retry(pipe, ctx, event, decision)
        pipe.execute()
    if isinstance(decision, policy.Discard):
        _discard(ctx, event, config, decision.reason, outcome.payload)


def _queue_retry(pipe: Any, ctx: Context, event: AsyncEvent, decision: policy.Retry) -> None:
    pipe.set(ctx.keys.event(event.request_id), event.dumps())
    pipe.zadd(ctx.keys.event_schedule, {event.request_id: now_ms() + int(decision.delay_s * 1000)})


def _decide(ctx: Context, event: AsyncEvent, config: FunctionConfig, decision: policy.Decision, response: bytes | None) -> None:
    if isinstance(decision, policy.Retry):
        with ctx.redis.pipeline(transaction=True) as pipe:
            _queue_retry(pipe, ctx, event, decision)
            pipe.execute()
        return
    _discard(ctx, event, config, decision.reason, response)


def _discard(ctx: Context, event: AsyncEvent, config: FunctionConfig | None, reason: str, response: bytes | None) -> None:
    """Send a dropped event to our DLQ, the function's DeadLetterConfig and OnFailure.

    The reason is persisted first so a crash mid-delivery resumes delivery instead of
    running the function again.
    """
    if not event.extra.get("discard"):
        event.extra["discard"] = reason
        ctx.redis.set(ctx.keys.event(event.request_id), event.dumps())
    error = event.last_error or {}
    if response is None and error.get("payload"):
        response = str(error["payload"]).encode()
    function = event.function
    dlq_record = {
        "requestId": event.request_id,
        "functionName": function,
        "event": json_or_text(event.payload),
        "condition": reason,
        "attempts": event.attempts,
        "throttles": event.throttles,
        "error": error,
        "receivedAt": event.received_ms / 1000,
        "discardedAt": time.time(),
        "source": event.source,
    }
    with ctx.redis.pipeline(transaction=True) as pipe:
        queue_dlq(pipe, ctx.keys, dlq_record, now_ms())
        incr(pipe, ctx.keys, function_scope(function), "AsyncEventsDropped")
        pipe.execute()
    if config is not None and config.dead_letter_target:
        attributes = dlq_attributes(event.request_id, int(error.get("status", 200)), str(error.get("errorMessage", "")))
        try:
            send(ctx, config.dead_letter_target, event.payload, attributes)
        except DeliveryError as exc:
            log.warning("dead-letter delivery failed for %s: %s", function, exc)
            ctx.redis.hincrby(ctx.keys.metrics(function_scope(function)), "DeadLetterErrors", 1)
    if config is not None:
        record = invocation_record(
            request_id=event.request_id, function=function, condition=reason, attempts=event.attempts,
            request_payload=event.payload, response_payload=response, function_error=error.get("functionError"),
        )
        deliver_record(ctx, function, config.effective_invoke_config().destinations.on_failure, record)
    _finish(ctx, event, reason)


def _queue_finish(pipe: Any, ctx: Context, event: AsyncEvent, condition: str) -> None:
    pipe.zrem(ctx.keys.event_schedule, event.request_id)
    pipe.delete(ctx.keys.event(event.request_id))
    if event.notify:
        outcome = {"requestId": event.request_id, "condition": condition, "attempts": event.attempts}
        pipe.rpush(event.notify, orjson.dumps(outcome))


def _finish(ctx: Context, event: AsyncEvent, condition: str) -> None:
    with ctx.redis.pipeline(transaction=True) as pipe:
        _queue_finish(pipe, ctx, event, condition)
        pipe.execute()


def run_sync(request_id: str) -> None:
    """Run a RequestResponse invoke and hand the outcome back to the waiting caller (an rq
    job: the dispatcher found this worker busy, see invoker/dispatch.py)."""
    with current().execution:
        run_sync_now(request_id)


def run_sync_now(request_id: str) -> None:
    """run_sync for a caller that already holds `execution`."""
    ctx = current()
    raw = ctx.redis.get(ctx.keys.sync_request(request_id))
    if raw is None:
        return
    request = SyncRequest.loads(raw)
    reply: dict[str, object]
    config = load_function(ctx.redis, ctx.keys, request.function)
    outcome = None
    if config is None:
        reply = {"error": "ResourceNotFoundException", "message": f"Function not found: {request.function}"}
    else:
        outcome = invoke(ctx, config, request_id, request.payload, client_context=request.client_context)
        if isinstance(outcome, Throttled):
            reply = {"error": "TooManyRequestsException", "message": "Rate Exceeded.", "reason": outcome.reason}
        else:
            reply = {
                "payload": outcome.payload.decode(errors="replace"),
                "functionError": outcome.function_error,
                "duration": round(outcome.duration_ms, 3),
                "executedVersion": "$LATEST",
                "logResult": base64.b64encode(log_tail(outcome.log).encode()).decode() if request.log_type == "Tail" else None,
            }
    with ctx.redis.pipeline(transaction=True) as pipe:
        if config is not None and outcome is not None and not isinstance(outcome, Throttled):
            invocation_type = "RequestResponse" if request.source == "RequestResponse" else "EventSourceMapping"
            queue_result(pipe, ctx, config, outcome, request.payload, invocation_type=invocation_type, attempts=1, final=True)
        pipe.delete(ctx.keys.sync_request(request_id))
        pipe.lpush(ctx.keys.sync_reply(request_id), orjson.dumps(reply))
        pipe.expire(ctx.keys.sync_reply(request_id), SYNC_REPLY_TTL_S)
        pipe.execute()
