"""The event path: Invoke(InvocationType=Event) → retries → DLQ / destinations, against a
live deployment (real workers, real nsjail, moto SQS). EVENTMILL_TIME_SCALE=0.01, so
Lambda's ~1 min / ~2 min retry delays are 0.6 s / 1.2 s and MaximumEventAgeInSeconds=60
is 0.6 s.

Attempts are counted with side channels the handler cannot fake: the Invocations metric
the worker increments per sandbox run, and the `attempts` of the invocation's result
record (one record per request id, rewritten by each attempt).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tests.parity.test_records import assert_same_shape, reference
from tests.stack import Stack, loads

FAILS = """
def handler(event, context):
    raise RuntimeError("always fails: " + str(event.get("order")))
"""

OK = """
def handler(event, context):
    return {"ok": True, "got": event}
"""

RECORDER = """
def handler(event, context):
    return {"received": event}
"""

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


def make_queue(stack: Stack, name: str) -> tuple[str, str]:
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=f"{stack.prefix.rstrip(':')}-{name}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def invoke_event(stack: Stack, name: str, payload: bytes) -> str:
    resp = stack.lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=payload)
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    rid: str = resp["ResponseMetadata"]["RequestId"]
    assert rid
    return rid


def redis_records(stack: Stack, name: str) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in stack.redis.lrange(stack.keys.destination_list(name), 0, -1)]


def settled(stack: Stack, function: str) -> bool:
    """Nothing of this function's is still scheduled, running or being delivered."""
    return stack.pending_events() == 0 and stack.redis.zcard(stack.keys.concurrency(function)) == 0


def test_always_failing_event_is_tried_three_times_then_dlq_and_on_failure(stack: Stack) -> None:
    dlq_url, dlq_arn = make_queue(stack, "dlq")
    fail_url, fail_arn = make_queue(stack, "onfail")
    stack.create_function("always", FAILS, Timeout=3, DeadLetterConfig={"TargetArn": dlq_arn})
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="always", DestinationConfig={"OnFailure": {"Destination": fail_arn}},
    )
    stack.start_worker()
    payload = b'{"order": 42,  "items": ["a", "b"], "note": "spacing \\u00e9 kept"}'
    rid = invoke_event(stack, "always", payload)

    dlq_msgs = stack.receive_all(dlq_url, expect=1, timeout=45)
    assert len(dlq_msgs) == 1, "event never reached the SQS dead-letter queue"
    fail_msgs = stack.receive_all(fail_url, expect=1, timeout=20)
    assert len(fail_msgs) == 1, "no OnFailure record"

    # exactly 3 attempts, counted by the worker (not the handler)
    results = stack.results("always")
    assert len(results) == 1, results
    assert results[0]["requestId"] == rid
    assert results[0]["attempts"] == 3 and results[0]["final"] is True
    assert results[0]["status"] == "error" and results[0]["invocationType"] == "Event"
    assert results[0]["error"]["errorMessage"] == "always fails: 42"
    assert stack.metric("always", "Invocations") == 3
    assert stack.metric("always", "Errors") == 3
    assert stack.metric("always", "AsyncEventsReceived") == 1
    assert stack.metric("always", "AsyncEventsDropped") == 1
    # retries were spaced by the (scaled) Lambda delays: ~0.6 s then ~1.2 s
    ours = stack.dlq("always")
    assert ours and ours[0]["discardedAt"] - ours[0]["receivedAt"] >= 1.75, ours

    # DLQ message: original event unchanged + AWS's attributes
    msg = dlq_msgs[0]
    assert msg["Body"] == payload.decode()
    attrs = msg["MessageAttributes"]
    assert attrs["RequestID"] == {"StringValue": rid, "DataType": "String"}
    assert attrs["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attrs["ErrorMessage"] == {"StringValue": "always fails: 42", "DataType": "String"}
    assert_same_shape(attrs, reference("dlq-message-attributes.json")["MessageAttributes"])

    # OnFailure: AWS's invocation record
    record = loads(fail_msgs[0]["Body"])
    assert_same_shape(record, reference("async-destination-failure.json"))
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": rid,
        "functionArn": ARN + "always:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == loads(payload)
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    error = record["responsePayload"]
    assert error["errorMessage"] == "always fails: 42"
    assert error["errorType"] == "RuntimeError"
    assert isinstance(error["stackTrace"], list) and error["stackTrace"]

    # our own DLQ keeps it too
    ours = stack.dlq("always")
    assert len(ours) == 1
    assert ours[0]["requestId"] == rid and ours[0]["condition"] == "RetriesExhausted" and ours[0]["attempts"] == 3
    assert ours[0]["event"] == loads(payload)

    # and nothing runs again
    stack.wait_for(lambda: settled(stack, "always"), what="event to be finished")  # no 4th attempt scheduled
    time.sleep(0.7)
    assert stack.results("always")[0]["attempts"] == 3
    assert stack.metric("always", "Invocations") == 3
    assert stack.receive_all(dlq_url, expect=1, timeout=1) == []


def test_max_retry_attempts_zero_means_one_attempt(stack: Stack) -> None:
    stack.create_function("once", FAILS)
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="once", MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": "redis:once-failures"}},
    )
    stack.start_worker()
    rid = invoke_event(stack, "once", b'{"order": 1}')
    records = stack.wait_for(lambda: redis_records(stack, "once-failures"), timeout=30, what="OnFailure record in redis:once-failures")
    assert len(records) == 1
    record = records[0]
    assert_same_shape(record, reference("async-destination-failure.json"))
    assert record["requestContext"]["requestId"] == rid
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    stack.wait_for(lambda: settled(stack, "once"), what="event to be finished")  # no retry scheduled
    assert [r["attempts"] for r in stack.results("once")] == [1]
    assert stack.metric("once", "Invocations") == 1
    assert [d["requestId"] for d in stack.dlq("once")] == [rid]


def test_max_retry_attempts_one_means_two_attempts(stack: Stack) -> None:
    stack.create_function("twice", FAILS)
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="twice", MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": "redis:twice"}},
    )
    stack.start_worker()
    invoke_event(stack, "twice", b'{"order": 2}')
    records = stack.wait_for(lambda: redis_records(stack, "twice"), timeout=30, what="OnFailure record")
    assert records[0]["requestContext"]["approximateInvokeCount"] == 2
    assert [r["attempts"] for r in stack.results("twice")] == [2]
    assert stack.metric("twice", "Invocations") == 2


def test_event_older_than_max_age_is_discarded_before_another_attempt(stack: Stack) -> None:
    """MaximumEventAgeInSeconds=60 (0.6 s scaled) with a failing handler and 2 retries
    allowed: the retry would come after the event's age limit, so it is dropped as
    EventAgeExceeded after fewer attempts than the retries allow."""
    stack.create_function("aged", FAILS)
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="aged", MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": "redis:aged"}},
    )
    stack.start_worker()
    rid = invoke_event(stack, "aged", b'{"order": 3}')
    records = stack.wait_for(lambda: redis_records(stack, "aged"), timeout=30, what="OnFailure record")
    record = records[0]
    assert_same_shape(record, reference("async-destination-failure.json"))
    assert record["requestContext"]["requestId"] == rid
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    attempts = record["requestContext"]["approximateInvokeCount"]
    assert 1 <= attempts < 3
    stack.wait_for(lambda: settled(stack, "aged"), what="event to be finished")  # no retry scheduled
    assert [r["attempts"] for r in stack.results("aged")] == [attempts]
    assert stack.metric("aged", "Invocations") == attempts
    assert [(d["requestId"], d["condition"]) for d in stack.dlq("aged")] == [(rid, "EventAgeExceeded")]


def test_event_already_too_old_is_never_attempted(stack: Stack) -> None:
    """Accepted while no worker runs; by the time one starts the event is past its
    MaximumEventAgeInSeconds (0.6 s): dropped with zero attempts, the function never runs."""
    dlq_url, dlq_arn = make_queue(stack, "old-dlq")
    stack.create_function("stale", OK, DeadLetterConfig={"TargetArn": dlq_arn})
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="stale", MaximumEventAgeInSeconds=60, DestinationConfig={"OnFailure": {"Destination": "redis:stale"}},
    )
    rid = invoke_event(stack, "stale", b'{"old": true}')
    time.sleep(1.2)
    stack.start_worker()
    records = stack.wait_for(lambda: redis_records(stack, "stale"), timeout=30, what="OnFailure record")
    record = records[0]
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == {"old": True}
    msgs = stack.receive_all(dlq_url, expect=1, timeout=20)
    assert len(msgs) == 1 and msgs[0]["Body"] == '{"old": true}'
    assert msgs[0]["MessageAttributes"]["RequestID"]["StringValue"] == rid
    assert stack.results("stale") == []
    assert stack.metric("stale", "Invocations") == 0


def test_on_success_gets_success_record(stack: Stack) -> None:
    ok_url, ok_arn = make_queue(stack, "onsuccess")
    stack.create_function("happy", OK)
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="happy", DestinationConfig={"OnSuccess": {"Destination": ok_arn}, "OnFailure": {"Destination": "redis:never"}},
    )
    stack.start_worker()
    rid = invoke_event(stack, "happy", b'{"n": 5}')
    msgs = stack.receive_all(ok_url, expect=1, timeout=30)
    assert len(msgs) == 1
    record = loads(msgs[0]["Body"])
    assert_same_shape(record, reference("async-destination-success.json"))
    assert record["requestContext"] == {
        "requestId": rid, "functionArn": ARN + "happy:$LATEST", "condition": "Success", "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"n": 5}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"ok": True, "got": {"n": 5}}
    results = stack.results("happy")
    assert [(r["requestId"], r["status"], r["payload"]) for r in results] == [(rid, "success", {"ok": True, "got": {"n": 5}})]
    assert redis_records(stack, "never") == []
    assert stack.dlq("happy") == []


def test_on_success_to_redis_destination(stack: Stack) -> None:
    stack.create_function("happy2", OK)
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="happy2", DestinationConfig={"OnSuccess": {"Destination": "redis:wins"}},
    )
    stack.start_worker()
    rids = {invoke_event(stack, "happy2", orjson.dumps({"i": i})) for i in range(3)}
    records = stack.wait_for(lambda: len(redis_records(stack, "wins")) == 3 and redis_records(stack, "wins"), timeout=30, what="3 success records")
    assert {r["requestContext"]["requestId"] for r in records} == rids
    assert all(r["requestContext"]["condition"] == "Success" for r in records)
    assert sorted(r["responsePayload"]["got"]["i"] for r in records) == [0, 1, 2]


def test_lambda_function_destinations(stack: Stack) -> None:
    """A function destination receives the record as the payload of an async invoke."""
    stack.create_function("sink", RECORDER)
    stack.create_function("src-fail", FAILS)
    stack.create_function("src-ok", OK)
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="src-fail", MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": ARN + "sink"}},
    )
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="src-ok", DestinationConfig={"OnSuccess": {"Destination": ARN + "sink:$LATEST"}},
    )
    stack.start_worker()
    failed_rid = invoke_event(stack, "src-fail", b'{"order": 9}')
    ok_rid = invoke_event(stack, "src-ok", b'{"fine": 1}')
    results = stack.wait_for(lambda: len(stack.results("sink")) == 2 and stack.results("sink"), timeout=30, what="sink to run twice")
    assert all(r["invocationType"] == "Event" and r["status"] == "success" for r in results)
    by_rid = {r["event"]["requestContext"]["requestId"]: r["event"] for r in results}
    assert set(by_rid) == {failed_rid, ok_rid}
    failure = by_rid[failed_rid]
    assert_same_shape(failure, reference("async-destination-failure.json"))
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["functionArn"] == ARN + "src-fail:$LATEST"
    assert failure["responsePayload"]["errorType"] == "RuntimeError"
    success = by_rid[ok_rid]
    assert_same_shape(success, reference("async-destination-success.json"))
    assert success["responsePayload"] == {"ok": True, "got": {"fine": 1}}
    assert stack.metric("sink", "AsyncEventsReceived") == 2


def test_timeout_is_a_function_error_and_retried(stack: Stack) -> None:
    stack.create_function("slowpoke", """
import time
def handler(event, context):
    time.sleep(5)
""", Timeout=1)
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="slowpoke", MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": "redis:slow"}},
    )
    stack.start_worker()
    rid = invoke_event(stack, "slowpoke", b"{}")
    record = stack.wait_for(lambda: redis_records(stack, "slow"), timeout=40, what="OnFailure record")[0]
    assert record["requestContext"]["requestId"] == rid
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert "timed out" in record["responsePayload"]["errorMessage"].lower()
    assert stack.metric("slowpoke", "Errors") == 2


def test_failure_delivery_to_missing_queue_is_counted(stack: Stack) -> None:
    """A destination that refuses counts DestinationDeliveryFailures / DeadLetterErrors;
    the event is still finished (in our DLQ) and not retried forever."""
    missing = "arn:aws:sqs:us-east-1:123456789012:" + stack.prefix.rstrip(":") + "-does-not-exist"
    stack.create_function("lost", FAILS, DeadLetterConfig={"TargetArn": missing})
    stack.lambda_client.put_function_event_invoke_config(
        FunctionName="lost", MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": missing}},
    )
    stack.start_worker()
    rid = invoke_event(stack, "lost", b'{"order": 0}')
    stack.wait_for(lambda: stack.metric("lost", "DestinationDeliveryFailures") == 1, timeout=30, what="DestinationDeliveryFailures")
    assert stack.metric("lost", "DeadLetterErrors") == 1
    assert [d["requestId"] for d in stack.dlq("lost")] == [rid]
    stack.wait_for(lambda: settled(stack, "lost"), what="event to be finished")


def test_async_events_run_while_sync_requests_keep_one_worker_busy(stack: Stack) -> None:
    """A steady stream of sync invokes (as the pollers send batches) on one worker still
    lets a due async event run: the dispatcher does not only serve sync requests."""
    import threading

    stack.start_worker()
    stack.create_function("busy", "import time\ndef handler(event, context):\n    time.sleep(0.05)\n    return event\n")
    stop = threading.Event()

    def keep_busy() -> None:
        client = stack.client("lambda", endpoint_url=stack.api.url)
        while not stop.is_set():
            client.invoke(FunctionName="busy", Payload=b'{"sync": true}')

    load = [threading.Thread(target=keep_busy, daemon=True) for _ in range(3)]
    for thread in load:
        thread.start()
    try:
        time.sleep(0.5)
        stack.lambda_client.invoke(FunctionName="busy", InvocationType="Event", Payload=b'{"async": true}')
        stack.wait_for(lambda: any(r["event"] == {"async": True} for r in stack.results("busy")), timeout=10, what="the async event to run")
        assert all(thread.is_alive() for thread in load), "the sync load was still running"
    finally:
        stop.set()
        for thread in load:
            thread.join(30)
