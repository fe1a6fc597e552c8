"""The sandbox's contract with its callers (the invoker).

Plain frozen values so the invoker can build them from its own config without
the sandbox knowing about Redis, queues or the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

LogFormat = Literal["Text", "JSON"]


@dataclass(frozen=True)
class FunctionSpec:
    """Everything needed to start an execution environment for one function version.

    `code_version` changes whenever code or configuration change; the pool keys warm
    environments by (name, code_version), so a change retires the old environment.
    """

    name: str
    code_dir: Path
    handler: str
    runtime: str = "python3.11"
    memory_mb: int = 128
    timeout_s: float = 3.0
    ephemeral_mb: int = 512
    environment: tuple[tuple[str, str], ...] = ()
    code_version: str = "1"
    version: str = "$LATEST"
    layers: tuple[Path, ...] = ()
    network: bool = False
    log_format: LogFormat = "Text"
    region: str = "us-east-1"
    account_id: str = "123456789012"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"


@dataclass(frozen=True)
class InvokeRequest:
    request_id: str
    payload: bytes
    client_context: str | None = None  # base64 JSON, as in X-Amz-Client-Context
    cognito_identity: str | None = None
    invoked_function_arn: str | None = None


@dataclass(frozen=True)
class InvokeResult:
    """Outcome of one invocation, in Lambda's terms.

    `payload` is the response bytes: the handler's JSON, or AWS's error JSON
    ({"errorMessage", "errorType", "stackTrace"}) when `function_error` is set.
    `error_type` is the errorType (e.g. "Runtime.ExitError", "Sandbox.Timedout").
    `log` is the full text log of this invocation, START to REPORT lines included.
    """

    request_id: str
    payload: bytes
    function_error: str | None = None  # "Unhandled" or None
    error_type: str | None = None
    log: str = ""
    duration_ms: float = 0.0
    billed_duration_ms: int = 0
    max_memory_used_mb: int = 0
    init_duration_ms: float | None = None
    timed_out: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.function_error is None


class SandboxUnavailable(RuntimeError):
    """nsjail cannot run on this host; the message names the fix."""
