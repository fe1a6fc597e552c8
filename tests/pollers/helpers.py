"""Shared set-up for poller tests: queues in the session's moto server and mappings in Redis."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import redis

from broker.keys import Keys
from broker.mappings import EventSourceMapping
import orjson
from tests.stack import Stack


def make_queue(stack: Stack, name: str, *, fifo: bool = False, visibility: int = 30, max_receive: int | None = None) -> tuple[str, str, str | None]:
    """(url, arn, dlq_url) of a new queue; with max_receive a DLQ is attached by RedrivePolicy."""
    sqs = stack.client("sqs")
    attrs: dict[str, str] = {"VisibilityTimeout": str(visibility)}
    if fifo:
        name += ".fifo"
        attrs.update(FifoQueue="true", ContentBasedDeduplication="true")
    dlq_url = None
    if max_receive is not None:
        dlq_attrs = {"FifoQueue": "true"} if fifo else {}
        dlq_url = sqs.create_queue(QueueName=("dlq-" + name), Attributes=dlq_attrs)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)})
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq_url


def add_mapping(stack: Stack, function: str, arn: str, kind: str = "sqs", **fields: Any) -> EventSourceMapping:
    """Store an Enabled mapping directly in Redis, as the API would after validation."""
    fields.setdefault("state", "Enabled")
    mapping = EventSourceMapping(uuid=str(uuid.uuid4()), function_name=function, event_source_arn=arn, kind=kind, **fields)  # type: ignore[arg-type]
    put_mapping(stack.redis, stack.keys, mapping)
    return mapping


def put_mapping(client: redis.Redis, keys: Keys, mapping: EventSourceMapping) -> None:
    with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.mapping(mapping.uuid), orjson.dumps(mapping.to_dict()))
        pipe.sadd(keys.mappings, mapping.uuid)
        pipe.publish(keys.mappings_changed, mapping.uuid)
        pipe.execute()


def esm_metric(stack: Stack, mapping: EventSourceMapping, name: str) -> float:
    raw = stack.redis.hget(stack.keys.metrics(f"esm:{mapping.uuid}"), name)
    return float(raw) if raw is not None else 0.0


def send_bodies(stack: Stack, url: str, bodies: list[str], *, turn_arn: str | None = None, **extra: Any) -> None:
    send_entries(stack, url, [{"MessageBody": b, **extra} for b in bodies], turn_arn=turn_arn)


def send_entries(stack: Stack, url: str, entries: list[dict[str, Any]], *, turn_arn: str | None = None) -> None:
    """SendMessageBatch in tens. With `turn_arn`, each call takes the pollers' turn on that
    queue (pollers/sqs_queue.py): moto's delete rebuilds the message list without a lock
    and loses a send that overlaps it, so a test that sends while a mapping deletes must
    take turns with it."""
    sqs = stack.client("sqs")
    for start in range(0, len(entries), 10):
        chunk = [{"Id": str(i), **e} for i, e in enumerate(entries[start : start + 10])]
        turn = stack.redis.lock(stack.keys.sqs_turn(turn_arn), timeout=10, sleep=0.002) if turn_arn else contextlib.nullcontext()
        with turn:
            resp = sqs.send_message_batch(QueueUrl=url, Entries=chunk)
        assert not resp.get("Failed"), resp


def visible_depth(stack: Stack, url: str) -> int:
    attrs = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def seen_records(stack: Stack, function: str) -> list[list[dict[str, Any]]]:
    """The Records of every batch the function received, oldest first."""
    return [r["event"]["Records"] for r in stack.results(function) if isinstance(r.get("event"), dict)]


def queue_depth(stack: Stack, url: str) -> int:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
