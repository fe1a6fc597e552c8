"""Platform log lines around each invocation (SEMANTICS F.66), text or JSON format.

The REPORT layout is byte-exact to the recorded CloudWatch message: tab
separated, a space before the tab after Billed Duration, a trailing tab, and
`Init Duration: N ms\\t` appended on the cold start only (as CloudWatch records it:
`...Max Memory Used: 75 MB\\tInit Duration: 156.08 ms\\t`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass


def iso_now() -> str:
    """Lambda's millisecond UTC timestamp, e.g. 2024-01-15T10:00:03.123Z."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def billed_ms(duration_ms: float) -> int:
    """1 ms billing granularity, rounded up, never zero."""
    return max(1, math.ceil(duration_ms))


@dataclass(frozen=True)
class Report:
    request_id: str
    duration_ms: float
    memory_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None
    status: str  # success | error | timeout

    @property
    def billed_ms(self) -> int:
        return billed_ms(self.duration_ms)


def start_line(request_id: str, version: str, log_format: str) -> str:
    if log_format == "JSON":
        return _json("platform.start", {"requestId": request_id, "version": version})
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str, log_format: str) -> str:
    if log_format == "JSON":
        return ""
    return f"END RequestId: {request_id}\n"


def report_line(report: Report, log_format: str) -> str:
    if log_format == "JSON":
        metrics: dict[str, object] = {
            "durationMs": round(report.duration_ms, 2),
            "billedDurationMs": report.billed_ms,
            "memorySizeMB": report.memory_mb,
            "maxMemoryUsedMB": report.max_memory_used_mb,
        }
        if report.init_duration_ms is not None:
            metrics["initDurationMs"] = round(report.init_duration_ms, 2)
        return _json("platform.report", {"requestId": report.request_id, "metrics": metrics, "status": report.status})
    line = (
        f"REPORT RequestId: {report.request_id}\tDuration: {report.duration_ms:.2f} ms\t"
        f"Billed Duration: {report.billed_ms} ms \tMemory Size: {report.memory_mb} MB\t"
        f"Max Memory Used: {report.max_memory_used_mb} MB\t"
    )
    if report.init_duration_ms is not None:
        line += f"Init Duration: {report.init_duration_ms:.2f} ms\t"
    return line + "\n"


def timeout_message(request_id: str, timeout_s: float) -> str:
    return f"{iso_now()} {request_id} Task timed out after {timeout_s:.2f} seconds"


def _json(kind: str, record: dict[str, object]) -> str:
    return json.dumps({"time": iso_now(), "type": kind, "record": record}) + "\n"
