"""CreateFunction, GetFunction(Configuration), ListFunctions, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.api.app import json_response, read_json, state
from broker.code import from_api_code
from broker.config import FunctionConfig, parse_settings, resolve_name
from broker.deploy import build_function
from broker.errors import PreconditionFailedException, ResourceConflictException, constraint, function_not_found

PREFIX = "/2015-03-31/functions"


def _name(request: web.Request) -> str:
    name, _qualifier = resolve_name(request.match_info["name"])
    return name


async def create_function(request: web.Request) -> web.Response:
    st = state(request)
    body = await read_json(request)
    name, _ = resolve_name(str(body.get("FunctionName") or ""))
    if await st.registry.find(name):
        raise ResourceConflictException(f"Function already exist: {name}", Type="User")
    config = build_function(body, st.data_dir)
    if not await st.registry.create(config):
        raise ResourceConflictException(f"Function already exist: {name}", Type="User")
    return json_response(config.to_api(), status=201)


async def get_function(request: web.Request) -> web.Response:
    st = state(request)
    config = await st.registry.get(_name(request))
    out: dict[str, Any] = {
        "Configuration": config.to_api(),
        "Code": {"RepositoryType": "Local", "Location": f"file://{config.code_dir}"},
        "Tags": {},
    }
    if config.reserved_concurrency is not None:
        out["Concurrency"] = {"ReservedConcurrentExecutions": config.reserved_concurrency}
    return json_response(out)


async def get_configuration(request: web.Request) -> web.Response:
    config = await state(request).registry.get(_name(request))
    return json_response(config.to_api())


async def list_functions(request: web.Request) -> web.Response:
    st = state(request)
    configs = await st.registry.all()
    marker = request.query.get("Marker")
    max_items = int(request.query.get("MaxItems", "50") or 50)
    if not 1 <= max_items <= 10000:
        raise constraint("maxItems", max_items, "Member must have value between 1 and 10000")
    start = 0
    if marker:
        names = [c.name for c in configs]
        start = names.index(marker) if marker in names else len(names)
    page = configs[start:start + max_items]
    out: dict[str, Any] = {"Functions": [c.to_api() for c in page]}
    if start + max_items < len(configs):
        out["NextMarker"] = configs[start + max_items].name
    return json_response(out)


async def update_code(request: web.Request) -> web.Response:
    st = state(request)
    config = await st.registry.get(_name(request))
    body = await read_json(request)
    code = from_api_code(st.data_dir, config.name, body)
    updated = await st.registry.change(config.name, lambda c: c.with_changes(code_dir=code.directory, code_sha256=code.sha256, code_size=code.size))
    return json_response(updated.to_api())


async def update_configuration(request: web.Request) -> web.Response:
    st = state(request)
    body = await read_json(request)

    def edit(config: FunctionConfig) -> FunctionConfig:
        revision = body.get("RevisionId")
        if revision and revision != config.revision_id:
            raise _precondition(config.revision_id)
        changes = parse_settings(body, base=config.to_dict())
        if config.runtime not in ("provided", "provided.al2", "provided.al2023") and changes.get("handler") == "":
            changes.pop("handler")
        return config.with_changes(**changes)

    updated = await st.registry.change(_name(request), edit)
    return json_response(updated.to_api())


def _precondition(current: str) -> PreconditionFailedException:
    return PreconditionFailedException(
        f"The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id ({current})"
    )


async def delete_function(request: web.Request) -> web.Response:
    st = state(request)
    name = _name(request)
    if not await st.registry.find(name):
        raise function_not_found(name)
    await st.registry.delete(name)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX, create_function)
    app.router.add_post(PREFIX + "/", create_function)
    app.router.add_get(PREFIX, list_functions)
    app.router.add_get(PREFIX + "/", list_functions)
    app.router.add_get(PREFIX + "/{name}", get_function)
    app.router.add_delete(PREFIX + "/{name}", delete_function)
    app.router.add_get(PREFIX + "/{name}/configuration", get_configuration)
    app.router.add_put(PREFIX + "/{name}/configuration", update_configuration)
    app.router.add_put(PREFIX + "/{name}/code", update_code)
