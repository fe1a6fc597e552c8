"""The happy path through every layer: boto3 → API → Redis → worker → nsjail → result."""

from __future__ import annotations

import base64

from tests.stack import Stack, loads

HELLO = """
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    print("seen", event)
    return {"echo": event, "count": COUNT, "rid": context.aws_request_id}
"""


def test_sync_invoke_returns_handler_json_with_tail_log(stack: Stack) -> None:
    stack.start_worker()
    created = stack.create_function("hello", HELLO)
    assert created["FunctionArn"].endswith(":function:hello")
    resp = stack.lambda_client.invoke(FunctionName="hello", Payload=b'{"a": 1}', LogType="Tail")
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    body = loads(resp["Payload"].read())
    assert body["echo"] == {"a": 1} and body["count"] == 1
    log = base64.b64decode(resp["LogResult"]).decode()
    rid = body["rid"]
    assert log.startswith(f"START RequestId: {rid} Version: $LATEST\n")
    assert "seen {'a': 1}" in log
    assert f"END RequestId: {rid}\n" in log
    assert f"REPORT RequestId: {rid}\tDuration: " in log and "Init Duration: " in log
    again = loads(stack.lambda_client.invoke(FunctionName="hello", Payload=b"{}")["Payload"].read())
    assert again["count"] == 2  # warm environment reused
