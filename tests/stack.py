"""An eventmill deployment for end-to-end tests: the real Lambda API (aiohttp, in a thread
of the test process), real `eventmill worker` processes, the session's real redis-server
(isolated by key prefix) and moto server, and real nsjail."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import boto3
import orjson
import redis
from aiohttp import web
from botocore.config import Config

from broker.api.app import create_app
from broker.embedded import _die_with_parent, free_port
from broker.keys import Keys
from broker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def zip_source(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, source in files.items():
            zf.writestr(name, textwrap.dedent(source))
    return buf.getvalue()


class ApiThread:
    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, args=(settings,), daemon=True, name="api")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("API thread did not start")

    def _serve(self, settings: Settings) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(create_app(settings), access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class Stack:
    def __init__(self, redis_url: str, prefix: str, aws_endpoint: str, data_dir: Path, time_scale: float = 0.01, lease_s: float = 2.0) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.aws_endpoint = aws_endpoint
        self.data_dir = data_dir
        self.time_scale = time_scale
        self.lease_s = lease_s
        self.keys = Keys(prefix)
        self.redis = redis.Redis.from_url(redis_url)
        self.settings = Settings(
            redis_url=redis_url, prefix=prefix, data_dir=data_dir, aws_endpoint=aws_endpoint,
            time_scale=time_scale, lease_s=lease_s,
        )
        self.api = ApiThread(self.settings)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.lambda_client = self.client("lambda", endpoint_url=self.api.url)

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        return boto3.client(
            service, endpoint_url=endpoint_url or self.aws_endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 0}, read_timeout=120),
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "EVENTMILL_REDIS_URL": self.redis_url,
            "EVENTMILL_PREFIX": self.prefix,
            "EVENTMILL_DATA_DIR": str(self.data_dir),
            "EVENTMILL_AWS_ENDPOINT": self.aws_endpoint,
            "EVENTMILL_TIME_SCALE": str(self.time_scale),
            "EVENTMILL_LEASE_SECONDS": str(self.lease_s),
            "PYTHONPATH": str(ROOT),
        })
        return env

    def start_worker(self, count: int = 1, wait: bool = True) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            proc = subprocess.Popen(
                [sys.executable, "-m", "broker.cli", "worker"], env=self.env(), cwd=str(ROOT),
                preexec_fn=_die_with_parent(signal.SIGKILL), stdout=subprocess.DEVNULL,
            )
            started.append(proc)
        self.workers.extend(started)
        if wait:
            # by pid (worker names are host.pid.suffix), not by count: a just-killed
            # worker's registration may expire meanwhile and hide a new one.
            pids = {f".{p.pid}." for p in started}

            def registered() -> bool:
                names = [n.decode() for n in self.redis.zrangebyscore(self.keys.workers, int(time.time() * 1000), "+inf")]
                return all(any(pid in name for name in names) for pid in pids)

            self.wait_for(registered, timeout=30, what="workers to register")
        return started

    def start_pollers(self, count: int = 1) -> list[subprocess.Popen[bytes]]:
        """`eventmill pollers` processes (stopped at close like workers; kill -9 one to test crashes)."""
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "broker.cli", "pollers"], env=self.env(), cwd=str(ROOT),
                preexec_fn=_die_with_parent(signal.SIGKILL), stdout=subprocess.DEVNULL,
            )
            for _ in range(count)
        ]
        self.workers.extend(started)
        return started

    def live_workers(self) -> int:
        return int(self.redis.zcount(self.keys.workers, int(time.time() * 1000), "+inf"))

    def create_function(self, name: str, source: str, handler: str = "app.handler", **config: Any) -> dict[str, Any]:
        files = {handler.rsplit(".", 1)[0].replace(".", "/") + ".py": source}
        return self.lambda_client.create_function(  # type: ignore[no-any-return]
            FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::123456789012:role/r",
            Handler=handler, Code={"ZipFile": zip_source(files)}, **config,
        )

    def results(self, function: str) -> list[dict[str, Any]]:
        from broker.results import list_results

        return list_results(self.redis, self.keys, function)

    def metric(self, function: str, name: str) -> float:
        raw = self.redis.hget(self.keys.metrics(f"fn:{function}"), name)
        return float(raw) if raw is not None else 0.0

    def dlq(self, function: str) -> list[dict[str, Any]]:
        from broker.results import dlq_get, dlq_ids

        return [r for r in (dlq_get(self.redis, self.keys, i) for i in dlq_ids(self.redis, self.keys, function)) if r]

    def pending_events(self) -> int:
        return int(self.redis.zcard(self.keys.event_schedule))

    def receive_all(self, queue_url: str, expect: int, timeout: float = 20) -> list[dict[str, Any]]:
        """Drain up to `expect` messages from an SQS queue (deleting them)."""
        sqs = self.client("sqs")
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < expect and time.monotonic() < deadline:
            resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"], AttributeNames=["All"])
            for msg in resp.get("Messages", []):
                got.append(msg)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])
        return got

    @staticmethod
    def wait_for(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.05, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

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
        self.redis.close()


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)
