"""Event source mappings: parsed once at the edge (API body or eventmill.yaml) into a
frozen value with AWS's defaults and validation, stored in Redis, read by pollers.

Field names mirror the Lambda API (CreateEventSourceMapping) in snake_case; `to_api()`
gives GetEventSourceMapping's shape back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SourceKind = Literal["sqs", "kinesis", "dynamodb", "s3", "sns"]
State = Literal["Creating", "Enabled", "Disabled", "Enabling", "Disabling", "Updating", "Deleting"]


@dataclass(frozen=True)
class EventSourceMapping:
    uuid: str
    function_name: str
    event_source_arn: str
    kind: SourceKind
    state: State = "Creating"
    state_transition_reason: str = "USER_INITIATED"
    batch_size: int = 10
    maximum_batching_window_s: int = 0
    function_response_types: tuple[str, ...] = ()
    filter_criteria: dict[str, Any] | None = None
    scaling_max_concurrency: int | None = None       # SQS ScalingConfig.MaximumConcurrency
    # streams (Kinesis / DynamoDB)
    starting_position: str | None = None             # TRIM_HORIZON | LATEST | AT_TIMESTAMP
    starting_position_timestamp: float | None = None
    parallelization_factor: int = 1
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    tumbling_window_s: int = 0
    on_failure_destination: str | None = None
    # S3 / SNS sources: the SQS queue eventmill reads their notifications from
    queue_url: str | None = None
    s3_events: tuple[str, ...] = ()
    s3_filter_rules: tuple[tuple[str, str], ...] = ()  # (("prefix", "in/"), ("suffix", ".txt"))
    last_modified: float = 0.0
    revision: int = 0  # bumped on every update: pollers restart on change
    extra: dict[str, Any] = field(default_factory=dict)
