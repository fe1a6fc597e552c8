"""`eventmill record`: capture what a live source carries as JSON Lines of Lambda-shaped
records (the same records the pollers build), so `eventmill replay` takes the file
unchanged and the round trip is lossless (bodies, attributes, partition keys, sequence
numbers, arrival times).

SQS is consumed by default (deleted once the line is written and flushed); `peek`
re-releases each message (visibility 0) so other consumers still get it. Streams are
read-only: iterators from TRIM_HORIZON, LATEST or a timestamp, all shards.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable

import orjson

from broker.settings import Settings
from pollers.base import PollerContext
from pollers.sqs_event import sqs_record

Written = Callable[[int], None]
# invokeIdentityArn of recorded Kinesis records: the role a mapping would invoke with.
RECORDER_ROLE = "arn:aws:iam::123456789012:role/lambda-role"


@dataclass(frozen=True)
class RecordOptions:
    source: str  # queue URL or ARN (sqs, kinesis, dynamodb stream)
    out: Path
    limit: int | None = None
    duration_s: float | None = None
    peek: bool = False
    position: str = "TRIM_HORIZON"
    timestamp: float | None = None
    idle_stop_s: float = 2.0  # stop after this long without a new record (when no duration is given)


def _kind(source: str) -> str:
    if source.startswith(("http://", "https://")) or source.startswith("arn:aws:sqs:"):
        return "sqs"
    if source.startswith("arn:aws:kinesis:"):
        return "kinesis"
    if source.startswith("arn:aws:dynamodb:") and "/stream/" in source:
        return "dynamodb"
    raise ValueError(f"--source must be an SQS queue URL/ARN, a Kinesis stream ARN or a DynamoDB stream ARN, got {source!r}")


class Recorder:
    def __init__(self, ctx: PollerContext, options: RecordOptions, written: Written | None = None) -> None:
        self.ctx = ctx
        self.opts = options
        self.written = written
        self.count = 0
        self.started = time.monotonic()
        self.last_new = time.monotonic()

    def done(self) -> bool:
        if self.opts.limit is not None and self.count >= self.opts.limit:
            return True
        elapsed = time.monotonic() - self.started
        if self.opts.duration_s is not None:
            return elapsed >= self.opts.duration_s
        return time.monotonic() - self.last_new >= self.opts.idle_stop_s

    def emit(self, out: IO[bytes], record: dict[str, Any]) -> None:
        out.write(orjson.dumps(record) + b"\n")
        self.count += 1
        self.last_new = time.monotonic()
        if self.written:
            self.written(self.count)

    async def run(self) -> int:
        kind = _kind(self.opts.source)
        with open(self.opts.out, "wb") as out:
            if kind == "sqs":
                await self._sqs(out)
            else:
                await self._stream(out, kind)
        return self.count

    async def _sqs(self, out: IO[bytes]) -> None:
        async with self.ctx.client("sqs") as sqs:
            url = self.opts.source
            if url.startswith("arn:"):
                _, _, _, _, account, name = url.split(":", 5)
                url = (await sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account))["QueueUrl"]
            attrs = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"]
            arn = attrs["QueueArn"]
            fifo = arn.endswith(".fifo")
            seen: set[str] = set()
            while not self.done():
                want = 10 if self.opts.limit is None else max(1, min(10, self.opts.limit - self.count))
                resp = await sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=want, WaitTimeSeconds=1,
                    AttributeNames=["All"], MessageAttributeNames=["All"],
                )
                handled = []
                for message in resp.get("Messages", []):
                    if message["MessageId"] in seen:
                        handled.append(message)
                        continue
                    seen.add(message["MessageId"])
                    self.emit(out, sqs_record(message, arn, fifo=fifo))
                    handled.append(message)
                out.flush()
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(handled)]
                if entries and self.opts.peek:
                    await sqs.change_message_visibility_batch(QueueUrl=url, Entries=[{**e, "VisibilityTimeout": 0} for e in entries])
                elif entries:
                    await sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    async def _stream(self, out: IO[bytes], kind: str) -> None:
        from pollers.stream_records import dynamodb_record, kinesis_record

        service = "kinesis" if kind == "kinesis" else "dynamodbstreams"
        arn = self.opts.source
        async with self.ctx.client(service) as client:
            # Kinesis by StreamName: moto's iterators lose the stream when given StreamARN.
            stream = {"StreamName": arn.split("/", 1)[1]} if kind == "kinesis" else {"StreamArn": arn}
            shards = (await client.describe_stream(**stream))["StreamDescription"]["Shards"]
            iterators: dict[str, str | None] = {}
            for shard in shards:
                kwargs: dict[str, Any] = {"ShardId": shard["ShardId"], "ShardIteratorType": self.opts.position}
                if self.opts.position == "AT_TIMESTAMP":
                    kwargs["Timestamp"] = datetime.fromtimestamp(self.opts.timestamp or 0, tz=timezone.utc)
                kwargs.update(stream)
                iterators[shard["ShardId"]] = (await client.get_shard_iterator(**kwargs))["ShardIterator"]
            while not self.done() and any(iterators.values()):
                got = 0
                for shard_id, iterator in list(iterators.items()):
                    if iterator is None:
                        continue
                    resp = await client.get_records(ShardIterator=iterator, Limit=1000)
                    iterators[shard_id] = resp.get("NextShardIterator")
                    for raw in resp.get("Records", []):
                        if self.opts.limit is not None and self.count >= self.opts.limit:
                            break
                        region = self.ctx.settings.region
                        built = (
                            kinesis_record(raw, shard_id=shard_id, stream_arn=arn, region=region, role=RECORDER_ROLE)
                            if kind == "kinesis" else dynamodb_record(raw, stream_arn=arn, region=region)
                        )
                        self.emit(out, built.event)
                        got += 1
                out.flush()
                if not got:
                    await asyncio.sleep(0.2)


async def record(settings: Settings, options: RecordOptions, written: Written | None = None) -> int:
    import redis.asyncio as aredis

    from broker.keys import Keys

    client = aredis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    ctx = PollerContext(redis=client, keys=Keys(settings.prefix), settings=settings, owner="recorder")  # type: ignore[arg-type]
    try:
        return await Recorder(ctx, options, written).run()
    finally:
        if client is not None:
            await client.aclose()
