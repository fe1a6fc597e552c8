"""`--mode batch`: recorded records cut into batches and run with the live mapping's
semantics, by the live mapping's own code: stream batches go through
`pollers.stream_batch.process` (retries, bisect, ReportBatchItemFailures, record age,
the OnFailure record), SQS batches through the SQS poller's acknowledgement rules.

Records replayed from a file are "arriving" now: their age for MaximumRecordAgeInSeconds
counts from the replay, as it would for a live mapping reading them fresh.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from typing import Any

import orjson
import redis.asyncio as aredis

from broker.config import FunctionConfig
from broker.keys import Keys
from broker.mappings import EventSourceMapping
from broker.settings import Settings
from eventmill.replay.inputs import Item
from eventmill.replay.report import Outcome
from eventmill.replay.runner import Progress

SOURCES = ("sqs", "kinesis", "dynamodb")
DEFAULT_ARNS = {
    "sqs": "arn:aws:sqs:us-east-1:123456789012:replay",
    "kinesis": "arn:aws:kinesis:us-east-1:123456789012:stream/replay",
    "dynamodb": "arn:aws:dynamodb:us-east-1:123456789012:table/replay/stream/2024-01-01T00:00:00.000",
}
MAX_BATCH_BYTES = 6 * 1024 * 1024


def build_mapping(function: str, source: str, items: list[Item], options: dict[str, Any] | None, batch_size: int | None) -> EventSourceMapping:
    """The mapping semantics to apply: CreateEventSourceMapping fields, validated as the
    API validates them (so a bad option gets AWS's error)."""
    arn = next((i.event.get("eventSourceARN") for i in items if isinstance(i.event, dict) and i.event.get("eventSourceARN")), None)
    body: dict[str, Any] = {"FunctionName": function, "EventSourceArn": arn or DEFAULT_ARNS[source], **(options or {})}
    if source != "sqs":
        body.setdefault("StartingPosition", "TRIM_HORIZON")
    if batch_size is not None:
        body["BatchSize"] = batch_size
        if source == "sqs" and batch_size > 10 and not body.get("MaximumBatchingWindowInSeconds"):
            body["MaximumBatchingWindowInSeconds"] = 1  # a window is required above 10; replay cuts batches itself
    mapping = EventSourceMapping.parse(body)
    return mapping


def cut(items: list[Any], size: int, sizes: list[int]) -> list[list[Any]]:
    """Batches of at most `size` records and 6 MB of event JSON, in order."""
    batches: list[list[Any]] = []
    current: list[Any] = []
    total = 0
    for item, nbytes in zip(items, sizes):
        if current and (len(current) >= size or total + nbytes > MAX_BATCH_BYTES):
            batches.append(current)
            current, total = [], 0
        current.append(item)
        total += nbytes
    if current:
        batches.append(current)
    return batches


async def run_batches(
    client: aredis.Redis, keys: Keys, config: FunctionConfig, items: list[Item], *, source: str | None,
    batch_size: int | None, mapping: dict[str, Any] | None, settings: Settings, progress: Progress | None = None,
    max_receive_count: int = 1,
) -> list[Outcome]:
    kind = source or next((i.source for i in items if i.source in SOURCES), None)
    if kind not in SOURCES:
        raise ValueError("batch mode needs --source sqs, kinesis or dynamodb (or records of one of those shapes)")
    esm = build_mapping(config.name, kind, items, mapping, batch_size)
    if kind == "sqs":
        from eventmill.replay.batch_sqs import run_sqs_batches

        return await run_sqs_batches(client, keys, settings, esm, items, progress, max_receive_count)
    return await _run_stream(client, keys, settings, esm, config, kind, items, progress)


async def _run_stream(
    client: aredis.Redis, keys: Keys, settings: Settings, esm: EventSourceMapping, config: FunctionConfig,
    kind: str, items: list[Item], progress: Progress | None,
) -> list[Outcome]:
    from pollers.base import PollerContext
    from pollers.checkpoints import Checkpoints
    from pollers.stream_batch import BatchEnv, process
    from pollers.stream_policy import RetryPolicy
    from pollers.stream_records import StreamRecord

    now = time.time()
    records: list[StreamRecord] = []
    index_of: dict[int, int] = {}
    shards: dict[str, list[StreamRecord]] = defaultdict(list)
    for index, item in enumerate(items):
        event = item.event if isinstance(item.event, dict) else {}
        if kind == "kinesis":
            sequence = str((event.get("kinesis") or {}).get("sequenceNumber", index))
            shard = str(event.get("eventID", "shardId-000000000000:")).split(":")[0]
        else:
            sequence = str((event.get("dynamodb") or {}).get("SequenceNumber", index))
            shard = "shardId-replay"
        record = StreamRecord(int(sequence) if sequence.isdigit() else index, sequence, item.order_key or "", now, event, len(orjson.dumps(event)) + 64)
        index_of[id(record)] = index
        records.append(record)
        shards[shard].append(record)
    finals: dict[int, tuple[str, str]] = {}
    run_id = f"replay-{uuid.uuid4().hex[:12]}"
    ctx = PollerContext(redis=client, keys=keys, settings=settings, owner=run_id)
    policy = RetryPolicy(
        max_retry_attempts=esm.maximum_retry_attempts,
        max_record_age_s=settings.scaled(esm.maximum_record_age_s) if esm.maximum_record_age_s >= 0 else -1,
        bisect=esm.bisect_batch_on_function_error, time_scale=settings.time_scale,
    )
    stopping = asyncio.Event()
    checkpoints = Checkpoints(client, keys, run_id, run_id)

    async def one_shard(shard_id: str, shard_records: list[StreamRecord]) -> None:
        env = BatchEnv(
            ctx=ctx, mapping=esm, shard_id=shard_id, stream_arn=esm.event_source_arn,
            info_key="KinesisBatchInfo" if kind == "kinesis" else "DDBStreamBatchInfo",
            policy=policy, checkpoints=checkpoints, function_timeout_s=float(config.timeout_s), stopping=stopping,
        )

        async def done(batch: Any) -> None:
            for record in batch:
                finals.setdefault(index_of[id(record)], ("success", "Success"))
            if progress:
                progress(len(finals), len(items))

        async def discarded(batch: Any, reason: str) -> None:
            for record in batch:
                finals[index_of[id(record)]] = ("error", reason)

        for batch in cut(shard_records, esm.batch_size, [r.size for r in shard_records]):
            await process(env, batch, done, on_discard=discarded)

    try:
        await asyncio.gather(*(one_shard(s, rs) for s, rs in shards.items()))
    finally:
        await client.delete(keys.stream_checkpoints(run_id), keys.stream_inflight(run_id))
    return [
        Outcome(index=i, origin=items[i].origin, request_id="", status=finals[i][0], condition=finals[i][1],
                error={"condition": finals[i][1]} if finals[i][0] == "error" else None, event=items[i].event, attempts=1)
        for i in range(len(items))
    ]
