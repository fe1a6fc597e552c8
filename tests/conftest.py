"""Fixtures shared by the whole suite: a real redis-server and a real moto server.

One of each per pytest process (so per xdist worker), started lazily by the first test
that asks. Tests get isolation from a unique key prefix (`em_prefix`) instead of a server
each, which keeps a run to two child processes per worker. A test that stops or restarts
Redis must use `redis_factory`, never the session server. Children die with the run even
on `kill -9` (PR_SET_PDEATHSIG, see broker/embedded.py) and are stopped at session end.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The package is not installed and pyproject sets no `pythonpath`; the pytest script does
# not put the cwd on sys.path, so make the repo importable from any invocation.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import redis  # noqa: E402

from broker.embedded import MotoServer, RedisServer  # noqa: E402

RedisFactory = Callable[..., RedisServer]


def _worker_dies_with_controller() -> None:
    """An xdist worker outlives a `kill -9`ed controller until its current test ends (or
    never, if it hangs), and our servers with it. Tie the worker to the controller the
    way embedded.py ties servers to us, so the whole tree goes at once."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the controller died before we asked
        os._exit(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Volume (`slow`) tests first. xdist's load scheduler hands the first tests out in
    turn, so the few multi-minute tests start at once on different workers and the quick
    ones fill the gaps, instead of one worker starting a 3-minute test near the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The worker's shared redis-server (AOF on, everysec). Do not stop it in a test."""
    _worker_dies_with_controller()
    server = RedisServer(tmp_path_factory.mktemp("redis-session"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[RedisFactory]:
    """`make(data_dir=None, **kwargs) -> RedisServer`, already started; stopped at teardown.

    kwargs go to RedisServer (port, fsync, executable). Without data_dir each call gets
    its own directory under tmp_path; pass the same data_dir to a second server to test
    what survives a restart.
    """
    made: list[RedisServer] = []

    def make(data_dir: Path | None = None, **kwargs: Any) -> RedisServer:
        server = RedisServer(data_dir or tmp_path / f"redis-{len(made)}", **kwargs)
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def em_prefix() -> str:
    """A key prefix no other test uses, e.g. "t1a2b3c4d:"."""
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def redis_url(redis_server: RedisServer, em_prefix: str) -> Iterator[str]:
    """The session server's url; the test's keys belong under `em_prefix`, deleted after."""
    if not redis_server.running:  # a test broke the rule above; heal for the next ones
        redis_server.start()
    yield redis_server.url
    if redis_server.running:
        cleaner = redis.Redis.from_url(redis_server.url)
        try:
            keys = list(cleaner.scan_iter(match=f"{em_prefix}*", count=1000))
            for start in range(0, len(keys), 500):
                cleaner.delete(*keys[start : start + 500])
        finally:
            cleaner.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """redis.Redis on `redis_url`, bytes in and out (decode_responses=False)."""
    client = redis.Redis.from_url(redis_url, decode_responses=False)
    yield client
    client.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """The worker's shared moto server; its state lives for the session, so name
    queues, streams and tables uniquely (e.g. with `em_prefix`)."""
    _worker_dies_with_controller()
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws_kwargs(moto_server: MotoServer) -> dict[str, str]:
    """Client kwargs for boto3/aiobotocore against moto; a fresh dict per test."""
    return dict(
        region_name="us-east-1",
        endpoint_url=moto_server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def sqs_client(aws_kwargs: dict[str, str]) -> Iterator[Any]:
    """A boto3 SQS client against the worker's moto server."""
    client = boto3.client("sqs", **aws_kwargs)
    yield client
    client.close()


@pytest.fixture
def stack(redis_url: str, em_prefix: str, moto_server: MotoServer, tmp_path: Path) -> Iterator[Any]:
    """A running eventmill (API + workers on demand) isolated by key prefix; time scale 0.01."""
    from tests.stack import Stack

    deployment = Stack(redis_url, em_prefix, moto_server.endpoint, tmp_path / "data")
    yield deployment
    deployment.close()
