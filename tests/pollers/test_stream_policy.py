"""Table-driven tests of the pure stream rules (pollers/stream_policy.py)."""

from __future__ import annotations

from typing import Any

import pytest

from pollers.stream_policy import (
    Bisect, Commit, Discard, Failed, NotRun, PartiallyFailed, Progress, Retry, RetryPolicy, ShardInfo, Succeeded,
    backoff_s, classify, decide, fair_share, idle_poll_s, lane_for, startable, window_bounds,
)
from pollers.stream_window import STATE_LIMIT_BYTES, WindowState, too_large

SEQS = ["10", "11", "12", "13"]


@pytest.mark.parametrize("ran,error,payload,report,tumbling,expected", [
    (False, None, None, False, False, NotRun()),
    (True, "Unhandled", None, True, False, Failed()),
    (True, None, None, True, False, Succeeded()),
    (True, None, {}, True, False, Succeeded()),
    (True, None, {"batchItemFailures": None}, True, False, Succeeded()),
    (True, None, {"batchItemFailures": []}, True, False, Succeeded()),
    (True, None, {"batchItemFailures": [{"itemIdentifier": "12"}]}, True, False, PartiallyFailed(2)),
    (True, None, {"batchItemFailures": [{"itemIdentifier": "13"}, {"itemIdentifier": "11"}]}, True, False, PartiallyFailed(1)),
    (True, None, {"batchItemFailures": [{"itemIdentifier": "10"}]}, True, False, Failed()),
    (True, None, {"batchItemFailures": [{"itemIdentifier": "99"}]}, True, False, Failed()),
    (True, None, {"batchItemFailures": [{"itemIdentifier": ""}]}, True, False, Failed()),
    (True, None, {"batchItemFailures": [{"itemIdentifier": None}]}, True, False, Failed()),
    (True, None, {"batchItemFailures": [{"id": "12"}]}, True, False, Failed()),
    (True, None, {"batchItemFailures": "12"}, True, False, Failed()),
    (True, None, {"batchItemFailures": [{"itemIdentifier": "12"}]}, False, False, Succeeded()),  # not enabled: ignored
    (True, None, {"state": {"n": 1}}, False, True, Succeeded({"n": 1})),
    (True, None, {}, False, True, Failed()),  # tumbling window without state
    (True, None, {"state": {"n": 2}, "batchItemFailures": [{"itemIdentifier": "11"}]}, True, True, PartiallyFailed(1, {"n": 2})),
])
def test_classify(ran: bool, error: str | None, payload: Any, report: bool, tumbling: bool, expected: object) -> None:
    assert classify(ran=ran, function_error=error, payload=payload, sequences=SEQS, report_item_failures=report, tumbling=tumbling) == expected


INF = RetryPolicy()
TWO = RetryPolicy(max_retry_attempts=2)
BISECT = RetryPolicy(max_retry_attempts=2, bisect=True)
AGED = RetryPolicy(max_record_age_s=0.6)


@pytest.mark.parametrize("outcome,size,retries,throttles,age,policy,expected", [
    (Succeeded(), 5, 0, 0, 0.0, TWO, Commit(5)),
    (Succeeded(), 5, 2, 0, 99.0, AGED, Commit(5)),                           # success beats age
    (Failed(), 5, 0, 0, 0.0, INF, Retry(0, 1, backoff_s(1, 1.0))),
    (Failed(), 5, 500, 0, 0.0, INF, Retry(0, 501, backoff_s(501, 1.0))),      # -1: forever
    (Failed(), 5, 1, 0, 0.0, TWO, Retry(0, 2, backoff_s(2, 1.0))),
    (Failed(), 5, 2, 0, 0.0, TWO, Discard(0, "RetryAttemptsExhausted")),
    (Failed(), 5, 0, 0, 0.0, BISECT, Bisect()),                               # bisect costs no attempt
    (Failed(), 1, 0, 0, 0.0, BISECT, Retry(0, 1, backoff_s(1, 1.0))),         # one record: plain retries
    (Failed(), 1, 2, 0, 0.0, BISECT, Discard(0, "RetryAttemptsExhausted")),
    (Failed(), 5, 0, 0, 0.7, AGED, Discard(0, "RecordAgeExceeded")),
    (Failed(), 5, 0, 0, 0.5, AGED, Retry(0, 1, backoff_s(1, 1.0))),
    (NotRun(), 5, 2, 3, 0.0, TWO, Retry(0, 2, backoff_s(4, 1.0))),            # throttles never spend retries
    (NotRun(), 5, 0, 0, 0.7, AGED, Discard(0, "RecordAgeExceeded")),
    (PartiallyFailed(3), 5, 0, 0, 0.0, TWO, Retry(3, 1, backoff_s(1, 1.0))),
    (PartiallyFailed(3), 5, 0, 0, 0.0, BISECT, Retry(3, 1, backoff_s(1, 1.0))),  # split at the failed record
    (PartiallyFailed(3), 5, 2, 0, 0.0, TWO, Discard(3, "RetryAttemptsExhausted")),
    (PartiallyFailed(3), 5, 0, 0, 0.7, AGED, Discard(3, "RecordAgeExceeded")),
])
def test_decide(outcome: Any, size: int, retries: int, throttles: int, age: float, policy: RetryPolicy, expected: object) -> None:
    assert decide(outcome, size=size, retries=retries, throttles=throttles, oldest_age_s=age, policy=policy) == expected


def test_backoff_is_scaled_and_capped() -> None:
    assert backoff_s(1, 0.01) == pytest.approx(0.005)
    assert backoff_s(50, 1.0) == 30.0


@pytest.mark.parametrize("adds,done,expected", [
    ([1, 2, 3], [], None),
    ([1, 2, 3], [1], "1"),
    ([1, 2, 3], [2, 3], None),            # a slow lane holds the checkpoint back
    ([1, 2, 3], [3, 1, 2], "3"),
    ([5, 9, 100], [5, 9], "9"),           # numeric order, not string order
])
def test_progress_checkpoint(adds: list[int], done: list[int], expected: str | None) -> None:
    progress = Progress()
    for seq in adds:
        progress.add(seq, str(seq))
    progress.done(done)
    progress.advance()
    assert progress.checkpoint == expected
    assert len(progress) == len(adds) - (adds.index(int(expected)) + 1 if expected else 0)


@pytest.mark.parametrize("shards,finished,expected", [
    ([ShardInfo("a")], set(), ["a"]),
    ([ShardInfo("a"), ShardInfo("b", ("a",)), ShardInfo("c", ("a",))], set(), ["a"]),
    ([ShardInfo("a"), ShardInfo("b", ("a",)), ShardInfo("c", ("a",))], {"a"}, ["b", "c"]),
    ([ShardInfo("a"), ShardInfo("b"), ShardInfo("m", ("a", "b"))], {"a"}, ["b"]),        # merge waits for both parents
    ([ShardInfo("a"), ShardInfo("b"), ShardInfo("m", ("a", "b"))], {"a", "b"}, ["m"]),
    ([ShardInfo("b", ("trimmed",))], set(), ["b"]),                                        # parent past retention
])
def test_startable_shards(shards: list[ShardInfo], finished: set[str], expected: list[str]) -> None:
    assert startable(shards, finished) == expected


@pytest.mark.parametrize("active,owners,expected", [(4, 1, 4), (4, 2, 2), (5, 2, 3), (1, 3, 1), (0, 2, 0), (4, 0, 4)])
def test_fair_share(active: int, owners: int, expected: int) -> None:
    assert fair_share(active, owners) == expected


def test_lane_is_stable_and_spread() -> None:
    lanes = {lane_for(f"k{i}", 10) for i in range(200)}
    assert lanes == set(range(10))
    assert lane_for("k7", 10) == lane_for("k7", 10)
    assert lane_for("anything", 1) == 0


@pytest.mark.parametrize("arrival,size,expected", [(100.0, 60, (60.0, 120.0)), (119.99, 60, (60.0, 120.0)), (120.0, 60, (120.0, 180.0))])
def test_window_bounds(arrival: float, size: float, expected: tuple[float, float]) -> None:
    assert window_bounds(arrival, size) == expected


@pytest.mark.parametrize("quiet,expected", [(0.0, 0.05), (4.99, 0.05), (5.0, 0.25), (600.0, 0.25)])
def test_idle_poll_is_fast_only_while_the_shard_was_busy_lately(quiet: float, expected: float) -> None:
    assert idle_poll_s(quiet, 0.05, 0.25) == expected


def test_window_state_round_trip_and_limit() -> None:
    saved = WindowState((60.0, 120.0), {"n": 3}, 42)
    assert WindowState.loads(saved.dumps()) == saved
    assert WindowState.loads(None) == WindowState()
    assert WindowState.loads(WindowState(None, {}, 7).dumps()) == WindowState(None, {}, 7)
    assert not too_large({"pad": "x" * (STATE_LIMIT_BYTES - 20)})
    assert too_large({"pad": "x" * STATE_LIMIT_BYTES})
