"""Pure batch rules: cutting (size / 6 MB) and what a reply acknowledges (SEMANTICS §5, §10-14)."""

from __future__ import annotations

from typing import Any

import pytest

from pollers.base import BatchReply
from pollers.batching import BatchBuilder, decide
from pollers.scaling import Backoff, Scaler, concurrency_limit

IDS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("reply", "succeeded", "failed"),
    [
        (BatchReply("r", None), IDS, []),                                                   # null response
        (BatchReply("r", {}), IDS, []),                                                     # empty object
        (BatchReply("r", {"batchItemFailures": None}), IDS, []),
        (BatchReply("r", {"batchItemFailures": []}), IDS, []),
        (BatchReply("r", {"batchItemFailures": [{"itemIdentifier": "b"}]}), ["a", "c"], ["b"]),
        (BatchReply("r", {"batchItemFailures": [{"itemIdentifier": "zz"}]}), [], IDS),       # unknown id
        (BatchReply("r", {"batchItemFailures": [{"itemIdentifier": ""}]}), [], IDS),         # empty id
        (BatchReply("r", {"batchItemFailures": [{"itemIdentifier": None}]}), [], IDS),       # null id
        (BatchReply("r", {"batchItemFailures": [{"id": "a"}]}), [], IDS),                    # wrong key
        (BatchReply("r", {"batchItemFailures": "a"}), [], IDS),                              # not a list
        (BatchReply("r", "oops"), [], IDS),                                                  # not an object
        (BatchReply("r", None, payload_is_json=False), [], IDS),                             # not JSON
        (BatchReply("r", None, "Unhandled"), [], IDS),                                       # function error
        (BatchReply("r", throttled=True), [], IDS),
        (BatchReply("", error="ResourceNotFoundException: gone"), [], IDS),
    ],
)
def test_partial_batch_response_rules(reply: BatchReply, succeeded: list[str], failed: list[str]) -> None:
    outcome = decide(reply, IDS, report_item_failures=True)
    assert (list(outcome.succeeded), list(outcome.failed)) == (succeeded, failed)


def test_without_report_item_failures_any_response_is_success() -> None:
    outcome = decide(BatchReply("r", {"batchItemFailures": [{"itemIdentifier": "zz"}]}), IDS, report_item_failures=False)
    assert outcome.succeeded == tuple(IDS) and not outcome.failed


def test_fifo_failure_fails_the_rest_of_its_group_only() -> None:
    ids, groups = ["1", "2", "3", "4", "5"], ["g", "h", "g", "g", "h"]
    reply = BatchReply("r", {"batchItemFailures": [{"itemIdentifier": "1"}]})
    outcome = decide(reply, ids, report_item_failures=True, groups=groups)  # type: ignore[arg-type]
    assert outcome.failed == ("1", "3", "4") and outcome.succeeded == ("2", "5")


def record(size: int) -> dict[str, Any]:
    return {"body": "x" * size}


def test_builder_cuts_at_batch_size_and_six_mb() -> None:
    small = BatchBuilder(batch_size=2)
    assert small.add(record(1)) and small.add(record(1)) and not small.add(record(1))
    big = BatchBuilder(batch_size=100)
    added = 0
    while big.add(record(250_000)):
        added += 1
    assert added == 25 and big.size <= 6 * 1024 * 1024
    lone = BatchBuilder(batch_size=10, max_bytes=10)
    assert lone.add(record(100))  # one record always fits, else it could never be sent


def test_scaler_and_backoff() -> None:
    scaler = Scaler(maximum=3)
    assert [scaler.after_receive(10, 10) for _ in range(4)] == [2, 3, 3, 3]
    assert [scaler.after_receive(0, 10) for _ in range(3)] == [2, 1, 1]
    assert concurrency_limit(None, 0) == 1 and concurrency_limit(None, 4) == 4 and concurrency_limit(5, 1) == 5
    backoff = Backoff(scale=0.01)
    assert [round(backoff.next_delay(), 3) for _ in range(8)] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.6, 0.6]
