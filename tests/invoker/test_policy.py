"""invoker/policy.py: async retry / max event age / throttle back-off decisions, table-driven
against SEMANTICS.md §D (2 retries after ~60 s then ~120 s; throttles back off from 1 s
doubling to 5 min and do not count as retries; events older than
MaximumEventAgeInSeconds are discarded as EventAgeExceeded)."""

from __future__ import annotations

import pytest

from invoker.policy import Discard, Retry, after_function_error, after_throttle, event_expired

DAY = 21600  # the default (and maximum) MaximumEventAgeInSeconds


@pytest.mark.parametrize(
    "attempts, max_retries, age_s, max_age, scale, expected",
    [
        # default: 3 attempts, delays 60 s then 120 s
        (1, 2, 0.0, DAY, 1.0, Retry(60.0)),
        (2, 2, 60.0, DAY, 1.0, Retry(120.0)),
        (3, 2, 180.0, DAY, 1.0, Discard("RetriesExhausted")),
        # MaximumRetryAttempts 1 and 0
        (1, 1, 0.0, DAY, 1.0, Retry(60.0)),
        (2, 1, 60.0, DAY, 1.0, Discard("RetriesExhausted")),
        (1, 0, 0.0, DAY, 1.0, Discard("RetriesExhausted")),
        # time scale shrinks the delays
        (1, 2, 0.0, DAY, 0.01, Retry(0.6)),
        (2, 2, 0.6, DAY, 0.01, Retry(1.2)),
        (3, 2, 1.8, DAY, 0.01, Discard("RetriesExhausted")),
        # the next attempt would come after the max event age: discard now
        (1, 2, 0.5, 60, 1.0, Discard("EventAgeExceeded")),
        (1, 2, 0.0, 60, 1.0, Retry(60.0)),  # due exactly at the max age; expired when it comes due
        (1, 2, 10.0, 60, 1.0, Discard("EventAgeExceeded")),
        (1, 2, 0.0, 61, 1.0, Retry(60.0)),
        (2, 2, 60.0, 120, 1.0, Discard("EventAgeExceeded")),
        (2, 2, 60.0, 180, 1.0, Retry(120.0)),
        (1, 2, 0.05, 60, 0.01, Discard("EventAgeExceeded")),
        (1, 2, 0.0, 120, 0.01, Retry(0.6)),
        # retries exhausted wins over age (the reason AWS reports)
        (3, 2, 10_000.0, 60, 1.0, Discard("RetriesExhausted")),
    ],
)
def test_after_function_error(attempts: int, max_retries: int, age_s: float, max_age: int, scale: float, expected: object) -> None:
    decision = after_function_error(attempts, max_retries, age_s, max_age, scale)
    if isinstance(expected, Retry):
        assert isinstance(decision, Retry)
        assert decision.delay_s == pytest.approx(expected.delay_s)
    else:
        assert decision == expected


@pytest.mark.parametrize(
    "throttles, age_s, max_age, scale, expected",
    [
        (1, 0.0, DAY, 1.0, Retry(1.0)),
        (2, 1.0, DAY, 1.0, Retry(2.0)),
        (3, 3.0, DAY, 1.0, Retry(4.0)),
        (9, 100.0, DAY, 1.0, Retry(256.0)),
        (10, 400.0, DAY, 1.0, Retry(300.0)),  # capped at 5 min
        (50, 4000.0, DAY, 1.0, Retry(300.0)),
        (1, 0.0, DAY, 0.01, Retry(0.01)),
        (10, 4.0, DAY, 0.01, Retry(3.0)),
        # throttle back-off ends at the max event age
        (1, 59.5, 60, 1.0, Discard("EventAgeExceeded")),
        (1, 58.0, 60, 1.0, Retry(1.0)),
        (1, DAY - 0.5, DAY, 1.0, Discard("EventAgeExceeded")),
    ],
)
def test_after_throttle(throttles: int, age_s: float, max_age: int, scale: float, expected: object) -> None:
    decision = after_throttle(throttles, age_s, max_age, scale)
    if isinstance(expected, Retry):
        assert isinstance(decision, Retry)
        assert decision.delay_s == pytest.approx(expected.delay_s)
    else:
        assert decision == expected


def test_throttles_never_exhaust_retries() -> None:
    """Throttles are not function errors: many of them never give RetriesExhausted."""
    for n in range(1, 200):
        decision = after_throttle(n, 0.0, DAY, 1.0)
        assert isinstance(decision, Retry)


@pytest.mark.parametrize(
    "age_s, max_age, scale, expired",
    [
        (0.0, 60, 1.0, False),
        (60.0, 60, 1.0, False),
        (60.001, 60, 1.0, True),
        (0.59, 60, 0.01, False),
        (0.61, 60, 0.01, True),
        (216.0, DAY, 0.01, False),
        (216.1, DAY, 0.01, True),
    ],
)
def test_event_expired(age_s: float, max_age: int, scale: float, expired: bool) -> None:
    assert event_expired(age_s, max_age, scale) is expired


def test_default_policy_gives_exactly_three_attempts() -> None:
    attempts, age = 0, 0.0
    while True:
        attempts += 1
        decision = after_function_error(attempts, 2, age, DAY, 0.01)
        if isinstance(decision, Discard):
            break
        age += decision.delay_s
    assert attempts == 3 and decision.reason == "RetriesExhausted"
