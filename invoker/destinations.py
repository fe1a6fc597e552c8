"""Deliver async records to their targets: SQS, SNS, another function (async), or a
Redis-only list (`redis:NAME`, eventmill's own target for tests without an emulator)."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import orjson

from broker.config import resolve_name
from broker.events import AsyncEvent, new_request_id, now_ms, queue_accept
from broker.metrics import function_scope, incr
from invoker.context import Context

log = logging.getLogger("eventmill.invoker")


class DeliveryError(RuntimeError):
    pass


@lru_cache(maxsize=256)
def _queue_name_and_owner(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    return parts[5], parts[4]


def _queue_url(ctx: Context, arn: str) -> str:
    name, owner = _queue_name_and_owner(arn)
    return ctx.aws("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=owner)["QueueUrl"]


def send(ctx: Context, target: str, body: str, attributes: dict[str, dict[str, str]] | None = None) -> None:
    """Raise DeliveryError when the target refuses; callers count the failure metric."""
    try:
        if target.startswith("arn:aws:sqs:"):
            kwargs: dict[str, Any] = {"QueueUrl": _queue_url(ctx, target), "MessageBody": body}
            if attributes:
                kwargs["MessageAttributes"] = attributes
            ctx.aws("sqs").send_message(**kwargs)
        elif target.startswith("arn:aws:sns:"):
            kwargs = {"TopicArn": target, "Message": body}
            if attributes:
                kwargs["MessageAttributes"] = attributes
            ctx.aws("sns").publish(**kwargs)
        elif target.startswith("arn:aws:lambda:"):
            name, _ = resolve_name(target)
            event = AsyncEvent(new_request_id(), name, body, now_ms(), source="destination")
            with ctx.redis.pipeline(transaction=True) as pipe:
                queue_accept(pipe, ctx.keys, event)
                incr(pipe, ctx.keys, function_scope(name), "AsyncEventsReceived")
                pipe.execute()
        elif target.startswith("redis:"):
            ctx.redis.rpush(ctx.keys.destination_list(target[len("redis:"):]), body)
        else:
            raise DeliveryError(f"unsupported target {target}")
    except DeliveryError:
        raise
    except Exception as exc:  # boto/redis errors all mean "not delivered"
        raise DeliveryError(f"{target}: {exc}") from exc


def deliver_record(ctx: Context, function: str, target: str | None, record: dict[str, Any]) -> bool:
    if not target:
        return True
    try:
        send(ctx, target, orjson.dumps(record).decode())
        return True
    except DeliveryError as exc:
        log.warning("destination delivery failed for %s: %s", function, exc)
        ctx.redis.hincrby(ctx.keys.metrics(function_scope(function)), "DestinationDeliveryFailures", 1)
        return False
