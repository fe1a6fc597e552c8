"""The handler's `context` argument, shaped like awslambdaric's LambdaContext.

Stdlib only (runs inside the jail). Static fields come from the reserved
environment variables, as in the real runtime, so a function that reads either
sees the same values.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, data: dict[str, Any]) -> None:
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __init__(self, data: dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, data.get(name))


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, data: dict[str, Any]) -> None:
        client = data.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = data.get("custom")
        self.env = data.get("env")


def _decode_client_context(raw: str | None) -> ClientContext | None:
    """X-Amz-Client-Context is base64 JSON on the Invoke API; the runtime decodes it."""
    if not raw:
        return None
    try:
        data = json.loads(base64.b64decode(raw))
    except ValueError:
        data = json.loads(raw)
    return ClientContext(data) if isinstance(data, dict) else None


class LambdaContext:
    def __init__(self, header: dict[str, Any]) -> None:
        self.aws_request_id = str(header["request_id"])
        self.invoked_function_arn = header.get("arn")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.client_context = _decode_client_context(header.get("client_context"))
        identity = header.get("cognito_identity")
        self.identity = CognitoIdentity(json.loads(identity) if identity else {})
        self._deadline_ms = int(header["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )
