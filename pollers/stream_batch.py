"""Take one stream batch to a final state: done, or discarded with an OnFailure record.

While a batch is failing its lane is blocked (Lambda blocks the shard, SEMANTICS §31):
it is retried with the same records, bisected, or discarded, as pollers/stream_policy.py
decides. Done records are reported through `on_done` as soon as they are final, so a
partial batch failure checkpoints what came before the failed record (§35).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

import orjson

from broker.config import function_arn
from broker.mappings import EventSourceMapping
from broker.metrics import incr, observe
from pollers.base import BatchReply, PollerContext
from pollers.checkpoints import Checkpoints
from pollers.stream_policy import (
    Bisect, Commit, Discard, NotRun, PartiallyFailed, Retry, RetryPolicy, Succeeded, classify, decide,
    record_age_exceeded,
)
from pollers.stream_records import BatchInfoKey, StreamRecord, batch_event, onfailure_record

log = logging.getLogger("eventmill.pollers.stream")

INFLIGHT_SLACK_S = 5.0
DELIVERY_TRIES = 3

OnDone = Callable[[Sequence[StreamRecord]], Awaitable[None]]
OnDiscard = Callable[[Sequence[StreamRecord], str], Awaitable[None]]
OnState = Callable[[dict[str, Any]], None]


class Abandoned(Exception):
    """The lane was asked to stop while its batch was blocked; nothing was committed."""


@dataclass
class BatchEnv:
    """What a lane's batches share: the mapping, its shard, and where results go."""

    ctx: PollerContext
    mapping: EventSourceMapping
    shard_id: str
    stream_arn: str
    info_key: BatchInfoKey
    policy: RetryPolicy
    checkpoints: Checkpoints
    function_timeout_s: float
    stopping: asyncio.Event
    pending: list[tuple[str, float, bool]] = field(default_factory=list)  # metrics not yet written
    inflight_until: float = 0.0  # epoch s our in-flight marker in Redis covers
    iterator_age_ms: float = 0.0  # of the last batch invoked: the shard's IteratorAge gauge

    @property
    def scope(self) -> str:
        return f"esm:{self.mapping.uuid}"

    def count(self, name: str, by: float = 1) -> None:
        self.pending.append((name, by, False))

    def observe(self, name: str, value: float) -> None:
        self.pending.append((name, value, True))

    def drain_into(self, pipe: Any) -> None:
        """Queue the buffered metrics on `pipe`: the checkpoint write carries them, so a
        batch costs one Redis round trip after its invocation instead of two."""
        for name, value, distribution in self.pending:
            if distribution:
                observe(pipe, self.ctx.keys, self.scope, name, value)
            else:
                incr(pipe, self.ctx.keys, self.scope, name, int(value))
        self.pending.clear()

    async def flush(self) -> None:
        if not self.pending:
            return
        async with self.ctx.redis.pipeline(transaction=False) as pipe:
            self.drain_into(pipe)
            await pipe.execute()


async def process(
    env: BatchEnv, records: list[StreamRecord], on_done: OnDone, window: dict[str, Any] | None = None,
    on_discard: OnDiscard | None = None, on_state: OnState | None = None,
) -> dict[str, Any] | None:
    """Run `records` until every one is done or discarded; returns the window state the
    last successful invocation returned (tumbling windows), else None. Discarded records
    go through `on_discard` (with the reason) before `on_done`: replay reports them.
    `on_state` hears each returned window state just before `on_done` hears the records
    it covers, so both can be stored together."""
    tumbling = window is not None
    state = dict(window["state"]) if window is not None else None
    work: deque[tuple[list[StreamRecord], int]] = deque([(records, 0)])
    while work:
        batch, retries = work.popleft()
        throttles = invokes = 0
        reply: BatchReply | None = None
        while True:  # an empty batch is a tumbling window's final invoke: it still runs once
            if batch and record_age_exceeded(time.time() - batch[0].arrival, env.policy):
                await _discard(env, batch, "RecordAgeExceeded", invokes, reply)
                if on_discard:
                    await on_discard(batch, "RecordAgeExceeded")
                await on_done(batch)
                break
            if env.stopping.is_set() and invokes:
                await env.flush()
                raise Abandoned()
            payload = batch_event(batch, {**window, "state": state} if window is not None else None)
            reply = await _invoke(env, batch, payload)
            invokes += 1 if reply.ran else 0
            outcome = classify(
                ran=reply.ran, function_error=reply.function_error, payload=reply.payload,
                sequences=[r.sequence for r in batch],
                report_item_failures="ReportBatchItemFailures" in env.mapping.function_response_types,
                tumbling=tumbling,
            )
            decision = decide(
                outcome, size=len(batch), retries=retries, throttles=throttles,
                oldest_age_s=time.time() - batch[0].arrival if batch else 0.0, policy=env.policy,
            )
            if isinstance(outcome, (Succeeded, PartiallyFailed)) and outcome.state is not None:
                state = outcome.state
                if on_state is not None:
                    on_state(state)
            if isinstance(decision, Commit):
                await on_done(batch)
                break
            if isinstance(decision, Bisect):
                half = len(batch) // 2
                work.extendleft([(batch[half:], retries), (batch[:half], retries)])
                env.count("Bisections")
                break
            if decision.start:
                await on_done(batch[:decision.start])
                batch = batch[decision.start:]
            if isinstance(decision, Discard):
                await _discard(env, batch, decision.reason, retries + 1, reply)
                if on_discard:
                    await on_discard(batch, decision.reason)
                await on_done(batch)
                break
            assert isinstance(decision, Retry)
            if isinstance(outcome, NotRun):
                throttles += 1
            else:
                retries = decision.retries
                env.count("Retries")
            await env.flush()
            await _sleep_unless_stopping(env, decision.delay_s)
        await env.flush()  # a no-op when on_done's checkpoint write carried the metrics
    return state


async def _invoke(env: BatchEnv, batch: list[StreamRecord], payload: dict[str, Any]) -> BatchReply:
    await _mark_inflight(env)
    reply = await env.ctx.invoke_batch(env.mapping, payload)
    env.count("Batches")
    if batch:
        env.iterator_age_ms = max(0.0, time.time() - batch[-1].arrival) * 1000
        env.observe("IteratorAge", env.iterator_age_ms)
    if reply.error:
        log.warning("batch of shard %s not run: %s", env.shard_id, reply.error)
    return reply


async def _mark_inflight(env: BatchEnv) -> None:
    """Make sure the shard's in-flight marker covers a batch starting now. The marker is
    written with INFLIGHT_SLACK_S to spare and reused while half of that remains, so a
    busy shard writes it every few seconds rather than before every batch; a new owner
    after a crash still waits out any batch we may have left running."""
    now = time.time()
    if env.inflight_until >= now + env.function_timeout_s + INFLIGHT_SLACK_S / 2:
        return
    env.inflight_until = now + env.function_timeout_s + INFLIGHT_SLACK_S
    await env.checkpoints.mark_inflight(env.shard_id, env.inflight_until)


async def _sleep_unless_stopping(env: BatchEnv, delay_s: float) -> None:
    try:
        await asyncio.wait_for(env.stopping.wait(), delay_s)
    except asyncio.TimeoutError:
        return
    raise Abandoned()


async def _discard(env: BatchEnv, batch: list[StreamRecord], reason: str, invoke_count: int, reply: BatchReply | None) -> None:
    """Count the discarded records and send the batch description to OnFailure (§37-39)."""
    if not batch:
        return
    env.count("DiscardedRecords", len(batch))
    log.warning("discarding %d records of shard %s (%s)", len(batch), env.shard_id, reason)
    target = env.mapping.on_failure_destination
    if not target:
        return
    record = onfailure_record(
        info_key=env.info_key, records=batch, shard_id=env.shard_id, stream_arn=env.stream_arn,
        request_id=reply.request_id if reply and reply.request_id else _new_id(),
        function_arn=function_arn(env.mapping.function_name), condition=reason, invoke_count=invoke_count,
        function_error=(reply.function_error if reply else None) or ("Unhandled" if reply and reply.ran else None),
        now=time.time(),
    )
    body = orjson.dumps(record).decode()
    for attempt in range(DELIVERY_TRIES):
        try:
            await deliver(env.ctx, target, body)
            env.count("OnFailureDeliveries")
            return
        except Exception as exc:  # the destination's refusal must not block the shard forever
            log.warning("OnFailure delivery to %s failed (try %d): %s", target, attempt + 1, exc)
            await asyncio.sleep(env.ctx.settings.scaled(1.0) * (attempt + 1))
    env.count("DestinationDeliveryFailures")


async def deliver(ctx: PollerContext, target: str, body: str) -> None:
    """Send one OnFailure record to an SQS queue or SNS topic ARN."""
    if target.startswith("arn:aws:sqs:"):
        parts = target.split(":")
        async with ctx.client("sqs") as sqs:
            url = (await sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]))["QueueUrl"]
            await sqs.send_message(QueueUrl=url, MessageBody=body)
    elif target.startswith("arn:aws:sns:"):
        async with ctx.client("sns") as sns:
            await sns.publish(TopicArn=target, Message=body)
    elif target.startswith("redis:"):
        await ctx.redis.rpush(ctx.keys.destination_list(target[len("redis:"):]), body)
    else:
        raise ValueError(f"unsupported OnFailure destination {target}")


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())
