"""How many concurrent poll loops one SQS mapping runs, and how long to back off.

Lambda scales an SQS ESM with the backlog: more concurrent batches while batches come
back full, fewer when receives come back empty (SEMANTICS §15), capped by
ScalingConfig.MaximumConcurrency (§16). eventmill also caps at the number of live
workers by default: more in-flight batches than workers would only queue in Redis while
their messages' visibility timeouts run out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aredis

from broker.keys import Keys

MAX_CONCURRENCY = 1000  # Lambda's per-ESM maximum of concurrent batches


@dataclass
class Scaler:
    """Target number of poll loops: +1 after a full receive, -1 after an empty one (never below 1)."""

    maximum: int
    current: int = 1

    def after_receive(self, received: int, requested: int) -> int:
        if requested and received >= requested:
            self.current = min(self.maximum, self.current + 1)
        elif received == 0:
            self.current = max(1, self.current - 1)
        self.current = min(self.current, max(1, self.maximum))
        return self.current


async def live_workers(client: aredis.Redis, keys: Keys) -> int:
    """Workers whose heartbeat deadline is in the future (`keys.workers` ZSET)."""
    return int(await client.zcount(keys.workers, int(time.time() * 1000), "+inf"))


def concurrency_limit(configured: int | None, workers: int) -> int:
    """MaximumConcurrency when set, else the live worker count; always 1..1000."""
    limit = configured if configured else workers
    return max(1, min(MAX_CONCURRENCY, limit))


@dataclass
class Backoff:
    """Exponential back-off after throttles or unreachable sources: 1, 2, 4 ... 60 s (time-scaled)."""

    scale: float
    base_s: float = 1.0
    cap_s: float = 60.0
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap_s, self.base_s * (2 ** self.failures))
        self.failures += 1
        return delay * self.scale

    def reset(self) -> None:
        self.failures = 0
