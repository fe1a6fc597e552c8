"""SQS calls of one mapping, made safe against emulators that are not atomic.

Real SQS is atomic per call, so against AWS this is a thin wrapper: long polls, batch
deletes, batch visibility changes. moto (PLATFORM §4) is not: its ReceiveMessage marks
messages in flight without a lock (two overlapping receives can return one message
twice, and a FIFO group's later message can overtake an earlier one), its DeleteMessage
rebuilds the message list without a lock (an overlapping delete, receive-to-DLQ move or
send can resurrect or lose a message). Against an emulator every call on a queue
therefore takes a turn, held in Redis so that all pollers processes sharing the queue
take turns, and receives are short polls repeated for the long-poll time, so a turn is
never held while waiting for messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator

import redis.asyncio as aredis

from broker.keys import Keys
from pollers.sqs_event import parse_arn

RECEIVE_MAX = 10
IDLE_SHORT_POLL_S = 0.05
TURN_LEASE_S = 10.0  # a crashed holder's turn ends by itself
TURN_RETRY_S = 0.002


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True if `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
        return True
    except asyncio.TimeoutError:
        return False


async def queue_url_for(sqs: Any, arn: str) -> str:
    _, account, name = parse_arn(arn)
    resp = await sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
    return str(resp["QueueUrl"])


class SqsQueue:
    """One queue as a mapping's poll loops use it."""

    def __init__(self, sqs: Any, url: str, arn: str, *, emulated: bool, redis: aredis.Redis, keys: Keys) -> None:
        self.sqs = sqs
        self.url = url
        self.arn = arn
        self.emulated = emulated
        self.turn_lock = redis.lock(keys.sqs_turn(arn), timeout=TURN_LEASE_S, sleep=TURN_RETRY_S) if emulated else None
        self.local_turn = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Exclusive use of the queue against an emulator, shared by every pollers process.

        This process's loops queue on an asyncio lock first, so one Redis lock object
        (whose token is per object) serves them all.
        """
        if self.turn_lock is None:
            yield
            return
        async with self.local_turn:
            await self.turn_lock.acquire()
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # expired while held: already free
                    await self.turn_lock.release()

    async def receive(self, count: int, wait_s: int, stop: asyncio.Event, holding: bool) -> list[dict[str, Any]] | None:
        """Up to `count` messages, waiting up to `wait_s` for the first. None when `stop`
        interrupted the wait while the caller held nothing (a message received by an
        abandoned long poll only reappears after its visibility timeout)."""
        if not self.emulated:
            return await self._receive_call(count, wait_s, stop, holding)
        deadline = time.monotonic() + wait_s
        while True:
            async with self.turn():
                messages = await self._receive_call(count, 0, stop, holding=True)
            if messages or time.monotonic() >= deadline:
                return messages
            if holding:
                await asyncio.sleep(IDLE_SHORT_POLL_S)
            elif await wait_or_stop(stop, IDLE_SHORT_POLL_S):
                return None

    async def _receive_call(self, count: int, wait_s: int, stop: asyncio.Event, holding: bool) -> list[dict[str, Any]] | None:
        call = asyncio.ensure_future(self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=count, WaitTimeSeconds=wait_s,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ))
        if holding:
            resp = await call
        else:
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({call, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if call not in done:
                call.cancel()
                return None
            resp = call.result()
        return list(resp.get("Messages", []))

    async def delete_batch(self, receipt_handles: list[str]) -> int:
        """DeleteMessageBatch of up to 10 handles; how many SQS confirmed."""
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(receipt_handles)]
        async with self.turn():
            resp = await self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
        return len(resp.get("Successful", []))

    async def make_visible(self, receipt_handles: list[str]) -> None:
        """ChangeMessageVisibilityBatch to 0 for up to 10 handles."""
        entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(receipt_handles)]
        async with self.turn():
            await self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)

