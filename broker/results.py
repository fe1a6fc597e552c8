"""Invocation results and our own DLQ, in Redis, bounded per function.

A result record: requestId, functionName, status ("success" | "error"), event (the
request payload), payload (response) or error, attempts, duration, billedDuration,
maxMemoryUsed, logTail, invocationType, finishedAt. A DLQ record: the original event
plus why it was discarded (condition in AWS's words), kept until purged or redriven.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis

from broker.keys import Keys

LOG_TAIL_BYTES = 4096


def queue_result(pipe: Any, keys: Keys, record: dict[str, Any], ttl_s: int, keep: int, finished_ms: int) -> None:
    rid = record["requestId"]
    fn = record["functionName"]
    pipe.set(keys.result(rid), orjson.dumps(record), ex=ttl_s)
    pipe.zadd(keys.results_index(fn), {rid: finished_ms})
    pipe.zremrangebyrank(keys.results_index(fn), 0, -(keep + 1))
    pipe.zremrangebyscore(keys.results_index(fn), "-inf", finished_ms - ttl_s * 1000)


def queue_log(pipe: Any, keys: Keys, request_id: str, log: str, ttl_s: int, max_bytes: int = 256 * 1024) -> None:
    data = log.encode(errors="replace")
    pipe.set(keys.logs(request_id), data[-max_bytes:], ex=ttl_s)


def queue_dlq(pipe: Any, keys: Keys, record: dict[str, Any], discarded_ms: int) -> None:
    pipe.set(keys.dlq_record(record["requestId"]), orjson.dumps(record))
    pipe.zadd(keys.dlq(record["functionName"]), {record["requestId"]: discarded_ms})


def list_results(client: redis.Redis, keys: Keys, function: str, limit: int | None = None) -> list[dict[str, Any]]:
    ids = client.zrange(keys.results_index(function), 0, -1)
    if limit is not None:
        ids = ids[-limit:]
    if not ids:
        return []
    raws = client.mget([keys.result(i.decode()) for i in ids])
    return [orjson.loads(raw) for raw in raws if raw]


def get_result(client: redis.Redis, keys: Keys, request_id: str) -> dict[str, Any] | None:
    raw = client.get(keys.result(request_id))
    return orjson.loads(raw) if raw else None


def dlq_ids(client: redis.Redis, keys: Keys, function: str) -> list[str]:
    return [i.decode() for i in client.zrange(keys.dlq(function), 0, -1)]


def dlq_get(client: redis.Redis, keys: Keys, request_id: str) -> dict[str, Any] | None:
    raw = client.get(keys.dlq_record(request_id))
    return orjson.loads(raw) if raw else None


def dlq_remove(client: redis.Redis, keys: Keys, function: str, request_ids: list[str]) -> int:
    if not request_ids:
        return 0
    with client.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.dlq(function), *request_ids)
        pipe.delete(*[keys.dlq_record(r) for r in request_ids])
        removed, _ = pipe.execute()
    return int(removed)


def log_tail(log: str, limit: int = LOG_TAIL_BYTES) -> str:
    data = log.encode(errors="replace")[-limit:]
    return data.decode(errors="ignore")
