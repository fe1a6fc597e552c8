"""Fixtures for the sandbox security suite (plain helpers are in helpers.py).

Code directories live under one world-traversable directory (0755), not under
pytest's 0700 tmp dir: a refusal must come from the jail (mount/PID/net
namespaces, seccomp, limits), never from host file permissions that happen to
be tight in the test setup.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from sandbox import FunctionSpec, Pool

from .helpers import PRELUDE, RedisServer


class MakeFunction(Protocol):
    def __call__(self, name: str, body: str, **overrides: Any) -> FunctionSpec: ...


@pytest.fixture(scope="session")
def code_root() -> Iterator[Path]:
    """A 0755 directory for all test functions' code and data (see module docstring)."""
    root = Path(tempfile.mkdtemp(prefix="eventmill-sec-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def make_function(code_root: Path) -> MakeFunction:
    """Factory: write PRELUDE + `body` (which defines `probe(event)`) as app.py.

    Names get a random suffix so every test gets its own environments in the
    shared session pool. Defaults are small and fast (timeout 1 s, 128 MB).
    """

    def make(name: str, body: str, **overrides: Any) -> FunctionSpec:
        unique = f"sec-{name}-{uuid.uuid4().hex[:8]}"
        code_dir = code_root / unique
        code_dir.mkdir()
        code_dir.chmod(0o755)
        app = code_dir / "app.py"
        app.write_text(PRELUDE + textwrap.dedent(body))
        app.chmod(0o644)
        fields: dict[str, Any] = {
            "name": unique,
            "code_dir": code_dir,
            "handler": "app.handler",
            "memory_mb": 128,
            "timeout_s": 1,
            "ephemeral_mb": 64,
            "environment": (),
            "code_version": "1",
        }
        fields.update(overrides)
        return FunctionSpec(**fields)

    return make


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """A real nsjail pool shared by a module's tests, as the invoker would hold it.

    Module- rather than session-scoped so its warm nsjail children are gone before
    another suite in the same pytest run counts this process's children
    (tests/sandbox's orphan check does).
    """
    p = Pool(mode="nsjail", idle_timeout_s=300.0, max_environments=16)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="session")
def trivial_spec(make_function: MakeFunction) -> FunctionSpec:
    """A function that does nothing hostile: proves the pool as a whole still works."""
    return make_function(
        "trivial",
        """
        def probe(event):
            return {"pong": True, "uid": os.getuid()}
        """,
    )


@pytest.fixture()
def tcp_listener() -> Iterator[Callable[[str], socket.socket]]:
    """Factory of real listening TCP sockets (the API / emulator stand-ins)."""
    opened: list[socket.socket] = []

    def make(host: str = "127.0.0.1") -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        s.listen(16)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture()
def redis_server(code_root: Path) -> Iterator[RedisServer]:
    """Redis with its data dir world-readable on purpose: only the jail's mount namespace may hide it."""
    data_dir = code_root / f"redis-data-{uuid.uuid4().hex[:8]}"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    server = RedisServer(data_dir)
    try:
        yield server
    finally:
        server.stop()
