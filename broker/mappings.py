"""Event source mappings: parsed once at the edge (API body or eventmill.yaml) into a
frozen value with AWS's defaults and validation, stored in Redis, read by pollers.

Field names mirror the Lambda API (CreateEventSourceMapping) in snake_case; `to_api()`
gives GetEventSourceMapping's shape back. Validation runs in AWS's order: the API model's
constraints (ValidationException) first, then parameters the source kind does not take,
then the cross-field rules (InvalidParameterValueException), SEMANTICS §A-C.

Lifecycle: the API writes a transitional State (Creating, Updating, Enabling, Disabling,
Deleting) and bumps `revision`; the pollers process, after applying that revision, calls
`MappingRegistry.settle` (→ Enabled / Disabled) or `finalize_deleted`. With no pollers
process running a mapping simply stays in its transitional state.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import orjson
import redis
import redis.asyncio as aredis
import yaml

from broker.config import ACCOUNT, REGION, function_arn
from broker.errors import (
    InvalidParameterValueException,
    LambdaError,
    ResourceConflictException,
    ResourceNotFoundException,
    ValidationException,
    function_not_found,
)
from broker.keys import Keys
from broker.mapping_params import (
    CREATE_ONLY,
    FIFO_BATCH,
    FIFO_WINDOW,
    NEGATIVE_TIMESTAMP,
    QUEUES_AND_STREAMS,
    SQS_STARTING_POSITION,
    SQS_WINDOW_REQUIRED,
    STREAMS,
    TIMESTAMP_WITHOUT_AT,
    SourceKind,
    changes,
    check_model,
    filter_source,
    is_supported,
    source_kind,
    unsupported,
)
from pollers.filtering import FilterSet

State = Literal["Creating", "Enabled", "Disabled", "Enabling", "Disabling", "Updating", "Deleting"]

NOT_FOUND = "The resource you requested does not exist."


class ResourceInUseException(LambdaError):
    code = "ResourceInUseException"
    status = 400


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
    enabled: bool = True  # the state the mapping settles in (Enabled / Disabled)
    last_processing_result: str = "No records processed"  # streams; pollers may update it

    @property
    def fifo(self) -> bool:
        return self.kind == "sqs" and self.event_source_arn.endswith(".fifo")

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{self.uuid}"

    @property
    def function_arn(self) -> str:
        return function_arn(self.function_name)

    @property
    def filters(self) -> FilterSet:
        """The parsed FilterCriteria (validated at create/update, so this cannot fail)."""
        return FilterSet.parse(self.filter_criteria, source=filter_source(self.kind))

    @classmethod
    def parse(cls, body: Mapping[str, Any], base: EventSourceMapping | None = None) -> EventSourceMapping:
        """CreateEventSourceMapping (no `base`) or UpdateEventSourceMapping (only the given
        fields change, `revision` += 1) body -> mapping with AWS's defaults and validation."""
        body = {k: v for k, v in body.items() if v is not None}
        if base is None:
            if not body.get("FunctionName"):
                raise ValidationException("1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null")
            arn = body.get("EventSourceArn")
            if not isinstance(arn, str) or not arn:
                raise InvalidParameterValueException("Unrecognized event source.")
            kind = source_kind(arn)
        else:
            kind = base.kind
            if base.state == "Deleting":
                raise ResourceInUseException(f"Cannot update the event source mapping {base.uuid}: it is being deleted (State: Deleting).")
            for key in CREATE_ONLY:
                if key in body and body[key] != base.to_api().get(key):
                    raise InvalidParameterValueException(f"{key} cannot be changed by UpdateEventSourceMapping; delete the mapping and create a new one.")
        check_model(body)
        for key in body:
            if is_supported(key, kind):
                continue
            if kind == "sqs" and key in ("StartingPosition", "StartingPositionTimestamp"):
                raise InvalidParameterValueException(SQS_STARTING_POSITION)
            raise unsupported(key)
        current = base or cls(
            uuid=str(uuidlib.uuid4()), function_name="", event_source_arn=body["EventSourceArn"], kind=kind,
            state_transition_reason="User action" if kind in STREAMS else "USER_INITIATED",
            batch_size=100 if kind in STREAMS else 10, s3_events=("s3:ObjectCreated:*",) if kind == "s3" else (),
        )
        mapping = replace(current, **changes(body, kind))
        mapping._check_rules()
        now = time.time()
        if base is None:
            return replace(mapping, state="Creating", last_modified=now)
        state: State = "Updating"
        if mapping.enabled != base.enabled:
            state = "Enabling" if mapping.enabled else "Disabling"
        return replace(mapping, state=state, last_modified=now, revision=base.revision + 1)

    def _check_rules(self) -> None:
        """Cross-field rules on the merged result, so an update is judged as a whole."""
        if self.kind == "sqs" and self.fifo:
            if self.batch_size > 10:
                raise InvalidParameterValueException(FIFO_BATCH)
            if self.maximum_batching_window_s > 0:
                raise InvalidParameterValueException(FIFO_WINDOW)
        elif self.kind == "sqs" and self.batch_size > 10 and self.maximum_batching_window_s == 0:
            raise InvalidParameterValueException(SQS_WINDOW_REQUIRED)
        if self.kind not in STREAMS:
            return
        position, stamp = self.starting_position, self.starting_position_timestamp
        if position is None:
            raise InvalidParameterValueException(
                "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null."
            )
        if self.kind == "dynamodb" and position == "AT_TIMESTAMP":
            raise InvalidParameterValueException(f"Unsupported starting position for arn type: {self.event_source_arn}")
        if stamp is not None and position != "AT_TIMESTAMP":
            raise InvalidParameterValueException(TIMESTAMP_WITHOUT_AT)
        if position == "AT_TIMESTAMP":
            if stamp is None:
                raise InvalidParameterValueException("StartingPositionTimestamp is required with StartingPosition AT_TIMESTAMP")
            if stamp < 0:
                raise InvalidParameterValueException(NEGATIVE_TIMESTAMP)
            if stamp > time.time() + 1:
                raise InvalidParameterValueException("StartingPositionTimestamp cannot be in the future")
        if 0 <= self.maximum_record_age_s < 60:
            raise InvalidParameterValueException(
                f"MaximumRecordAgeInSeconds must be -1 (infinite) or between 60 and 604800, got {self.maximum_record_age_s}"
            )

    def to_api(self) -> dict[str, Any]:
        """GetEventSourceMapping's shape, with only the fields AWS returns for this source kind."""
        out: dict[str, Any] = {"UUID": self.uuid}
        if self.kind in STREAMS:
            out["StartingPosition"] = self.starting_position
            if self.starting_position_timestamp is not None:
                out["StartingPositionTimestamp"] = self.starting_position_timestamp
        if self.kind in QUEUES_AND_STREAMS:
            out["BatchSize"] = self.batch_size
            out["MaximumBatchingWindowInSeconds"] = self.maximum_batching_window_s
        if self.kind in STREAMS:
            out["ParallelizationFactor"] = self.parallelization_factor
        out["EventSourceArn"] = self.event_source_arn
        if self.filter_criteria:
            out["FilterCriteria"] = self.filter_criteria
        out.update(FunctionArn=self.function_arn, LastModified=self.last_modified)
        if self.kind in STREAMS:
            out["LastProcessingResult"] = self.last_processing_result
        out.update(State=self.state, StateTransitionReason=self.state_transition_reason)
        if self.kind in STREAMS:
            on_failure = {"Destination": self.on_failure_destination} if self.on_failure_destination else {}
            out.update(
                DestinationConfig={"OnFailure": on_failure}, MaximumRecordAgeInSeconds=self.maximum_record_age_s,
                BisectBatchOnFunctionError=self.bisect_batch_on_function_error, MaximumRetryAttempts=self.maximum_retry_attempts,
                TumblingWindowInSeconds=self.tumbling_window_s,
            )
        if self.kind in QUEUES_AND_STREAMS:
            out["FunctionResponseTypes"] = list(self.function_response_types)
        if self.scaling_max_concurrency is not None:
            out["ScalingConfig"] = {"MaximumConcurrency": self.scaling_max_concurrency}
        if self.kind == "s3":
            out["S3Events"] = list(self.s3_events)
            out["S3FilterRules"] = [{"Name": name, "Value": value} for name, value in self.s3_filter_rules]
        if self.queue_url:
            out["QueueUrl"] = self.queue_url
        out["EventSourceMappingArn"] = self.arn
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EventSourceMapping:
        """Stored form -> value; keys a newer or older eventmill wrote are dropped."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in raw.items() if k in known}
        for name in ("function_response_types", "s3_events"):
            data[name] = tuple(data.get(name) or ())
        data["s3_filter_rules"] = tuple((str(n), str(v)) for n, v in data.get("s3_filter_rules") or ())
        return cls(**data)


def settled(mapping: EventSourceMapping) -> EventSourceMapping:
    """The resting state a transitional one leads to (Deleting has none: it is removed)."""
    if mapping.state in ("Creating", "Updating", "Enabling", "Disabling"):
        return replace(mapping, state="Enabled" if mapping.enabled else "Disabled", last_modified=time.time())
    return mapping


def _decode(raw: bytes | str | None) -> EventSourceMapping | None:
    return EventSourceMapping.from_dict(orjson.loads(raw)) if raw else None


class MappingRegistry:
    """Async store for the API and the pollers process; writes of one mapping are
    compare-and-set (WATCH), so an API update and a poller settling never lose each other."""

    def __init__(self, client: aredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    async def find(self, uuid: str) -> EventSourceMapping | None:
        return _decode(await self.redis.get(self.keys.mapping(uuid)))

    async def get(self, uuid: str) -> EventSourceMapping:
        mapping = await self.find(uuid)
        if mapping is None:
            raise ResourceNotFoundException(NOT_FOUND, Type="User")
        return mapping

    async def all(self) -> list[EventSourceMapping]:
        """Every mapping, ordered by UUID (the ListEventSourceMappings Marker order)."""
        uuids = sorted(u.decode() if isinstance(u, bytes) else u for u in await self.redis.smembers(self.keys.mappings))
        raws = await self.redis.mget([self.keys.mapping(u) for u in uuids]) if uuids else []
        return [m for m in map(_decode, raws) if m is not None]

    async def put(self, mapping: EventSourceMapping) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.mapping(mapping.uuid), orjson.dumps(mapping.to_dict()))
            pipe.sadd(self.keys.mappings, mapping.uuid)
            pipe.publish(self.keys.mappings_changed, mapping.uuid)
            await pipe.execute()

    async def change(self, uuid: str, step: Callable[[EventSourceMapping], EventSourceMapping | None]) -> EventSourceMapping | None:
        """Apply `step` to the stored mapping atomically; `step` returns the new value, None
        to remove the mapping, or raises (nothing is written). Unknown UUID: ResourceNotFound."""
        key = self.keys.mapping(uuid)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    current = _decode(await pipe.get(key))
                    if current is None:
                        raise ResourceNotFoundException(NOT_FOUND, Type="User")
                    new = step(current)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if new is None:
                        pipe.delete(key)
                        pipe.srem(self.keys.mappings, uuid)
                    elif new != current:
                        pipe.set(key, orjson.dumps(new.to_dict()))
                    if new != current:
                        pipe.publish(self.keys.mappings_changed, uuid)
                    await pipe.execute()
                    return new
                except redis.WatchError:
                    continue

    async def settle(self, uuid: str, revision: int) -> EventSourceMapping | None:
        """Pollers: revision `revision` is applied; if it is still the stored one, move a
        transitional state to Enabled / Disabled. Returns the stored mapping (None if gone)."""
        try:
            return await self.change(uuid, lambda m: settled(m) if m.revision == revision else m)
        except ResourceNotFoundException:
            return None

    async def finalize_deleted(self, uuid: str) -> bool:
        """Pollers: the mapping's poller has stopped; remove it if it is Deleting."""
        try:
            return await self.change(uuid, lambda m: None if m.state == "Deleting" else m) is None
        except ResourceNotFoundException:
            return False


def load_mappings(client: redis.Redis, keys: Keys) -> list[EventSourceMapping]:
    """Sync read of every mapping (pollers' startup, CLI), ordered by UUID."""
    uuids = sorted(u.decode() if isinstance(u, bytes) else u for u in client.smembers(keys.mappings))
    raws = client.mget([keys.mapping(u) for u in uuids]) if uuids else []
    return [m for m in map(_decode, raws) if m is not None]


def _essence(mapping: EventSourceMapping) -> dict[str, Any]:
    """The configuration a user wrote, without identity and lifecycle fields."""
    data = mapping.to_dict()
    for name in ("uuid", "state", "last_modified", "revision", "last_processing_result"):
        data.pop(name)
    return data


def plan_project(client: redis.Redis, keys: Keys, path: Path, functions: set[str]) -> list[EventSourceMapping]:
    """eventmill.yaml's `event_source_mappings` (CreateEventSourceMapping bodies) -> the
    mappings to write. A stored mapping of the same function and source is replaced in
    place (same UUID, next revision) only if its configuration differs, so re-applying a
    project neither duplicates mappings nor restarts their pollers. Everything is
    validated before anything is written; the SQS queue checks of the API are not run."""
    document = yaml.safe_load(path.read_text()) or {}
    bodies = (document.get("event_source_mappings") or []) if isinstance(document, dict) else []
    if not isinstance(bodies, list):
        raise InvalidParameterValueException(f"{path}: 'event_source_mappings' must be a list")
    stored = {(m.function_name, m.event_source_arn): m for m in load_mappings(client, keys) if m.state != "Deleting"}
    known = functions | {n.decode() if isinstance(n, bytes) else n for n in client.smembers(keys.functions)}
    planned: dict[tuple[str, str], EventSourceMapping] = {}
    for index, body in enumerate(bodies):
        name = body.get("FunctionName") if isinstance(body, dict) else None
        try:
            if not isinstance(body, dict):
                raise InvalidParameterValueException("must be a mapping")
            new = EventSourceMapping.parse(body)
            if new.function_name not in known:
                raise function_not_found(new.function_name)
            if (new.function_name, new.event_source_arn) in planned:
                raise ResourceConflictException(f"the mapping of {new.event_source_arn} to {new.function_name} is listed twice")
        except LambdaError as exc:
            raise type(exc)(f"{path}: event_source_mappings[{index}] ({name}): {exc.message}") from None
        old = stored.get((new.function_name, new.event_source_arn))
        if old is not None:
            state: State = "Updating" if new.enabled == old.enabled else ("Enabling" if new.enabled else "Disabling")
            new = old if _essence(new) == _essence(old) else replace(new, uuid=old.uuid, revision=old.revision + 1, state=state)
        planned[(new.function_name, new.event_source_arn)] = new
    return [m for m in planned.values() if m is not stored.get((m.function_name, m.event_source_arn))]


def save_mappings(client: redis.Redis, keys: Keys, mappings: list[EventSourceMapping]) -> None:
    with client.pipeline(transaction=True) as pipe:
        for mapping in mappings:
            pipe.set(keys.mapping(mapping.uuid), orjson.dumps(mapping.to_dict()))
            pipe.sadd(keys.mappings, mapping.uuid)
        pipe.execute()
