"""Handler contract: results, context, and the AWS error shapes for init and invoke failures."""

from __future__ import annotations

import base64
import json
import re

from sandbox import Pool


def test_hello_world(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": """
        def handler(event, context):
            return {"hello": event["name"]}
    """})
    result = pool.invoke(spec, req(b'{"name": "world"}'))
    assert result.ok, result.payload
    assert json.loads(result.payload) == {"hello": "world"}
    assert result.error_type is None and not result.timed_out


def test_nested_package_handler(pool: Pool, make_function, req) -> None:
    spec = make_function(
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/mod.py": "from pkg.sub import helper\ndef fn(event, context):\n    return helper.VALUE\n",
            "pkg/sub/helper.py": "VALUE = 'nested-ok'\n",
        },
        handler="pkg.sub.mod.fn",
    )
    result = pool.invoke(spec, req())
    assert result.ok, result.payload
    assert json.loads(result.payload) == "nested-ok"


def test_context_attributes(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": """
        def handler(event, context):
            cc = context.client_context
            return {
                "function_name": context.function_name,
                "function_version": context.function_version,
                "arn": context.invoked_function_arn,
                "memory": context.memory_limit_in_mb,
                "request_id": context.aws_request_id,
                "group": context.log_group_name,
                "stream": context.log_stream_name,
                "identity_id": context.identity.cognito_identity_id,
                "identity_pool": context.identity.cognito_identity_pool_id,
                "app_title": cc.client.app_title,
                "custom": cc.custom,
                "remaining": context.get_remaining_time_in_millis(),
            }
    """}, memory_mb=256, timeout_s=2.0)
    client_context = base64.b64encode(json.dumps({"client": {"app_title": "demo"}, "custom": {"k": "v"}}).encode())
    identity = json.dumps({"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"})
    request = req(client_context=client_context.decode(), cognito_identity=identity)
    result = pool.invoke(spec, request)
    assert result.ok, result.payload
    got = json.loads(result.payload)
    assert got["function_name"] == spec.name
    assert got["function_version"] == "$LATEST"
    assert got["arn"] == spec.arn
    assert got["memory"] == "256"
    assert got["request_id"] == request.request_id
    assert got["group"] == f"/aws/lambda/{spec.name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", got["stream"])
    assert (got["identity_id"], got["identity_pool"]) == ("id-1", "pool-1")
    assert got["app_title"] == "demo" and got["custom"] == {"k": "v"}
    assert 1000 < got["remaining"] <= 2000


def test_import_error(pool: Pool, make_function, req) -> None:
    spec = make_function({"other.py": "x = 1\n"}, handler="missing_mod.handler")
    request = req()
    result = pool.invoke(spec, request)
    assert result.function_error == "Unhandled"
    assert result.error_type == "Runtime.ImportModuleError"
    body = json.loads(result.payload)
    assert body["errorMessage"] == "Unable to import module 'missing_mod': No module named 'missing_mod'"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert "[ERROR] Runtime.ImportModuleError: Unable to import module 'missing_mod'" in result.log


def test_handler_not_found(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": "def other(e, c):\n    return 1\n"}, handler="handler.nope")
    result = pool.invoke(spec, req())
    assert result.error_type == "Runtime.HandlerNotFound"
    body = json.loads(result.payload)
    assert body["errorMessage"] == "Handler 'nope' missing on module 'handler'"
    assert body["errorType"] == "Runtime.HandlerNotFound"


def test_raising_handler_has_aws_error_shape(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": """
        def handler(event, context):
            raise Exception("Test exception (this is intentional)")
    """})
    request = req()
    result = pool.invoke(spec, request)
    assert result.function_error == "Unhandled" and result.error_type == "Exception"
    body = json.loads(result.payload)
    assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert body["errorMessage"] == "Test exception (this is intentional)"
    assert body["requestId"] == request.request_id
    assert len(body["stackTrace"]) == 1
    assert body["stackTrace"][0].startswith('  File "/var/task/handler.py", line 3, in handler\n')
    assert "bootstrap" not in json.dumps(body["stackTrace"])
    assert "[ERROR] Exception: Test exception (this is intentional)" in result.log
    # the environment survives an ordinary exception
    again = pool.invoke(spec, req())
    assert again.init_duration_ms is None


def test_marshal_error(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": "def handler(e, c):\n    return {1, 2}\n"})
    result = pool.invoke(spec, req())
    assert result.error_type == "Runtime.MarshalError"
    body = json.loads(result.payload)
    assert body["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"
