"""Replay throughput vs the same number of async invokes through the Python API, side by
side in one run (issue: replay within 0.8x of the API's throughput on 2 cores).

    python bench/bench_replay.py [--events 20000] [--workers 2]

Both runs use the same embedded redis-server, the same worker processes (real nsjail) and
a no-op function; each is timed from the first submission until every event is final.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broker.client import invoke_async  # noqa: E402
from broker.embedded import RedisServer  # noqa: E402
from eventmill import replay  # noqa: E402
from tests.stack import Stack  # noqa: E402


def api_run(stack: Stack, n: int) -> float:
    """n invoke_async calls (one durable event and one wake each), then wait for all."""
    start = time.perf_counter()
    for i in range(n):
        invoke_async(stack.redis, stack.keys, "noop", orjson.dumps({"n": i}))
    stack.wait_for(lambda: stack.pending_events() == 0, timeout=3600, interval=0.02, what="API events")
    return time.perf_counter() - start


def replay_run(stack: Stack, source: Path) -> tuple[float, int]:
    start = time.perf_counter()
    report = replay("noop", [source], redis_url=stack.redis_url, prefix=stack.prefix)
    return time.perf_counter() - start, report.succeeded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n = args.events
    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    server = RedisServer(tmp / "redis")
    url = server.start()
    stack = Stack(url, "br:", "http://127.0.0.1:1", tmp / "data")
    try:
        stack.start_worker(args.workers)
        stack.create_function("noop", "def handler(event, context):\n    return None\n")
        source = tmp / "events.jsonl"
        source.write_bytes(b"".join(orjson.dumps({"n": i}) + b"\n" for i in range(n)))
        replay("noop", events=[{"warm": True}], redis_url=url, prefix="br:")
        api_s = api_run(stack, n)
        replay_s, ok = replay_run(stack, source)
        print(f"machine: nproc {os.cpu_count()}, {args.workers} workers, {n} no-op events, load {os.getloadavg()[0]:.2f}")
        print(f"{'path':38} {'seconds':>8} {'events/s':>9}")
        print(f"{'Python API invoke_async x N':38} {api_s:8.2f} {n / api_s:9.0f}")
        print(f"{'eventmill replay (event mode)':38} {replay_s:8.2f} {n / replay_s:9.0f}   succeeded {ok}")
        print(f"replay / API throughput ratio: {(n / replay_s) / (n / api_s):.2f} (target >= 0.8)")
    finally:
        stack.close()
        server.stop()


if __name__ == "__main__":
    main()
