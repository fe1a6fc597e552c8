"""Invoke: RequestResponse waits for a worker's outcome; Event is made durable and answers
202; DryRun checks the function and the payload."""

from __future__ import annotations

from aiohttp import web

from broker.api.app import state
from broker.config import resolve_name
from broker.errors import InvalidParameterValueException, LambdaError, ResourceNotFoundException, TooManyRequestsException
from broker.invocation import ASYNC_MAX_BYTES, CLIENT_CONTEXT_MAX, SYNC_MAX_BYTES, check_payload, invoke_and_wait
from broker.events import AsyncEvent, new_request_id, now_ms, queue_accept
from broker.metrics import function_scope, incr

# A sync invoke waits for a worker up to the function timeout plus this much queueing.
QUEUE_WAIT_S = 60.0


async def invoke(request: web.Request) -> web.StreamResponse:
    st = state(request)
    name, qualifier = resolve_name(request.match_info["name"])
    qualifier = request.query.get("Qualifier", qualifier)
    if qualifier not in (None, "$LATEST"):
        raise ResourceNotFoundException(f"Function not found: arn:aws:lambda:{st.settings.region}:123456789012:function:{name}:{qualifier}", Type="User")
    invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
    if invocation_type not in ("RequestResponse", "Event", "DryRun"):
        raise InvalidParameterValueException(f"Invalid invocation type: {invocation_type}. Valid values: RequestResponse, Event, DryRun")
    raw = await request.read()
    config = await st.registry.get(name)
    limit = ASYNC_MAX_BYTES if invocation_type == "Event" else SYNC_MAX_BYTES
    payload = check_payload(raw, limit)
    if invocation_type == "DryRun":
        return web.Response(status=204)
    request_id = new_request_id()
    if invocation_type == "Event":
        event = AsyncEvent(request_id, name, payload, now_ms())
        async with st.redis.pipeline(transaction=True) as pipe:
            queue_accept(pipe, st.keys, event)
            incr(pipe, st.keys, function_scope(name), "AsyncEventsReceived")
            await pipe.execute()
        return web.Response(status=202, headers={"X-Amzn-RequestId": request_id})
    client_context = request.headers.get("X-Amz-Client-Context")
    if client_context and len(client_context) > CLIENT_CONTEXT_MAX:
        raise InvalidParameterValueException(f"Client context must be {CLIENT_CONTEXT_MAX} bytes or less")
    log_type = request.headers.get("X-Amz-Log-Type", "None")
    if config.reserved_concurrency == 0:
        raise _throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
    try:
        reply = await invoke_and_wait(
            st.redis, st.keys, name, payload, timeout_s=config.timeout_s + QUEUE_WAIT_S,
            log_type=log_type, client_context=client_context,
        )
    except TimeoutError as exc:
        raise LambdaError(str(exc)) from None
    request_id = reply["requestId"]
    if reply.get("error") == "TooManyRequestsException":
        raise _throttled(reply.get("reason", "ReservedFunctionConcurrentInvocationLimitExceeded"))
    if reply.get("error"):
        raise ResourceNotFoundException(reply.get("message", ""), Type="User")
    headers = {"X-Amzn-RequestId": request_id, "X-Amz-Executed-Version": reply.get("executedVersion") or "$LATEST"}
    if reply.get("functionError"):
        headers["X-Amz-Function-Error"] = reply["functionError"]
    if reply.get("logResult"):
        headers["X-Amz-Log-Result"] = reply["logResult"]
    return web.Response(body=reply["payload"].encode(), status=200, content_type="application/json", headers=headers)


def _throttled(reason: str) -> TooManyRequestsException:
    return TooManyRequestsException("Rate Exceeded.", Reason=reason, retryAfterSeconds="1")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/2015-03-31/functions/{name}/invocations", invoke)
