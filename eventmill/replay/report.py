"""Per-event outcomes, the results file and the end-of-run summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import orjson


@dataclass(frozen=True)
class Outcome:
    index: int
    origin: str
    request_id: str
    status: str  # success | error | filtered
    payload: Any = None
    error: Any = None
    attempts: int = 0
    duration_ms: float | None = None
    condition: str = ""  # Success, RetriesExhausted, EventAgeExceeded, ... (event mode)
    event: Any = None

    def line(self) -> dict[str, Any]:
        data = asdict(self)
        data["requestId"] = data.pop("request_id")
        data["duration"] = data.pop("duration_ms")
        return data


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class ReplayReport:
    function: str
    mode: str
    outcomes: list[Outcome] = field(default_factory=list)
    skipped_bad: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def succeeded(self) -> int:
        return sum(o.status == "success" for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "error"]

    @property
    def filtered(self) -> int:
        return sum(o.status == "filtered" for o in self.outcomes)

    @property
    def retried(self) -> int:
        return sum(o.attempts > 1 for o in self.outcomes)

    @property
    def sent_to_dlq(self) -> int:
        return sum(o.status == "error" and self.mode == "event" for o in self.outcomes)

    @property
    def sent(self) -> int:
        return len(self.outcomes) - self.filtered

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def throughput(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def durations(self) -> dict[str, float | None]:
        values = [o.duration_ms for o in self.outcomes if o.duration_ms is not None]
        return {f"p{q}": percentile(values, q) for q in (50, 95, 99)}

    def summary(self) -> dict[str, Any]:
        return {
            "function": self.function, "mode": self.mode, "events": len(self.outcomes), "sent": self.sent,
            "succeeded": self.succeeded, "failed": len(self.failed), "retried": self.retried,
            "sentToDlq": self.sent_to_dlq, "filtered": self.filtered, "skippedBad": len(self.skipped_bad),
            "elapsedSeconds": round(self.elapsed_s, 3), "eventsPerSecond": round(self.throughput, 1),
            "durationMs": self.durations(),
        }

    def write(self, path: Path) -> None:
        with open(path, "wb") as out:
            for outcome in self.outcomes:
                out.write(orjson.dumps(outcome.line()) + b"\n")


def failed_events(path: Path) -> Iterable[tuple[str, Any]]:
    """(origin, event) of every failed line of a previous replay's results file."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            record = orjson.loads(line)
            if record.get("status") == "error":
                yield f"{record.get('origin') or path}:{number}", record.get("event")
