"""What every `eventmill` command shares: consoles, the common options, one-line errors,
and finding the running instance (instance.json in the data dir, or --redis-url)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import redis
import typer
from rich.console import Console

from broker.instance import default_data_dir, read_instance
from broker.keys import Keys

out = Console()
err = Console(stderr=True)

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Instance data dir [default: ./.eventmill or $EVENTMILL_DATA_DIR]")]
RedisUrl = Annotated[Optional[str], typer.Option("--redis-url", envvar="EVENTMILL_REDIS_URL", help="Use this Redis instead of the instance in the data dir")]


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def instance_url(redis_url: str | None, data_dir: Path | None) -> str:
    url = redis_url
    if not url:
        directory = data_dir or default_data_dir()
        try:
            info = read_instance(directory)
        except ValueError as exc:
            raise fail(str(exc)) from None
        if info is None:
            raise fail(f"no running eventmill found in {directory} (start one with `eventmill up`, or pass --redis-url)")
        url = info["redis_url"]
    return url


def connect(redis_url: str | None, data_dir: Path | None) -> tuple[redis.Redis, Keys]:
    url = instance_url(redis_url, data_dir)
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise fail(f"cannot reach Redis at {url}: {exc}") from None
    return client, Keys(os.environ.get("EVENTMILL_PREFIX", "em:"))

