"""Read-side views for `eventmill status` and GET /metrics: metric snapshots (with live
gauges computed from the concurrency leases) and queue depths."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis

from broker.events import now_ms
from broker.keys import Keys
from broker.metrics import decode


def _scopes(raw: set[Any]) -> list[str]:
    return sorted(s.decode() if isinstance(s, bytes) else str(s) for s in raw)


def _assemble(scopes: list[str], hashes: list[Any], running: list[int]) -> dict[str, dict[str, float]]:
    snapshot: dict[str, dict[str, float]] = {}
    for scope, fields, held in zip(scopes, hashes, running):
        values = decode(fields)
        if scope.startswith("fn:"):
            values["ConcurrentExecutions"] = float(held)
        snapshot[scope] = values
    return snapshot


def _queue_pipe(pipe: Any, keys: Keys, scopes: list[str], now: int) -> None:
    for scope in scopes:
        pipe.hgetall(keys.metrics(scope))
    for scope in scopes:
        pipe.zcount(keys.concurrency(scope[3:]), now, "+inf")


def read_metrics(client: redis.Redis, keys: Keys) -> dict[str, dict[str, float]]:
    scopes = _scopes(client.smembers(keys.metric_scopes))
    with client.pipeline(transaction=False) as pipe:
        _queue_pipe(pipe, keys, scopes, now_ms())
        results = pipe.execute()
    return _assemble(scopes, results[: len(scopes)], results[len(scopes):])


async def read_metrics_async(client: aredis.Redis, keys: Keys) -> dict[str, dict[str, float]]:
    scopes = _scopes(await client.smembers(keys.metric_scopes))
    async with client.pipeline(transaction=False) as pipe:
        _queue_pipe(pipe, keys, scopes, now_ms())
        results = await pipe.execute()
    return _assemble(scopes, results[: len(scopes)], results[len(scopes):])


def queue_depths(client: redis.Redis, keys: Keys) -> dict[str, int]:
    now = now_ms()
    with client.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.event_schedule)
        pipe.zcount(keys.event_schedule, "-inf", now)
        pipe.llen(f"rq:queue:{keys.rq_queue}")
        pipe.llen(keys.sync_pending)
        pipe.zcount(keys.workers, now, "+inf")
        accepted, due, rq_jobs, sync_pending, workers = pipe.execute()
    return {
        "async_unfinished": int(accepted),
        "async_due": int(due),
        "async_waiting": int(accepted) - int(due),
        "rq_jobs_queued": int(rq_jobs),
        "sync_pending": int(sync_pending),
        "workers": int(workers),
    }
