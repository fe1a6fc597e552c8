"""Tumbling-window state of one lane, and the fields Lambda adds to a window's event.

The state is what the handler returned last (SEMANTICS §36). It is stored beside the
shard's checkpoint, in the same owner-checked write that moves the checkpoint past the
records folded into it (pollers/checkpoints.py), so a pollers restart, even kill -9,
continues the window with the state it had instead of an empty one. `done` is the last
sequence number the lane has folded in: with ParallelizationFactor > 1 the shard's
checkpoint can lag behind a lane, and records re-read up to `done` are not folded again.

Fields in the checkpoints HASH besides `<shard>`: `<shard>/window/<lane>` (this JSON) and
`<shard>/start` (pollers/stream_shard.py: where LATEST resolved, see there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pollers.stream_records import iso_ms, iso_s

# "Your state can be a maximum of 1 MB per shard. If it exceeds that size, Lambda
# terminates the window early." (DG: services-kinesis-windows)
STATE_LIMIT_BYTES = 1024 * 1024


@dataclass
class WindowState:
    bounds: tuple[float, float] | None = None  # the open window, None between windows
    state: dict[str, Any] = field(default_factory=dict)
    done: int | None = None

    def dumps(self) -> str:
        return orjson.dumps({"window": list(self.bounds) if self.bounds else None, "state": self.state, "done": self.done}).decode()

    @classmethod
    def loads(cls, raw: bytes | str | None) -> WindowState:
        if not raw:
            return cls()
        data = orjson.loads(raw)
        bounds = data.get("window")
        return cls((float(bounds[0]), float(bounds[1])) if bounds else None, dict(data.get("state") or {}), data.get("done"))


def window_field(shard: str, lane: int) -> str:
    return f"{shard}/window/{lane}"


def start_field(shard: str) -> str:
    return f"{shard}/start"


def is_shard_field(name: str) -> bool:
    """True for a shard's checkpoint field, False for the window and start fields."""
    return "/" not in name


def too_large(state: dict[str, Any]) -> bool:
    return len(orjson.dumps(state)) > STATE_LIMIT_BYTES


def window_event(
    bounds: tuple[float, float], state: dict[str, Any], *, shard_id: str, stream_arn: str, final: bool, early: bool,
) -> dict[str, Any]:
    """What a tumbling-window invocation adds to {"Records": [...]} (§36). Whole-second
    bounds print as `2020-12-09T07:04:00Z`, as in AWS's example; scaled ones keep ms."""
    fmt = iso_s if float(bounds[0]).is_integer() and float(bounds[1]).is_integer() else iso_ms
    return {
        "window": {"start": fmt(bounds[0]), "end": fmt(bounds[1])},
        "state": state,
        "shardId": shard_id,
        "eventSourceARN": stream_arn,
        "isFinalInvokeForWindow": final,
        "isWindowTerminatedEarly": early,
    }
