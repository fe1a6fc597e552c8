"""Process-wide settings from the environment and CLI flags, parsed once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def time_scale() -> float:
    """EVENTMILL_TIME_SCALE multiplies every AWS-defined wait (retry delays, max event age,
    batching windows, back-offs) so tests and demos run in seconds. Function Timeout is not scaled."""
    raw = os.environ.get("EVENTMILL_TIME_SCALE", "1.0")
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"EVENTMILL_TIME_SCALE must be a number, got {raw!r}") from None
    if value <= 0:
        raise SystemExit(f"EVENTMILL_TIME_SCALE must be > 0, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    redis_url: str
    prefix: str = field(default_factory=lambda: os.environ.get("EVENTMILL_PREFIX", "em:"))
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("EVENTMILL_DATA_DIR", ".eventmill")))
    aws_endpoint: str | None = field(default_factory=lambda: os.environ.get("EVENTMILL_AWS_ENDPOINT") or None)
    region: str = field(default_factory=lambda: os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    time_scale: float = field(default_factory=time_scale)
    sandbox_mode: str = field(default_factory=lambda: os.environ.get("EVENTMILL_SANDBOX", "nsjail"))
    result_ttl_s: int = field(default_factory=lambda: int(os.environ.get("EVENTMILL_RESULT_TTL", str(7 * 86400))))
    results_per_function: int = field(default_factory=lambda: int(os.environ.get("EVENTMILL_RESULTS_PER_FUNCTION", "10000")))
    # How long a running invocation's lease lasts without a heartbeat; a killed worker's
    # event becomes due again after this. Not an AWS wait, so not time-scaled.
    lease_s: float = field(default_factory=lambda: float(os.environ.get("EVENTMILL_LEASE_SECONDS", "5")))

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale
