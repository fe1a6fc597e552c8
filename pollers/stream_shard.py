"""Work one leased shard: read it in order, batch per lane, checkpoint what is done.

A reader fetches records (GetRecords), drops the ones FilterCriteria rejects (they
count as done: the iterator moves past them, SEMANTICS §25) and routes the rest to one
of ParallelizationFactor lanes by partition key, so each key's records stay in order
while lanes run batches concurrently (§29). Each lane has at most one batch in flight.
The checkpoint is the highest sequence number below which everything is done
(`Progress`), written owner-checked after every batch; a closed shard, once fully
done, is checkpointed as SHARD_END so its children can start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Sequence

from pollers.filtering import FilterSet
from pollers.stream_batch import Abandoned, BatchEnv, process
from pollers.stream_policy import SHARD_END, Progress, ShardInfo, lane_for, window_bounds
from pollers.stream_records import StreamRecord, iso_ms, iso_s
from pollers.stream_source import StreamSource

log = logging.getLogger("eventmill.pollers.stream")

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 - 64 * 1024  # Lambda's 6 MB cap, less the envelope
MAX_GETRECORDS = 10_000
WINDOW_GRACE_S = 0.05


class LeaseLost(Exception):
    """A checkpoint write found the lease gone: stop at once, the shard is someone else's."""


class ShardWorker:
    """One shard of one mapping, for as long as this process holds its lease."""

    def __init__(self, env: BatchEnv, source: StreamSource, shard: ShardInfo, checkpoint: str | None, start: str, filters: FilterSet) -> None:
        self.env = env
        self.source = source
        self.shard = shard
        self.start = start
        self.filters = filters
        self.written = checkpoint
        self.last_read: int | None = int(checkpoint) if checkpoint else None
        self.progress = Progress()
        self.lock = asyncio.Lock()
        self.space = asyncio.Event()
        self.reading = True
        self.ended = False
        self.behind_ms = 0
        mapping = env.mapping
        self.lanes = [Lane(self, i) for i in range(max(1, mapping.parallelization_factor))]
        batch = max(1, mapping.batch_size)
        self.max_buffer = max(batch * 2, min(batch * len(self.lanes) * 2, 20_000))

    @property
    def backlog(self) -> int:
        return len(self.progress)

    async def run(self) -> bool:
        """Returns True when the shard reached SHARD_END (fully processed)."""
        wait = await self.env.checkpoints.inflight_wait_s(self.shard.shard_id)
        if wait > 0:  # a previous owner died mid-batch: never overlap its batch (ARCHITECTURE: leases)
            log.info("shard %s: waiting %.1f s for a batch left running by a previous owner", self.shard.shard_id, wait)
            await asyncio.sleep(wait)
        abandoned = False
        try:
            async with asyncio.TaskGroup() as group:
                for lane in self.lanes:
                    group.create_task(lane.run())
                group.create_task(self._read())
        except* Abandoned:
            abandoned = True  # asked to stop while a batch was blocked: the next owner retries it
        if abandoned:
            return False
        if self.ended and not len(self.progress) and not self.env.stopping.is_set():
            if not await self.env.checkpoints.write(self.shard.shard_id, SHARD_END):
                raise LeaseLost(self.shard.shard_id)
            return True
        return False

    async def _iterator(self) -> str:
        after = str(self.last_read) if self.last_read is not None else None
        timestamp = self.env.mapping.starting_position_timestamp
        return await self.source.iterator(self.shard.shard_id, after, self.start, timestamp)

    async def _read(self) -> None:
        stopping = self.env.stopping
        iterator: str | None = None
        try:
            while not stopping.is_set():
                if len(self.progress) >= self.max_buffer:
                    self.space.clear()
                    await _wait(self.space, stopping, 1.0)
                    continue
                try:
                    iterator = iterator or await self._iterator()
                    limit = max(1, min(MAX_GETRECORDS, self.max_buffer - len(self.progress)))
                    result = await self.source.read(self.shard.shard_id, iterator, limit)
                except Exception as exc:
                    if not self.source.is_expired_iterator(exc):
                        log.warning("shard %s: read failed: %s", self.shard.shard_id, exc)
                        await _wait(asyncio.Event(), stopping, self.source.poll_interval_s * 5)
                    iterator = None
                    continue
                iterator = result.next_iterator
                self.behind_ms = result.behind_ms
                self._accept(result.records)
                await self.commit()
                if iterator is None or (not result.records and await self._closed_and_read()):
                    self.ended = True
                    return
                if not result.records:
                    await _wait(asyncio.Event(), stopping, self.source.poll_interval_s)
        finally:
            self.reading = False
            for lane in self.lanes:
                lane.wake.set()

    async def _closed_and_read(self) -> bool:
        """Whether a closed shard is read to its end when the source never returns a null
        iterator (moto); the end is looked up again since moto moves it."""
        if self.shard.ending is None:
            return False
        for info in await self.source.shards():
            if info.shard_id == self.shard.shard_id:
                self.shard = info
        return self.shard.ending is not None and (self.last_read or 0) >= self.shard.ending

    def _accept(self, records: list[StreamRecord]) -> None:
        for record in records:
            self.progress.add(record.seq, record.sequence)
            self.last_read = record.seq
            if self.filters.matches(self.source.filter_view(record.event)):
                self.lanes[lane_for(record.key, len(self.lanes))].push(record)
            else:
                self.progress.done([record.seq])

    async def done(self, records: Sequence[StreamRecord]) -> None:
        self.progress.done(r.seq for r in records)
        await self.commit()
        self.space.set()

    async def commit(self) -> None:
        self.progress.advance()
        async with self.lock:
            value = self.progress.checkpoint
            if value is None or value == self.written:
                return
            if not await self.env.checkpoints.write(self.shard.shard_id, value):
                raise LeaseLost(self.shard.shard_id)
            self.written = value


class Lane:
    """One of a shard's ParallelizationFactor slots: its records in order, one batch at a time."""

    def __init__(self, worker: ShardWorker, index: int) -> None:
        self.worker = worker
        self.index = index
        self.buffer: deque[StreamRecord] = deque()
        self.wake = asyncio.Event()
        self.first_at = 0.0
        mapping = worker.env.mapping
        settings = worker.env.ctx.settings
        self.window_s = settings.scaled(mapping.maximum_batching_window_s)
        self.tumbling_s = settings.scaled(mapping.tumbling_window_s) if mapping.tumbling_window_s else 0.0
        self.window: tuple[float, float] | None = None
        self.state: dict[str, Any] = {}

    def push(self, record: StreamRecord) -> None:
        if not self.buffer:
            self.first_at = time.monotonic()
        self.buffer.append(record)
        self.wake.set()

    async def run(self) -> None:
        env = self.worker.env
        while True:
            batch = await self._next_batch()
            if batch is None:
                return
            if not self.tumbling_s:
                await process(env, batch, self.worker.done)
                continue
            await self._tumbling(batch)

    async def _next_batch(self) -> list[StreamRecord] | None:
        mapping = self.worker.env.mapping
        while True:
            if self.worker.env.stopping.is_set():
                return None
            draining = not self.worker.reading
            if self.buffer:
                waited = time.monotonic() - self.first_at
                if draining or len(self.buffer) >= mapping.batch_size or waited >= self.window_s or self._bytes_full():
                    return self._cut()
                timeout: float | None = self.window_s - waited
            elif self.tumbling_s and self.window is not None:
                if time.time() >= self.window[1] + WINDOW_GRACE_S or draining:
                    return []  # the window closed with nothing new: its final invoke has no records
                timeout = self.window[1] + WINDOW_GRACE_S - time.time()
            elif draining:
                return None
            else:
                timeout = None
            self.wake.clear()
            await _wait(self.wake, self.worker.env.stopping, timeout)

    def _bytes_full(self) -> bool:
        total = 0
        for record in self.buffer:
            total += record.size
            if total >= MAX_PAYLOAD_BYTES:
                return True
        return False

    def _cut(self) -> list[StreamRecord]:
        """Up to BatchSize records within 6 MB (at least one); with tumbling windows, only
        records of the first record's window."""
        batch: list[StreamRecord] = []
        total = 0
        limit = self.worker.env.mapping.batch_size
        first_window = window_bounds(self.buffer[0].arrival, self.tumbling_s) if self.tumbling_s else None
        while self.buffer and len(batch) < limit:
            record = self.buffer[0]
            if batch and total + record.size > MAX_PAYLOAD_BYTES:
                break
            if first_window is not None and window_bounds(record.arrival, self.tumbling_s) != first_window:
                break
            batch.append(self.buffer.popleft())
            total += record.size
        if self.buffer:
            self.first_at = time.monotonic()
        return batch

    async def _tumbling(self, batch: list[StreamRecord]) -> None:
        """Tumbling windows (§36): state flows from one invocation to the next within a
        window; the invocation that closes the window says isFinalInvokeForWindow."""
        bounds = window_bounds(batch[0].arrival, self.tumbling_s) if batch else self.window
        if self.window is not None and bounds != self.window:
            await self._invoke_window([], final=True)  # a newer window began: close the old one first
        if bounds is None:
            return
        if bounds != self.window:
            self.window, self.state = bounds, {}
        later = bool(self.buffer) and window_bounds(self.buffer[0].arrival, self.tumbling_s) != bounds
        final = not batch or later or time.time() >= bounds[1] + WINDOW_GRACE_S or not self.worker.reading
        await self._invoke_window(batch, final=final)

    async def _invoke_window(self, batch: list[StreamRecord], *, final: bool) -> None:
        assert self.window is not None
        fmt = iso_s if float(self.window[0]).is_integer() and float(self.window[1]).is_integer() else iso_ms
        window = {
            "window": {"start": fmt(self.window[0]), "end": fmt(self.window[1])},
            "state": self.state,
            "shardId": self.worker.shard.shard_id,
            "eventSourceARN": self.worker.env.stream_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": False,
        }
        state = await process(self.worker.env, batch, self.worker.done, window) if batch or final else None
        if final:
            self.window, self.state = None, {}
        elif state is not None:
            self.state = state


async def _wait(event: asyncio.Event, stopping: asyncio.Event, timeout: float | None) -> None:
    """Wait for `event` or `stopping`, at most `timeout` seconds."""
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
