"""Per-parameter parsing of Create/UpdateEventSourceMapping bodies, with AWS's texts.

Pure functions used by broker/mappings.py (EventSourceMapping.parse): `check_model` is
the API model's constraints (ValidationException, checked first by AWS), `changes` turns
each given parameter into a typed dataclass field; cross-field rules live on the value.
Texts marked AWS in SEMANTICS §A-C or recorded against AWS are used verbatim.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, Mapping

from broker.config import ranged_int, resolve_name
from broker.errors import InvalidParameterValueException, constraint, function_not_found
from pollers.filtering import FilterCriteriaError, FilterSet, Source

SourceKind = Literal["sqs", "kinesis", "dynamodb", "s3", "sns"]

UNRECOGNIZED_SOURCE = "Unrecognized event source, must be kinesis, dynamodb stream or sqs (eventmill also maps s3 and sns)."
SQS_WINDOW_REQUIRED = "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
FIFO_BATCH = "Maximum batch size must be between 1 and 10 inclusive"
FIFO_WINDOW = "Batching window is not supported for FIFO queues"
SQS_STARTING_POSITION = "StartingPosition is not valid for SQS event sources."
TIMESTAMP_WITHOUT_AT = "Timestamp only valid with StartingPosition AT_TIMESTAMP"
NEGATIVE_TIMESTAMP = "Received Exception while reading from provided stream. class java.lang.Long can not be converted to a Timestamp"
STARTING_POSITIONS = ("LATEST", "AT_TIMESTAMP", "TRIM_HORIZON")
RESPONSE_TYPES = ("ReportBatchItemFailures",)
S3_EVENTS = frozenset(
    ["s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
     "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete",
     "s3:ObjectRemoved:DeleteMarkerCreated", "s3:ObjectRestore:*", "s3:ObjectRestore:Post",
     "s3:ObjectRestore:Completed", "s3:ObjectRestore:Delete", "s3:ObjectTagging:*", "s3:ObjectTagging:Put",
     "s3:ObjectTagging:Delete", "s3:ObjectAcl:Put", "s3:LifecycleExpiration:*", "s3:LifecycleExpiration:Delete",
     "s3:LifecycleExpiration:DeleteMarkerCreated", "s3:LifecycleTransition", "s3:IntelligentTiering",
     "s3:ReducedRedundancyLostObject"]
)
STREAMS = ("kinesis", "dynamodb")
QUEUES_AND_STREAMS = frozenset({"sqs", *STREAMS})
# Which source kinds take each parameter (the DG's per-source parameter tables, plus
# eventmill's S3/SNS extensions). FunctionName, EventSourceArn and Enabled apply to all.
PARAM_KINDS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("BatchSize", "MaximumBatchingWindowInSeconds", "FilterCriteria", "FunctionResponseTypes"), QUEUES_AND_STREAMS),
    "ScalingConfig": frozenset({"sqs"}),
    **dict.fromkeys(("StartingPosition", "StartingPositionTimestamp", "ParallelizationFactor", "BisectBatchOnFunctionError",
                     "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "TumblingWindowInSeconds", "DestinationConfig"), frozenset(STREAMS)),
    "S3Events": frozenset({"s3"}), "S3FilterRules": frozenset({"s3"}), "QueueUrl": frozenset({"s3", "sns"}),
}
ALWAYS = frozenset({"FunctionName", "EventSourceArn", "Enabled", "UUID"})
IGNORED = frozenset({"Tags", "KMSKeyArn", "MetricsConfig", "LoggingConfig"})  # accepted; no effect on delivery
CREATE_ONLY = ("EventSourceArn", "StartingPosition", "StartingPositionTimestamp")
# API key -> (field, model name, min, max): the ranges of the API model (ValidationException).
RANGES: dict[str, tuple[str, str, int, int]] = {
    "BatchSize": ("batch_size", "batchSize", 1, 10000),
    "MaximumBatchingWindowInSeconds": ("maximum_batching_window_s", "maximumBatchingWindowInSeconds", 0, 300),
    "ParallelizationFactor": ("parallelization_factor", "parallelizationFactor", 1, 10),
    "MaximumRetryAttempts": ("maximum_retry_attempts", "maximumRetryAttempts", -1, 10000),
    "MaximumRecordAgeInSeconds": ("maximum_record_age_s", "maximumRecordAgeInSeconds", -1, 604800),
    "TumblingWindowInSeconds": ("tumbling_window_s", "tumblingWindowInSeconds", 0, 900),
}
_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d{12})?:(?P<resource>.+)$")


def is_supported(key: str, kind: SourceKind) -> bool:
    return key in ALWAYS or key in IGNORED or kind in PARAM_KINDS.get(key, ())


def filter_source(kind: SourceKind) -> Source | None:
    """The FilterSet source whose payload rules apply (S3/SNS take no FilterCriteria)."""
    return kind if kind in ("sqs", "kinesis", "dynamodb") else None


def unsupported(key: str) -> InvalidParameterValueException:
    """AWS's wording for a parameter the mapping's source kind does not take."""
    return InvalidParameterValueException(f"Unsupported '{key[:1].lower()}{key[1:]}' parameter for given event source mapping type.")


def source_kind(arn: str) -> SourceKind:
    """The source kind an EventSourceArn names; the pollers registry is keyed by it."""
    match = _ARN.match(arn or "")
    service, resource = (match.group("service"), match.group("resource")) if match else ("", "")
    if service == "sqs" and match and match.group("account"):
        return "sqs"
    if service == "kinesis" and resource.startswith("stream/"):
        return "kinesis"
    if service == "dynamodb" and resource.startswith("table/") and "/stream/" in resource:
        return "dynamodb"
    if service == "s3" and match and not match.group("region") and not match.group("account"):
        return "s3"
    if service == "sns":
        return "sns"
    raise InvalidParameterValueException(UNRECOGNIZED_SOURCE)


def check_model(body: Mapping[str, Any]) -> None:
    """The API model's constraints, which AWS checks before anything else."""
    for key, (_, model, lo, hi) in RANGES.items():
        if key in body:
            ranged_int(body[key], key, model, lo, hi)
    if "ScalingConfig" in body and isinstance(body["ScalingConfig"], Mapping) and "MaximumConcurrency" in body["ScalingConfig"]:
        ranged_int(body["ScalingConfig"]["MaximumConcurrency"], "ScalingConfig.MaximumConcurrency", "scalingConfig.maximumConcurrency", 2, 1000)
    if "StartingPosition" in body and body["StartingPosition"] not in STARTING_POSITIONS:
        raise constraint("startingPosition", body["StartingPosition"], "Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]")
    if "FunctionResponseTypes" in body:
        types = body["FunctionResponseTypes"]
        if not isinstance(types, list) or any(t not in RESPONSE_TYPES for t in types):
            shown = "[" + ", ".join(map(str, types)) + "]" if isinstance(types, list) else types
            raise constraint("functionResponseTypes", shown, "Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]")
        if len(types) > 1:
            raise constraint("functionResponseTypes", "[" + ", ".join(types) + "]", "Member must have length less than or equal to 1")


def _bool(body: Mapping[str, Any], key: str) -> bool:
    value = body[key]
    if not isinstance(value, bool):
        raise InvalidParameterValueException(f"{key} must be a boolean, got {value!r}")
    return value


def changes(body: Mapping[str, Any], kind: SourceKind) -> dict[str, Any]:
    """The given fields, each converted and validated on its own, as dataclass changes."""
    out: dict[str, Any] = {name: body[key] for key, (name, *_rest) in RANGES.items() if key in body}
    if "FunctionName" in body:
        name, qualifier = resolve_name(str(body["FunctionName"]))
        if qualifier not in (None, "$LATEST"):  # eventmill runs $LATEST only
            raise function_not_found(f"{name}:{qualifier}")
        out["function_name"] = name
    for key, attr in (("Enabled", "enabled"), ("BisectBatchOnFunctionError", "bisect_batch_on_function_error")):
        if key in body:
            out[attr] = _bool(body, key)
    if "FunctionResponseTypes" in body:
        out["function_response_types"] = tuple(body["FunctionResponseTypes"])
    if "FilterCriteria" in body:
        try:
            parsed = FilterSet.parse(body["FilterCriteria"], source=filter_source(kind))
        except FilterCriteriaError as exc:
            raise InvalidParameterValueException(exc.message, reason=exc.reason) from None
        out["filter_criteria"] = parsed.to_api()
    if "ScalingConfig" in body:
        scaling = body["ScalingConfig"]
        if not isinstance(scaling, Mapping):
            raise InvalidParameterValueException("ScalingConfig must be an object")
        out["scaling_max_concurrency"] = scaling.get("MaximumConcurrency")  # {} removes the limit
    if "StartingPosition" in body:
        out["starting_position"] = body["StartingPosition"]
    if "StartingPositionTimestamp" in body:
        out["starting_position_timestamp"] = _timestamp(body["StartingPositionTimestamp"])
    if "DestinationConfig" in body:
        out["on_failure_destination"] = _on_failure(body["DestinationConfig"])
    if "S3Events" in body:
        out["s3_events"] = _s3_events(body["S3Events"])
    if "S3FilterRules" in body:
        out["s3_filter_rules"] = _s3_rules(body["S3FilterRules"])
    if "QueueUrl" in body:
        url = body["QueueUrl"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidParameterValueException(f"QueueUrl must be an http(s) SQS queue URL, got {url!r}")
        out["queue_url"] = url
    return out


def _timestamp(value: Any) -> float:
    """Unix seconds, as boto3 sends it; YAML may also give a datetime or an ISO string."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise InvalidParameterValueException(f"StartingPositionTimestamp is not a timestamp: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameterValueException(f"StartingPositionTimestamp is not a timestamp: {value!r}")
    return float(value)


ON_FAILURE_PREFIXES = ("arn:aws:sqs:", "arn:aws:sns:", "redis:")


def _on_failure(raw: Any) -> str | None:
    """DestinationConfig of a stream mapping: OnFailure only (SEMANTICS §37); {} clears it."""
    if not isinstance(raw, Mapping):
        raise InvalidParameterValueException("DestinationConfig must be an object")
    if raw.get("OnSuccess"):
        raise InvalidParameterValueException("Unsupported DestinationConfig parameter for given event source mapping type.")
    on_failure = raw.get("OnFailure") or {}
    arn = on_failure.get("Destination") if isinstance(on_failure, Mapping) else None
    if not arn:
        return None
    if not isinstance(arn, str) or not arn.startswith(ON_FAILURE_PREFIXES):
        raise InvalidParameterValueException(
            f"The provided destination config DestinationConfig(OnFailure(Destination={arn})) is invalid: "
            "OnFailure must be an SQS queue or SNS topic ARN (or redis:NAME for eventmill's Redis-only target)."
        )
    return arn


def _s3_events(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidParameterValueException("S3Events must be a non-empty list of S3 event types")
    bad = [e for e in raw if e not in S3_EVENTS]
    if bad:
        raise InvalidParameterValueException(f"The event is not supported for notifications: {bad[0]}")
    return tuple(dict.fromkeys(raw))


def _s3_rules(raw: Any) -> tuple[tuple[str, str], ...]:
    """S3 key filter rules: at most one prefix and one suffix (S3's own rule)."""
    if not isinstance(raw, list):
        raise InvalidParameterValueException("S3FilterRules must be a list of {Name, Value}")
    rules: dict[str, str] = {}
    for rule in raw:
        name = str(rule.get("Name", "")).lower() if isinstance(rule, Mapping) else ""
        if name not in ("prefix", "suffix") or not isinstance(rule.get("Value"), str):
            raise InvalidParameterValueException(f"Invalid S3 filter rule {rule!r}: Name must be prefix or suffix, Value a string")
        if name in rules:
            raise InvalidParameterValueException(f"Cannot specify more than one {name} rule in a filter.")
        rules[name] = rule["Value"]
    return tuple(rules.items())
