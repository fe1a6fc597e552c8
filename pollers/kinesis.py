"""Kinesis Data Streams as an event source (SEMANTICS §C, §42).

Only the Kinesis API lives here: listing shards with their parents, iterators and
GetRecords. Everything Lambda does with the records is the shared stream core.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pollers.base import register
from pollers.filtering import kinesis_filter_view
from pollers.stream import StreamPoller
from pollers.stream_policy import ShardInfo
from pollers.stream_records import kinesis_record
from pollers.stream_source import ReadResult, StreamSource


class KinesisSource(StreamSource):
    service = "kinesis"
    info_key = "KinesisBatchInfo"

    @property
    def stream_name(self) -> str:
        return self.stream_arn.split("/", 1)[1]

    async def shards(self) -> list[ShardInfo]:
        out: list[ShardInfo] = []
        kwargs: dict[str, Any] = {"StreamName": self.stream_name}
        while True:
            page = await self.client.list_shards(**kwargs)
            for shard in page["Shards"]:
                parents = tuple(p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p)
                ending = shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
                out.append(ShardInfo(shard["ShardId"], parents, int(ending) if ending is not None else None))
            token = page.get("NextToken")
            if not token:
                return out
            kwargs = {"NextToken": token}

    async def iterator(self, shard_id: str, after: str | None, start: str, timestamp: float | None) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard_id}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
        elif start == "AT_TIMESTAMP":
            kwargs.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=datetime.fromtimestamp(timestamp or 0, timezone.utc))
        else:
            kwargs.update(ShardIteratorType=start)
        return str((await self.client.get_shard_iterator(**kwargs))["ShardIterator"])

    async def read(self, shard_id: str, iterator: str, limit: int) -> ReadResult:
        page = await self.client.get_records(ShardIterator=iterator, Limit=limit)
        records = [
            kinesis_record(raw, shard_id=shard_id, stream_arn=self.stream_arn, region=self.region, role=self.role)
            for raw in page.get("Records", [])
        ]
        return ReadResult(records, page.get("NextShardIterator"), int(page.get("MillisBehindLatest") or 0))

    def filter_view(self, event: dict[str, Any]) -> dict[str, Any]:
        return kinesis_filter_view(event)


@register("kinesis")
class KinesisPoller(StreamPoller):
    service = "kinesis"

    def make_source(self, client: Any, role: str) -> StreamSource:
        return KinesisSource(client, self.mapping.event_source_arn, self.ctx.settings.region, role)
