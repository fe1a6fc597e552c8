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
import contextlib
import logging
import time
from typing import Any, AsyncIterator

from botocore.exceptions import BotoCoreError, ClientError

from broker.mappings import EventSourceMapping
from broker.metrics import incr, observe
from pollers.base import PollerContext, register
from pollers.batching import BatchBuilder, BatchOutcome, decide
from pollers.filtering import sqs_filter_view
from pollers.scaling import Backoff, Scaler, concurrency_limit, live_workers
from pollers.sqs_event import parse_arn, sqs_record

log = logging.getLogger("eventmill.pollers.sqs")

LONG_POLL_S = 20
RECEIVE_MAX = 10
FIFO_MAX_BATCH = 10
IDLE_SHORT_POLL_S = 0.05
LIMIT_REFRESH_S = 2.0
RECEIVE_LOCK_RETRY_S = 0.005
FIFO_TURN_LEASE_MS = 10_000  # a crashed holder's turn ends by itself


async def queue_url_for(sqs: Any, arn: str) -> str:
    _, account, name = parse_arn(arn)
    resp = await sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
    return str(resp["QueueUrl"])


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True if `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
        return True
    except asyncio.TimeoutError:
        return False


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
        self.emulated = ctx.settings.aws_endpoint is not None
        self.local_turn = asyncio.Lock()
        self.receive_turn = asyncio.Lock()
        self.url = ""
        self.sqs: Any = None

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(self.ctx.settings.time_scale)
        async with self.ctx.client("sqs") as sqs:
            self.sqs = sqs
            while not stop.is_set():
                try:
                    self.url = await queue_url_for(sqs, self.arn)
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

    # --- Poller ---------------------------------------------------------------------
    async def receive(self, count: int, wait_s: int, stop: asyncio.Event, holding: bool) -> list[dict[str, Any]] | None:
        """One ReceiveMessage; None when `stop` interrupted a long poll while holding nothing
        (a message received by the abandoned call only reappears after its visibility timeout)."""
        if self.fifo:
            return await self.receive_fifo(count, wait_s, stop, holding)
        if self.emulated:
            # moto's receive checks and marks visibility without a lock: two overlapping
            # receives can both return one message. This process's loops take turns.
            async with self.receive_turn:
                return await self.receive_any(count, wait_s, stop, holding)
        return await self.receive_any(count, wait_s, stop, holding)

    async def receive_fifo(self, count: int, wait_s: int, stop: asyncio.Event, holding: bool) -> list[dict[str, Any]] | None:
        """Short polls taken in turns (see `fifo_turn`), repeated for up to `wait_s` like a long poll."""
        deadline = time.monotonic() + wait_s
        while True:
            async with self.fifo_turn():
                messages = await self.receive_any(count, 0, stop, holding=True)
            if messages or time.monotonic() >= deadline:
                return messages
            if not holding and await wait_or_stop(stop, IDLE_SHORT_POLL_S):
                return None
            if holding:
                await asyncio.sleep(IDLE_SHORT_POLL_S)

    @contextlib.asynccontextmanager
    async def fifo_turn(self) -> AsyncIterator[None]:
        """Serialise this FIFO queue's receive, delete and visibility calls across all pollers.

        moto checks its message-group lock against a snapshot taken when a ReceiveMessage
        starts, without a lock, so a receive that overlaps another receive or a delete can
        hand out a group's later message before an earlier one; real SQS is atomic. Taking
        turns (one short call each) restores the order at little cost.
        """
        if not self.fifo:
            if self.emulated:
                # moto's delete rebuilds the queue's message list without a lock, so two
                # overlapping deletes can resurrect a deleted message: take turns in-process.
                async with self.local_turn:
                    yield
            else:
                yield
            return
        key, token = self.ctx.keys.sqs_receive_lock(self.arn), f"{self.ctx.owner}:{id(asyncio.current_task())}"
        while not await self.ctx.redis.set(key, token, nx=True, px=FIFO_TURN_LEASE_MS):
            await asyncio.sleep(RECEIVE_LOCK_RETRY_S)
        try:
            yield
        finally:
            async with self.ctx.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                if await pipe.get(key) == token.encode():
                    pipe.multi()
                    pipe.delete(key)
                    await pipe.execute()

    async def receive_any(self, count: int, wait_s: int, stop: asyncio.Event, holding: bool) -> list[dict[str, Any]] | None:
        call = asyncio.ensure_future(self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=count, WaitTimeSeconds=wait_s,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ))
        if holding:
            resp = await call
        else:
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({call, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if call not in done:
                call.cancel()
                return None
            resp = call.result()
        return list(resp.get("Messages", []))

    # --- Processor ------------------------------------------------------------------
    async def to_records(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Event records of the messages that pass the filters; the others are deleted now (SEMANTICS §24)."""
        sequences: list[str | None] = [None] * len(messages)
        if self.fifo and any("SequenceNumber" not in m.get("Attributes", {}) for m in messages):
            # moto returns no SequenceNumber (PLATFORM §4a): synthesise one, increasing per queue
            # across pollers processes, only when the source left it out.
            top = int(await self.ctx.redis.incrby(self.ctx.keys.sqs_sequence(self.arn), len(messages)))
            sequences = [str(10**19 + top - len(messages) + i + 1) for i in range(len(messages))]
        records: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        for message, seq in zip(messages, sequences):
            record = sqs_record(message, self.arn, fifo=self.fifo, sequence_number=seq)
            (records if self.filters.matches(sqs_filter_view(record)) else dropped).append(record)
        async with self.ctx.redis.pipeline(transaction=False) as pipe:
            incr(pipe, self.ctx.keys, self.scope, "Polled", len(messages))
            if dropped:
                incr(pipe, self.ctx.keys, self.scope, "Filtered", len(dropped))
            await pipe.execute()
        if dropped:
            await self.delete(dropped)
        return records

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
            messages = await self.receive(requested, wait_s, stop, holding=bool(builder.records))
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
            await pipe.execute()
        if outcome.error:
            log.info("mapping %s: batch of %d: %s", self.mapping.uuid, len(records), outcome.error)
        return outcome

    async def delete(self, records: list[dict[str, Any]]) -> int:
        """DeleteMessageBatch in chunks of 10; returns how many SQS confirmed."""
        done = 0
        for start in range(0, len(records), RECEIVE_MAX):
            chunk = records[start : start + RECEIVE_MAX]
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)]
            try:
                async with self.fifo_turn():
                    resp = await self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                log.warning("mapping %s: delete failed (messages will be redelivered): %s", self.mapping.uuid, exc)
                continue
            done += len(resp.get("Successful", []))
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
        for start in range(0, len(release), RECEIVE_MAX):
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": 0} for i, r in enumerate(release[start : start + RECEIVE_MAX])]
            try:
                async with self.fifo_turn():
                    await self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
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
