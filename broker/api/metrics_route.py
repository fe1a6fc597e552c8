"""GET /metrics: Prometheus text of the per-function metrics kept in Redis."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from broker.api.app import state
from broker.metrics import RedisMetricsCollector
from broker.status import read_metrics_async


async def metrics(request: web.Request) -> web.Response:
    st = state(request)
    snapshot = await read_metrics_async(st.redis, st.keys)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisMetricsCollector(snapshot))  # type: ignore[arg-type]
    return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")


async def health(request: web.Request) -> web.Response:
    await state(request).redis.ping()
    return web.Response(text="ok")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
