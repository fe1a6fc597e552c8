"""Turn what an environment returned into an InvokeResult, in Lambda's words.

Kept apart from the pool so the AWS wording (error payloads, log lines) lives in
one place and the pool only decides which environment runs what.
"""

from __future__ import annotations

import json
import time

from sandbox import logs
from sandbox.environment import Environment, Exchange
from sandbox.types import FunctionSpec, InvokeRequest, InvokeResult


def _error_payload(message: str, error_type: str | None = None) -> bytes:
    body: dict[str, str] = {"errorMessage": message}
    if error_type is not None:
        body["errorType"] = error_type
    return json.dumps(body).encode()


def _assemble(
    spec: FunctionSpec, request: InvokeRequest, *, output: bytes, payload: bytes, error_type: str | None,
    duration_ms: float, max_memory_mb: int, init_ms: float | None, status: str, timed_out: bool = False,
    crash_lines: str = "", trailer: str = "", preamble: bytes = b"",
) -> InvokeResult:
    report = logs.Report(request.request_id, duration_ms, spec.memory_mb, max_memory_mb, init_ms, status)
    text = output.decode("utf-8", errors="replace")
    before = preamble.decode("utf-8", errors="replace")
    log = (
        before
        + ("" if not before or before.endswith("\n") else "\n")
        + logs.start_line(request.request_id, spec.version, spec.log_format)
        + text
        + ("" if not text or text.endswith("\n") else "\n")
        + crash_lines
        + logs.end_line(request.request_id, spec.log_format)
        + logs.report_line(report, spec.log_format)
        + trailer
    )
    return InvokeResult(
        request_id=request.request_id,
        payload=payload,
        function_error="Unhandled" if error_type else None,
        error_type=error_type,
        log=log,
        duration_ms=duration_ms,
        billed_duration_ms=report.billed_ms,
        max_memory_used_mb=max_memory_mb,
        init_duration_ms=init_ms,
        timed_out=timed_out,
    )


def from_init_failure(env: Environment, spec: FunctionSpec, request: InvokeRequest) -> InvokeResult:
    """INIT failed: the first (and only) invocation of this environment reports it."""
    init_output = env.take_pending()
    mem = env.max_memory_mb()
    if env.init_error is not None:
        error_type, body = env.init_error
        try:
            error = json.loads(body)
            error["requestId"] = request.request_id
            body = json.dumps(error).encode()
        except ValueError:
            pass
        return _assemble(
            spec, request, output=b"", preamble=init_output, payload=body, error_type=error_type, duration_ms=0.0,
            max_memory_mb=mem, init_ms=env.init_duration_ms, status="error",
        )
    if env.init_reason == "timeout":
        message = logs.timeout_message(request.request_id, spec.timeout_s)
        return _assemble(
            spec, request, output=b"", preamble=init_output, payload=_error_payload(message), error_type="Sandbox.Timedout",
            duration_ms=env.init_duration_ms or 0.0, max_memory_mb=mem, init_ms=env.init_duration_ms,
            status="timeout", timed_out=True, trailer=message + "\n",
        )
    return _crash(spec, request, b"", str(env.init_reason), False, env.init_duration_ms or 0.0, mem,
                  env.init_duration_ms, init_output)


def _crash(
    spec: FunctionSpec, request: InvokeRequest, output: bytes, reason: str, oom: bool,
    duration_ms: float, mem: int, init_ms: float | None, preamble: bytes = b"",
) -> InvokeResult:
    error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
    message = f"RequestId: {request.request_id} Error: Runtime exited with error: {reason}"
    lines = f"{message}\n{error_type}\n"
    return _assemble(
        spec, request, output=output, payload=_error_payload(message, error_type), error_type=error_type,
        duration_ms=duration_ms, max_memory_mb=mem, init_ms=init_ms, status="error", crash_lines=lines,
        preamble=preamble,
    )


def from_exchange(
    env: Environment, spec: FunctionSpec, request: InvokeRequest, reply: Exchange, started: float,
    init_ms: float | None,
) -> InvokeResult:
    wall_ms = (time.monotonic() - started) * 1000.0
    header = reply.header
    if reply.timed_out:
        message = logs.timeout_message(request.request_id, spec.timeout_s)
        return _assemble(
            spec, request, output=reply.output, payload=_error_payload(message), error_type="Sandbox.Timedout",
            duration_ms=wall_ms, max_memory_mb=env.max_memory_mb(), init_ms=init_ms, status="timeout",
            timed_out=True, trailer=message + "\n",
        )
    if header is None:
        return _crash(spec, request, reply.output, reply.exit_reason or "exit status 1", reply.oom, wall_ms,
                      env.max_memory_mb(), init_ms)
    rss_kb = int(header.get("rss_kb") or 0)  # type: ignore[call-overload]
    duration_ms = float(header.get("duration_ms") or wall_ms)  # type: ignore[arg-type]
    status = header.get("status")
    if status == "fatal":
        env.kill()
        return _crash(spec, request, reply.output, "signal: killed", True, duration_ms, spec.memory_mb, init_ms,
                      reply.preamble)
    error_type = None if status == "ok" else str(header.get("error_type"))
    return _assemble(
        spec, request, output=reply.output, payload=reply.body, error_type=error_type, duration_ms=duration_ms,
        max_memory_mb=env.max_memory_mb(rss_kb), init_ms=init_ms, status="success" if status == "ok" else "error",
        preamble=reply.preamble,
    )
