"""pollers/sqs_queue.py: the turn that makes an emulated queue's calls one at a time across
pollers processes, and the short-poll receive that stands in for a long poll there."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aredis
from aiobotocore.session import get_session

from broker.keys import Keys
from pollers.sqs_queue import SqsQueue


async def _queue_pair(redis_url: str, prefix: str, emulated: bool) -> tuple[aredis.Redis, SqsQueue, SqsQueue]:
    """Two SqsQueue objects on one queue with separate Redis connections, as two pollers processes hold."""
    keys = Keys(prefix)
    r1, r2 = aredis.Redis.from_url(redis_url), aredis.Redis.from_url(redis_url)
    arn = "arn:aws:sqs:us-east-1:123456789012:turns"
    first = SqsQueue(None, "url", arn, emulated=emulated, redis=r1, keys=keys)
    second = SqsQueue(None, "url", arn, emulated=emulated, redis=r2, keys=keys)
    return r1, first, second


async def _record_turns(first: SqsQueue, second: SqsQueue, log: list[str]) -> None:
    async def hold(queue: SqsQueue, name: str) -> None:
        async with queue.turn():
            log.append(f"{name} in")
            await asyncio.sleep(0.1)
            log.append(f"{name} out")

    async def hold_second_after_first_is_in() -> None:
        while not log:
            await asyncio.sleep(0.005)
        await hold(second, "b")

    await asyncio.gather(hold(first, "a"), hold_second_after_first_is_in(), hold(first, "c"))


def test_emulated_turns_never_overlap_across_processes(redis_url: str, em_prefix: str) -> None:
    async def scenario() -> list[str]:
        r1, first, second = await _queue_pair(redis_url, em_prefix, emulated=True)
        log: list[str] = []
        await _record_turns(first, second, log)
        await r1.aclose()
        return log

    log = asyncio.run(scenario())
    assert len(log) == 6
    assert all(log[i].endswith(" in") and log[i + 1] == log[i].replace(" in", " out") for i in range(0, 6, 2)), log


def test_real_sqs_takes_no_turn(redis_url: str, em_prefix: str) -> None:
    async def scenario() -> list[str]:
        _, first, second = await _queue_pair(redis_url, em_prefix, emulated=False)
        log: list[str] = []
        await _record_turns(first, second, log)
        return log

    log = asyncio.run(scenario())
    assert sorted(log[:3]) == ["a in", "b in", "c in"], "real SQS is atomic: calls overlap freely"


def test_short_polls_find_a_late_message_and_stop_ends_an_idle_wait(redis_url: str, em_prefix: str, aws_kwargs: dict[str, Any], sqs_client: Any) -> None:
    url = sqs_client.create_queue(QueueName=em_prefix.rstrip(":") + "short")["QueueUrl"]
    arn = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    async def scenario() -> tuple[list[str], Any, bool]:
        client = aredis.Redis.from_url(redis_url)
        async with get_session().create_client("sqs", **aws_kwargs) as sqs:
            queue = SqsQueue(sqs, url, arn, emulated=True, redis=client, keys=Keys(em_prefix))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.call_later(0.3, lambda: sqs_client.send_message(QueueUrl=url, MessageBody="late"))
            got = await queue.receive(10, 5, stop, holding=False)
            loop.call_later(0.2, stop.set)
            idle = await queue.receive(10, 20, stop, holding=False)
            locked = await client.exists(Keys(em_prefix).sqs_turn(arn))
        await client.aclose()
        return [m["Body"] for m in got or []], idle, bool(locked)

    bodies, idle, locked = asyncio.run(scenario())
    assert bodies == ["late"], "a message sent during the wait is returned"
    assert idle is None, "stop during an idle wait returns None instead of waiting 20 s"
    assert not locked, "no turn is left held"


def test_a_waiting_delete_goes_before_receives(redis_url: str, em_prefix: str) -> None:
    """Receives that ask while a delete is waiting let it go first, whichever process asks."""
    async def scenario() -> list[str]:
        keys, arn = Keys(em_prefix), "arn:aws:sqs:us-east-1:123456789012:acks"
        clients = [aredis.Redis.from_url(redis_url) for _ in range(5)]
        holder, acker, *receivers = [SqsQueue(None, "url", arn, emulated=True, redis=c, keys=keys) for c in clients]
        order: list[str] = []
        entered = asyncio.Event()

        async def hold() -> None:
            async with holder.turn():
                entered.set()
                await asyncio.sleep(0.2)

        async def take(queue: SqsQueue, name: str, ack: bool) -> None:
            async with queue.turn(ack=ack):
                order.append(name)

        holding = asyncio.create_task(hold())
        await entered.wait()
        ack = asyncio.create_task(take(acker, "delete", True))
        await asyncio.sleep(0.05)
        await asyncio.gather(holding, ack, *(take(q, f"receive{i}", False) for i, q in enumerate(receivers)))
        for c in clients:
            await c.aclose()
        return order

    order = asyncio.run(scenario())
    assert order[0] == "delete" and sorted(order[1:]) == ["receive0", "receive1", "receive2"], order
