"""CreateEventSourceMapping, GetEventSourceMapping, ListEventSourceMappings,
UpdateEventSourceMapping, DeleteEventSourceMapping.

Writes return 202 with a transitional State, as AWS does; the pollers process moves a
mapping on to Enabled / Disabled (`MappingRegistry.settle`) and removes a Deleting one
(`MappingRegistry.finalize_deleted`). Without a pollers process they stay transitional.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from aiohttp import web

from broker.api.app import ApiState, json_response, read_json, state
from broker.config import resolve_name
from broker.errors import ResourceConflictException, constraint, function_not_found
from broker.mappings import EventSourceMapping, MappingRegistry
from broker.source_checks import check_source

PREFIX = "/2015-03-31/event-source-mappings"
SQS_SERVICE_ID = "SQS"


def _registry(st: ApiState) -> MappingRegistry:
    return MappingRegistry(st.redis, st.keys)


async def _verify(st: ApiState, mapping: EventSourceMapping) -> None:
    """The function must exist and the source must accept it (SQS visibility timeout)."""
    function = await st.registry.find(mapping.function_name)
    if function is None:
        raise function_not_found(mapping.function_name)
    await check_source(st.settings, mapping, function.timeout_s)


def _duplicate(existing: EventSourceMapping) -> ResourceConflictException:
    """AWS's texts for a second mapping of the same source to the same function."""
    if existing.kind == "sqs":
        return ResourceConflictException(
            f'An event source mapping with {SQS_SERVICE_ID} arn (" {existing.event_source_arn} ") and function '
            f'(" {existing.function_name} ") already exists. Please update or delete the existing mapping with UUID {existing.uuid}',
            Type="User",
        )
    return ResourceConflictException(
        f'The event source arn (" {existing.event_source_arn} ") and function (" {existing.function_name} ") provided mapping '
        f"already exists. Please update or delete the existing mapping with UUID {existing.uuid}",
        Type="User",
    )


async def create_mapping(request: web.Request) -> web.Response:
    st = state(request)
    mapping = EventSourceMapping.parse(await read_json(request))
    await _verify(st, mapping)
    registry = _registry(st)
    for other in await registry.all():
        same = (other.function_name, other.event_source_arn) == (mapping.function_name, mapping.event_source_arn)
        if same and other.state != "Deleting":
            raise _duplicate(other)
    await registry.put(mapping)
    return json_response(mapping.to_api(), status=202)


async def get_mapping(request: web.Request) -> web.Response:
    mapping = await _registry(state(request)).get(request.match_info["uuid"])
    return json_response(mapping.to_api())


async def list_mappings(request: web.Request) -> web.Response:
    """Filtered by FunctionName (name or ARN) and/or EventSourceArn; pages in UUID order."""
    st = state(request)
    query = request.query
    function = resolve_name(query["FunctionName"])[0] if query.get("FunctionName") else None
    source = query.get("EventSourceArn") or None
    raw_max = query.get("MaxItems") or "100"
    try:
        max_items = int(raw_max)
    except ValueError:
        raise constraint("maxItems", raw_max, "Member must have value between 1 and 10000") from None
    if not 1 <= max_items <= 10000:
        raise constraint("maxItems", max_items, "Member must have value between 1 and 10000")
    mappings = [
        m for m in await _registry(st).all()
        if (function is None or m.function_name == function) and (source is None or m.event_source_arn == source)
    ]
    marker = query.get("Marker")
    if marker:
        mappings = [m for m in mappings if m.uuid >= marker]
    out: dict[str, Any] = {"EventSourceMappings": [m.to_api() for m in mappings[:max_items]]}
    if len(mappings) > max_items:
        out["NextMarker"] = mappings[max_items].uuid
    return json_response(out)


async def update_mapping(request: web.Request) -> web.Response:
    st = state(request)
    registry = _registry(st)
    uuid = request.match_info["uuid"]
    body = await read_json(request)
    preview = EventSourceMapping.parse(body, await registry.get(uuid))
    if "FunctionName" in body:  # AWS re-checks the source against the new function
        await _verify(st, preview)
    # Re-parsed against the stored value inside the compare-and-set, so a poller settling
    # the state meanwhile (or another update) is neither lost nor overwritten blindly.
    updated = await registry.change(uuid, lambda current: EventSourceMapping.parse(body, current))
    assert updated is not None
    return json_response(updated.to_api(), status=202)


async def delete_mapping(request: web.Request) -> web.Response:
    """Marks the mapping Deleting; it stays readable until a pollers process has stopped
    its poller and calls `finalize_deleted` (AWS, too, answers 202 and deletes later)."""
    registry = _registry(state(request))

    def mark(current: EventSourceMapping) -> EventSourceMapping:
        if current.state == "Deleting":
            return current
        return replace(current, state="Deleting", last_modified=time.time(), revision=current.revision + 1)

    deleted = await registry.change(request.match_info["uuid"], mark)
    assert deleted is not None
    return json_response(deleted.to_api(), status=202)


def add_routes(app: web.Application) -> None:
    for path in (PREFIX, PREFIX + "/"):
        app.router.add_post(path, create_mapping)
        app.router.add_get(path, list_mappings)
    app.router.add_get(PREFIX + "/{uuid}", get_mapping)
    app.router.add_put(PREFIX + "/{uuid}", update_mapping)
    app.router.add_delete(PREFIX + "/{uuid}", delete_mapping)
