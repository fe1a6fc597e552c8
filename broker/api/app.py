"""The aiohttp application: shared state, error rendering, routes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson
import redis.asyncio as aredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from broker.errors import InvalidRequestContentException, LambdaError
from broker.keys import Keys
from broker.registry import Registry
from broker.settings import Settings

log = logging.getLogger("eventmill.api")
MAX_BODY_BYTES = 80 * 1024 * 1024  # a 50 MB zip, base64-encoded in JSON
STATE = web.AppKey("state", object)


@dataclass
class ApiState:
    settings: Settings
    redis: aredis.Redis
    keys: Keys
    registry: Registry

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir


def state(request: web.Request) -> ApiState:
    return request.app[STATE]  # type: ignore[return-value]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def error_response(error: LambdaError) -> web.Response:
    return web.Response(
        body=orjson.dumps(error.body()), status=error.status, content_type="application/json",
        headers={"X-Amzn-ErrorType": error.code},
    )


async def read_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestContentException(f"Could not parse request body into json: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestContentException("Could not parse request body into json: expected an object")
    return body


@web.middleware
async def errors_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except LambdaError as exc:
        return error_response(exc)
    except web.HTTPException:
        raise
    except Exception as exc:  # keep serving; report AWS's generic service error
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(LambdaError(f"Internal error: {type(exc).__name__}: {exc}"))


def create_app(settings: Settings, client: aredis.Redis | None = None) -> web.Application:
    from broker.api import functions, invoke, metrics_route, settings_routes

    # redis.asyncio's from_url does not retry a dropped connection (the sync client does):
    # without this the first requests after a Redis restart fail on stale pooled sockets.
    client = client or aredis.Redis.from_url(settings.redis_url, retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3))
    keys = Keys(settings.prefix)
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY_BYTES)
    app[STATE] = ApiState(settings=settings, redis=client, keys=keys, registry=Registry(client, keys))
    functions.add_routes(app)
    invoke.add_routes(app)
    settings_routes.add_routes(app)
    metrics_route.add_routes(app)
    from broker.api import mappings as mapping_routes
    mapping_routes.add_routes(app)

    async def close_redis(app: web.Application) -> None:
        await client.aclose()

    app.on_cleanup.append(close_redis)
    return app
