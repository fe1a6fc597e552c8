"""The Lambda control-plane and Invoke API through boto3, against a live deployment."""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.stack import Stack, loads, zip_source

COUNTER = """
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    return {"version": "v1", "count": COUNT, "event": event}
"""

COUNTER_V2 = COUNTER.replace('"v1"', '"v2"')

RAISES = """
def handler(event, context):
    print("about to fail")
    raise ValueError("bad value: " + str(event.get("x")))
"""


def raw_request(stack: Stack, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(stack.api.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def invoke_json(stack: Stack, name: str, payload: bytes = b"{}") -> dict:
    resp = stack.lambda_client.invoke(FunctionName=name, Payload=payload)
    assert resp["StatusCode"] == 200, resp
    assert "FunctionError" not in resp, loads(resp["Payload"].read())
    return loads(resp["Payload"].read())  # type: ignore[no-any-return]


def test_function_lifecycle(stack: Stack) -> None:
    lam = stack.lambda_client
    stack.start_worker()
    created = stack.create_function("life", COUNTER, Timeout=5, MemorySize=256, Environment={"Variables": {"GREETING": "hi"}})
    assert created["FunctionName"] == "life"
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:life"
    assert created["Runtime"] == "python3.11" and created["Handler"] == "app.handler"
    assert created["Timeout"] == 5 and created["MemorySize"] == 256
    assert created["State"] == "Active"
    assert created["CodeSha256"] and created["CodeSize"] > 0

    got = lam.get_function(FunctionName="life")
    assert got["Configuration"]["FunctionArn"] == created["FunctionArn"]
    assert got["Configuration"]["Environment"] == {"Variables": {"GREETING": "hi"}}
    assert "Location" in got["Code"]
    conf = lam.get_function_configuration(FunctionName="life")
    assert conf["RevisionId"] == created["RevisionId"]
    assert conf["EphemeralStorage"] == {"Size": 512}

    stack.create_function("life2", COUNTER)
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert {"life", "life2"} <= set(names)
    page = lam.list_functions(MaxItems=1)
    assert len(page["Functions"]) == 1 and page["NextMarker"]

    # invoke returns the handler's JSON; the warm environment keeps module globals
    assert invoke_json(stack, "life", b'{"k": [1, 2]}') == {"version": "v1", "count": 1, "event": {"k": [1, 2]}}
    assert invoke_json(stack, "life")["count"] == 2

    # new code -> fresh environment: the module-global counter starts over
    updated = lam.update_function_code(FunctionName="life", ZipFile=zip_source({"app.py": COUNTER_V2}))
    assert updated["CodeSha256"] != created["CodeSha256"]
    assert updated["RevisionId"] != created["RevisionId"]
    body = invoke_json(stack, "life")
    assert body["version"] == "v2" and body["count"] == 1

    # configuration change is visible and also gets a new revision
    changed = lam.update_function_configuration(FunctionName="life", Timeout=7, Environment={"Variables": {"GREETING": "yo"}})
    assert changed["Timeout"] == 7 and changed["Environment"] == {"Variables": {"GREETING": "yo"}}
    assert changed["MemorySize"] == 256  # untouched fields stay
    assert lam.get_function_configuration(FunctionName="life")["Timeout"] == 7
    with pytest.raises(ClientError) as info:
        lam.update_function_configuration(FunctionName="life", Timeout=8, RevisionId="stale")
    assert info.value.response["Error"]["Code"] == "PreconditionFailedException"

    lam.delete_function(FunctionName="life")
    with pytest.raises(ClientError) as info:
        lam.get_function(FunctionName="life")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "life" not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    with pytest.raises(ClientError) as info:
        lam.delete_function(FunctionName="life")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as info:
        stack.create_function("life2", COUNTER)
    assert info.value.response["Error"]["Code"] == "ResourceConflictException"


def test_env_vars_reach_the_handler(stack: Stack) -> None:
    stack.start_worker()
    stack.create_function("envy", """
import os
def handler(event, context):
    return {"g": os.environ.get("GREETING"), "fn": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"), "mem": context.memory_limit_in_mb}
""", Environment={"Variables": {"GREETING": "hi"}}, MemorySize=192)
    assert invoke_json(stack, "envy") == {"g": "hi", "fn": "envy", "mem": "192"}
    stack.lambda_client.update_function_configuration(FunctionName="envy", Environment={"Variables": {"GREETING": "bye"}})
    assert invoke_json(stack, "envy")["g"] == "bye"


def test_unhandled_error_gives_aws_error_payload_and_tail(stack: Stack) -> None:
    stack.start_worker()
    stack.create_function("raiser", RAISES)
    resp = stack.lambda_client.invoke(FunctionName="raiser", Payload=b'{"x": 7}', LogType="Tail")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    body = loads(resp["Payload"].read())
    assert body["errorMessage"] == "bad value: 7"
    assert body["errorType"] == "ValueError"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]
    assert any("app.py" in frame and "handler" in frame for frame in body["stackTrace"])
    log = base64.b64decode(resp["LogResult"]).decode()
    rid = resp["ResponseMetadata"]["RequestId"]
    assert f"START RequestId: {rid} Version: $LATEST" in log
    assert "about to fail" in log
    assert f"END RequestId: {rid}" in log
    assert f"REPORT RequestId: {rid}\tDuration: " in log
    # the result store saw it as an error
    results = stack.results("raiser")
    assert [r["status"] for r in results] == ["error"]
    assert results[0]["error"]["errorType"] == "ValueError"


def test_log_tail_is_last_4kb(stack: Stack) -> None:
    stack.start_worker()
    stack.create_function("chatty", """
def handler(event, context):
    for i in range(400):
        print("line %04d %s" % (i, "x" * 40))
    return 1
""")
    resp = stack.lambda_client.invoke(FunctionName="chatty", LogType="Tail")
    log = base64.b64decode(resp["LogResult"])
    assert len(log) <= 4096
    assert b"REPORT RequestId:" in log and b"line 0399" in log and b"line 0000" not in log
    assert "LogResult" not in stack.lambda_client.invoke(FunctionName="chatty")


def test_dry_run_returns_204_without_running(stack: Stack) -> None:
    stack.create_function("dry", COUNTER)
    resp = stack.lambda_client.invoke(FunctionName="dry", InvocationType="DryRun", Payload=b'{"a": 1}')
    assert resp["StatusCode"] == 204
    assert stack.results("dry") == []
    with pytest.raises(ClientError) as info:
        stack.lambda_client.invoke(FunctionName="nope", InvocationType="DryRun")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_event_invoke_config_crud(stack: Stack) -> None:
    lam = stack.lambda_client
    stack.create_function("eic", COUNTER)
    with pytest.raises(ClientError) as info:
        lam.get_function_event_invoke_config(FunctionName="eic")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert lam.list_function_event_invoke_configs(FunctionName="eic")["FunctionEventInvokeConfigs"] == []

    q = "arn:aws:sqs:us-east-1:123456789012:somewhere"
    put = lam.put_function_event_invoke_config(
        FunctionName="eic", MaximumRetryAttempts=1, MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnFailure": {"Destination": q}},
    )
    assert put["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:eic:$LATEST"
    assert put["MaximumRetryAttempts"] == 1 and put["MaximumEventAgeInSeconds"] == 120
    assert put["DestinationConfig"]["OnFailure"] == {"Destination": q}
    assert "LastModified" in put

    got = lam.get_function_event_invoke_config(FunctionName="eic")
    assert got["MaximumRetryAttempts"] == 1 and got["DestinationConfig"]["OnFailure"] == {"Destination": q}

    upd = lam.update_function_event_invoke_config(FunctionName="eic", MaximumRetryAttempts=0)
    assert upd["MaximumRetryAttempts"] == 0
    assert upd["MaximumEventAgeInSeconds"] == 120  # update keeps what it does not name
    assert upd["DestinationConfig"]["OnFailure"] == {"Destination": q}

    # put replaces the whole config
    put2 = lam.put_function_event_invoke_config(FunctionName="eic", MaximumEventAgeInSeconds=300)
    assert put2["MaximumRetryAttempts"] == 2
    assert put2["DestinationConfig"].get("OnFailure", {}) == {}

    listed = lam.list_function_event_invoke_configs(FunctionName="eic")["FunctionEventInvokeConfigs"]
    assert len(listed) == 1 and listed[0]["MaximumEventAgeInSeconds"] == 300

    lam.delete_function_event_invoke_config(FunctionName="eic")
    with pytest.raises(ClientError) as info:
        lam.get_function_event_invoke_config(FunctionName="eic")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as info:
        lam.put_function_event_invoke_config(FunctionName="missing", MaximumRetryAttempts=0)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_function_concurrency_crud(stack: Stack) -> None:
    lam = stack.lambda_client
    stack.create_function("conc", COUNTER)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="conc")
    assert lam.put_function_concurrency(FunctionName="conc", ReservedConcurrentExecutions=3)["ReservedConcurrentExecutions"] == 3
    assert lam.get_function_concurrency(FunctionName="conc")["ReservedConcurrentExecutions"] == 3
    assert lam.get_function(FunctionName="conc")["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    lam.delete_function_concurrency(FunctionName="conc")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="conc")
    # boto3 refuses -1 itself, so send it raw
    status, headers, body = raw_request(stack, "PUT", "/2017-10-31/functions/conc/concurrency", b'{"ReservedConcurrentExecutions": -1}')
    assert status == 400 and headers["X-Amzn-ErrorType"] == "ValidationException", body
    assert lam.get_function_concurrency(FunctionName="conc").get("ReservedConcurrentExecutions") is None
    with pytest.raises(ClientError) as info:
        lam.get_function_concurrency(FunctionName="missing")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_metrics_endpoint_is_prometheus_text(stack: Stack) -> None:
    stack.start_worker()
    stack.create_function("metered", COUNTER)
    stack.create_function("broken", RAISES)
    invoke_json(stack, "metered")
    invoke_json(stack, "metered")
    stack.lambda_client.invoke(FunctionName="broken")
    stack.lambda_client.invoke(FunctionName="metered", InvocationType="Event", Payload=b"{}")
    stack.wait_for(lambda: len(stack.results("metered")) == 3, what="async result")
    with urllib.request.urlopen(f"{stack.api.url}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    # prometheus_client may suffix counters with _total; accept either spelling
    def sample(metric: str, fn: str) -> float:
        for name in (f'eventmill_{metric}{{function="{fn}"}}', f'eventmill_{metric}_total{{function="{fn}"}}'):
            if name in samples:
                return samples[name]
        raise AssertionError(f"no {metric} for {fn} in:\n{text}")

    assert sample("invocations", "metered") == 3
    assert sample("invocations", "broken") == 1
    assert sample("errors", "broken") == 1
    assert sample("async_events_received", "metered") == 1
    assert re.search(r"^# TYPE eventmill_invocations(_total)? counter$", text, re.M), text
    assert 'eventmill_duration_count{function="metered"} 3.0' in text


def test_concurrent_changes_to_one_function_all_land(stack: Stack) -> None:
    """UpdateFunctionConfiguration, PutFunctionConcurrency and PutFunctionEventInvokeConfig
    racing on one function each change their own field; none overwrites another's."""
    import concurrent.futures

    stack.create_function("racy", "def handler(event, context):\n    return 1\n")
    clients = [stack.client("lambda", endpoint_url=stack.api.url) for _ in range(3)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        for round_ in range(1, 16):
            calls = [
                pool.submit(clients[0].update_function_configuration, FunctionName="racy", Timeout=round_ + 1),
                pool.submit(clients[1].put_function_concurrency, FunctionName="racy", ReservedConcurrentExecutions=round_),
                pool.submit(clients[2].put_function_event_invoke_config, FunctionName="racy", MaximumRetryAttempts=round_ % 3),
            ]
            for call in calls:
                call.result()
            got = stack.lambda_client.get_function(FunctionName="racy")
            ic = stack.lambda_client.get_function_event_invoke_config(FunctionName="racy")
            assert (got["Configuration"]["Timeout"], got["Concurrency"]["ReservedConcurrentExecutions"], ic["MaximumRetryAttempts"]) == (
                round_ + 1, round_, round_ % 3), f"round {round_}"


def test_concurrent_creates_of_one_name_make_one_function(stack: Stack) -> None:
    import concurrent.futures

    def create(_: int) -> str:
        try:
            stack.create_function("once", "def handler(event, context):\n    return 1\n")
            return "created"
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(create, range(4)))
    assert outcomes == ["ResourceConflictException"] * 3 + ["created"]
