"""Async retry decisions as pure values (tenacity's idea: policy is data, testable with
an injected clock). Rules from SEMANTICS.md §D: function errors are retried after ~1 min
then ~2 min (MaximumRetryAttempts 0..2); throttles and system errors back off from 1 s
doubling to 5 min without counting as retries, until MaximumEventAgeInSeconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Reason = Literal["RetriesExhausted", "EventAgeExceeded"]

RETRY_DELAYS_S = (60.0, 120.0)
THROTTLE_FIRST_S = 1.0
THROTTLE_MAX_S = 300.0


@dataclass(frozen=True)
class Retry:
    delay_s: float


@dataclass(frozen=True)
class Discard:
    reason: Reason


Decision = Retry | Discard


def event_expired(age_s: float, max_event_age_s: float, scale: float) -> bool:
    return age_s > max_event_age_s * scale


def after_function_error(attempts: int, max_retries: int, age_s: float, max_event_age_s: float, scale: float) -> Decision:
    """`attempts` counts attempts made so far, including the one that just failed."""
    if attempts > max_retries:
        return Discard("RetriesExhausted")
    delay = RETRY_DELAYS_S[min(attempts, len(RETRY_DELAYS_S)) - 1] * scale
    if event_expired(age_s + delay, max_event_age_s, scale):
        return Discard("EventAgeExceeded")
    return Retry(delay)


def after_throttle(throttles: int, age_s: float, max_event_age_s: float, scale: float) -> Decision:
    """`throttles` counts throttles so far, including this one."""
    delay = min(THROTTLE_FIRST_S * 2 ** (throttles - 1), THROTTLE_MAX_S) * scale
    if event_expired(age_s + delay, max_event_age_s, scale):
        return Discard("EventAgeExceeded")
    return Retry(delay)
