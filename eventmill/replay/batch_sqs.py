"""SQS batch replay: the SQS poller's batch cutting (BatchSize, 6 MB) and acknowledgement
rules (`pollers.batching.decide`: whole-batch failure, ReportBatchItemFailures, FIFO
group stops) over recorded messages. A failed message "comes back after the visibility
timeout": it is received again, with ApproximateReceiveCount + 1, until it reaches the
queue's maxReceiveCount (`MaxReceiveCount` option, default 1), when it counts as moved
to the queue's DLQ.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import orjson
import redis.asyncio as aredis

from broker.keys import Keys
from broker.mappings import EventSourceMapping
from broker.settings import Settings
from eventmill.replay.inputs import Item
from eventmill.replay.report import Outcome
from eventmill.replay.runner import Progress

THROTTLE_BACKOFF_S = 1.0


async def run_sqs_batches(
    client: aredis.Redis, keys: Keys, settings: Settings, esm: EventSourceMapping, items: list[Item],
    progress: Progress | None, max_receive_count: int = 1,
) -> list[Outcome]:
    from pollers.base import PollerContext
    from pollers.batching import BatchBuilder, decide

    ctx = PollerContext(redis=client, keys=keys, settings=settings, owner="replay")
    report_failures = "ReportBatchItemFailures" in esm.function_response_types
    pending: deque[int] = deque(range(len(items)))
    receives = [0] * len(items)
    finals: dict[int, tuple[str, str]] = {}
    ids = {index: str(_record(items[index]).get("messageId") or f"replay-{index}") for index in range(len(items))}
    throttles = 0
    while pending:
        builder = BatchBuilder(esm.batch_size)
        batch: list[int] = []
        while pending and builder.add(_received(items[pending[0]], receives[pending[0]] + 1, ids[pending[0]])):
            batch.append(pending.popleft())
        for index in batch:
            receives[index] += 1
        reply = await ctx.invoke_batch(esm, {"Records": builder.records})
        groups = [_record(items[i]).get("attributes", {}).get("MessageGroupId") for i in batch] if esm.fifo else None
        outcome = decide(reply, [ids[i] for i in batch], report_item_failures=report_failures, groups=groups)
        if outcome.throttled:  # not a receive that counts: the batch never ran
            for index in batch:
                receives[index] -= 1
            pending.extendleft(reversed(batch))
            throttles += 1
            await asyncio.sleep(settings.scaled(THROTTLE_BACKOFF_S) * min(throttles, 30))
            continue
        throttles = 0
        failed = set(outcome.failed)
        retry: list[int] = []
        for index in batch:
            if ids[index] not in failed:
                finals[index] = ("success", "Success")
            elif receives[index] >= max_receive_count:
                finals[index] = ("error", "MovedToDeadLetterQueue")
            else:
                retry.append(index)
        # FIFO: a group's failed messages come back before anything later of that group.
        if esm.fifo:
            pending.extendleft(reversed(retry))
        else:
            pending.extend(retry)
        if progress:
            progress(len(finals), len(items))
    return [
        Outcome(
            index=i, origin=items[i].origin, request_id="", status=finals[i][0], condition=finals[i][1],
            error={"condition": finals[i][1]} if finals[i][0] == "error" else None, attempts=receives[i], event=items[i].event,
        )
        for i in range(len(items))
    ]


def _record(item: Item) -> dict[str, Any]:
    return item.event if isinstance(item.event, dict) else {}


def _received(item: Item, count: int, message_id: str) -> dict[str, Any]:
    """The SQS event record as this receive delivers it (ApproximateReceiveCount updated).
    A non-record event becomes the body of a synthetic SQS record."""
    record = dict(_record(item)) if item.source == "sqs" else {
        "messageId": message_id, "receiptHandle": message_id, "body": item.event if isinstance(item.event, str) else orjson.dumps(item.event).decode(),
        "attributes": {}, "messageAttributes": {}, "md5OfMessageAttributes": None, "eventSource": "aws:sqs",
    }
    record["attributes"] = {**record.get("attributes", {}), "ApproximateReceiveCount": str(count)}
    return record
