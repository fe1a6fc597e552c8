"""One of a shard's ParallelizationFactor lanes: its records in order, one batch at a time.

A lane cuts batches (BatchSize, MaximumBatchingWindow, 6 MB) and runs each to a final
state through pollers/stream_batch.py. With TumblingWindowInSeconds (§36) it also keeps
the window: records belong to the window of their arrival time, the handler's returned
state is passed to the next invocation of the same window, the invocation after the
window's end says isFinalInvokeForWindow (with no records when none are left), and a new
window starts with an empty state. A returned state over 1 MB ends the window early:
one more invocation, without records, carries that state with isWindowTerminatedEarly,
and the window goes on with an empty state. The state is stored with the checkpoint
(pollers/stream_window.py), so a restart continues the window where it was.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Sequence

from pollers.stream_batch import process
from pollers.stream_policy import window_bounds
from pollers.stream_records import StreamRecord
from pollers.stream_window import WindowState, too_large, window_event

if TYPE_CHECKING:
    from pollers.stream_shard import ShardWorker

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 - 64 * 1024  # Lambda's 6 MB cap, less the envelope
WINDOW_GRACE_S = 0.05  # after a window's end, wait this long for its last records before the final invoke


class Lane:
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
        self.win = WindowState()
        self.dirty = False  # `win` changed since the last checkpoint write
        self._returned: dict[str, Any] | None = None  # state returned, applied with its records
        self._closing = self._ending_early = self._oversize = False

    def push(self, record: StreamRecord) -> None:
        if not self.buffer:
            self.first_at = time.monotonic()
        self.buffer.append(record)
        self.wake.set()

    def folded(self, record: StreamRecord) -> bool:
        """Whether a re-read record is already in this lane's stored window state."""
        return self.win.done is not None and record.seq <= self.win.done

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
            elif self.tumbling_s and self.win.bounds is not None:
                if time.time() >= self.win.bounds[1] + WINDOW_GRACE_S or draining:
                    return []  # the window closed with nothing new: its final invoke has no records
                timeout = self.win.bounds[1] + WINDOW_GRACE_S - time.time()
            elif draining:
                return None
            else:
                timeout = None
            self.wake.clear()
            await wait_either(self.wake, self.worker.env.stopping, timeout)

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
        bounds = window_bounds(batch[0].arrival, self.tumbling_s) if batch else self.win.bounds
        if self.win.bounds is not None and bounds != self.win.bounds:
            await self._invoke_window([], final=True)  # a newer window began: close the old one first
        if bounds is None:
            return
        if bounds != self.win.bounds:
            self.win.bounds, self.win.state = bounds, {}
        later = bool(self.buffer) and window_bounds(self.buffer[0].arrival, self.tumbling_s) != bounds
        final = not batch or later or time.time() >= bounds[1] + WINDOW_GRACE_S or not self.worker.reading
        await self._invoke_window(batch, final=final)
        if self._oversize and self.win.bounds == bounds:
            await self._invoke_window([], final=False, early=True)

    async def _invoke_window(self, batch: list[StreamRecord], *, final: bool, early: bool = False) -> None:
        assert self.win.bounds is not None
        event = window_event(
            self.win.bounds, self.win.state, shard_id=self.worker.shard.shard_id, stream_arn=self.worker.env.stream_arn,
            final=final, early=early,
        )
        self._closing, self._ending_early, self._oversize = final, early, False
        await process(self.worker.env, batch, self._done, event, on_state=self._on_state)
        if (final and self.win.bounds is not None) or (early and self.win.state):
            # The closing invoke was discarded (retries or age exhausted): the window ends anyway.
            self._returned = {}
            await self._done([])

    def _on_state(self, state: dict[str, Any]) -> None:
        self._returned = state

    async def _done(self, records: Sequence[StreamRecord]) -> None:
        """Apply a returned state together with the records it covers, then checkpoint both."""
        if self._returned is not None:
            state, self._returned = self._returned, None
            if self._closing:
                self.win.bounds, self.win.state = None, {}
            elif self._ending_early:
                self.win.state = {}
            else:
                self.win.state = state
                self._oversize = too_large(state)
        if records:
            self.win.done = records[-1].seq
        self.dirty = True
        await self.worker.done(records)


async def wait_either(event: asyncio.Event, stopping: asyncio.Event, timeout: float | None) -> None:
    """Wait for `event` or `stopping`, at most `timeout` seconds."""
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
