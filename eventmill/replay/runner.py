"""Replay recorded events through the live pipeline (Redis queues, workers, sandboxes):
nothing is special-cased, so a replay sees exactly the semantics live traffic sees.

`--mode event` submits async events in bulk (no rq job per event: dispatchers batch
them) and follows their final outcomes through a notify list the workers push to;
`--mode sync` invokes request-response with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import orjson
import redis.asyncio as aredis

from broker.events import AsyncEvent, new_request_id, now_ms, queue_accept
from broker.invocation import ASYNC_MAX_BYTES, SYNC_MAX_BYTES, invoke_and_wait
from broker.keys import Keys
from broker.metrics import function_scope, incr
from eventmill.replay.inputs import Item
from eventmill.replay.report import Outcome

Progress = Callable[[int, int], None]
SUBMIT_CHUNK = 500
FETCH_CHUNK = 1000


@dataclass(frozen=True)
class Pacing:
    """--rate N/s, or --speed X (the original timestamps' spacing divided by X)."""

    rate: float | None = None
    speed: float | None = None

    def offsets(self, items: list[Item]) -> list[float]:
        if self.rate:
            return [i / self.rate for i in range(len(items))]
        if self.speed:
            stamps = [item.timestamp for item in items]
            known = [s for s in stamps if s is not None]
            if known:
                first = min(known)
                return [((s if s is not None else first) - first) / self.speed for s in stamps]
        return [0.0] * len(items)


@dataclass
class EventRun:
    client: aredis.Redis
    keys: Keys
    function: str
    items: list[Item]
    pacing: Pacing = field(default_factory=Pacing)
    ordered: bool = False
    progress: Progress | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    async def run(self) -> list[Outcome]:
        notify = self.keys.notify(self.run_id)
        offsets = self.pacing.offsets(self.items)
        ids: list[str | None] = [None] * len(self.items)
        index_of: dict[str, int] = {}
        finals: dict[int, dict[str, Any]] = {}
        queues = self._key_queues() if self.ordered else None
        ready: deque[int] = deque(q.popleft() for q in queues.values()) if queues else deque(range(len(self.items)))
        started = time.monotonic()
        try:
            while len(finals) < len(self.items):
                batch: list[int] = []
                while ready and len(batch) < SUBMIT_CHUNK and offsets[ready[0]] <= time.monotonic() - started:
                    batch.append(ready.popleft())
                if batch:
                    await self._submit(batch, ids, index_of, notify)
                wait = 0.0 if batch else 0.2
                if ready and not batch:
                    wait = min(wait, max(0.0, offsets[ready[0]] - (time.monotonic() - started)))
                for outcome in await self._drain(notify, wait):
                    index = index_of[outcome["requestId"]]
                    finals[index] = outcome
                    if queues is not None:
                        queue = queues[self.items[index].order_key]
                        if queue:
                            ready.append(queue.popleft())
                    if self.progress:
                        self.progress(len(finals), len(self.items))
        finally:
            await self.client.delete(notify)
        return await self._outcomes(ids, finals)

    def _key_queues(self) -> dict[str | None, deque[int]]:
        queues: dict[str | None, deque[int]] = defaultdict(deque)
        for index, item in enumerate(self.items):
            queues[item.order_key if item.order_key is not None else f"#{index}"].append(index)
        return queues

    async def _submit(self, batch: list[int], ids: list[str | None], index_of: dict[str, int], notify: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            for index in batch:
                payload = orjson.dumps(self.items[index].payload()).decode()
                if len(payload) > ASYNC_MAX_BYTES:
                    raise ValueError(f"{self.items[index].origin}: event is larger than the async limit ({ASYNC_MAX_BYTES} bytes)")
                event = AsyncEvent(new_request_id(), self.function, payload, now_ms(), source="replay", notify=notify)
                ids[index] = event.request_id
                index_of[event.request_id] = index
                queue_accept(pipe, self.keys, event, wake=False)
            incr(pipe, self.keys, function_scope(self.function), "AsyncEventsReceived", len(batch))
            pipe.lpush(self.keys.async_wake, b"1")
            await pipe.execute()

    async def _drain(self, notify: str, wait_s: float) -> list[dict[str, Any]]:
        """Outcomes pushed so far; with none, wait up to `wait_s` for the next one."""
        raw = await self.client.lpop(notify, FETCH_CHUNK)
        if not raw and wait_s >= 0.001:
            popped = await self.client.blpop([notify], timeout=wait_s)
            raw = [popped[1]] if popped else []
        return [orjson.loads(r) for r in raw or []]

    async def _outcomes(self, ids: list[str | None], finals: dict[int, dict[str, Any]]) -> list[Outcome]:
        outcomes = []
        for start in range(0, len(ids), FETCH_CHUNK):
            chunk = ids[start:start + FETCH_CHUNK]
            records = await self.client.mget([self.keys.result(rid or "") for rid in chunk])
            for offset, (rid, raw) in enumerate(zip(chunk, records)):
                index = start + offset
                final = finals[index]
                result = orjson.loads(raw) if raw else {}
                outcomes.append(Outcome(
                    index=index, origin=self.items[index].origin, request_id=rid or "",
                    status="success" if final["condition"] == "Success" else "error",
                    payload=result.get("payload"), error=result.get("error") if final["condition"] != "Success" else None,
                    attempts=int(final.get("attempts", 0)), duration_ms=result.get("duration"),
                    condition=final["condition"], event=self.items[index].event,
                ))
        return outcomes


async def run_sync(
    client: aredis.Redis, keys: Keys, function: str, items: list[Item], *, timeout_s: float, concurrency: int = 1,
    pacing: Pacing | None = None, progress: Progress | None = None,
) -> list[Outcome]:
    """Request-response, `concurrency` at a time, in input order when concurrency is 1."""
    offsets = (pacing or Pacing()).offsets(items)
    outcomes: list[Outcome | None] = [None] * len(items)
    gate = asyncio.Semaphore(max(1, concurrency))
    started = time.monotonic()
    done = 0

    async def one(index: int) -> None:
        nonlocal done
        delay = offsets[index] - (time.monotonic() - started)
        if delay > 0:
            await asyncio.sleep(delay)
        item = items[index]
        payload = orjson.dumps(item.payload()).decode()
        async with gate:
            if len(payload) > SYNC_MAX_BYTES:
                reply: dict[str, Any] = {"error": "RequestEntityTooLargeException", "message": f"event is larger than {SYNC_MAX_BYTES} bytes", "requestId": ""}
            else:
                reply = await invoke_and_wait(client, keys, function, payload, timeout_s=timeout_s)
        response = _json(reply.get("payload"))
        failed = bool(reply.get("functionError") or reply.get("error"))
        outcomes[index] = Outcome(
            index=index, origin=item.origin, request_id=reply.get("requestId", ""),
            status="error" if failed else "success",
            payload=None if failed else response,
            error=(response if reply.get("functionError") else {"errorType": reply.get("error"), "errorMessage": reply.get("message")}) if failed else None,
            attempts=1, duration_ms=reply.get("duration"), condition="Success" if not failed else "Error", event=item.event,
        )
        done += 1
        if progress:
            progress(done, len(items))

    if concurrency <= 1 and not any(offsets):
        for index in range(len(items)):
            await one(index)
    else:
        await asyncio.gather(*(one(i) for i in range(len(items))))
    return [o for o in outcomes if o is not None]


def _json(raw: Any) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return raw


def chunks(values: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
