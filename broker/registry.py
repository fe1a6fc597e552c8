"""Functions, their event invoke configs and concurrency settings, stored in Redis.

The API and pollers use the async `Registry`; workers, which are synchronous rq
processes, read with `load_function`.
"""

from __future__ import annotations

from typing import Callable

import orjson
import redis
import redis.asyncio as aredis
from redis.exceptions import WatchError

from broker.config import FunctionConfig
from broker.errors import function_not_found
from broker.keys import Keys


class Registry:
    def __init__(self, client: aredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    async def find(self, name: str) -> FunctionConfig | None:
        raw = await self.redis.get(self.keys.function(name))
        return FunctionConfig.from_dict(orjson.loads(raw)) if raw else None

    async def get(self, name: str) -> FunctionConfig:
        config = await self.find(name)
        if config is None:
            raise function_not_found(name)
        return config

    async def create(self, config: FunctionConfig) -> bool:
        """Store a new function; False if one of that name exists (two concurrent
        CreateFunction calls: exactly one wins)."""
        key = self.keys.function(config.name)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    if await pipe.exists(key):
                        return False
                    pipe.multi()
                    pipe.set(key, orjson.dumps(config.to_dict()))
                    pipe.sadd(self.keys.functions, config.name)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def change(self, name: str, edit: Callable[[FunctionConfig], FunctionConfig]) -> FunctionConfig:
        """Read, `edit`, write, under WATCH: when another call changes the function in
        between, this one runs `edit` again on the new value instead of overwriting it
        (concurrent UpdateFunctionConfiguration and PutFunctionConcurrency both land).
        `edit` may raise (validation, RevisionId) and then nothing is written."""
        key = self.keys.function(name)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise function_not_found(name)
                    updated = edit(FunctionConfig.from_dict(orjson.loads(raw)))
                    pipe.multi()
                    pipe.set(key, orjson.dumps(updated.to_dict()))
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue

    async def put(self, config: FunctionConfig) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.function(config.name), orjson.dumps(config.to_dict()))
            pipe.sadd(self.keys.functions, config.name)
            await pipe.execute()

    async def delete(self, name: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.function(name))
            pipe.srem(self.keys.functions, name)
            await pipe.execute()

    async def names(self) -> list[str]:
        return sorted(n.decode() if isinstance(n, bytes) else n for n in await self.redis.smembers(self.keys.functions))

    async def all(self) -> list[FunctionConfig]:
        configs = []
        for name in await self.names():
            config = await self.find(name)
            if config:
                configs.append(config)
        return configs


def load_function(client: redis.Redis, keys: Keys, name: str) -> FunctionConfig | None:
    raw = client.get(keys.function(name))
    return FunctionConfig.from_dict(orjson.loads(raw)) if raw else None


def function_names(client: redis.Redis, keys: Keys) -> list[str]:
    return sorted(n.decode() if isinstance(n, bytes) else n for n in client.smembers(keys.functions))
