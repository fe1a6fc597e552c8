"""Custom runtimes (provided.*): /var/task/bootstrap driven through the in-jail Runtime API."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from sandbox import Pool

PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))

CLIENT = """
    import json, os, sys, urllib.request
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
    print("custom init", os.environ["_HANDLER"], flush=True)
    while True:
        with urllib.request.urlopen(api + "/invocation/next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            headers = {k: r.headers[k] for k in ("Lambda-Runtime-Deadline-Ms", "Lambda-Runtime-Invoked-Function-Arn",
                                                 "Lambda-Runtime-Trace-Id", "Lambda-Runtime-Client-Context")}
            event = json.loads(r.read())
        print("handling", rid, flush=True)
        if event.get("exit"):
            sys.exit(3)
        kind = "error" if event.get("fail") else "response"
        body = {"errorMessage": "boom", "errorType": "CustomError", "stackTrace": []} if event.get("fail") else {
            "echo": event, "headers": headers}
        req = urllib.request.Request(f"{api}/invocation/{rid}/{kind}", data=json.dumps(body).encode(), method="POST")
        urllib.request.urlopen(req).read()
"""


def test_shell_bootstrap_runtime_api(pool: Pool, make_function, req) -> None:
    bootstrap = f"#!/bin/sh\nexec {PYTHON} -I -S /var/task/client.py\n"
    spec = make_function({"bootstrap": bootstrap, "client.py": CLIENT}, handler="my.handler", runtime="provided.al2023")
    request = req(b'{"a": 1}', client_context="eyJjdXN0b20iOiB7ImsiOiAidiJ9fQ==")
    first = pool.invoke(spec, request)
    assert first.ok, first.log
    got = json.loads(first.payload)
    assert got["echo"] == {"a": 1}
    assert got["headers"]["Lambda-Runtime-Invoked-Function-Arn"] == spec.arn
    assert got["headers"]["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert json.loads(got["headers"]["Lambda-Runtime-Client-Context"]) == {"custom": {"k": "v"}}
    assert int(got["headers"]["Lambda-Runtime-Deadline-Ms"]) > 0
    assert first.init_duration_ms is not None
    assert first.log.startswith("custom init my.handler\n")
    assert f"handling {request.request_id}\n" in first.log

    failed = pool.invoke(spec, req(b'{"fail": true}'))
    assert failed.function_error == "Unhandled" and failed.error_type == "CustomError"
    assert json.loads(failed.payload)["errorMessage"] == "boom"

    crashed = pool.invoke(spec, req(b'{"exit": true}'))
    assert crashed.error_type == "Runtime.ExitError"
    assert json.loads(crashed.payload)["errorMessage"].endswith("Runtime exited with error: exit status 3")
    again = pool.invoke(spec, req(b'{"b": 2}'))
    assert json.loads(again.payload)["echo"] == {"b": 2} and again.init_duration_ms is not None


def test_awslambdaric_unmodified(pool: Pool, make_function, req) -> None:
    import awslambdaric

    site = Path(awslambdaric.__file__).resolve().parents[1]
    handler = """
        import logging
        def handler(event, context):
            logging.getLogger().warning("ric says hi")
            if event.get("raise"):
                raise ValueError("bad value")
            return {"echo": event, "fn": context.function_name, "memory": context.memory_limit_in_mb}
    """
    bootstrap = f"#!/bin/sh\nexport PYTHONPATH=/var/task\nexec {PYTHON} -S -m awslambdaric app.handler\n"
    spec = make_function({"bootstrap": bootstrap, "app.py": handler}, handler="app.handler", runtime="provided")
    names = ["awslambdaric", "simplejson", "snapshot_restore_py.py"]
    names += [p.name for p in site.glob("runtime_client*.so")]
    for name in names:
        src = site / name
        if not src.exists():
            pytest.skip(f"{name} not installed next to awslambdaric")
        dst = spec.code_dir / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    for dirpath, dirnames, filenames in os.walk(spec.code_dir):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for f in filenames:
            path = os.path.join(dirpath, f)
            os.chmod(path, 0o755 if f == "bootstrap" or f.endswith(".so") else 0o644)

    result = pool.invoke(spec, req(b'{"x": 1}'))
    assert result.ok, result.log
    assert json.loads(result.payload) == {"echo": {"x": 1}, "fn": spec.name, "memory": "128"}
    assert "ric says hi" in result.log

    request = req(b'{"raise": true}')
    failed = pool.invoke(spec, request)
    assert failed.error_type == "ValueError", failed.log
    body = json.loads(failed.payload)
    assert body["errorMessage"] == "bad value" and body["errorType"] == "ValueError"
    assert failed.init_duration_ms is None  # same warm environment
