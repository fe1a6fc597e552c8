"""Pure pieces of the SQS poll loop: cutting a batch and deciding what a reply acknowledges.

A batch is cut when BatchSize is reached, the batching window ends, or the next record
would push the event over Lambda's 6 MB synchronous payload limit (SEMANTICS §5). The
acknowledgement rules are Lambda's partial batch response rules (SEMANTICS §10-14),
strictly parsed as LocalStack does: anything but a well-formed list of known ids fails
the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pollers.base import BatchReply

MAX_EVENT_BYTES = 6 * 1024 * 1024
ENVELOPE_BYTES = len(b'{"Records":[]}')


@dataclass
class BatchBuilder:
    """Records accumulated for one invocation; `add` refuses a record that would not fit."""

    batch_size: int
    max_bytes: int = MAX_EVENT_BYTES
    records: list[dict[str, Any]] = field(default_factory=list)
    size: int = ENVELOPE_BYTES

    def add(self, record: dict[str, Any]) -> bool:
        extra = len(orjson.dumps(record)) + (1 if self.records else 0)
        if self.records and (len(self.records) >= self.batch_size or self.size + extra > self.max_bytes):
            return False
        self.records.append(record)
        self.size += extra
        return True

    @property
    def full(self) -> bool:
        return len(self.records) >= self.batch_size

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class BatchOutcome:
    """What to do with a batch: delete `succeeded`, leave `failed` to come back after the
    visibility timeout. `error` says why anything failed; `throttled` asks for a back-off."""

    succeeded: tuple[str, ...]
    failed: tuple[str, ...]
    error: str | None = None
    throttled: bool = False


def _all_failed(ids: list[str], error: str, throttled: bool = False) -> BatchOutcome:
    return BatchOutcome((), tuple(ids), error, throttled)


def reported_failures(payload: Any, ids: set[str]) -> set[str] | str:
    """The failed ids of a ReportBatchItemFailures response, or why the response is invalid."""
    if payload is None:
        return set()
    if not isinstance(payload, dict):
        return "the response is not a JSON object"
    items = payload.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return "batchItemFailures is not a list"
    failed: set[str] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or not ident or ident not in ids:
            return f"invalid itemIdentifier {ident!r}"
        failed.add(ident)
    return failed


def decide(
    reply: BatchReply, ids: list[str], *, report_item_failures: bool, groups: list[str | None] | None = None,
) -> BatchOutcome:
    """The outcome of one batch invocation over message ids `ids` (batch order).

    `groups` (FIFO) gives each message's MessageGroupId: after a group's first failed
    message, every later message of that group in the batch counts as failed too, so a
    group's order holds even when a handler reports only the first failure (SEMANTICS §14).
    """
    if reply.throttled:
        return _all_failed(ids, "TooManyRequestsException", throttled=True)
    if reply.error is not None:
        return _all_failed(ids, reply.error, throttled=True)
    if reply.function_error is not None:
        return _all_failed(ids, f"function error: {reply.function_error}")
    if not report_item_failures:
        return BatchOutcome(tuple(ids), ())
    if not reply.payload_is_json:
        return _all_failed(ids, "the response is not valid JSON")
    failed = reported_failures(reply.payload, set(ids))
    if isinstance(failed, str):
        return _all_failed(ids, failed)
    if groups is not None:
        stopped: set[str | None] = set()
        for ident, group in zip(ids, groups):
            if ident in failed:
                stopped.add(group)
            elif group in stopped:
                failed.add(ident)
    return BatchOutcome(
        tuple(i for i in ids if i not in failed), tuple(i for i in ids if i in failed),
        f"{len(failed)} item(s) reported failed" if failed else None,
    )
