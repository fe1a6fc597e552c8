"""S3 and SNS sources: their notifications arrive in an SQS queue eventmill owns and are
relayed as ASYNCHRONOUS invocations (S3 and SNS invoke Lambda asynchronously, SEMANTICS §75).

A message is deleted from the queue only after its events are durable in Redis
(`queue_accept` in one MULTI with the AsyncEventsReceived metric, as the Invoke API's
Event path does), so a crash between the two can only duplicate, never lose, an event;
retries, max event age and the DLQ are then the async path's business.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from broker.events import AsyncEvent, new_request_id, now_ms, queue_accept
from broker.mappings import EventSourceMapping
from broker.metrics import function_scope, incr
from broker.registry import Registry
from pollers.base import PollerContext
from pollers.scaling import Backoff
from pollers.sqs import LONG_POLL_S
from pollers.sqs_queue import RECEIVE_MAX, SqsQueue, wait_or_stop

log = logging.getLogger("eventmill.pollers.relay")


class NotificationRelay:
    """Base for the S3 and SNS pollers: subclasses wire the source to the queue (`setup`)
    and turn one queue message into zero or more event payloads (`events`)."""

    source = "relay"

    def __init__(self, ctx: PollerContext, mapping: EventSourceMapping) -> None:
        self.ctx = ctx
        self.mapping = mapping
        self.scope = f"esm:{mapping.uuid}"
        self.queue: SqsQueue | None = None

    def queue_name(self) -> str:
        return f"eventmill-{self.source}-{self.mapping.uuid}"

    async def ensure_queue(self, sqs: Any) -> tuple[str, str]:
        """(url, arn) of the mapping's queue: `mapping.queue_url` if given, else one created for it."""
        url = self.mapping.queue_url or (await sqs.create_queue(QueueName=self.queue_name()))["QueueUrl"]
        attrs = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(url), str(attrs["Attributes"]["QueueArn"])

    async def setup(self, sqs: Any) -> tuple[str, str]:
        """Wire the source to the queue; returns the queue's (url, arn)."""
        raise NotImplementedError

    def events(self, body: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(self.ctx.settings.time_scale)
        async with self.ctx.client("sqs") as sqs:
            while not stop.is_set():
                try:
                    url, arn = await self.setup(sqs)
                    emulated = self.ctx.settings.aws_endpoint is not None
                    self.queue = SqsQueue(sqs, url, arn, emulated=emulated, redis=self.ctx.redis, keys=self.ctx.keys)
                    break
                except (ClientError, BotoCoreError) as exc:
                    log.warning("mapping %s: cannot set up %s: %s", self.mapping.uuid, self.mapping.event_source_arn, exc)
                    if await wait_or_stop(stop, backoff.next_delay()):
                        return
            while not stop.is_set():
                try:
                    relayed = await self.relay_once(stop)
                except (ClientError, BotoCoreError) as exc:
                    log.warning("mapping %s: %s", self.mapping.uuid, exc)
                    relayed = False
                if relayed:
                    backoff.reset()
                elif relayed is False and await wait_or_stop(stop, backoff.next_delay()):
                    return

    async def relay_once(self, stop: asyncio.Event) -> bool | None:
        """One receive → accept → delete round. None: nothing to do; False: back off."""
        assert self.queue is not None
        messages = await self.queue.receive(RECEIVE_MAX, LONG_POLL_S, stop, holding=False)
        if not messages:
            return None
        if await Registry(self.ctx.redis, self.ctx.keys).find(self.mapping.function_name) is None:
            log.warning("mapping %s: function %s not found; notifications stay queued", self.mapping.uuid, self.mapping.function_name)
            return False
        payloads = [p for m in messages for p in self.events(str(m.get("Body", "")))]
        keys, fn = self.ctx.keys, self.mapping.function_name
        async with self.ctx.redis.pipeline(transaction=True) as pipe:
            for payload in payloads:
                event = AsyncEvent(new_request_id(), fn, orjson.dumps(payload).decode(), now_ms(), source=self.mapping.uuid)
                queue_accept(pipe, keys, event)
                incr(pipe, keys, function_scope(fn), "AsyncEventsReceived")
            incr(pipe, keys, self.scope, "Polled", len(messages))
            if payloads:
                incr(pipe, keys, self.scope, "Invoked", len(payloads))
            if len(messages) > len(payloads):
                incr(pipe, keys, self.scope, "Filtered", len(messages) - len(payloads))
            await pipe.execute()
        deleted = await self.queue.delete_batch([m["ReceiptHandle"] for m in messages])
        await self.ctx.redis.hincrby(keys.metrics(self.scope), "Deleted", deleted)
        return True
