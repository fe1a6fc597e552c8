"""An `eventmill worker` process: rq SimpleWorker (no fork per job, so warm sandbox
environments survive between jobs) plus two threads, the dispatcher and the heartbeat."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

import redis
from rq import Queue, SimpleWorker

from broker.events import now_ms
from broker.settings import Settings
from invoker import dispatch
from invoker.context import Context, install
from sandbox import Pool

log = logging.getLogger("eventmill.invoker")


def heartbeat(ctx: Context, stop: threading.Event) -> None:
    """Renew this worker's registration and the leases of what it is running, so a killed
    worker's events and concurrency slots expire within `lease_s`."""
    interval = max(0.2, ctx.settings.lease_s / 3)
    lease_ms = int(ctx.settings.lease_s * 1000)
    keys = ctx.keys
    while not stop.is_set():
        try:
            deadline = now_ms() + lease_ms
            with ctx.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(keys.workers, {ctx.name: deadline})
                pipe.zremrangebyscore(keys.workers, "-inf", now_ms() - 60_000)
                for rid in list(ctx.claimed_events):
                    pipe.zadd(keys.event_schedule, {rid: deadline}, xx=True)
                for rid, conc_key in list(ctx.running.items()):
                    pipe.zadd(conc_key, {rid: deadline}, xx=True)
                pipe.execute()
        except redis.RedisError:
            log.warning("heartbeat failed; retrying", exc_info=True)
        stop.wait(interval)


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    pool = Pool(mode=settings.sandbox_mode)  # type: ignore[arg-type]
    worker_name = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    ctx = Context(settings=settings, redis=client, pool=pool, name=worker_name)
    install(ctx)
    # rq gets its own connection: it tunes socket timeouts for its blocking dequeue, which
    # must not leak into the dispatcher's and heartbeat's short calls (or vice versa).
    rq_client = redis.Redis.from_url(settings.redis_url)
    queue = Queue(ctx.keys.rq_queue, connection=rq_client)
    stop = threading.Event()
    threads = [
        threading.Thread(target=heartbeat, args=(ctx, stop), name="heartbeat", daemon=True),
        threading.Thread(target=dispatch.run, args=(ctx, queue, stop), name="dispatcher", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        worker = SimpleWorker([queue], connection=rq_client, name=worker_name)
        worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2)
        with ctx.execution:  # a sync request the dispatcher is running finishes first
            pool.close()
        try:
            client.zrem(ctx.keys.workers, worker_name)
        except redis.RedisError:
            pass
