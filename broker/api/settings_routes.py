"""Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s) and Put/Get/DeleteFunctionConcurrency."""

from __future__ import annotations

from aiohttp import web

from broker.api.app import json_response, read_json, state
from broker.config import EventInvokeConfig, FunctionConfig, parse_reserved_concurrency, resolve_name
from broker.errors import ResourceNotFoundException

EIC = "/2019-09-25/functions/{name}/event-invoke-config"


async def _config(request: web.Request):  # type: ignore[no-untyped-def]
    name, _ = resolve_name(request.match_info["name"])
    return await state(request).registry.get(name)


def _no_config(name: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"The function {name} doesn't have an EventInvokeConfig", Type="User")


async def put_invoke_config(request: web.Request) -> web.Response:
    config = await _config(request)
    ic = EventInvokeConfig.parse(await read_json(request))
    await state(request).registry.change(config.name, lambda c: c.with_changes(invoke_config=ic))
    return json_response(ic.to_api(config.name))


async def update_invoke_config(request: web.Request) -> web.Response:
    config = await _config(request)
    body = await read_json(request)
    updated = await state(request).registry.change(
        config.name, lambda c: c.with_changes(invoke_config=EventInvokeConfig.parse(body, base=c.invoke_config)))
    assert updated.invoke_config is not None
    return json_response(updated.invoke_config.to_api(config.name))


async def get_invoke_config(request: web.Request) -> web.Response:
    config = await _config(request)
    if config.invoke_config is None:
        raise _no_config(config.arn + ":$LATEST")
    return json_response(config.invoke_config.to_api(config.name))


async def delete_invoke_config(request: web.Request) -> web.Response:
    config = await _config(request)

    def edit(current: FunctionConfig) -> FunctionConfig:
        if current.invoke_config is None:
            raise _no_config(current.arn + ":$LATEST")
        return current.with_changes(invoke_config=None)

    await state(request).registry.change(config.name, edit)
    return web.Response(status=204)


async def list_invoke_configs(request: web.Request) -> web.Response:
    config = await _config(request)
    items = [config.invoke_config.to_api(config.name)] if config.invoke_config else []
    return json_response({"FunctionEventInvokeConfigs": items})


async def put_concurrency(request: web.Request) -> web.Response:
    config = await _config(request)
    value = parse_reserved_concurrency(await read_json(request))
    await state(request).registry.change(config.name, lambda c: c.with_changes(reserved_concurrency=value))
    return json_response({"ReservedConcurrentExecutions": value})


async def get_concurrency(request: web.Request) -> web.Response:
    config = await _config(request)
    if config.reserved_concurrency is None:
        return json_response({})
    return json_response({"ReservedConcurrentExecutions": config.reserved_concurrency})


async def delete_concurrency(request: web.Request) -> web.Response:
    config = await _config(request)
    await state(request).registry.change(config.name, lambda c: c.with_changes(reserved_concurrency=None))
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_put(EIC, put_invoke_config)
    app.router.add_post(EIC, update_invoke_config)
    app.router.add_get(EIC, get_invoke_config)
    app.router.add_delete(EIC, delete_invoke_config)
    app.router.add_get(EIC + "/list", list_invoke_configs)
    app.router.add_put("/2017-10-31/functions/{name}/concurrency", put_concurrency)
    app.router.add_get("/2019-09-30/functions/{name}/concurrency", get_concurrency)
    app.router.add_delete("/2017-10-31/functions/{name}/concurrency", delete_concurrency)
