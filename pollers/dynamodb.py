"""DynamoDB Streams as an event source (SEMANTICS §C, §41).

Only the DynamoDB Streams API lives here; records are keyed by the item's Keys, so
with ParallelizationFactor > 1 each item's changes stay in order.
"""

from __future__ import annotations

from typing import Any

from pollers.base import register
from pollers.filtering import dynamodb_filter_view
from pollers.stream import StreamPoller
from pollers.stream_policy import ShardInfo
from pollers.stream_records import dynamodb_record
from pollers.stream_source import ReadResult, StreamSource


class DynamoDBSource(StreamSource):
    service = "dynamodbstreams"
    info_key = "DDBStreamBatchInfo"

    async def shards(self) -> list[ShardInfo]:
        out: list[ShardInfo] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            desc = (await self.client.describe_stream(**kwargs))["StreamDescription"]
            for shard in desc.get("Shards", []):
                parent = shard.get("ParentShardId")
                ending = shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
                out.append(ShardInfo(shard["ShardId"], (parent,) if parent else (), int(ending) if ending is not None else None))
            last = desc.get("LastEvaluatedShardId")
            if not last:
                return out
            kwargs = {"StreamArn": self.stream_arn, "ExclusiveStartShardId": last}

    async def iterator(self, shard_id: str, after: str | None, start: str, timestamp: float | None) -> str:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        else:
            kwargs.update(ShardIteratorType=start if start != "AT_TIMESTAMP" else "TRIM_HORIZON")
        return str((await self.client.get_shard_iterator(**kwargs))["ShardIterator"])

    async def read(self, shard_id: str, iterator: str, limit: int) -> ReadResult:
        page = await self.client.get_records(ShardIterator=iterator, Limit=min(limit, 1000))
        records = [dynamodb_record(raw, stream_arn=self.stream_arn, region=self.region) for raw in page.get("Records", [])]
        return ReadResult(records, page.get("NextShardIterator"))

    def filter_view(self, event: dict[str, Any]) -> dict[str, Any]:
        return dynamodb_filter_view(event)


@register("dynamodb")
class DynamoDBPoller(StreamPoller):
    service = "dynamodbstreams"

    def make_source(self, client: Any, role: str) -> StreamSource:
        return DynamoDBSource(client, self.mapping.event_source_arn, self.ctx.settings.region, role)
