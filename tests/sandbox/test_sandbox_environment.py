"""What a function sees: its environment variables, identity, filesystem and network."""

from __future__ import annotations

import json
import logging
import os
import socket

import pytest

from sandbox import Pool

DUMP = """
    import os, socket
    def handler(event, context):
        try:
            s = socket.create_connection(("127.0.0.1", event["port"]), timeout=1)
            s.close()
            net = "connected"
        except OSError as e:
            net = type(e).__name__
        try:
            open("/var/task/x", "w")
            task_w = "writable"
        except OSError as e:
            task_w = e.strerror
        return {"env": dict(os.environ), "uid": os.getuid(), "net": net, "task_w": task_w, "cwd": os.getcwd()}
"""


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_environment_variables_and_isolation(
    pool: Pool, make_function, req, listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTMILL_PLANTED_SECRET", "s3cr3t-do-not-leak")
    spec = make_function({"handler.py": DUMP}, environment=(("MY_VAR", "mine"),), memory_mb=192)
    result = pool.invoke(spec, req(json.dumps({"port": listener}).encode()))
    assert result.ok, result.payload
    got = json.loads(result.payload)
    env = got["env"]
    assert "EVENTMILL_PLANTED_SECRET" not in env
    assert "s3cr3t-do-not-leak" not in json.dumps(env)
    assert env["MY_VAR"] == "mine"
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "192",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": "handler.handler",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "TZ": "UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert "/var/task" in env["LD_LIBRARY_PATH"] and "PYTHONPATH" in env
    assert set(env) - set(expected) <= {"MY_VAR", "AWS_LAMBDA_LOG_STREAM_NAME", "LD_LIBRARY_PATH", "PYTHONPATH",
                                        "AWS_XRAY_CONTEXT_MISSING", "LC_CTYPE"}
    assert got["uid"] == 65534
    assert got["net"] == "ConnectionRefusedError"  # the jail's own loopback, not the host's
    assert got["task_w"] == "Read-only file system"
    assert got["cwd"] == "/var/task"


def test_host_site_packages_not_visible(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": """
        import importlib.util, sys
        def handler(event, context):
            return {m: importlib.util.find_spec(m) is not None for m in ("orjson", "redis", "boto3", "json")}
    """})
    got = json.loads(pool.invoke(spec, req()).payload)
    assert got == {"orjson": False, "redis": False, "boto3": False, "json": True}


def test_function_dependencies_from_task_and_layer(pool: Pool, make_function, req, tmp_path) -> None:
    layer = tmp_path / "layer"
    (layer / "python").mkdir(parents=True)
    (layer / "python" / "layerlib.py").write_text("WHO = 'layer'\n")
    for path in (tmp_path, layer, layer / "python"):
        path.chmod(0o755)
    (layer / "python" / "layerlib.py").chmod(0o644)
    spec = make_function(
        {"handler.py": "import layerlib, vendored\ndef handler(e, c):\n    return [layerlib.WHO, vendored.WHO]\n",
         "vendored.py": "WHO = 'task'\n"},
        layers=(layer,),
    )
    result = pool.invoke(spec, req())
    assert json.loads(result.payload) == ["layer", "task"], result.log


def test_mode_none_warns_every_start(make_function, req, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="eventmill.sandbox")
    for _ in range(2):
        with Pool(mode="none") as plain:
            spec = make_function({"handler.py": "def handler(e, c):\n    return 'plain'\n"})
            assert json.loads(plain.invoke(spec, req()).payload) == "plain"
    warnings = [r for r in caplog.records if r.name == "eventmill.sandbox" and "NO isolation" in r.getMessage()]
    assert len(warnings) == 2


def test_mode_none_does_not_leak_host_env(make_function, req, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTMILL_PLANTED_SECRET", "s3cr3t")
    with Pool(mode="none") as plain:
        spec = make_function({"handler.py": "import os\ndef handler(e, c):\n    return dict(os.environ)\n"})
        env = json.loads(plain.invoke(spec, req()).payload)
    assert "EVENTMILL_PLANTED_SECRET" not in env and env["AWS_LAMBDA_FUNCTION_NAME"] == spec.name


def test_invalid_mode_and_unknown_runtime(pool: Pool, make_function, req) -> None:
    with pytest.raises(ValueError):
        Pool(mode="docker")  # type: ignore[arg-type]
    spec = make_function({"handler.py": "def handler(e, c):\n    return 1\n"}, runtime="python2.7")
    result = pool.invoke(spec, req())
    assert result.function_error == "Unhandled" and result.error_type == "Runtime.InvalidRuntime"


def test_no_orphans_after_close(make_function, req) -> None:
    spec = make_function({"handler.py": "def handler(e, c):\n    return 1\n"})
    before = _children()  # other fixtures' pools may hold warm environments of their own
    p = Pool(mode="nsjail")
    assert p.invoke(spec, req()).ok
    assert _children() - before, "the pool started no environment process"
    p.close()
    assert _children() - before == set()


def _children() -> set[str]:
    return {d for d in os.listdir("/proc") if d.isdigit() and _ppid(d) == os.getpid()}


def _ppid(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1
