"""Shared fixtures for the sandbox tests: real nsjail, real processes, no mocks."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox import FunctionSpec, InvokeRequest, Pool

MakeFunction = Callable[..., FunctionSpec]


def _world_readable(root: Path) -> None:
    """The jail runs as nobody; pytest's tmp dirs are 0700, so open the code tree up."""
    for parent in [root, *root.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o055)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            (Path(dirpath) / name).chmod(0o755)
        for name in filenames:
            path = Path(dirpath) / name
            path.chmod(0o755 if os.access(path, os.X_OK) else 0o644)


@pytest.fixture
def make_function(tmp_path: Path) -> MakeFunction:
    """Write `files` (relative path -> source) into a fresh code dir and return its spec."""

    def make(files: dict[str, str], handler: str = "handler.handler", **spec_fields: object) -> FunctionSpec:
        code_dir = tmp_path / f"fn-{uuid.uuid4().hex[:8]}"
        for rel, source in files.items():
            path = code_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
            if rel == "bootstrap":
                path.chmod(0o755)
        _world_readable(code_dir)
        fields: dict[str, object] = {"name": f"fn-{code_dir.name}", "timeout_s": 3.0}
        fields.update(spec_fields)
        return FunctionSpec(code_dir=code_dir, handler=handler, **fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def pool() -> Iterator[Pool]:
    p = Pool(mode="nsjail", idle_timeout_s=300.0, max_environments=8)
    try:
        yield p
    finally:
        p.close()


def new_request(payload: bytes = b"{}", **fields: object) -> InvokeRequest:
    return InvokeRequest(request_id=str(uuid.uuid4()), payload=payload, **fields)  # type: ignore[arg-type]


@pytest.fixture
def req() -> Callable[..., InvokeRequest]:
    """`req(payload, **fields)` -> an InvokeRequest with a fresh request id."""
    return new_request
