"""`eventmill pollers`: keep one running poller per live event source mapping.

Every ~0.5 s the runner reads all mappings from Redis and reconciles: it starts a
poller for each mapping in Enabled/Creating/Enabling/Updating (moving the transient
states to Enabled, as Lambda does once the ESM is running), restarts one whose
`revision` changed (an UpdateEventSourceMapping), and stops pollers of disabled,
deleting or vanished mappings. A stop is graceful and runs in the background, so a
slow in-flight batch of one mapping never stalls the others; Disabling becomes
Disabled, and Deleting is finalised, only once that mapping's poller has returned.
Several pollers processes may run against one Redis: SQS arbitrates between them and
state transitions are compare-and-set, so doing one twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from typing import Any
from dataclasses import dataclass, field

import redis.asyncio as aredis

from broker.keys import Keys
from broker.mappings import EventSourceMapping, MappingRegistry
from broker.settings import Settings
from pollers.base import POLLERS, PollerContext

log = logging.getLogger("eventmill.pollers")

RECONCILE_S = 0.5
SETTLE_TO_ENABLED = frozenset({"Creating", "Enabling", "Updating"})


def should_run(mapping: EventSourceMapping) -> bool:
    """Enabled, or on its way there (an Updating mapping keeps its enabled flag)."""
    return mapping.state == "Enabled" or (mapping.state in SETTLE_TO_ENABLED and mapping.enabled)


@dataclass
class Running:
    """One mapping's poller task and the event that asks it to stop."""

    revision: int
    task: asyncio.Task[None]
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def load_poller_modules() -> None:
    """Import every source module so its @register runs; a missing optional one is skipped."""
    import importlib

    for name in ("pollers.sqs", "pollers.s3", "pollers.sns", "pollers.kinesis", "pollers.dynamodb"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


class Runner:
    def __init__(self, ctx: PollerContext) -> None:
        self.ctx = ctx
        self.registry = MappingRegistry(ctx.redis, ctx.keys)
        self.running: dict[str, Running] = {}
        self.stopping: dict[str, Running] = {}

    async def run(self, stop: asyncio.Event) -> None:
        changes = self.ctx.redis.pubsub()
        try:
            await changes.subscribe(self.ctx.keys.mappings_changed)
        except (aredis.RedisError, OSError) as exc:
            log.warning("cannot subscribe to mapping changes (reconciling every %.1f s): %s", RECONCILE_S, exc)
        try:
            while not stop.is_set():
                try:
                    await self.reconcile(await self.registry.all())
                except (aredis.RedisError, OSError) as exc:
                    log.warning("reconcile failed: %s", exc)
                await self._pause(changes)
        finally:
            await changes.aclose()
        for uid in list(self.running):
            self._begin_stop(uid)
        await asyncio.gather(*(r.task for r in self.stopping.values()), return_exceptions=True)

    async def _pause(self, changes: Any) -> None:
        """Until a mapping is written (API create/update/delete publish its UUID) or
        RECONCILE_S passes: a new mapping starts polling at once, and a missed message
        (Redis restarted, a writer that does not publish) only costs RECONCILE_S."""
        try:
            if changes.subscribed:
                if await changes.get_message(ignore_subscribe_messages=True, timeout=RECONCILE_S):
                    while await changes.get_message(ignore_subscribe_messages=True, timeout=0):
                        pass  # one reconcile covers a burst of changes
                return
        except (aredis.RedisError, OSError):
            pass
        await asyncio.sleep(RECONCILE_S)

    async def reconcile(self, mappings: list[EventSourceMapping]) -> None:
        seen = {m.uuid for m in mappings}
        for uid in [u for u in self.running if u not in seen]:
            self._begin_stop(uid)
        self._reap()
        for mapping in mappings:
            if should_run(mapping):
                if mapping.state in SETTLE_TO_ENABLED:
                    await self.registry.settle(mapping.uuid, mapping.revision)
                current = self.running.get(mapping.uuid)
                if current is not None and current.revision != mapping.revision:
                    self._begin_stop(mapping.uuid)
                    current = None
                if current is None and mapping.uuid not in self.stopping:
                    self._start(mapping)
            else:
                if mapping.uuid in self.running:
                    self._begin_stop(mapping.uuid)
                if mapping.uuid in self.stopping:
                    continue  # settle only once our poller has finished its batch
                if mapping.state == "Deleting":
                    await self.registry.finalize_deleted(mapping.uuid)
                elif mapping.state != "Disabled":
                    await self.registry.settle(mapping.uuid, mapping.revision)

    def _start(self, mapping: EventSourceMapping) -> None:
        cls = POLLERS.get(mapping.kind)
        if cls is None:
            return  # a kind served by another build of pollers; not ours to touch
        stop = asyncio.Event()
        poller = cls(self.ctx, mapping)
        task = asyncio.create_task(self._guard(mapping, poller.run(stop)), name=f"esm:{mapping.uuid}")
        self.running[mapping.uuid] = Running(mapping.revision, task, stop)
        log.info("started %s poller for mapping %s (%s)", mapping.kind, mapping.uuid, mapping.event_source_arn)

    async def _guard(self, mapping: EventSourceMapping, coro: object) -> None:
        """A poller that crashes is logged and restarted by the next reconcile."""
        try:
            await coro  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("poller for mapping %s crashed", mapping.uuid)
            await asyncio.sleep(self.ctx.settings.scaled(1.0))

    def _begin_stop(self, uid: str) -> None:
        running = self.running.pop(uid, None)
        if running is not None:
            running.stop.set()
            self.stopping[uid] = running

    def _reap(self) -> None:
        for uid in [u for u, r in self.stopping.items() if r.task.done()]:
            self.stopping.pop(uid)
        for uid in [u for u, r in self.running.items() if r.task.done()]:
            self.running.pop(uid)  # crashed: restarted on this pass


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the pollers process until `stop` is set (or SIGTERM/SIGINT)."""
    load_poller_modules()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    client = aredis.Redis.from_url(settings.redis_url)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    ctx = PollerContext(client, Keys(settings.prefix), settings, owner)
    log.info("pollers %s started", owner)
    try:
        await Runner(ctx).run(stop)
    finally:
        await client.aclose()


def run_pollers(settings: Settings) -> None:
    asyncio.run(serve(settings))
