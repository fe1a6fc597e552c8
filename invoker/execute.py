"""Run one invocation of a registered function: take a concurrency slot, run it in the
sandbox, count it, and store the result and log. Shared by the sync and async jobs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from broker.config import FunctionConfig, function_arn
from broker.events import now_ms
from broker.metrics import function_scope, incr, observe
from broker.results import log_tail, queue_log
from broker.results import queue_result as queue_result_record
from invoker.context import Context
from invoker.scripts import ACQUIRE
from sandbox import FunctionSpec, InvokeRequest, InvokeResult

MAX_RESPONSE_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class Throttled:
    reason: str = "ReservedFunctionConcurrentInvocationLimitExceeded"


def spec_for(config: FunctionConfig, region: str) -> FunctionSpec:
    return FunctionSpec(
        name=config.name,
        code_dir=Path(config.code_dir),
        handler=config.handler,
        runtime=config.runtime,
        memory_mb=config.memory_mb,
        timeout_s=float(config.timeout_s),
        ephemeral_mb=config.ephemeral_mb,
        environment=tuple(sorted(config.environment.items())),
        code_version=config.code_version,
        layers=tuple(Path(layer) for layer in config.layers if not layer.startswith("arn:")),
        network=config.network,
        log_format=config.log_format,  # type: ignore[arg-type]
        region=region,
    )


def acquire(ctx: Context, config: FunctionConfig, holder: str) -> bool:
    limit = -1 if config.reserved_concurrency is None else config.reserved_concurrency
    now = now_ms()
    script = ctx.script(ACQUIRE)
    held = script(keys=[ctx.keys.concurrency(config.name)], args=[holder, now, now + int(ctx.settings.lease_s * 1000), limit])
    return int(held) >= 0


def release(ctx: Context, config: FunctionConfig, holder: str) -> None:
    ctx.redis.zrem(ctx.keys.concurrency(config.name), holder)


def invoke(
    ctx: Context, config: FunctionConfig, request_id: str, payload: str, *,
    client_context: str | None = None,
) -> InvokeResult | Throttled:
    """Blocking. Throttled when the function's reserved concurrency is in use."""
    scope = function_scope(config.name)
    if not acquire(ctx, config, request_id):
        with ctx.redis.pipeline(transaction=False) as pipe:
            incr(pipe, ctx.keys, scope, "Throttles")
            pipe.execute()
        return Throttled()
    ctx.running[request_id] = ctx.keys.concurrency(config.name)
    try:
        result = ctx.pool.invoke(
            spec_for(config, ctx.settings.region),
            InvokeRequest(
                request_id=request_id,
                payload=payload.encode(),
                client_context=client_context,
                invoked_function_arn=function_arn(config.name),
            ),
        )
    except BaseException:
        ctx.running.pop(request_id, None)
        release(ctx, config, request_id)
        raise
    ctx.running.pop(request_id, None)
    if result.ok and len(result.payload) > MAX_RESPONSE_BYTES:
        result = _too_large(result)
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.zrem(ctx.keys.concurrency(config.name), request_id)
        incr(pipe, ctx.keys, scope, "Invocations")
        if not result.ok:
            incr(pipe, ctx.keys, scope, "Errors")
        observe(pipe, ctx.keys, scope, "Duration", result.duration_ms)
        pipe.execute()
    return result


def _too_large(result: InvokeResult) -> InvokeResult:
    error = {
        "errorMessage": f"Response payload size ({len(result.payload)} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }
    return InvokeResult(
        request_id=result.request_id, payload=orjson.dumps(error), function_error="Unhandled",
        error_type="Function.ResponseSizeTooLarge", log=result.log, duration_ms=result.duration_ms,
        billed_duration_ms=result.billed_duration_ms, max_memory_used_mb=result.max_memory_used_mb,
        init_duration_ms=result.init_duration_ms,
    )


def json_or_text(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def queue_result(
    pipe: Any, ctx: Context, config: FunctionConfig, result: InvokeResult, event: str, *,
    invocation_type: str, attempts: int, final: bool,
) -> dict[str, Any]:
    """Queue the result record and log on `pipe` (the caller executes it with whatever
    else finishes the invocation, so one round trip ends it)."""
    response = json_or_text(result.payload) if result.payload else None
    record: dict[str, Any] = {
        "requestId": result.request_id,
        "functionName": config.name,
        "status": "success" if result.ok else "error",
        "event": json_or_text(event),
        "payload": response if result.ok else None,
        "error": None if result.ok else response,
        "errorType": result.error_type,
        "functionError": result.function_error,
        "attempts": attempts,
        "final": final,
        "invocationType": invocation_type,
        "duration": round(result.duration_ms, 3),
        "billedDuration": result.billed_duration_ms,
        "maxMemoryUsed": result.max_memory_used_mb,
        "initDuration": result.init_duration_ms,
        "logTail": log_tail(result.log),
        "finishedAt": time.time(),
    }
    settings = ctx.settings
    queue_result_record(pipe, ctx.keys, record, settings.result_ttl_s, settings.results_per_function, now_ms())
    queue_log(pipe, ctx.keys, result.request_id, result.log, settings.result_ttl_s)
    return record
