"""What the shared stream core needs from a source (Kinesis, DynamoDB Streams).

A source only talks to its AWS API and builds Lambda's records; leases, checkpoints,
batching, retries and OnFailure live in the shared core (pollers/stream*.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from pollers.stream_policy import ShardInfo
from pollers.stream_records import BatchInfoKey, StreamRecord


@dataclass(frozen=True)
class ReadResult:
    records: list[StreamRecord]
    next_iterator: str | None  # None: the shard is closed and fully read
    behind_ms: int = 0


class StreamSource(ABC):
    """One mapping's view of its stream through one aiobotocore client."""

    service: str
    info_key: BatchInfoKey
    # Wait after an empty GetRecords: short while the shard had records lately, so a put
    # reaches the handler in tens of ms; longer once it has been quiet (QUIET_AFTER_S), so
    # idle shards cost the source little. Lambda polls Kinesis ~1/s, DynamoDB 4/s (§30).
    poll_fast_s: float = 0.02
    poll_slow_s: float = 0.25

    def __init__(self, client: Any, stream_arn: str, region: str, role: str) -> None:
        self.client = client
        self.stream_arn = stream_arn
        self.region = region
        self.role = role

    @abstractmethod
    async def shards(self) -> list[ShardInfo]:
        """Every shard the stream lists (open and closed), with parents and end."""

    @abstractmethod
    async def iterator(self, shard_id: str, after: str | None, start: str, timestamp: float | None) -> str:
        """An iterator AFTER_SEQUENCE_NUMBER `after`, or at the starting position."""

    @abstractmethod
    async def read(self, shard_id: str, iterator: str, limit: int) -> ReadResult: ...

    @abstractmethod
    def filter_view(self, event: dict[str, Any]) -> dict[str, Any]:
        """The object FilterCriteria patterns are matched against (SEMANTICS §23)."""

    def is_expired_iterator(self, exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code in ("ExpiredIteratorException", "TrimmedDataAccessException")
