"""Function configuration: parsed once at the edge (API body or eventmill.yaml) into frozen
values with AWS's defaults and AWS's validation errors; nothing past here sees a raw dict.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from broker.errors import InvalidParameterValueException, ValidationException, constraint

REGION = "us-east-1"
ACCOUNT = "123456789012"

PYTHON_RUNTIMES = tuple(f"python3.{minor}" for minor in range(8, 15))
CUSTOM_RUNTIMES = ("provided", "provided.al2", "provided.al2023")
SUPPORTED_RUNTIMES = PYTHON_RUNTIMES + CUSTOM_RUNTIMES
# The API model's Runtime enum also holds runtimes eventmill cannot run; they pass the
# model check (ValidationException) and are refused as unsupported instead.
AWS_ONLY_RUNTIMES = (
    "nodejs18.x", "nodejs20.x", "nodejs22.x", "java11", "java17", "java21", "java8.al2",
    "dotnet6", "dotnet8", "ruby3.2", "ruby3.3", "ruby3.4", "nodejs16.x", "nodejs14.x",
)

NAME_PATTERN = re.compile(
    r"^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_]{1,64})(:(\$LATEST|[a-zA-Z0-9-_]+))?$"
)
ENV_KEY_PATTERN = re.compile(r"^[a-zA-Z]([a-zA-Z0-9_])+$")
RESERVED_ENV_KEYS = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
})
ENV_MAX_BYTES = 4096


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def resolve_name(name_or_arn: str) -> tuple[str, str | None]:
    """FunctionName path parameter (name, partial or full ARN) -> (name, qualifier)."""
    match = NAME_PATTERN.match(name_or_arn or "")
    if not match:
        raise constraint(
            "functionName", name_or_arn,
            "Member must satisfy regular expression pattern: " + NAME_PATTERN.pattern,
        )
    return match.group(7), match.group(9)


def _int(body: Mapping[str, Any], key: str, field_name: str, default: int | None, lo: int, hi: int) -> int | None:
    value = body.get(key, default)
    return None if value is None else ranged_int(value, key, field_name, lo, hi)


def ranged_int(value: Any, key: str, field_name: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi], or AWS's error: the type named by `key`, a range by the model's `field_name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterValueException(f"{key} must be an integer, got {value!r}")
    if value < lo:
        raise constraint(field_name, value, f"Member must have value greater than or equal to {lo}")
    if value > hi:
        raise constraint(field_name, value, f"Member must have value less than or equal to {hi}")
    return value


def now_iso() -> str:
    """Lambda's LastModified format: 2024-01-01T00:00:00.000+0000."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}+0000"


@dataclass(frozen=True)
class Destinations:
    on_success: str | None = None
    on_failure: str | None = None


@dataclass(frozen=True)
class EventInvokeConfig:
    maximum_retry_attempts: int = 2
    maximum_event_age_s: int = 21600
    destinations: Destinations = field(default_factory=Destinations)
    last_modified: float = 0.0

    @classmethod
    def parse(cls, body: Mapping[str, Any], base: EventInvokeConfig | None = None) -> EventInvokeConfig:
        """Put replaces the whole config; Update (pass `base`) changes only the given fields."""
        base = base or cls()
        retries = _int(body, "MaximumRetryAttempts", "maximumRetryAttempts", base.maximum_retry_attempts, 0, 2)
        age = _int(body, "MaximumEventAgeInSeconds", "maximumEventAgeInSeconds", base.maximum_event_age_s, 60, 21600)
        dests = base.destinations
        if "DestinationConfig" in body:
            raw = body.get("DestinationConfig") or {}
            dests = Destinations(
                on_success=_destination(raw.get("OnSuccess"), "OnSuccess", dests.on_success),
                on_failure=_destination(raw.get("OnFailure"), "OnFailure", dests.on_failure),
            )
        return cls(retries or 0, age or 21600, dests, time.time())

    def to_api(self, function_name: str) -> dict[str, Any]:
        dest: dict[str, Any] = {"OnSuccess": {}, "OnFailure": {}}
        if self.destinations.on_success:
            dest["OnSuccess"] = {"Destination": self.destinations.on_success}
        if self.destinations.on_failure:
            dest["OnFailure"] = {"Destination": self.destinations.on_failure}
        return {
            "LastModified": self.last_modified,
            "FunctionArn": function_arn(function_name, "$LATEST"),
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": self.maximum_event_age_s,
            "DestinationConfig": dest,
        }


DESTINATION_PREFIXES = ("arn:aws:sqs:", "arn:aws:sns:", "arn:aws:lambda:", "redis:")


def _destination(raw: Any, which: str, current: str | None) -> str | None:
    if raw is None:
        return current
    arn = raw.get("Destination") if isinstance(raw, Mapping) else None
    if not arn:
        return None
    if not isinstance(arn, str) or not arn.startswith(DESTINATION_PREFIXES):
        raise InvalidParameterValueException(
            f"The destination ARN {arn} is invalid. {which} destinations must be an SQS queue, SNS topic or "
            "Lambda function ARN (or redis:NAME for eventmill's Redis-only target)."
        )
    if arn.startswith(("arn:aws:sqs:", "arn:aws:sns:")) and arn.endswith(".fifo"):
        raise InvalidParameterValueException(f"FIFO queues and topics are not supported as destinations: {arn}")
    return arn


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    handler: str
    code_dir: str
    runtime: str = "python3.11"
    memory_mb: int = 128
    timeout_s: int = 3
    ephemeral_mb: int = 512
    environment: dict[str, str] = field(default_factory=dict)
    description: str = ""
    role: str = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
    layers: tuple[str, ...] = ()
    dead_letter_target: str | None = None
    log_format: str = "Text"
    network: bool = False
    code_sha256: str = ""
    code_size: int = 0
    revision_id: str = ""
    last_modified: str = ""
    reserved_concurrency: int | None = None
    invoke_config: EventInvokeConfig | None = None

    @property
    def arn(self) -> str:
        return function_arn(self.name)

    @property
    def code_version(self) -> str:
        """Key for warm environments: any code or configuration change makes a new one."""
        return self.revision_id

    def effective_invoke_config(self) -> EventInvokeConfig:
        return self.invoke_config or EventInvokeConfig()

    def with_changes(self, **changes: Any) -> FunctionConfig:
        """A new revision: every change to a function gets a new RevisionId, as on AWS."""
        return replace(self, revision_id=str(uuid.uuid4()), last_modified=now_iso(), **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FunctionConfig:
        data = dict(raw)
        data["layers"] = tuple(data.get("layers") or ())
        ic = data.get("invoke_config")
        if ic is not None:
            ic = dict(ic)
            ic["destinations"] = Destinations(**ic.get("destinations") or {})
            data["invoke_config"] = EventInvokeConfig(**ic)
        return cls(**data)

    def to_api(self) -> dict[str, Any]:
        """GetFunctionConfiguration's shape."""
        out: dict[str, Any] = {
            "FunctionName": self.name,
            "FunctionArn": self.arn,
            "Runtime": self.runtime,
            "Role": self.role,
            "Handler": self.handler,
            "CodeSize": self.code_size,
            "Description": self.description,
            "Timeout": self.timeout_s,
            "MemorySize": self.memory_mb,
            "LastModified": self.last_modified,
            "CodeSha256": self.code_sha256,
            "Version": "$LATEST",
            "Environment": {"Variables": dict(self.environment)},
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": self.revision_id,
            "Layers": [{"Arn": layer, "CodeSize": 0} for layer in self.layers],
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": self.ephemeral_mb},
            "LoggingConfig": {"LogFormat": self.log_format, "LogGroup": f"/aws/lambda/{self.name}"},
        }
        if self.dead_letter_target:
            out["DeadLetterConfig"] = {"TargetArn": self.dead_letter_target}
        return out


def parse_settings(body: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate the configuration fields of Create/UpdateFunctionConfiguration.

    Returns FunctionConfig keyword arguments for the fields present (all of them, with
    AWS's defaults, when `base` is None, i.e. on create).
    """
    base = dict(base or {})
    out: dict[str, Any] = {}
    defaults = FunctionConfig(name="x", handler="x", code_dir="")

    def want(key: str) -> bool:
        return key in body or not base

    if want("Runtime"):
        runtime = body.get("Runtime", base.get("runtime", defaults.runtime))
        if runtime not in SUPPORTED_RUNTIMES + AWS_ONLY_RUNTIMES:
            raise constraint("runtime", runtime, "Member must satisfy enum value set: [" + ", ".join(SUPPORTED_RUNTIMES + AWS_ONLY_RUNTIMES) + "]")
        if runtime not in SUPPORTED_RUNTIMES:
            raise InvalidParameterValueException(
                f"The runtime parameter of {runtime} is not supported by eventmill. Supported runtimes: {', '.join(SUPPORTED_RUNTIMES)}"
            )
        out["runtime"] = runtime
    if "Handler" in body or not base:
        handler = body.get("Handler")
        runtime = out.get("runtime", base.get("runtime"))
        if not handler and runtime not in CUSTOM_RUNTIMES:
            raise InvalidParameterValueException("The Handler parameter is required for the runtime " + str(runtime))
        if handler is not None and (not isinstance(handler, str) or len(handler) > 128 or not re.match(r"^[^\s]+$", handler)):
            raise constraint("handler", handler, "Member must satisfy regular expression pattern: [^\\s]+")
        out["handler"] = handler or ""
    if want("MemorySize"):
        out["memory_mb"] = _int(body, "MemorySize", "memorySize", base.get("memory_mb", 128), 128, 10240)
    if want("Timeout"):
        out["timeout_s"] = _int(body, "Timeout", "timeout", base.get("timeout_s", 3), 1, 900)
    if want("EphemeralStorage"):
        size = (body.get("EphemeralStorage") or {}).get("Size", base.get("ephemeral_mb", 512))
        out["ephemeral_mb"] = _int({"Size": size}, "Size", "ephemeralStorage.size", 512, 512, 10240)
    if want("Environment"):
        out["environment"] = _environment(body.get("Environment"))
    if want("Description"):
        out["description"] = str(body.get("Description") or "")[:256]
    if want("Role") and body.get("Role"):
        out["role"] = str(body["Role"])
    if want("Layers"):
        out["layers"] = tuple(str(layer) for layer in body.get("Layers") or ())
    if want("DeadLetterConfig"):
        target = (body.get("DeadLetterConfig") or {}).get("TargetArn") or None
        if target and not str(target).startswith(("arn:aws:sqs:", "arn:aws:sns:")):
            raise InvalidParameterValueException(
                f"The provided target arn is invalid: {target}. DeadLetterConfig TargetArn must be an SQS queue or SNS topic ARN."
            )
        out["dead_letter_target"] = target
    if want("LoggingConfig"):
        fmt = (body.get("LoggingConfig") or {}).get("LogFormat", base.get("log_format", "Text"))
        if fmt not in ("Text", "JSON"):
            raise constraint("loggingConfig.logFormat", fmt, "Member must satisfy enum value set: [JSON, Text]")
        out["log_format"] = fmt
    if want("Network"):
        out["network"] = bool(body.get("Network", base.get("network", False)))
    return out


def _environment(raw: Any) -> dict[str, str]:
    variables = (raw or {}).get("Variables") or {}
    if not isinstance(variables, Mapping):
        raise InvalidParameterValueException("Environment.Variables must be a map of strings")
    env = {str(k): str(v) for k, v in variables.items()}
    bad = [k for k in env if not ENV_KEY_PATTERN.match(k)]
    if bad:
        raise ValidationException(
            f"1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: "
            f"Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+] ({', '.join(bad)})"
        )
    reserved = sorted(k for k in env if k in RESERVED_ENV_KEYS)
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you have "
            "provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {','.join(reserved)}"
        )
    size = sum(len(k.encode()) + len(v.encode()) for k, v in env.items())
    if size > ENV_MAX_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you have "
            f"provided exceeded the 4KB limit. String measured: {size} bytes"
        )
    return env


def parse_reserved_concurrency(body: Mapping[str, Any]) -> int:
    value = body.get("ReservedConcurrentExecutions")
    if value is None:
        raise ValidationException(
            "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null"
        )
    result = _int(body, "ReservedConcurrentExecutions", "reservedConcurrentExecutions", None, 0, 1000)
    assert result is not None
    return result
