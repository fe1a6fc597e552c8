"""SQS event source mapping: Poller (receive) → Processor (filter, batch) → Sender (invoke, ack).

Semantics are Lambda's (SEMANTICS §A/§B): long polling, BatchSize received in rounds of
10 within MaximumBatchingWindowInSeconds, a 6 MB event cap, one synchronous invoke per
batch; success deletes the batch, a function error deletes nothing (the messages come
back after the visibility timeout and the queue's own RedrivePolicy moves them to its
DLQ), ReportBatchItemFailures deletes all but the reported ids, filtered-out messages
are deleted. Nothing is deleted before the function has succeeded for it, so a crash or
kill of this process at any point only delays messages until their visibility ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from broker.mappings import EventSourceMapping
from broker.metrics import incr, observe
from pollers.base import PollerContext, register
from pollers.batching import BatchBuilder, BatchOutcome, decide
from pollers.filtering import sqs_filter_view
from pollers.scaling import Backoff, Scaler, concurrency_limit, live_workers
from pollers.sqs_event import sqs_record
from pollers.sqs_queue import RECEIVE_MAX, IDLE_SHORT_POLL_S, SqsQueue, queue_url_for, wait_or_stop

log = logging.getLogger("eventmill.pollers.sqs")

LONG_POLL_S = 20
FIFO_MAX_BATCH = 10
LIMIT_REFRESH_S = 2.0
SEQUENCE_MEMORY_S = 14 * 24 * 3600  # SQS's longest retention: a message cannot come back later

# KEYS: counter, hash message id -> number. ARGV: ttl, message ids. The numbers, in order.
ASSIGN_SEQUENCES = """
local out = {}
for i = 2, #ARGV do
  local n = redis.call('HGET', KEYS[2], ARGV[i])
  if not n then
    n = redis.call('INCR', KEYS[1])
    redis.call('HSET', KEYS[2], ARGV[i], n)
  end
  out[#out + 1] = tonumber(n)
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return out
"""


@register("sqs")
class SqsPoller:
    """Reads one queue with a varying number of concurrent poll loops (see pollers/scaling.py)."""

    def __init__(self, ctx: PollerContext, mapping: EventSourceMapping) -> None:
        self.ctx = ctx
        self.mapping = mapping
        self.arn = mapping.event_source_arn
        self.fifo = self.arn.endswith(".fifo")
        self.scope = f"esm:{mapping.uuid}"
        self.filters = mapping.filters
        self.report = "ReportBatchItemFailures" in mapping.function_response_types
        self.batch_size = max(1, min(mapping.batch_size, FIFO_MAX_BATCH if self.fifo else 10000))
        self.window_s = ctx.settings.scaled(mapping.maximum_batching_window_s)
        self.scaler = Scaler(maximum=concurrency_limit(mapping.scaling_max_concurrency, 1))
        self.loops: set[asyncio.Task[None]] = set()
        self.active = 0  # loops that have not decided to leave
        self.queue: SqsQueue | None = None
        self.sequence_script = ctx.redis.register_script(ASSIGN_SEQUENCES)
        self.received_at: dict[str, float] = {}  # message id -> monotonic time of its current receive

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(self.ctx.settings.time_scale)
        async with self.ctx.client("sqs") as sqs:
            while not stop.is_set():
                try:
                    url = await queue_url_for(sqs, self.arn)
                    emulated = self.ctx.settings.aws_endpoint is not None
                    self.queue = SqsQueue(sqs, url, self.arn, emulated=emulated, redis=self.ctx.redis, keys=self.ctx.keys)
                    await self.queue.read_visibility()
                    break
                except (ClientError, BotoCoreError, ValueError) as exc:
                    log.warning("mapping %s: cannot resolve %s: %s", self.mapping.uuid, self.arn, exc)
                    if await wait_or_stop(stop, backoff.next_delay()):
                        return
            if stop.is_set():
                return
            await self.refresh_limit()
            self.spawn(stop)
            while self.loops and not await wait_or_stop(stop, LIMIT_REFRESH_S):
                await self.refresh_limit()
            await asyncio.gather(*self.loops, return_exceptions=True)

    async def refresh_limit(self) -> None:
        workers = await live_workers(self.ctx.redis, self.ctx.keys)
        self.scaler.maximum = concurrency_limit(self.mapping.scaling_max_concurrency, workers)

    def spawn(self, stop: asyncio.Event) -> None:
        self.active += 1
        task = asyncio.create_task(self.poll_loop(stop))
        self.loops.add(task)
        task.add_done_callback(self.loops.discard)

    # --- Processor ------------------------------------------------------------------
    async def to_records(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Event records of the messages that pass the filters; the others are deleted now (SEMANTICS §24)."""
        sequences: list[str | None] = [None] * len(messages)
        if self.fifo and any("SequenceNumber" not in m.get("Attributes", {}) for m in messages):
            # moto returns no SequenceNumber (PLATFORM §4a): synthesise one, increasing per queue
            # across pollers processes, only when the source left it out; a redelivered
            # message keeps the number it was first given, as on SQS.
            keys = self.ctx.keys
            given = await self.sequence_script(
                keys=[keys.sqs_sequence(self.arn), keys.sqs_sequence_ids(self.arn)],
                args=[SEQUENCE_MEMORY_S, *(m["MessageId"] for m in messages)],
            )
            sequences = [str(10**19 + int(n)) for n in given]
        records: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        now = time.monotonic()
        for message in messages:
            self.received_at[message["MessageId"]] = now
        for message, seq in zip(messages, sequences):
            record = sqs_record(message, self.arn, fifo=self.fifo, sequence_number=seq)
            (records if self.filters.matches(sqs_filter_view(record)) else dropped).append(record)
        async with self.ctx.redis.pipeline(transaction=False) as pipe:
            incr(pipe, self.ctx.keys, self.scope, "Polled", len(messages))
            if dropped:
                incr(pipe, self.ctx.keys, self.scope, "Filtered", len(dropped))
            await pipe.execute()
        if dropped:
            self.forget(dropped)
            await self.delete(dropped)
        return records

    def forget(self, records: list[dict[str, Any]]) -> float:
        """Drop the records' receive times; returns the earliest."""
        now = time.monotonic()
        return min((self.received_at.pop(r["messageId"], now) for r in records), default=now)

    async def collect(self, stop: asyncio.Event, carry: list[dict[str, Any]]) -> tuple[BatchBuilder, int, int]:
        """Fill a batch (size, window, 6 MB). Returns it with the messages received and asked for
        in its last receive, for scaling. Records that did not fit stay in `carry`."""
        builder = BatchBuilder(self.batch_size)
        pending, carry[:] = list(carry), []
        deadline: float | None = None
        received = requested = 0
        while True:
            while pending and builder.add(pending[0]):
                pending.pop(0)
            if pending or builder.full:
                break
            remaining = 0.0
            if builder.records:
                deadline = deadline if deadline is not None else time.monotonic() + self.window_s
                remaining = deadline - time.monotonic()
                if remaining <= 0 or stop.is_set():
                    break
            requested = min(RECEIVE_MAX, self.batch_size - len(builder))
            wait_s = min(LONG_POLL_S, int(remaining)) if builder.records else LONG_POLL_S
            assert self.queue is not None
            messages = await self.queue.receive(requested, wait_s, stop, holding=bool(builder.records))
            if messages is None:
                break
            received = len(messages)
            if not messages:
                if not builder.records:
                    break
                await asyncio.sleep(min(remaining, IDLE_SHORT_POLL_S))
                continue
            pending.extend(await self.to_records(messages))
        carry.extend(pending)
        return builder, received, requested

    # --- Sender ---------------------------------------------------------------------
    async def send(self, records: list[dict[str, Any]]) -> BatchOutcome:
        """Invoke once with the batch, then delete what succeeded (SEMANTICS §1, §7, §10-14)."""
        now_ms = time.time() * 1000
        oldest = min(int(r["attributes"].get("SentTimestamp", now_ms)) for r in records)
        reply = await self.ctx.invoke_batch(self.mapping, {"Records": records})
        ids = [r["messageId"] for r in records]
        groups = [r["attributes"].get("MessageGroupId") for r in records] if self.fifo else None
        outcome = decide(reply, ids, report_item_failures=self.report, groups=groups)
        succeeded = set(outcome.succeeded)
        deleted = await self.delete([r for r in records if r["messageId"] in succeeded])
        held_s = time.monotonic() - self.forget(records)
        assert self.queue is not None
        expired = self.queue.visibility_s is not None and held_s > self.queue.visibility_s
        if expired:
            log.warning("mapping %s: a batch of %d was held %.1f s, longer than the queue's visibility timeout "
                        "(%.0f s): SQS may already have delivered its messages again", self.mapping.uuid, len(records), held_s, self.queue.visibility_s)
        keys = self.ctx.keys
        async with self.ctx.redis.pipeline(transaction=False) as pipe:
            incr(pipe, keys, self.scope, "Batches")
            observe(pipe, keys, self.scope, "BatchSize", len(records))
            observe(pipe, keys, self.scope, "Lag", max(0.0, now_ms - oldest))
            if reply.ran:
                incr(pipe, keys, self.scope, "Invoked")
            if reply.throttled:
                incr(pipe, keys, self.scope, "Throttled")
            if outcome.failed:
                incr(pipe, keys, self.scope, "FailedItems", len(outcome.failed))
                incr(pipe, keys, self.scope, "Returned", len(outcome.failed))
            if deleted:
                incr(pipe, keys, self.scope, "Deleted", deleted)
            if expired:
                incr(pipe, keys, self.scope, "VisibilityExpired")
            await pipe.execute()
        if outcome.error:
            log.info("mapping %s: batch of %d: %s", self.mapping.uuid, len(records), outcome.error)
        return outcome

    async def delete(self, records: list[dict[str, Any]]) -> int:
        """DeleteMessageBatch in chunks of 10; returns how many SQS confirmed."""
        assert self.queue is not None
        done = 0
        for start in range(0, len(records), RECEIVE_MAX):
            try:
                done += await self.queue.delete_batch([r["receiptHandle"] for r in records[start : start + RECEIVE_MAX]])
            except (ClientError, BotoCoreError) as exc:
                log.warning("mapping %s: delete failed (messages will be redelivered): %s", self.mapping.uuid, exc)
        return done

    async def release_behind_failures(self, records: list[dict[str, Any]], outcome: BatchOutcome, carry: list[dict[str, Any]]) -> None:
        """FIFO: keep each failed group's first failed message in flight and make the group's
        later failed (and carried-over) messages visible again at once.

        SQS still blocks the group while that first message is in flight, so nothing
        overtakes it (SEMANTICS §13), and when it returns the group resumes in order. Letting
        all of them expire together instead breaks order on moto: its receive skips a
        returning message while another message of its group is still marked in flight.
        """
        failed = set(outcome.failed)
        heads: set[str | None] = set()
        release: list[dict[str, Any]] = []
        for record in records:
            group = record["attributes"].get("MessageGroupId")
            if record["messageId"] in failed:
                (release.append(record) if group in heads else heads.add(group))
        release += [r for r in carry if r["attributes"].get("MessageGroupId") in heads]
        carry[:] = [r for r in carry if r["attributes"].get("MessageGroupId") not in heads]
        self.forget(release)  # whoever receives them next times them again
        assert self.queue is not None
        for start in range(0, len(release), RECEIVE_MAX):
            try:
                await self.queue.make_visible([r["receiptHandle"] for r in release[start : start + RECEIVE_MAX]])
            except (ClientError, BotoCoreError) as exc:
                log.warning("mapping %s: releasing messages behind a failure failed: %s", self.mapping.uuid, exc)

    async def poll_loop(self, stop: asyncio.Event) -> None:
        """Receive → batch → invoke → ack until stopped or scaled in; a held batch is always sent."""
        carry: list[dict[str, Any]] = []
        backoff = Backoff(self.ctx.settings.time_scale)
        while not stop.is_set():
            try:
                builder, received, requested = await self.collect(stop, carry)
            except (ClientError, BotoCoreError) as exc:
                log.warning("mapping %s: receive from %s failed: %s", self.mapping.uuid, self.arn, exc)
                if await wait_or_stop(stop, backoff.next_delay()):
                    return
                continue
            except Exception:
                log.exception("mapping %s: poll round failed; held messages reappear after their visibility timeout", self.mapping.uuid)
                self.forget(carry)
                carry.clear()
                if await wait_or_stop(stop, backoff.next_delay()):
                    return
                continue
            target = self.scaler.after_receive(received, requested)
            if builder.records:
                try:
                    outcome = await self.send(builder.records)
                except Exception:
                    log.exception("mapping %s: sending a batch failed; its messages reappear after their visibility timeout", self.mapping.uuid)
                    self.forget(builder.records + carry)
                    carry.clear()
                    if await wait_or_stop(stop, backoff.next_delay()):
                        return
                    continue
                if self.fifo and outcome.failed:
                    await self.release_behind_failures(builder.records, outcome, carry)
                if outcome.throttled:
                    if await wait_or_stop(stop, backoff.next_delay()):
                        return
                else:
                    backoff.reset()
            if target > self.active:
                self.spawn(stop)
            elif target < self.active and not carry:
                self.active -= 1  # counted now, not when the task ends, so two loops never both leave
                return
