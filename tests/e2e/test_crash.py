"""Crash safety: an accepted async event is never lost, whether the worker running it is
killed (-9) or Redis itself is restarted (AOF) while events wait."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import orjson
import psutil

from broker.embedded import MotoServer
from tests.conftest import RedisFactory
from tests.e2e.test_async import invoke_event
from tests.stack import Stack

SLOW = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 2))
    return {"done": event.get("i")}
"""


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_worker_killed_mid_invocation_event_still_completes(stack: Stack) -> None:
    stack.create_function("sturdy", SLOW, Timeout=10)
    (victim,) = stack.start_worker()
    rid = invoke_event(stack, "sturdy", orjson.dumps({"i": 1, "sleep": 2}))
    others = [invoke_event(stack, "sturdy", orjson.dumps({"i": i, "sleep": 0.2})) for i in (2, 3)]
    stack.wait_for(lambda: stack.redis.zscore(stack.keys.concurrency("sturdy"), rid) is not None, timeout=30, what="the first event to be running")
    jailed = _descendants(victim.pid)
    assert jailed, "the running invocation has no sandbox process under the worker"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    assert stack.results("sturdy") == []  # it really was killed mid-invocation
    stack.start_worker()
    results = stack.wait_for(lambda: (r := stack.results("sturdy")) and len(r) == 3 and r, timeout=60, what="all 3 events to complete")
    assert {r["requestId"] for r in results} == {rid, *others}
    assert all(r["status"] == "success" for r in results), results
    assert sorted(r["payload"]["done"] for r in results) == [1, 2, 3]
    assert stack.dlq("sturdy") == []
    stack.wait_for(lambda: stack.pending_events() == 0, what="schedule to drain")
    # the crashed attempt's orphaned sandbox does not live on past its invocation
    _gone, alive = psutil.wait_procs(jailed, timeout=15)
    assert not alive, f"sandbox processes of the killed worker still alive: {alive}"


def test_redis_restart_keeps_queued_events(redis_factory: RedisFactory, moto_server: MotoServer, tmp_path: Path) -> None:
    server = redis_factory(tmp_path / "redis-restart")
    stack = Stack(server.url, "em:", moto_server.endpoint, tmp_path / "data")
    try:
        stack.create_function("durable", SLOW, Timeout=5)
        rids = {invoke_event(stack, "durable", orjson.dumps({"i": i, "sleep": 0})) for i in range(5)}
        assert stack.pending_events() == 5
        server.stop()  # SIGTERM: a clean shutdown, AOF flushed
        assert not server.running
        server.start()
        stack.redis.connection_pool.disconnect()
        assert stack.pending_events() == 5, "accepted events did not survive the restart"
        stack.start_worker()
        results = stack.wait_for(lambda: (r := stack.results("durable")) and len(r) == 5 and r, timeout=60, what="5 events to run")
        assert {r["requestId"] for r in results} == rids
        assert all(r["status"] == "success" for r in results)
        # the API's own connection recovers too
        resp = stack.lambda_client.invoke(FunctionName="durable", Payload=b'{"i": 9, "sleep": 0}')
        assert orjson.loads(resp["Payload"].read()) == {"done": 9}
    finally:
        stack.close()


def test_redis_killed_with_fsync_always_keeps_acknowledged_events(redis_factory: RedisFactory, moto_server: MotoServer, tmp_path: Path) -> None:
    """With appendfsync always, even SIGKILL of Redis loses no acknowledged (202) event."""
    server = redis_factory(tmp_path / "redis-kill", fsync="always")
    stack = Stack(server.url, "em:", moto_server.endpoint, tmp_path / "data")
    try:
        stack.create_function("durable2", SLOW, Timeout=5)
        rids = {invoke_event(stack, "durable2", orjson.dumps({"i": i, "sleep": 0})) for i in range(3)}
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while server.running and time.monotonic() < deadline:
            time.sleep(0.05)
        server.start()
        stack.redis.connection_pool.disconnect()
        assert stack.pending_events() == 3
        stack.start_worker()
        results = stack.wait_for(lambda: (r := stack.results("durable2")) and len(r) == 3 and r, timeout=60, what="3 events to run")
        assert {r["requestId"] for r in results} == rids
    finally:
        stack.close()
