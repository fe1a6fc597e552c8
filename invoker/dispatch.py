"""The dispatcher: moves due async events and pending sync requests from Redis onto the
rq queue. One runs in every worker process, so `eventmill worker` alone is a complete
consumer and scaling out is just more workers.

Back-pressure: events stay in the schedule ZSET (durable, unleased) while the rq queue
already holds enough jobs for the live workers, so a replay of 100k events never turns
into 100k rq jobs, and due events are grouped several per job when there is a backlog.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from rq import Queue

from broker.events import now_ms
from invoker.context import Context
from invoker.jobs import run_sync_now
from invoker.scripts import DISPATCH

log = logging.getLogger("eventmill.invoker")

POLL_S = 0.05
JOBS_PER_WORKER = 4
MAX_EVENTS_PER_JOB = 50
DISPATCH_LIMIT = 400
# A dispatched event that no job claims within this long is dispatched again (a job lost
# with a worker killed between rq's dequeue and our claim). Claims are token-checked, so
# a late original job then runs nothing.
QUEUED_LEASE_MS = 60_000


def live_workers(ctx: Context) -> int:
    return max(1, int(ctx.redis.zcount(ctx.keys.workers, now_ms(), "+inf")))


def enqueue_options() -> dict[str, object]:
    return {"timeout": -1, "result_ttl": 0, "failure_ttl": 24 * 3600}


def dispatch_due(ctx: Context, queue: Queue) -> int:
    """Lease due events and enqueue them in jobs; returns how many events were sent."""
    workers = live_workers(ctx)
    room = workers * JOBS_PER_WORKER - queue.count
    if room <= 0:
        return 0
    script = ctx.script(DISPATCH)
    reply = script(keys=[ctx.keys.event_schedule], args=[now_ms(), QUEUED_LEASE_MS, min(DISPATCH_LIMIT, room * MAX_EVENTS_PER_JOB)])
    token = int(reply[0])
    rids = [r.decode() for r in reply[1:]]
    if not rids:
        return 0
    # Spread over the jobs there is room for, not over workers * JOBS_PER_WORKER: when the
    # queue is nearly full (room 1) the events go out as one job instead of many tiny ones
    # that overfill the queue and pay rq's ~3 ms per job for a few events each.
    per_job = min(MAX_EVENTS_PER_JOB, max(1, math.ceil(len(rids) / room)))
    jobs = [
        Queue.prepare_data("invoker.jobs.run_events", args=(token, rids[i:i + per_job]), **enqueue_options())  # type: ignore[arg-type]
        for i in range(0, len(rids), per_job)
    ]
    queue.enqueue_many(jobs)
    return len(rids)


def run_or_enqueue_sync(ctx: Context, queue: Queue, request_id: str) -> None:
    """Run a sync request here when the worker is idle, else queue it as an rq job.

    A sync request is a caller waiting (an API Invoke, or a poller's batch: one batch is
    one invocation). rq's job lifecycle costs ~65 Redis commands, more than a small
    invocation itself, so an idle worker skips it; a busy one queues the request at the
    front, to run right after the current job.
    """
    if ctx.execution.acquire(blocking=False):
        try:
            run_sync_now(request_id)
        finally:
            ctx.execution.release()
    else:
        queue.enqueue_call("invoker.jobs.run_sync", args=(request_id,), at_front=True, **enqueue_options())  # type: ignore[arg-type]


def run(ctx: Context, queue: Queue, stop: threading.Event) -> None:
    """Sync requests first, but due async events are dispatched at least every POLL_S
    even while sync requests keep coming (a steady stream of batches from the pollers
    must not starve the async path)."""
    keys = ctx.keys
    dispatched_at = 0.0
    while not stop.is_set():
        try:
            popped = ctx.redis.blpop([keys.sync_pending, keys.async_wake], timeout=POLL_S)
            if popped and popped[0].decode() == keys.sync_pending:
                run_or_enqueue_sync(ctx, queue, popped[1].decode())
                if time.monotonic() - dispatched_at < POLL_S:
                    continue
            dispatched_at = time.monotonic()
            while dispatch_due(ctx, queue) >= DISPATCH_LIMIT and not stop.is_set():
                pass
        except Exception:  # a Redis blip must not kill the dispatcher thread
            log.exception("dispatcher error; retrying")
            stop.wait(0.5)
