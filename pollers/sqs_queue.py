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
import uuid
from typing import Any, AsyncIterator

import redis.asyncio as aredis

from broker.keys import Keys
from pollers.sqs_event import parse_arn

RECEIVE_MAX = 10
IDLE_SHORT_POLL_S = 0.05
TURN_LEASE_S = 10.0  # a crashed holder's turn ends by itself
TURN_RETRY_S = 0.002
ACK_PRIORITY_MAX_S = 1.0


def _now_ms() -> int:
    return int(time.time() * 1000)


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
        self.redis = redis
        self.turn_lock = redis.lock(keys.sqs_turn(arn), timeout=TURN_LEASE_S, sleep=TURN_RETRY_S) if emulated else None
        self.acks_key = keys.sqs_turn_acks(arn)
        self.local_turn = asyncio.Lock()
        self.local_acks = 0
        self.visibility_s: float | None = None

    async def read_visibility(self) -> None:
        """The queue's VisibilityTimeout, to tell when a batch outlived it (a redelivery, as on SQS)."""
        attrs = await self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["VisibilityTimeout"])
        self.visibility_s = float(attrs["Attributes"]["VisibilityTimeout"])

    @contextlib.asynccontextmanager
    async def turn(self, ack: bool = False) -> AsyncIterator[None]:
        """Exclusive use of the queue against an emulator, shared by every pollers process.

        This process's loops queue on an asyncio lock first, so one Redis lock object
        (whose token is per object) serves them all. Acknowledgements (deletes, visibility
        changes) go before receives: a delete kept waiting behind other loops' receives
        could outlive its batch's visibility timeout and cause a redelivery SQS would not.
        """
        if self.turn_lock is None:
            yield
            return
        token = ""
        if ack:
            token = f"{id(self)}:{uuid.uuid4().hex}"
            self.local_acks += 1
            await self.redis.zadd(self.acks_key, {token: _now_ms() + TURN_LEASE_S * 1000})
        else:
            await self._let_acks_go_first()
        try:
            async with self.local_turn:
                await self.turn_lock.acquire()
                try:
                    if ack:
                        self.local_acks -= 1
                        await self.redis.zrem(self.acks_key, token)
                        ack = False
                    yield
                finally:
                    with contextlib.suppress(Exception):  # expired while held: already free
                        await self.turn_lock.release()
        finally:
            if ack:  # cancelled while waiting
                self.local_acks -= 1
                await self.redis.zrem(self.acks_key, token)

    async def _let_acks_go_first(self) -> None:
        """Wait (at most ACK_PRIORITY_MAX_S, so receives never starve) while any process has an ack waiting."""
        deadline = time.monotonic() + ACK_PRIORITY_MAX_S
        while time.monotonic() < deadline:
            if not self.local_acks and not await self.redis.zcount(self.acks_key, _now_ms(), "+inf"):
                return
            await asyncio.sleep(TURN_RETRY_S)

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
        async with self.turn(ack=True):
            resp = await self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
        return len(resp.get("Successful", []))

    async def make_visible(self, receipt_handles: list[str]) -> None:
        """ChangeMessageVisibilityBatch to 0 for up to 10 handles."""
        entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(receipt_handles)]
        async with self.turn(ack=True):
            await self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)

