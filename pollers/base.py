"""The contract between the pollers process (pollers/runner.py) and each source poller.

A poller owns one event source mapping: it reads its source, builds Lambda's event,
hands each batch to the workers as ONE synchronous invocation (Lambda's ESMs invoke
synchronously, SEMANTICS §A) through `PollerContext.invoke_batch`, and acknowledges the
source only from the returned `BatchReply`. The runner starts one poller per live
mapping and sets `stop` to retire it; a poller must finish (and acknowledge) its
in-flight batch before returning, so a stop never loses accepted data.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, TypeVar

import orjson
import redis.asyncio as aredis

from broker.invocation import invoke_and_wait
from broker.keys import Keys
from broker.mappings import EventSourceMapping
from broker.registry import Registry
from broker.settings import Settings

DEFAULT_FUNCTION_TIMEOUT_S = 3
CONFIG_CACHE_S = 1.0  # a function's Timeout is re-read at most this often (one Redis read per batch adds up)


@dataclass(frozen=True)
class BatchReply:
    """What became of one batch invocation, as a value.

    Exactly one of these holds: `error` is set (the invocation never ran: function gone,
    no worker answered...), `throttled` is True, or the function ran and `payload` is
    its parsed JSON response (None when not JSON) with `function_error` set when it
    failed ("Unhandled" for an exception or timeout).
    """

    request_id: str
    payload: Any = None
    function_error: str | None = None
    throttled: bool = False
    error: str | None = None
    payload_is_json: bool = True  # False: the function answered with text that is not JSON

    @property
    def ran(self) -> bool:
        return self.error is None and not self.throttled

    @property
    def succeeded(self) -> bool:
        return self.ran and self.function_error is None


@dataclass
class PollerContext:
    """Everything a poller needs from its process, shared by all pollers in it."""

    redis: aredis.Redis
    keys: Keys
    settings: Settings
    owner: str  # unique id of this pollers process (lease holder name)
    _timeouts: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False, compare=False)

    def client(self, service: str, *, parser_factory: Any = None) -> AbstractAsyncContextManager[Any]:
        """An aiobotocore client for `service` on the configured endpoint and region.

        With an endpoint (an emulator) static "testing" credentials are used; without one
        the standard credential chain applies (real AWS). `parser_factory` replaces
        botocore's response parsing (pollers/stream_client.py: GetRecords pages as sent).
        """
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        kwargs: dict[str, Any] = {"region_name": self.settings.region}
        if self.settings.aws_endpoint:
            kwargs.update(endpoint_url=self.settings.aws_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
        # Long polls hold a connection for up to 20 s; many concurrent pollers share a pool.
        config = AioConfig(read_timeout=70, connect_timeout=10, max_pool_connections=64, retries={"max_attempts": 3, "mode": "standard"})
        session = get_session()
        if parser_factory is not None:
            session.register_component("response_parser_factory", parser_factory)
        return session.create_client(service, config=config, **kwargs)  # type: ignore[no-any-return]

    async def function_timeout_s(self, name: str) -> float:
        """The function's Timeout, cached for CONFIG_CACHE_S (read once per batch otherwise)."""
        now = time.monotonic()
        cached = self._timeouts.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        config = await Registry(self.redis, self.keys).find(name)
        timeout = float(config.timeout_s) if config else DEFAULT_FUNCTION_TIMEOUT_S
        self._timeouts[name] = (now + CONFIG_CACHE_S, timeout)
        return timeout

    async def invoke_batch(self, mapping: EventSourceMapping, payload: dict[str, Any]) -> BatchReply:
        """Invoke the mapping's function synchronously with one batch event and wait.

        The wait is the function timeout + 60 s (not time-scaled: it bounds real work);
        no answer in that time is an `error` reply, never an exception, so the caller's
        acknowledgement logic sees every outcome as a value.
        """
        timeout = await self.function_timeout_s(mapping.function_name) + 60
        text = orjson.dumps(payload).decode()
        try:
            reply = await invoke_and_wait(self.redis, self.keys, mapping.function_name, text, timeout_s=timeout, source=mapping.uuid)
        except TimeoutError as exc:
            return BatchReply(request_id="", error=str(exc))
        request_id = str(reply.get("requestId", ""))
        if reply.get("error") == "TooManyRequestsException":
            return BatchReply(request_id, throttled=True)
        if reply.get("error"):
            return BatchReply(request_id, error=f"{reply['error']}: {reply.get('message', '')}")
        raw = reply.get("payload")
        try:
            parsed, is_json = (orjson.loads(raw) if raw else None), True
        except orjson.JSONDecodeError:
            parsed, is_json = None, False
        return BatchReply(request_id, parsed, reply.get("functionError"), payload_is_json=is_json)


class SourcePoller(Protocol):
    """One mapping's reader. `run` returns when `stop` is set and the in-flight batch is
    acknowledged; it must not raise for source errors (log, back off, retry)."""

    def __init__(self, ctx: PollerContext, mapping: EventSourceMapping) -> None: ...

    async def run(self, stop: asyncio.Event) -> None: ...


POLLERS: dict[str, type[SourcePoller]] = {}

P = TypeVar("P", bound=type)


def register(kind: str) -> Callable[[P], P]:
    """Class decorator: the poller for mappings of `kind` ("sqs", "kinesis", ...)."""

    def deco(cls: P) -> P:
        POLLERS[kind] = cls  # type: ignore[assignment]
        return cls

    return deco
