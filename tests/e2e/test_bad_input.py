"""Bad input gets AWS's error name (what boto3 shows as Error.Code) and a clear message,
and the server keeps serving afterwards."""

from __future__ import annotations

import base64
from typing import Any, Callable

import orjson
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from tests.e2e.test_api import raw_request
from tests.stack import Stack, loads, zip_source

ECHO = """
def handler(event, context):
    return {"echo": event}
"""


@pytest.fixture
def live(stack: Stack) -> Stack:
    stack.start_worker()
    stack.create_function("echo", ECHO)
    return stack


def still_serving(stack: Stack) -> None:
    resp = stack.lambda_client.invoke(FunctionName="echo", Payload=b'{"still": "ok"}')
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert loads(resp["Payload"].read()) == {"echo": {"still": "ok"}}


def expect_error(call: Callable[[], Any], code: str, status: int, *fragments: str) -> str:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    assert response["Error"]["Code"] == code, response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
    message = response["Error"].get("Message") or response.get("message") or ""
    assert message, f"{code} without a message"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return str(message)


def test_non_json_payload(live: Stack) -> None:
    for body in (b"not json", b'{"open": ', b"\xff\xfe"):
        expect_error(lambda: live.lambda_client.invoke(FunctionName="echo", Payload=body), "InvalidRequestContentException", 400, "Could not parse")
        expect_error(lambda: live.lambda_client.invoke(FunctionName="echo", InvocationType="Event", Payload=body), "InvalidRequestContentException", 400)
    assert live.pending_events() == 0
    still_serving(live)


def test_unknown_function(live: Stack) -> None:
    lam = live.lambda_client
    msg = expect_error(lambda: lam.invoke(FunctionName="ghost", Payload=b"{}"), "ResourceNotFoundException", 404, "ghost")
    assert "arn:aws:lambda:us-east-1:123456789012:function:ghost" in msg
    expect_error(lambda: lam.invoke(FunctionName="ghost", InvocationType="Event", Payload=b"{}"), "ResourceNotFoundException", 404)
    expect_error(lambda: lam.get_function(FunctionName="ghost"), "ResourceNotFoundException", 404)
    expect_error(lambda: lam.get_function_configuration(FunctionName="ghost"), "ResourceNotFoundException", 404)
    expect_error(lambda: lam.update_function_configuration(FunctionName="ghost", Timeout=3), "ResourceNotFoundException", 404)
    expect_error(lambda: lam.update_function_code(FunctionName="ghost", ZipFile=zip_source({"app.py": ECHO})), "ResourceNotFoundException", 404)
    expect_error(lambda: lam.invoke(FunctionName="echo", Qualifier="7", Payload=b"{}"), "ResourceNotFoundException", 404)
    assert live.pending_events() == 0
    still_serving(live)


def test_oversize_payloads(live: Stack) -> None:
    lam = live.lambda_client
    big_async = orjson.dumps({"pad": "x" * (1024 * 1024 + 100 * 1024)})  # ~1.1 MB
    expect_error(lambda: lam.invoke(FunctionName="echo", InvocationType="Event", Payload=big_async), "RequestEntityTooLargeException", 413)
    assert live.pending_events() == 0
    big_sync = orjson.dumps({"pad": "x" * (7 * 1024 * 1024)})  # ~7 MB
    expect_error(lambda: lam.invoke(FunctionName="echo", Payload=big_sync), "RequestEntityTooLargeException", 413)
    # just under the async limit is fine
    ok_async = orjson.dumps({"pad": "x" * (1000 * 1024)})
    assert lam.invoke(FunctionName="echo", InvocationType="Event", Payload=ok_async)["StatusCode"] == 202
    live.wait_for(lambda: len(live.results("echo")) == 1, timeout=30, what="the large async event to run")
    still_serving(live)


BAD_CREATE = [
    ({"MemorySize": 64}, "ValidationException", ("memorySize", "128")),
    ({"MemorySize": 20000}, "ValidationException", ("memorySize",)),
    ({"Timeout": 901}, "ValidationException", ("timeout", "900")),
    ({"Timeout": 0}, "ValidationException", ("timeout",)),
    ({"Runtime": "python2.1"}, "ValidationException", ("runtime", "python2.1")),
    ({"EphemeralStorage": {"Size": 100}}, "ValidationException", ("ephemeralStorage.size", "512")),
    ({"Environment": {"Variables": {"AWS_REGION": "eu-west-1"}}}, "InvalidParameterValueException", ("reserved", "AWS_REGION")),
    ({"DeadLetterConfig": {"TargetArn": "arn:aws:s3:::bucket"}}, "InvalidParameterValueException", ("arn:aws:s3:::bucket",)),
]


def _check_raw(stack: Stack, method: str, path: str, body: dict[str, Any], code: str, fragments: tuple[str, ...]) -> None:
    status, headers, raw = raw_request(stack, method, path, orjson.dumps(body))
    assert status == 400, (body, raw)
    assert headers.get("X-Amzn-ErrorType") == code, (body, headers, raw)
    message = orjson.loads(raw)["message"]
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_bad_function_config(live: Stack) -> None:
    """Create and UpdateFunctionConfiguration, through boto3 where botocore lets the value
    through (it refuses some below-minimum values itself) and always as raw HTTP."""
    lam = live.lambda_client
    zipped = zip_source({"app.py": ECHO})
    for change, code, fragments in BAD_CREATE:
        body: dict[str, Any] = {"FunctionName": "badfn", "Runtime": "python3.11", "Handler": "app.handler",
                                "Role": "arn:aws:iam::123456789012:role/r", "Code": {"ZipFile": zipped}, **change}
        try:
            expect_error(lambda: lam.create_function(**body), code, 400, *fragments)
        except ParamValidationError:
            pass  # botocore refused to send it; the raw request below still checks the server
        raw_body = {**body, "Code": {"ZipFile": base64.b64encode(zipped).decode()}}
        _check_raw(live, "POST", "/2015-03-31/functions", raw_body, code, fragments)
        expect_error(lambda: lam.get_function(FunctionName="badfn"), "ResourceNotFoundException", 404)
        try:
            expect_error(lambda: lam.update_function_configuration(FunctionName="echo", **change), code, 400, *fragments)
        except ParamValidationError:
            pass
        _check_raw(live, "PUT", "/2015-03-31/functions/echo/configuration", change, code, fragments)
        conf = lam.get_function_configuration(FunctionName="echo")
        assert (conf["MemorySize"], conf["Timeout"], conf["Runtime"], conf["EphemeralStorage"]["Size"]) == (128, 3, "python3.11", 512)
        assert conf["Environment"]["Variables"] == {} and "DeadLetterConfig" not in conf
        still_serving(live)


def test_bad_runtime_on_update(live: Stack) -> None:
    expect_error(lambda: live.lambda_client.update_function_configuration(FunctionName="echo", Runtime="python2.1"), "ValidationException", 400, "python2.1")
    assert live.lambda_client.get_function_configuration(FunctionName="echo")["Runtime"] == "python3.11"
    still_serving(live)


SQS_ARN = "arn:aws:sqs:us-east-1:123456789012:somewhere"
BAD_INVOKE_CONFIG = [
    ({"MaximumRetryAttempts": 3}, "ValidationException", ("maximumRetryAttempts",)),
    ({"MaximumEventAgeInSeconds": 30}, "ValidationException", ("maximumEventAgeInSeconds", "60")),
    ({"MaximumEventAgeInSeconds": 30000}, "ValidationException", ("maximumEventAgeInSeconds",)),
    ({"DestinationConfig": {"OnFailure": {"Destination": "not-an-arn"}}}, "InvalidParameterValueException", ("not-an-arn",)),
    ({"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:s3:::bucket"}}}, "InvalidParameterValueException", ("arn:aws:s3:::bucket",)),
    ({"DestinationConfig": {"OnFailure": {"Destination": SQS_ARN + ".fifo"}}}, "InvalidParameterValueException", ("FIFO",)),
]


def test_bad_event_invoke_config(live: Stack) -> None:
    """Sent raw: boto3 itself refuses some of these values before they reach a server."""
    lam = live.lambda_client
    lam.put_function_event_invoke_config(FunctionName="echo", MaximumRetryAttempts=1)
    for body, code, fragments in BAD_INVOKE_CONFIG:
        for method in ("PUT", "POST"):  # Put and Update
            _check_raw(live, method, "/2019-09-25/functions/echo/event-invoke-config", body, code, fragments)
        # the stored config is unchanged
        got = lam.get_function_event_invoke_config(FunctionName="echo")
        assert got["MaximumRetryAttempts"] == 1 and got["MaximumEventAgeInSeconds"] == 21600
        assert not got["DestinationConfig"].get("OnFailure") and not got["DestinationConfig"].get("OnSuccess")
        still_serving(live)


def test_bad_event_invoke_config_through_boto3(live: Stack) -> None:
    """The ones boto3 lets through arrive as AWS's error codes."""
    lam = live.lambda_client
    expect_error(lambda: lam.put_function_event_invoke_config(FunctionName="echo", DestinationConfig={"OnFailure": {"Destination": "bogus:dest"}}),
                 "InvalidParameterValueException", 400, "bogus:dest")
    expect_error(lambda: lam.update_function_event_invoke_config(FunctionName="echo", MaximumEventAgeInSeconds=60, DestinationConfig={"OnSuccess": {"Destination": "nope"}}),
                 "InvalidParameterValueException", 400, "nope")
    still_serving(live)


def test_malformed_request_bodies(live: Stack) -> None:
    for method, path in (
        ("POST", "/2015-03-31/functions"),
        ("PUT", "/2015-03-31/functions/echo/configuration"),
        ("PUT", "/2019-09-25/functions/echo/event-invoke-config"),
        ("PUT", "/2017-10-31/functions/echo/concurrency"),
    ):
        for body in (b"{not json", b"[1, 2]"):
            status, headers, raw = raw_request(live, method, path, body)
            assert status == 400, (method, path, raw)
            assert headers.get("X-Amzn-ErrorType") == "InvalidRequestContentException", (method, path, headers)
    status, headers, raw = raw_request(live, "POST", "/2015-03-31/functions/echo/invocations", b"{}", {"X-Amz-Invocation-Type": "Sideways"})
    assert status == 400 and headers.get("X-Amzn-ErrorType") == "InvalidParameterValueException", raw
    status, headers, raw = raw_request(live, "POST", "/2015-03-31/functions", orjson.dumps({"FunctionName": "nocode", "Runtime": "python3.11", "Handler": "a.b", "Role": "r", "Code": {"ZipFile": "bm90IGEgemlw"}}))
    assert status == 400 and headers.get("X-Amzn-ErrorType") == "InvalidParameterValueException", raw
    status, headers, raw = raw_request(live, "PUT", "/2017-10-31/functions/echo/concurrency", b"{}")
    assert status == 400 and headers.get("X-Amzn-ErrorType") == "ValidationException", raw
    status, headers, raw = raw_request(live, "GET", "/2015-03-31/functions/bad%20name!")
    assert status == 400 and headers.get("X-Amzn-ErrorType") == "ValidationException", raw
    still_serving(live)
