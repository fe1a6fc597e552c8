"""Pure decisions for stream (Kinesis / DynamoDB Streams) event source mappings.

Everything here is a function of its arguments (no clock, no I/O), so the rules of
SEMANTICS §C are tested table-driven in tests/pollers/test_stream_policy.py:
what a batch reply means, whether to retry / bisect / discard, where the checkpoint may
move with several batches of one shard in flight, which shards may start after a
reshard, and how many leases a process may hold.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Sequence

RETRY_BASE_S = 0.5
RETRY_CAP_S = 30.0
SHARD_END = "SHARD_END"
QUIET_AFTER_S = 5.0

# --- what a batch reply means --------------------------------------------------------


@dataclass(frozen=True)
class Succeeded:
    """The whole batch is done; `state` is the tumbling-window state the handler returned."""

    state: dict[str, Any] | None = None


@dataclass(frozen=True)
class PartiallyFailed:
    """ReportBatchItemFailures: records before `index` are done, the rest is retried (§35)."""

    index: int
    state: dict[str, Any] | None = None


@dataclass(frozen=True)
class Failed:
    """The function failed for the whole batch (error, bad partial response, missing state)."""


@dataclass(frozen=True)
class NotRun:
    """Throttled or never reached a function: retried without spending an attempt (§31)."""


Outcome = Succeeded | PartiallyFailed | Failed | NotRun


def classify(
    *, ran: bool, function_error: str | None, payload: Any, sequences: Sequence[str],
    report_item_failures: bool, tumbling: bool,
) -> Outcome:
    """Read one invocation's reply the way Lambda does for streams.

    With ReportBatchItemFailures the lowest reported sequence number is where the batch
    resumes; an empty/null list is success, any bad entry fails the whole batch (§11, §12,
    §35). With a tumbling window a response without a `state` object is a failure (§36).
    """
    if not ran:
        return NotRun()
    if function_error is not None:
        return Failed()
    body = payload if isinstance(payload, dict) else {}
    state: dict[str, Any] | None = None
    if tumbling:
        raw_state = body.get("state")
        if not isinstance(raw_state, dict):
            return Failed()
        state = raw_state
    if not report_item_failures or body.get("batchItemFailures") is None:
        return Succeeded(state)
    failures = body["batchItemFailures"]
    if not isinstance(failures, list):
        return Failed()
    if not failures:
        return Succeeded(state)
    position = {seq: i for i, seq in enumerate(sequences)}
    lowest = len(sequences)
    for entry in failures:
        ident = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(ident, str) or ident not in position:
            return Failed()
        lowest = min(lowest, position[ident])
    return Failed() if lowest == 0 else PartiallyFailed(lowest, state)


# --- retry / bisect / discard ----------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """The mapping's error settings; `max_record_age_s` already time-scaled (-1 = infinite)."""

    max_retry_attempts: int = -1
    max_record_age_s: float = -1
    bisect: bool = False
    time_scale: float = 1.0


@dataclass(frozen=True)
class Commit:
    """The first `count` records are done (all of them after a success)."""

    count: int


@dataclass(frozen=True)
class Retry:
    """Retry records from `start` after `delay_s`; `retries` is the new attempt count."""

    start: int
    retries: int
    delay_s: float


@dataclass(frozen=True)
class Bisect:
    """Split the batch in two and process each half; halves keep the retry count (§34)."""


@dataclass(frozen=True)
class Discard:
    """Give up on records from `start`: send the OnFailure record and move on (§31, §39)."""

    start: int
    reason: Literal["RetryAttemptsExhausted", "RecordAgeExceeded"]


Decision = Commit | Retry | Bisect | Discard


def backoff_s(attempt: int, time_scale: float) -> float:
    """Exponential wait between tries of a blocked batch, scaled like every AWS wait."""
    return min(RETRY_CAP_S, RETRY_BASE_S * 2 ** min(max(attempt - 1, 0), 10)) * time_scale


def record_age_exceeded(oldest_age_s: float, policy: RetryPolicy) -> bool:
    return policy.max_record_age_s >= 0 and oldest_age_s > policy.max_record_age_s


def decide(outcome: Outcome, *, size: int, retries: int, throttles: int, oldest_age_s: float, policy: RetryPolicy) -> Decision:
    """What to do after one invocation of a batch of `size` records.

    Order matters: a success always commits; then MaximumRecordAge (checked for every
    kind of failure, throttles included); then bisect for whole-batch function errors
    (free of charge); then the retry budget (-1 = retry forever).
    """
    if isinstance(outcome, Succeeded):
        return Commit(size)
    start = outcome.index if isinstance(outcome, PartiallyFailed) else 0
    if record_age_exceeded(oldest_age_s, policy):
        return Discard(start, "RecordAgeExceeded")
    if isinstance(outcome, NotRun):
        return Retry(start, retries, backoff_s(throttles + 1, policy.time_scale))
    if isinstance(outcome, Failed) and policy.bisect and size > 1:
        return Bisect()
    if 0 <= policy.max_retry_attempts <= retries:
        return Discard(start, "RetryAttemptsExhausted")
    return Retry(start, retries + 1, backoff_s(retries + 1, policy.time_scale))


# --- checkpoints with several batches of a shard in flight -----------------------------


class Progress:
    """Sequence numbers read from a shard, in order, and which are done.

    The checkpoint is the highest sequence number below which everything is done, so
    with ParallelizationFactor > 1 a slow lane holds the checkpoint back and a restart
    redoes (never skips) the records after it.
    """

    def __init__(self) -> None:
        self._pending: OrderedDict[int, bool] = OrderedDict()
        self._checkpoint: str | None = None
        self._text: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def checkpoint(self) -> str | None:
        """The highest sequence number (as text) with everything up to it done."""
        return self._checkpoint

    def add(self, seq: int, text: str) -> None:
        self._pending[seq] = False
        self._text[seq] = text

    def done(self, seqs: Iterable[int]) -> None:
        for seq in seqs:
            if seq in self._pending:
                self._pending[seq] = True

    def advance(self) -> str | None:
        """Drop the done prefix; the new checkpoint if it moved, else None."""
        moved = None
        while self._pending:
            seq, finished = next(iter(self._pending.items()))
            if not finished:
                break
            self._pending.popitem(last=False)
            moved = self._text.pop(seq)
        if moved is not None:
            self._checkpoint = moved
        return moved


def lane_for(key: str, lanes: int) -> int:
    """Which of the shard's ParallelizationFactor lanes a partition key (or item key) uses.

    A stable hash (not Python's salted hash()) so every process routes a key alike.
    """
    if lanes <= 1:
        return 0
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % lanes


# --- shards: resharding order and fair share -------------------------------------------


@dataclass(frozen=True)
class ShardInfo:
    shard_id: str
    parents: tuple[str, ...] = ()
    ending: int | None = None  # EndingSequenceNumber as an int once the shard is closed


def startable(shards: Sequence[ShardInfo], finished: set[str]) -> list[str]:
    """Shards that may be worked now: not finished, and every parent still listed has
    reached SHARD_END, so a key's records before a split are all handled first."""
    listed = {s.shard_id for s in shards}
    return [
        s.shard_id for s in shards
        if s.shard_id not in finished and all(p in finished or p not in listed for p in s.parents)
    ]


def fair_share(active_shards: int, live_owners: int) -> int:
    """How many of a mapping's shards one pollers process should hold."""
    return math.ceil(active_shards / max(1, live_owners)) if active_shards else 0


def idle_poll_s(quiet_s: float, fast_s: float, slow_s: float) -> float:
    """The wait after an empty read of a shard that last returned records `quiet_s` ago."""
    return fast_s if quiet_s < QUIET_AFTER_S else slow_s


def window_bounds(arrival_s: float, size_s: float) -> tuple[float, float]:
    """The tumbling window [start, end) a record belongs to, from its arrival time."""
    start = math.floor(arrival_s / size_s) * size_s
    return start, start + size_s
