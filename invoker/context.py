"""What one worker process holds: its Redis connection, settings, sandbox pool and AWS
clients. rq's SimpleWorker runs jobs in this process, so jobs reach it via `current()`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import redis

from broker.keys import Keys
from broker.settings import Settings
from sandbox import Pool

_current: Context | None = None


@dataclass
class Context:
    settings: Settings
    redis: redis.Redis
    pool: Pool
    keys: Keys = field(init=False)
    name: str = "worker"
    _clients: dict[str, Any] = field(default_factory=dict)
    _scripts: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # What the heartbeat renews: async events this process has claimed, and the
    # concurrency slot (request id -> concurrency ZSET key) of the running invocation.
    claimed_events: set[str] = field(default_factory=set)
    running: dict[str, str] = field(default_factory=dict)
    # Held while this process runs invocations: rq's job thread takes it for every job,
    # the dispatcher takes it (without waiting) to run a sync request itself, so a worker
    # still runs one thing at a time (invoker/dispatch.py).
    execution: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.prefix)

    def script(self, source: str) -> Any:
        """Registered once per process; redis-py then calls it by SHA."""
        with self._lock:
            found = self._scripts.get(source)
            if found is None:
                found = self._scripts[source] = self.redis.register_script(source)
            return found

    def aws(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                # Imported here: boto3 adds ~9 MB to every idle worker that never delivers.
                import boto3
                from botocore.config import Config

                kwargs: dict[str, Any] = {"region_name": self.settings.region, "config": Config(retries={"max_attempts": 3})}
                if self.settings.aws_endpoint:
                    kwargs.update(endpoint_url=self.settings.aws_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
                client = self._clients[service] = boto3.client(service, **kwargs)
            return client


def install(context: Context) -> None:
    global _current
    _current = context


def current() -> Context:
    if _current is None:
        raise RuntimeError("no invoker context in this process: jobs must run inside `eventmill worker`")
    return _current
