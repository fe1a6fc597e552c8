"""Reserved concurrency: a limit across all workers, throttling for sync (429) and async
(retried with back-off, Throttles metric), and 0 meaning "never run"."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_async import invoke_event, make_queue, redis_records
from tests.stack import Stack, loads

TIMED = """
import time
def handler(event, context):
    start = time.time()
    time.sleep(event.get("sleep", 0.05))
    return {"i": event.get("i"), "start": start, "end": time.time()}
"""


def test_reserved_one_never_overlaps_across_workers(stack: Stack) -> None:
    stack.create_function("serial", TIMED, Timeout=3)
    stack.lambda_client.put_function_concurrency(FunctionName="serial", ReservedConcurrentExecutions=1)
    stack.start_worker(2)
    rids = {invoke_event(stack, "serial", orjson.dumps({"i": i, "sleep": 0.05})) for i in range(20)}
    results = stack.wait_for(
        lambda: (r := stack.results("serial")) and len(r) == 20 and r, timeout=90, interval=0.2, what="20 results",
    )
    assert {r["requestId"] for r in results} == rids
    assert all(r["status"] == "success" for r in results), [r["error"] for r in results if r["status"] != "success"]
    assert sorted(r["payload"]["i"] for r in results) == list(range(20))
    spans = sorted((r["payload"]["start"], r["payload"]["end"]) for r in results)
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert s2 >= e1, f"two invocations ran at once: [{s1}, {e1}] and [{s2}, {e2}]"
    assert stack.metric("serial", "Throttles") > 0, "2 workers and 20 events but nothing was throttled"
    assert stack.metric("serial", "Invocations") == 20  # throttles are not invocations
    assert stack.metric("serial", "Errors") == 0
    assert all(r["attempts"] == 1 for r in results)  # throttles do not use up retries
    assert stack.dlq("serial") == []


def test_unreserved_runs_in_parallel(stack: Stack) -> None:
    """Control for the test above: without a limit two workers do overlap, so the
    overlap check can fail."""
    stack.create_function("parallel", TIMED, Timeout=3)
    stack.start_worker(2)
    for i in range(4):
        invoke_event(stack, "parallel", orjson.dumps({"i": i, "sleep": 0.6}))
    results = stack.wait_for(lambda: (r := stack.results("parallel")) and len(r) == 4 and r, timeout=60, what="4 results")
    spans = sorted((r["payload"]["start"], r["payload"]["end"]) for r in results)
    assert any(s2 < e1 for (_s1, e1), (s2, _e2) in zip(spans, spans[1:])), spans


def _sync_in_thread(stack: Stack, name: str, payload: dict[str, Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            resp = stack.lambda_client.invoke(FunctionName=name, Payload=orjson.dumps(payload))
            box["resp"] = resp
            box["body"] = loads(resp["Payload"].read())
        except Exception as exc:  # reported by the test
            box["exc"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_sync_invoke_at_the_limit_gets_429(stack: Stack) -> None:
    stack.create_function("narrow", TIMED, Timeout=10)
    stack.lambda_client.put_function_concurrency(FunctionName="narrow", ReservedConcurrentExecutions=1)
    stack.start_worker(2)
    stack.lambda_client.invoke(FunctionName="narrow", Payload=b'{"sleep": 0}')  # warm up
    holder, box = _sync_in_thread(stack, "narrow", {"i": "holder", "sleep": 3})
    stack.wait_for(lambda: stack.redis.zcard(stack.keys.concurrency("narrow")) > 0, timeout=20, what="the slow invoke to hold the slot")
    with pytest.raises(ClientError) as info:
        stack.lambda_client.invoke(FunctionName="narrow", Payload=b'{"i": "second"}')
    err = info.value.response
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err.get("Reason") == "ReservedFunctionConcurrentInvocationLimitExceeded", err
    holder.join(30)
    assert "exc" not in box, box.get("exc")
    assert box["body"]["i"] == "holder"
    assert stack.metric("narrow", "Throttles") >= 1
    # the slot is free again
    assert loads(stack.lambda_client.invoke(FunctionName="narrow", Payload=b'{"i": 3}')["Payload"].read())["i"] == 3


def test_reserved_zero_sync_429_and_async_straight_to_dlq(stack: Stack) -> None:
    dlq_url, dlq_arn = make_queue(stack, "zero-dlq")
    stack.create_function("zero", TIMED, DeadLetterConfig={"TargetArn": dlq_arn})
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="zero", DestinationConfig={"OnFailure": {"Destination": "redis:zero"}},
    )
    stack.lambda_client.put_function_concurrency(FunctionName="zero", ReservedConcurrentExecutions=0)
    stack.start_worker()
    with pytest.raises(ClientError) as info:
        stack.lambda_client.invoke(FunctionName="zero", Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert info.value.response.get("Reason") == "ReservedFunctionConcurrentInvocationLimitExceeded"

    started = time.monotonic()
    rid = invoke_event(stack, "zero", b'{"z": 0}')
    msgs = stack.receive_all(dlq_url, expect=1, timeout=30)
    assert len(msgs) == 1
    assert time.monotonic() - started < 15  # no retry schedule (0.6 s + 1.2 s + throttle back-offs up to 216 s)
    assert msgs[0]["Body"] == '{"z": 0}'
    assert msgs[0]["MessageAttributes"]["RequestID"]["StringValue"] == rid
    record = stack.wait_for(lambda: redis_records(stack, "zero"), timeout=20, what="OnFailure record")[0]
    assert record["requestContext"]["requestId"] == rid
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == {"z": 0}
    assert stack.metric("zero", "Invocations") == 0
    assert stack.results("zero") == []
    assert [d["requestId"] for d in stack.dlq("zero")] == [rid]

    # lifting the limit lets the function run again
    stack.lambda_client.delete_function_concurrency(FunctionName="zero")
    assert "start" in loads(stack.lambda_client.invoke(FunctionName="zero", Payload=b'{"sleep": 0}')["Payload"].read())
