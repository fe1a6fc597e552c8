"""`eventmill up`: one command that starts Redis, the AWS emulator, the API and workers
on embedded defaults, and stops all of it on SIGINT/SIGTERM (or when it is killed)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import redis
from aiohttp import web

from broker.api.app import create_app
from broker.deploy import apply_project
from broker.embedded import MotoServer, RedisServer, _die_with_parent
from broker.instance import InstanceInfo, remove_instance, write_instance
from broker.keys import Keys
from broker.settings import Settings

log = logging.getLogger("eventmill.up")


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8570
    redis_url: str | None = None
    aws_endpoint: str | None = None
    aws_real: bool = False
    aws_port: int = 8571
    workers: int = 2
    fsync: str = "everysec"
    config: Path | None = None
    sandbox: str = "nsjail"
    log_format: str = "text"


def spawn_worker(settings: Settings, log_format: str, command: str = "worker") -> subprocess.Popen[bytes]:
    """A `worker` (or, with command="pollers", a pollers) child process on `settings`."""
    env = dict(os.environ)
    env.update({
        "EVENTMILL_REDIS_URL": settings.redis_url,
        "EVENTMILL_PREFIX": settings.prefix,
        "EVENTMILL_DATA_DIR": str(settings.data_dir),
        "EVENTMILL_AWS_ENDPOINT": settings.aws_endpoint or "",
        "EVENTMILL_SANDBOX": settings.sandbox_mode,
    })
    return subprocess.Popen(
        [sys.executable, "-m", "broker.cli", command, "--log-format", log_format],
        env=env, start_new_session=True, preexec_fn=_die_with_parent(signal.SIGTERM),
    )


def run_up(opts: UpOptions, announce: "callable[[str], None]" = print) -> None:  # type: ignore[valid-type]
    data_dir = opts.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    redis_server: RedisServer | None = None
    moto: MotoServer | None = None
    workers: list[subprocess.Popen[bytes]] = []
    try:
        redis_url = opts.redis_url
        if not redis_url:
            redis_server = RedisServer(data_dir, fsync=opts.fsync)  # type: ignore[arg-type]
            redis_url = redis_server.start()
        endpoint: str | None = None
        if opts.aws_endpoint:
            endpoint = opts.aws_endpoint
        elif not opts.aws_real:
            moto = MotoServer(port=opts.aws_port)
            endpoint = moto.start()
        settings = Settings(redis_url=redis_url, data_dir=data_dir, aws_endpoint=endpoint, sandbox_mode=opts.sandbox)
        client = redis.Redis.from_url(redis_url)
        if opts.config and opts.config.exists():
            names = apply_project(client, Keys(settings.prefix), data_dir, opts.config)
            announce(f"functions from {opts.config}: {', '.join(names) or '(none)'}")
        for _ in range(opts.workers):
            workers.append(spawn_worker(settings, opts.log_format))
        workers.append(spawn_worker(settings, opts.log_format, command="pollers"))
        api_url = f"http://{opts.host}:{opts.port}"
        write_instance(data_dir, InstanceInfo(redis_url=redis_url, aws_endpoint=endpoint or "", api_url=api_url, pid=os.getpid()))
        announce(f"redis        {redis_url}" + (" (embedded, AOF " + opts.fsync + ")" if redis_server else ""))
        announce(f"aws          {endpoint or 'real AWS (standard credential chain)'}" + (" (embedded moto)" if moto else ""))
        announce(f"lambda api   {api_url}   e.g. aws --endpoint-url {api_url} lambda list-functions")
        announce(f"workers      {opts.workers} (sandbox: {opts.sandbox}), pollers 1")
        announce(f"data dir     {data_dir}")
        web.run_app(create_app(settings), host=opts.host, port=opts.port, print=None, handle_signals=True)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in workers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if moto:
            moto.stop()
        if redis_server:
            redis_server.stop()
        remove_instance(data_dir)
